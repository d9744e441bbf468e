"""Checkpoints that are either complete or invisible.

A checkpoint is written into `<run>/.tmp-checkpoint-N/`, finished with a completion marker
(`swift_args.checkpoint_files`: each file's size and CRC32), and only then renamed to
`<run>/checkpoint-N/`. Deleting goes the other way: rename to a hidden `.tmp-` name first, then
remove. A run killed mid-save or mid-delete leaves at most a `.tmp-` directory, which resuming
ignores and the next run in that directory removes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from swift_args.checkpoint_files import (
    MARKER,
    complete_checkpoints,
    is_complete,
    step_of,
    verify,
    write_marker,
)
from swift_args.files import apply_umask

__all__ = ["MARKER", "clean_staging", "complete_checkpoints", "is_complete", "latest_complete", "link", "publish",
           "remove", "rotate", "step_of", "verify", "write_marker"]


def latest_complete(run_dir: Path) -> Path | None:
    """The checkpoint finished last (not verified: see `newest_whole_checkpoint` for that)."""
    checkpoints = complete_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def publish(staging: Path, final: Path, step: int) -> None:
    """Mark `staging` complete and move it into place in one rename.

    Files get the umask's mode first: safetensors' save_file writes 0600, and a checkpoint
    on a shared cluster must be readable by the group like the rest of the run directory.
    """
    apply_umask(staging)
    write_marker(staging, step)
    if final.exists():  # a damaged or unfinished directory of the same step from an earlier run
        remove(final)
    os.replace(staging, final)


def remove(checkpoint: Path) -> None:
    """Delete a checkpoint so that no moment of it looks complete: hide it under a `.tmp-` name, then delete."""
    hidden = checkpoint.with_name(f".tmp-{checkpoint.name}.deleting")
    if hidden.exists():
        shutil.rmtree(hidden, ignore_errors=True)
    os.replace(checkpoint, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def rotate(run_dir: Path, keep: int | None, best: Path | None) -> None:
    """Delete the checkpoints finished earliest beyond `keep`, never the best one."""
    if keep is None:
        return
    checkpoints = complete_checkpoints(run_dir)
    removable = [c for c in checkpoints if best is None or c.resolve() != best.resolve()]
    excess = len(checkpoints) - keep
    for checkpoint in removable[: max(0, excess)]:
        remove(checkpoint)


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
    """Remove what killed runs left: unfinished saves (`.tmp-checkpoint-N`) and deletions (`.deleting`)."""
    for leftover in run_dir.glob(".tmp-checkpoint-*"):
        shutil.rmtree(leftover, ignore_errors=True)
