"""Model type and chat template, detected from config.json and the tokenizer's chat template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from swift_args import ArgumentError

# Built-in template names (swift_data.templates implements them); `--template` must be one.
TEMPLATES = ("chatml", "qwen2_5", "llama3", "gemma", "mistral", "default")

# Markers of the common chat formats, looked for in the tokenizer's Jinja chat template.
_TEMPLATE_MARKERS = (
    ("<|start_header_id|>", "llama3"),
    ("<start_of_turn>", "gemma"),
    ("[INST]", "mistral"),
    ("<|im_start|>", "chatml"),
)
# config.json model_type -> our model type, for families whose type names differ.
_MODEL_TYPES = {"qwen2": "qwen2_5", "gemma2": "gemma", "gemma3_text": "gemma", "mistral": "mistral", "llama": "llama"}
_MULTIMODAL_KEYS = ("vision_config", "audio_config", "visual")


@dataclass(frozen=True)
class ModelInfo:
    """What a model directory says about itself."""

    model_dir: Path
    model_type: str
    template: str
    architectures: tuple[str, ...]
    config_model_type: str
    torch_dtype: str | None
    max_model_len: int | None
    is_multimodal: bool
    has_chat_template: bool


def read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArgumentError(f"{model_dir} has no config.json; is it a Hugging Face model directory?") from None
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def read_chat_template(model_dir: Path) -> str | None:
    """The Jinja chat template, wherever this transformers version saved it."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("tokenizer_config.json", "chat_template.json"):
        path = model_dir / name
        if path.is_file():
            template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
            if isinstance(template, list):  # named templates: take the default one
                template = next((t["template"] for t in template if t.get("name") == "default"), None)
            if template:
                return template
    return None


def template_from_chat_template(chat_template: str | None, config_model_type: str) -> str:
    if chat_template:
        for marker, name in _TEMPLATE_MARKERS:
            if marker in chat_template:
                return "qwen2_5" if name == "chatml" and config_model_type == "qwen2" else name
    return "default"


def detect_model_info(model_dir: str | Path, model_type: str | None = None, template: str | None = None) -> ModelInfo:
    """Detect the model type and template; `model_type` / `template` (from the command line) win."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    text_config = config.get("text_config", config)
    config_type = str(config.get("model_type", "unknown"))
    chat_template = read_chat_template(model_dir)
    if template is not None and template not in TEMPLATES:
        raise ArgumentError(f"--template: unknown template '{template}'; valid templates are: {', '.join(TEMPLATES)}")
    return ModelInfo(
        model_dir=model_dir,
        model_type=model_type or _MODEL_TYPES.get(config_type, config_type),
        template=template or template_from_chat_template(chat_template, config_type),
        architectures=tuple(config.get("architectures") or ()),
        config_model_type=config_type,
        torch_dtype=config.get("torch_dtype") or config.get("dtype") or text_config.get("torch_dtype"),
        max_model_len=text_config.get("max_position_embeddings"),
        is_multimodal=any(key in config for key in _MULTIMODAL_KEYS),
        has_chat_template=chat_template is not None,
    )
