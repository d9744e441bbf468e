"""The checkpoint marker: which files a finished checkpoint holds, their sizes and checksums.

`<run>/checkpoint-N/swift_checkpoint.json` is written last, before the directory is renamed into
place, so its presence means "complete". It also records each file's size and CRC32, so any stage
(resume, infer, merge-lora) can tell a whole checkpoint from one truncated or overwritten since,
and name the damaged file before loading anything. Pure Python: swift-infer and swift-data check
checkpoints without swift-train.
"""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from pathlib import Path
from typing import Any

MARKER = "swift_checkpoint.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_CHUNK = 16 * 2**20
# What only resuming reads (transformers' and DeepSpeed's names): inference checks the weights alone,
# so a damaged optimizer.pt does not stop `swift infer` from using intact weights.
_TRAINING_STATE = ("optimizer", "scheduler", "scaler", "rng_state", "trainer_state", "training_args", "global_step")
_DATA_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npy", ".gguf", ".distcp")


def crc32(path: Path) -> str:
    """The file's CRC32 as 8 hex digits: about 4 GB/s, where sha256 does under 2."""
    value, buffer = 0, bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            value = zlib.crc32(view[:n], value)
    return f"{value:08x}"


def is_data_file(name: str) -> bool:
    """Weights and training state: checked by size and checksum. Configs, templates and tokenizer
    files are text that users edit on purpose (a base model's path, a chat template): presence only."""
    return name.endswith(_DATA_SUFFIXES)


def write_marker(checkpoint: Path, step: int) -> None:
    """Record every file under `checkpoint` (size and CRC32), the step and the time: the checkpoint is complete."""
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted(p for p in checkpoint.rglob("*") if p.is_file() and p.name != MARKER)
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(paths)))) as pool:  # zlib releases the GIL
        sums = list(pool.map(lambda p: crc32(p) if is_data_file(p.name) else None, paths))
    files = {}
    for path, checksum in zip(paths, sums):
        entry: dict[str, Any] = {"size": path.stat().st_size}
        if checksum is not None:
            entry["crc32"] = checksum
        files[path.relative_to(checkpoint).as_posix()] = entry
    body = {"global_step": step, "saved_at": time.time(), "files": files}
    with open(checkpoint / MARKER, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=2)
        f.flush()
        os.fsync(f.fileno())


