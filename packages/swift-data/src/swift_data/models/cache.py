"""Where swift keeps files it derives (dequantized GGUF models, dataset caches)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """SWIFT_CACHE, else $XDG_CACHE_HOME/swift-suite, else ~/.cache/swift-suite."""
    if os.environ.get("SWIFT_CACHE"):
        return Path(os.environ["SWIFT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "swift-suite"
