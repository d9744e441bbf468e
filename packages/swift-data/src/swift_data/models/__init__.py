"""Finding a model's files: local directories, GGUF files, the built-in alias, hub ids."""

from swift_data.models.builtin import BUILTIN_MODELS, find_builtin
from swift_data.models.detect import TEMPLATES, ModelInfo, detect_model_info
from swift_data.models.gguf import ensure_converted
from swift_data.models.resolve import latest_checkpoint, portable_model_name, resolve_model_dir


def model_for_args(args: object) -> tuple:
    """(model directory, ModelInfo) for a command's --model, --model_type, --template and hub options."""
    model_dir = resolve_model_dir(args.model, use_hf=args.use_hf, revision=args.model_revision, hub_token=args.hub_token,
                                  check=getattr(args, "check_model", True))
    return model_dir, detect_model_info(model_dir, args.model_type, args.template)


def load_tokenizer(model_dir: object) -> object:
    """The model's tokenizer, with a pad token (batches need one; padded positions are masked)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for missing or broken files
        from swift_args import ArgumentError

        first = (str(exc).strip().splitlines() or [""])[0]
        raise ArgumentError(f"{model_dir}: cannot load the tokenizer ({type(exc).__name__}: {first}); the model "
                            "directory needs tokenizer.json and tokenizer_config.json") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer

__all__ = [
    "BUILTIN_MODELS",
    "TEMPLATES",
    "ModelInfo",
    "detect_model_info",
    "ensure_converted",
    "find_builtin",
    "latest_checkpoint",
    "load_tokenizer",
    "model_for_args",
    "portable_model_name",
    "resolve_model_dir",
]
