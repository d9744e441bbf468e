"""Finding a model's files: local directories, GGUF files, the built-in alias, hub ids."""

from swift_data.models.builtin import BUILTIN_MODELS, find_builtin
from swift_data.models.detect import TEMPLATES, ModelInfo, detect_model_info
from swift_data.models.gguf import ensure_converted
from swift_data.models.resolve import latest_checkpoint, resolve_model_dir

__all__ = [
    "BUILTIN_MODELS",
    "TEMPLATES",
    "ModelInfo",
    "detect_model_info",
    "ensure_converted",
    "find_builtin",
    "latest_checkpoint",
    "resolve_model_dir",
]
