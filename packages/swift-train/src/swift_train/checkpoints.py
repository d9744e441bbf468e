"""Checkpoints that are either complete or invisible.

A checkpoint is written into `<run>/.tmp-checkpoint-N/`, finished with a completion marker, and
only then renamed to `<run>/checkpoint-N/`. A run killed mid-save leaves at most a `.tmp-`
directory, which resuming ignores; a `checkpoint-N` without its marker is never picked up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from swift_args.files import apply_umask

MARKER = "swift_checkpoint.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / MARKER).is_file()


def write_marker(checkpoint: Path, step: int) -> None:
    files = sorted(p.name for p in checkpoint.iterdir())
    with open(checkpoint / MARKER, "w") as f:
        json.dump({"global_step": step, "files": files}, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def step_of(checkpoint: Path) -> int:
    """The global step a checkpoint was saved at (its marker's, else its name's)."""
    try:
        return int(json.loads((checkpoint / MARKER).read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        match = _CHECKPOINT.match(checkpoint.name)
        return int(match.group(1)) if match else 0


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest step first."""
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _CHECKPOINT.match(p.name)) and is_complete(p)]
    return [p for _, p in sorted(found)]


def latest_complete(run_dir: Path) -> Path | None:
    checkpoints = complete_checkpoints(run_dir) if run_dir.is_dir() else []
    return checkpoints[-1] if checkpoints else None


def publish(staging: Path, final: Path, step: int) -> None:
    """Mark `staging` complete and move it into place in one rename.

    Files get the umask's mode first: safetensors' save_file writes 0600, and a checkpoint
    on a shared cluster must be readable by the group like the rest of the run directory.
    """
    apply_umask(staging)
    write_marker(staging, step)
    if final.exists():  # a stale, incomplete directory of the same step from a killed run
        shutil.rmtree(final)
    os.replace(staging, final)


def rotate(run_dir: Path, keep: int | None, best: Path | None) -> None:
    """Delete the oldest complete checkpoints beyond `keep`, never the best one."""
    if keep is None:
        return
    checkpoints = complete_checkpoints(run_dir)
    removable = [c for c in checkpoints if best is None or c.resolve() != best.resolve()]
    excess = len(checkpoints) - keep
    for checkpoint in removable[: max(0, excess)]:
        shutil.rmtree(checkpoint, ignore_errors=True)


def link(run_dir: Path, name: str, target: Path | None) -> None:
    """`<run>/best` and `<run>/last` as relative symlinks (create_checkpoint_symlink)."""
    if target is None:
        return
    path = run_dir / name
    tmp = run_dir / f".{name}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    os.replace(tmp, path)


def clean_staging(run_dir: Path) -> None:
    for leftover in run_dir.glob(".tmp-checkpoint-*"):
        shutil.rmtree(leftover, ignore_errors=True)
