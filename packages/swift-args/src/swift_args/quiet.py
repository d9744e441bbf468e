"""Third-party messages that every run would print and that ask nothing of the user, silenced by name.

Each entry is one exact message with the reason it says nothing the user can act on; anything else a library
says still reaches stderr.
"""

from __future__ import annotations

import logging
import warnings

# (logger, the start of the message): bitsandbytes says this on import on every CPU with AVX512-BF16 when the
# optional `kernels` package (a Hub download of a fused 4-bit kernel) is absent; its own fallback then runs.
_LOG_LINES = [("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community")]

# (category, the start of the message): peft reads `model.is_gradient_checkpointing` when it wraps a model,
# which transformers 5 has deprecated; neither the user nor swift calls it.
_WARNINGS = [(FutureWarning, "`is_gradient_checkpointing` is deprecated")]


class _DropLines(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def silence_known_noise() -> None:
    """Install the filters (before the libraries are imported: some speak on import)."""
    for name, prefix in _LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropLines(prefix))
    for category, prefix in _WARNINGS:
        warnings.filterwarnings("ignore", message=prefix, category=category)
