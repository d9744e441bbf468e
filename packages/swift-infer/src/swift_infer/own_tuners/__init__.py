"""The tuners peft does not have: bottleneck adapters (--train_type adapter) and ReFT interventions.

They hang off the frozen model through forward hooks on named modules. Their directory holds
swift_tuner.json (the kind, the hooked modules and the settings) and swift_tuner.safetensors (their
own weights only), so `--adapters DIR` attaches them to the base model in an install that has
swift-infer alone, the way a PEFT adapter is attached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from swift_args.adapters import OWN_TUNER_CONFIG

from swift_infer.own_tuners import bottleneck, reft

CONFIG_FILE = OWN_TUNER_CONFIG
WEIGHTS_FILE = "swift_tuner.safetensors"
MODULE_NAME = "swift_tuner"  # the attribute under which each hooked module holds its tuner module
_ATTACHED = "_swift_tuner_config"  # model attribute: the attached tuner's config
KINDS = {"adapter": bottleneck, "reft": reft}


def is_own_tuner(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def read_config(path: str | Path) -> dict[str, Any]:
    """The tuner's saved swift_tuner.json: kind, hooked modules, settings, and the base it was trained on."""
    return json.loads((Path(path) / CONFIG_FILE).read_text())


def kind_of(path: str | Path) -> str:
    """"adapter" or "reft", as saved in the tuner's directory."""
    return read_config(path)["kind"]


def attached(model: Any) -> dict[str, Any] | None:
    """The config of the tuner attached to `model` (unwrapped), or None."""
    return getattr(model, _ATTACHED, None)


def attach(model: Any, config: dict[str, Any]) -> Any:
    """Build the tuner's modules (float32, trainable) on `model` and hook them in; returns `model`.

    config: {"kind": "adapter" | "reft", "modules": [module names], "settings": {...}}.
    """
    kind = KINDS[config["kind"]]
    for name in config["modules"]:
        host = model.get_submodule(name)
        device = next(host.parameters()).device  # a model spread over devices (--device_map): the host's own
        tuner = kind.build(_hidden_size(model), config["settings"]).to(device=device, dtype=torch.float32)
        host.add_module(MODULE_NAME, tuner)
        host.register_forward_hook(_apply_to_output)
    setattr(model, _ATTACHED, {**config, "base": base_shape(model)})
    return model


def base_shape(model: Any) -> dict[str, Any]:
    """What a tuner must fit: the architecture, its width and depth (a tuner of the same width but trained
    on another model would otherwise load without complaint)."""
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return {"model_type": text.model_type, "hidden_size": text.hidden_size,
            "num_hidden_layers": getattr(text, "num_hidden_layers", None)}


def tuner_state(model: Any) -> dict[str, torch.Tensor]:
    """The tuner's weights only, keyed by their names in the model."""
    marker = f".{MODULE_NAME}."
    return {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items() if marker in name}


def save(model: Any, directory: str | Path, base_model: str | None = None) -> None:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {**attached(model), "base_model_name_or_path": base_model}  # the name as the user gave it
    save_file(tuner_state(model), str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def load_weights(model: Any, directory: str | Path) -> None:
    """Put the saved weights into the attached tuner; a tuner of another shape or base is an error."""
    from safetensors.torch import load_file

    saved = load_file(str(Path(directory) / WEIGHTS_FILE))
    current = tuner_state(model)
    if set(saved) != set(current):
        raise ValueError(f"{directory} holds weights for other modules than this model's tuner")
    for name, tensor in saved.items():
        if tensor.shape != current[name].shape:
            raise ValueError(f"size mismatch for {name}: saved {tuple(tensor.shape)}, model {tuple(current[name].shape)}")
    model.load_state_dict(saved, strict=False)


def load(model: Any, directory: str | Path, trainable: bool = False) -> Any:
    """`model` with the tuner saved in `directory` attached; the base is frozen, the tuner too unless `trainable`."""
    config = read_config(directory)
    base_name = config.pop("base_model_name_or_path", None)
    saved, here = config.pop("base", None), base_shape(model)
    if saved is not None and saved != here:
        differs = ", ".join(f"{key} {saved.get(key)} vs {here[key]}" for key in here if saved.get(key) != here[key])
        raise ValueError(f"it was trained on {base_name or 'another model'} ({differs})")
    attach(model, config)
    load_weights(model, directory)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable and f".{MODULE_NAME}." in name)
    return model


def _hidden_size(model: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return config.hidden_size


@contextmanager
def disabled(model: Any) -> Iterator[None]:
    """The base model alone while the block runs (rlhf's reference model is the model without its tuner)."""
    tuners = [m for m in model.modules() if hasattr(m, MODULE_NAME)]
    for host in tuners:
        getattr(host, MODULE_NAME).disabled = True
    try:
        yield
    finally:
        for host in tuners:
            getattr(host, MODULE_NAME).disabled = False


def _apply_to_output(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
    """Forward hook: the host's output (hidden states first, when it returns a tuple) through its tuner."""
    tuner = getattr(module, MODULE_NAME)
    if getattr(tuner, "disabled", False):
        return output
    if isinstance(output, tuple):
        return (tuner(output[0]), *output[1:])
    return tuner(output)
