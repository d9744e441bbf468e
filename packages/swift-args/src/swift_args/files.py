"""File modes of a run's outputs: what the umask gives, even for files written atomically.

`tempfile.mkstemp` creates 0600 files and safetensors' `save_file` chmods to 0600 itself, so
args.json, adapters and merged weights would be private while every other file of a run
directory is group-readable. Shared clusters need the results readable by the group, so the
final files get the mode an ordinary `open(path, "w")` would have given them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def umask_mode() -> int:
    """The mode a newly created regular file gets under the current umask (0o666 & ~umask)."""
    return 0o666 & ~current_umask()


def apply_umask(path: str | Path) -> None:
    """Give `path`, or every file under it if it is a directory, the umask's mode.

    Directories and symlinks keep their modes: mkdir already follows the umask, and chmod
    would follow a link out of the tree.
    """
    path = Path(path)
    mode = umask_mode()
    files = (p for p in path.rglob("*") if p.is_file() and not p.is_symlink()) if path.is_dir() else [path]
    for file in files:
        os.chmod(file, mode)


def current_umask() -> int:
    """Read the umask without changing it where the OS allows: os.umask can only set it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # No /proc (macOS, old kernels): set and restore. The lock serialises our own readers; the
    # temporary value is the strictest, so a file another thread creates meanwhile ends too
    # private, never too open.
    with _UMASK_LOCK:
        old = os.umask(0o077)
        os.umask(old)
    return old
