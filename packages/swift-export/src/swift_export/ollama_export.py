"""`--to_ollama true`: model.gguf (weights, tokenizer, chat template) and an Ollama Modelfile beside it.

The generation arguments a user passes (--temperature, --top_p, --top_k, --repetition_penalty,
--max_new_tokens, --stop_words, --system) become the Modelfile's defaults, on top of
those in the model's generation_config.json.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

GGUF_NAME = "model.gguf"
DTYPE_TO_GGUF = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


def check_ollama(args: Any, model_dir: Path) -> None:
    """The gguf extra is installed, the architecture and tokenizer convert, and the chat template translates."""
    if importlib.util.find_spec("gguf") is None:
        raise ArgumentError("--to_ollama needs the gguf package: pip install 'swift-export[gguf]'")
    from swift_export.gguf_file import check_gguf_supported
    from swift_export.ollama import modelfile_text

    check_gguf_supported(model_dir)
    modelfile_text(model_dir, GGUF_NAME, template=args.template, parameters=modelfile_parameters(args),
                   system=args.system)


def write_ollama(args: Any, model_dir: Path, out_dir: Path) -> None:
    from swift_export.gguf_file import write_gguf
    from swift_export.ollama import write_modelfile

    # A --template goes into the GGUF as well as the Modelfile: llama.cpp reads the one, Ollama the other.
    chat_template = None
    if args.template:
        from swift_data.templates.builtin import BUILTIN_TEMPLATES

        chat_template = BUILTIN_TEMPLATES[args.template]
    write_gguf(model_dir, out_dir / GGUF_NAME, gguf_type(args, model_dir), chat_template)
    write_modelfile(model_dir, out_dir, GGUF_NAME, template=args.template, parameters=modelfile_parameters(args),
                    system=args.system)


def gguf_type(args: Any, model_dir: Path) -> str:
    """--gguf_type, else the float type of --torch_dtype or of the saved weights."""
    if args.gguf_type:
        return args.gguf_type
    from swift_data.models import detect_model_info

    saved = detect_model_info(Path(model_dir)).torch_dtype
    return DTYPE_TO_GGUF.get(str(args.torch_dtype or saved or "float32").replace("torch.", ""), "f32")


def modelfile_parameters(args: Any) -> dict[str, Any]:
    """The Modelfile parameters the user set on the command line (None: not set)."""
    named = {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
             "repeat_penalty": args.repetition_penalty, "num_predict": args.max_new_tokens}
    parameters: dict[str, Any] = {name: value for name, value in named.items() if value is not None}
    if args.stop_words:
        parameters["stop"] = list(args.stop_words)
    return parameters