def read_marker(checkpoint: Path) -> dict[str, Any] | None:
    """The marker's contents; None when there is none or it is not a JSON object."""
    try:
        marker = json.loads((checkpoint / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def is_complete(checkpoint: Path) -> bool:
    """Finished saving (it has its marker); whether it is still whole is `verify`'s question."""
    return (checkpoint / MARKER).is_file()


def step_of(checkpoint: Path) -> int:
    """The global step a checkpoint was saved at (its marker's, else its name's)."""
    try:
        return int((read_marker(checkpoint) or {})["global_step"])
    except (KeyError, TypeError, ValueError):
        match = _CHECKPOINT.match(checkpoint.name)
        return int(match.group(1)) if match else 0


def saved_at(checkpoint: Path) -> float:
    """When the checkpoint was finished: the marker's time, or the marker file's mtime for older markers."""
    value = (read_marker(checkpoint) or {}).get("saved_at")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return (checkpoint / MARKER).stat().st_mtime
    except OSError:
        return 0.0


def verify(checkpoint: Path, training_state: bool = True) -> str | None:
    """None when the checkpoint is whole, else one line naming the damaged file and how.

    Markers of older versions list file names only: those files are checked for presence.
    `training_state=False` checks only what inference loads (not optimizer.pt, rng states, ...).
    """
    checkpoint = Path(checkpoint)
    if not is_complete(checkpoint):
        return f"{checkpoint.name} is incomplete: it has no {MARKER} (its saving never finished)"
    marker = read_marker(checkpoint)
    if marker is None:
        return f"{checkpoint.name}/{MARKER} is damaged: not a JSON object"
    files = marker.get("files", [])
    if not isinstance(files, (list, dict)):
        return f"{checkpoint.name}/{MARKER} is damaged: 'files' is not a list or an object"
    entries = {name: None for name in files} if isinstance(files, list) else dict(files)
    for name, entry in entries.items():
        if training_state or not name.startswith(_TRAINING_STATE):
            problem = _damage(checkpoint / name, entry)
            if problem is not None:
                return f"{checkpoint.name}/{name} {problem}"
    return None


def _damage(path: Path, entry: dict[str, Any] | None) -> str | None:
    """How `path` differs from its marker entry, None when it does not."""
    if not isinstance(entry, dict) or not is_data_file(path.name):  # presence only (see is_data_file)
        return None if path.exists() else "is missing"
    if not path.is_file():
        return "is missing"
    size = path.stat().st_size
    if "size" in entry and size != entry["size"]:
        return f"is damaged: {size} bytes, {entry['size']} when saved"
    if "crc32" in entry and crc32(path) != entry["crc32"]:
        return "is damaged: its content differs from when it was saved (checksum)"
    return None


def is_checkpoint_dir(path: Path) -> bool:
    """A `checkpoint-N` directory, complete or not."""
    return bool(_CHECKPOINT.match(Path(path).name)) and Path(path).is_dir()


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Every `checkpoint-N` directory in `run_dir`, complete or not."""
    return [p for p in Path(run_dir).iterdir() if is_checkpoint_dir(p)] if Path(run_dir).is_dir() else []


def newest_first(checkpoints: list[Path]) -> list[Path]:
    """By when each was finished, then by step: a run resumed from checkpoint-5 saves a newer
    checkpoint-6 than the damaged checkpoint-10 it skipped."""
    return sorted(checkpoints, key=lambda c: (saved_at(c), step_of(c)), reverse=True)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run directory, oldest first (see `newest_first`)."""
    return newest_first([c for c in checkpoint_dirs(run_dir) if is_complete(c)])[::-1]


def run_dirs(directory: Path) -> list[Path]:
    """`directory` itself and the run directories under it (an output dir holding vN-* runs).

    Hidden directories are not runs: `.tmp-checkpoint-N/checkpoint-N` is a save that never finished.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    children = sorted(p for p in directory.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and checkpoint_dirs(p))
    return [directory, *children]


def newest_whole_checkpoint(directory: Path, training_state: bool = True
                            ) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint that verifies, in a run directory or across an output dir's run directories.

    Returns (checkpoint or None, [(skipped checkpoint, why)]): the newer ones that were complete
    but damaged, and the unfinished `checkpoint-N` directories of its run numbered above it.
    """
    candidates = [c for run in run_dirs(directory) for c in checkpoint_dirs(run)]
    skipped = []
    for checkpoint in newest_first([c for c in candidates if is_complete(c)]):
        problem = verify(checkpoint, training_state)
        if problem is None:
            unfinished = [c for c in candidates if not is_complete(c) and c.parent == checkpoint.parent
                          and step_of(c) > step_of(checkpoint)]
            return checkpoint, skipped + [(c, verify(c) or "") for c in unfinished]
        skipped.append((checkpoint, problem))
    return None, skipped + [(c, verify(c) or "") for c in candidates if not is_complete(c)]


def previous_whole_checkpoint(checkpoint: Path, training_state: bool = True) -> Path | None:
    """The whole checkpoint of the same run with the highest step below `checkpoint`'s, for an error's fix."""
    step = step_of(checkpoint)
    older = sorted((c for c in checkpoint_dirs(checkpoint.parent) if step_of(c) < step), key=step_of, reverse=True)
    return next((c for c in older if verify(c, training_state) is None), None)


def refusal(checkpoint: Path, option: str, training_state: bool = False, shown: str | None = None) -> str | None:
    """`verify`'s line as one error about `option checkpoint`, with the previous whole checkpoint as the fix.

    None when the checkpoint is whole. `shown`: the path as the user typed it.
    """
    problem = verify(checkpoint, training_state)
    if problem is None:
        return None
    previous = previous_whole_checkpoint(Path(checkpoint), training_state)
    fix = f"use the previous whole checkpoint: {option} {previous}" if previous else \
        "no earlier checkpoint of this run is whole"
    return f"{option} {shown or checkpoint}: {problem}; {fix}"


def damage_refusal(path: Path, option: str, shown: str | None = None) -> str | None:
    """For a directory loaded for inference: `refusal` if it is a saved checkpoint (it has a marker)
    whose files changed since; None for anything else (a plain model or adapter directory)."""
    return refusal(Path(path), option, shown=shown) if is_complete(Path(path)) else None
