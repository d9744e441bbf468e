"""GGUF -> Hugging Face directory, once: every later stage then loads it like any other model.

transformers can read a .gguf directly (dequantizing on the fly), but that is slow (the tokenizer
alone takes seconds) and the result cannot be saved, trained with peft, or served by other
engines. So we dequantize once into a cached directory keyed by the file's content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from swift_args.files import apply_umask, current_umask

from swift_data.models.cache import cache_root

COMPLETE_MARKER = "swift_source.json"


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def converted_dir(gguf_path: Path, digest: str) -> Path:
    stem = gguf_path.name[: -len(".gguf")] if gguf_path.name.lower().endswith(".gguf") else gguf_path.name
    return cache_root() / "gguf" / f"{stem}-{digest[:16]}"


def ensure_converted(gguf_path: str | Path) -> Path:
    """The Hugging Face directory for `gguf_path`, converting it on first use.

    The conversion is written into a temporary directory and renamed into place when complete,
    so an interrupted conversion never leaves a directory that looks usable.
    """
    gguf_path = Path(gguf_path).resolve()
    digest = file_digest(gguf_path)
    target = converted_dir(gguf_path, digest)
    if (target / COMPLETE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _convert(gguf_path, digest, tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / COMPLETE_MARKER).is_file():  # a stale, incomplete target: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # no-op after a successful rename
    return target


def _convert(gguf_path: Path, digest: str, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The loader marks the model as GGUF-quantized, which blocks save_pretrained; the weights
    # are already plain dequantized tensors, so we drop that marker.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    model = model.to(torch.bfloat16)  # GGUF blocks dequantize exactly to fp32; bf16 halves the disk, like upstream
    model.config.dtype = "bfloat16"
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    tokenizer.model_max_length = model.config.max_position_embeddings  # GGUF leaves it "infinite"
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    source = {"gguf_file": str(gguf_path), "sha256": digest, "dtype": "bfloat16"}
    (out_dir / COMPLETE_MARKER).write_text(json.dumps(source, indent=2) + "\n")
    _make_shareable(out_dir)


def _make_shareable(directory: Path) -> None:
    """mkdtemp creates 0700 directories; the cache is meant to be read by every user of the machine."""
    directory.chmod(0o777 & ~current_umask())
    apply_umask(directory)
