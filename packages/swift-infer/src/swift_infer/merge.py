"""`swift merge-lora` (= `swift export --merge_lora true`): adapter + base -> one plain model directory.

Run as: swift merge-lora --adapters output/<model>/vN-.../checkpoint-N
The result (`<checkpoint>-merged` unless --output_dir says otherwise) holds safetensors shards,
the tokenizer with its chat template, the generation config and an args.json, so every later
stage loads it as `--model` like any other model.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import torch
from swift_args import ArgumentError, Invocation, save_args
from swift_args.adapters import adapter_path
from swift_args.run_dir import check_writable_dir
from swift_args.shell import swift_command

from swift_infer.output_dir import check_output_dir, staged


def run_merge(invocation: Invocation) -> int:
    args = invocation.args
    output = Path(args.output_dir)
    adapter = the_adapter_to_merge(args, "merge-lora")
    check_output_dir(output, read_sources(args), args.exist_ok)
    from swift_data.models import model_for_args

    check_adapter_fits(adapter, model_for_args(args)[1].model_dir)
    merge_adapter(args, adapter, output, invocation.command.name)
    print(f"swift: merged {adapter} into {output}; next: {swift_command()} infer --model {output}", file=sys.stderr)
    return 0


def merge_for_inference(args: Any) -> None:
    """`swift infer|deploy --merge_lora true`: merge the adapter into its base once (into
    `<adapter>-merged`, reused when it is already there), then load that instead of base + adapter."""
    if not args.merge_lora or not args.adapters:
        return
    if len(args.adapters) > 1:
        raise ArgumentError("--merge_lora true merges one adapter; pass one --adapters, or drop --merge_lora to "
                            "serve several side by side")
    adapter = adapter_path(args.adapters[0])
    check_mergeable(adapter)
    output = Path(f"{adapter.rstrip('/')}-merged")
    if (output / "config.json").is_file():
        print(f"swift: using the merged model already at {output}", file=sys.stderr)
    else:
        check_writable_dir(output, "--adapters (its -merged directory)")
        merge_adapter(args, adapter, output, "merge-lora")
        print(f"swift: merged {adapter} into {output}", file=sys.stderr)
    args.model, args.adapters = str(output), []


def read_sources(args: Any) -> list[str]:
    """The directories a merge or export reads (its output may not overlap them): the adapters, and --model
    when it is a local directory."""
    sources = [adapter_path(a) for a in args.adapters]
    if args.model and Path(args.model).expanduser().is_dir():
        sources.append(args.model)
    return sources


def the_adapter_to_merge(args: Any, command: str) -> str:
    """The one adapter merge-lora or export writes into its base, checked to be one that merges."""
    if len(args.adapters) > 1:
        raise ArgumentError(f"--adapters: {command} merges one adapter into its base; pass one (run it once per "
                            "adapter)")
    adapter = adapter_path(args.adapters[0])
    check_mergeable(adapter)
    return adapter


def check_mergeable(adapter: str) -> None:
    """Bottleneck adapters and ReFT add nonlinear modules: there are no merged weights to write."""
    from swift_infer import own_tuners

    if own_tuners.is_own_tuner(adapter):
        raise ArgumentError(f"--adapters {adapter}: a {own_tuners.kind_of(adapter)} tuner adds modules that cannot be "
                            "merged into the weights; drop --merge_lora and load it with --adapters")


def check_adapter_fits(adapter: str, model_dir: str | Path) -> None:
    """A LoRA adapter of another base is one line before any weights load: each lora_A [rank, in] and
    lora_B [out, rank] is checked against the base weight [out, in], read from the safetensors headers."""
    from safetensors import safe_open

    adapter_file = Path(adapter) / "adapter_model.safetensors"
    if not adapter_file.is_file():
        return  # an own tuner, or a .bin adapter: attach_adapter checks these as they load
    base = weight_shapes(Path(model_dir))
    with safe_open(str(adapter_file), framework="pt") as tensors:
        for name in tensors.keys():  # noqa: SIM118 - safe_open is not a mapping
            module, _, kind = name.removeprefix("base_model.model.").rpartition(".lora_")
            shape, expected = tensors.get_slice(name).get_shape(), base.get(f"{module}.weight")
            if expected is None or kind not in ("A.weight", "B.weight") or len(shape) != 2 or len(expected) != 2:
                continue
            fits = shape[1] == expected[1] if kind == "A.weight" else shape[0] == expected[0]
            if not fits:
                raise ArgumentError(f"--adapters {adapter} does not fit {model_dir}: {name} has shape {list(shape)}, "
                                    f"the base's {module}.weight {list(expected)}; pass the --model it was trained "
                                    "from")


def weight_shapes(model_dir: Path) -> dict[str, list[int]]:
    """Every tensor's shape in the model's safetensors files, read from their headers (no weights load)."""
    from safetensors import safe_open

    shapes = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as tensors:
            for name in tensors.keys():  # noqa: SIM118
                shapes[name] = tensors.get_slice(name).get_shape()
    return shapes


def merge_adapter(args: Any, adapter: str, output: Path, command: str) -> None:
    """Load the base of `adapter`, merge it, and write the whole model to `output` (complete, or not there)."""
    from swift_infer.loading import DTYPES, attach_adapter, load_model

    loaded = load_model(args, device="cpu")  # merging needs no accelerator, and never runs out of its memory
    model = attach_adapter(loaded.model, adapter).merge_and_unload()
    if args.torch_dtype is None and loaded.info.torch_dtype:  # merged in float32, saved as the base was
        model = model.to(DTYPES.get(str(loaded.info.torch_dtype).replace("torch.", ""), torch.float32))
    with staged(output) as staging:
        model.save_pretrained(staging, max_shard_size=args.max_shard_size)
        loaded.tokenizer.save_pretrained(staging)
        saved = copy.copy(args)
        saved.model, saved.adapters = str(output), []
        save_args(saved, staging, command)
