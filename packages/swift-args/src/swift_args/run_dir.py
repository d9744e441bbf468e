"""Run directories: `<output_dir>/vN-YYYYMMDD-HHMMSS`, N counting up per output_dir."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from swift_args.errors import ArgumentError

# Set by the torchrun launcher so every worker process writes into the one run directory it made.
RUN_DIR_ENV = "SWIFT_RUN_DIR"
# Set by the torchrun launcher to the checkpoint it verified: workers resume from it without
# reading every file again, and cannot choose differently.
RESUME_ENV = "SWIFT_RESUME_CHECKPOINT"
_VERSION = re.compile(r"^v(\d+)-\d{8}-\d{6}$")


def next_version(output_dir: Path) -> int:
    """One more than the highest vN already in output_dir (0 for a new directory)."""
    if not output_dir.is_dir():
        return 0
    versions = [int(m.group(1)) for p in output_dir.iterdir() if (m := _VERSION.match(p.name))]
    return max(versions, default=-1) + 1


def create_run_dir(output_dir: str | Path, add_version: bool = True, now: datetime | None = None) -> Path:
    """Create and return the directory a run writes into.

    With add_version the name is claimed with an exclusive mkdir, so two runs started at the same
    second in the same output_dir still get different versions.
    """
    output_dir = Path(output_dir)
    if not add_version:
        output_dir.mkdir(parents=True, exist_ok=True)
        return output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    version = next_version(output_dir)
    while True:
        run_dir = output_dir / f"v{version}-{stamp}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            version += 1


def start_run(args: Any, command: str, model_dir: str | Path | None = None, continue_in: Path | None = None) -> Path:
    """Create the run directory for a training invocation and write args.json into it first.

    `args.output_dir` is updated to the run directory, so args.json records where the run lives
    and every later stage (infer --adapters, resume) finds it from a checkpoint's parent.
    `continue_in`: an existing run directory that a resumed run goes on in; its args.json is
    replaced by this invocation's.
    """
    from swift_args.args_file import save_args

    launched_in = os.environ.get(RUN_DIR_ENV)
    if launched_in:  # a worker of a multi-process run: the launcher made the directory and args.json
        args.output_dir = launched_in
        if getattr(args, "logging_dir", "unset") is None:
            args.logging_dir = str(Path(launched_in) / "runs")
        return Path(launched_in)
    run_dir = continue_in or create_run_dir(args.output_dir, getattr(args, "add_version", True))
    args.output_dir = str(run_dir)
    if getattr(args, "logging_dir", "unset") is None:
        args.logging_dir = str(run_dir / "runs")
    save_args(args, run_dir, command, model_dir)
    return run_dir


def check_writable_dir(directory: str | Path, argument: str) -> None:
    """Refuse a directory that cannot be created or written into, before anything is written.

    The check creates and removes one empty probe directory in the nearest existing ancestor,
    because permission bits do not tell the truth for root, read-only mounts or /proc.
    """
    path = Path(directory).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is inside {existing}, which is a file"
        raise ArgumentError(f"{argument} {directory} {what}, not a directory; choose another path")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".swift-write-check-", dir=existing))
    except OSError as exc:
        raise ArgumentError(
            f"{argument} {directory}: cannot create directories in {existing} ({exc.strerror}); choose a writable path"
        ) from None


def has_started(run_dir: Path) -> bool:
    """Whether a run left anything worth keeping: a checkpoint (finished or not) or a logged step."""
    if any(p.name.startswith(("checkpoint-", ".tmp-checkpoint-")) for p in run_dir.iterdir()):
        return True
    log = run_dir / "logging.jsonl"
    if not log.is_file():
        return False
    with open(log, encoding="utf-8") as f:
        for line in f:
            try:  # the first step's record, or the end-of-training summary at step 0
                record = json.loads(line)
                if "event" not in record:  # a note such as "resumed from checkpoint-5" is no step
                    return record.get("global_step", 0) > 0
            except (ValueError, AttributeError, TypeError):
                return True
    return False


def missing_dirs(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first: what creating it would add."""
    missing = []
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def discard_unstarted(run_dir: Path, created: list[Path]) -> bool:
    """Remove a run directory that never reached its first step, and the empty parents made for it.

    `created`: the directories (deepest first) that did not exist before the run; anything else,
    such as an `--add_version false` directory that held files before, is left alone.
    """
    run_dir = Path(run_dir).absolute()
    if run_dir not in created or not run_dir.is_dir() or has_started(run_dir):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    for directory in created[created.index(run_dir) + 1:]:
        try:
            directory.rmdir()  # only while empty: a sibling run may have appeared meanwhile
        except OSError:
            break
    return True


@contextmanager
def started_run(args: Any, command: str, model_dir: str | Path | None = None,
                continue_in: Path | None = None) -> Iterator[Path]:
    """`start_run` for the duration of a run: if it fails before its first step, nothing it made stays on disk.

    A directory this process did not make (the launcher's, or the run a resumed run continues) is never removed.
    """
    ours = not os.environ.get(RUN_DIR_ENV) and continue_in is None
    created = missing_dirs(Path(args.output_dir)) if ours else []
    run_dir = start_run(args, command, model_dir, continue_in)
    if ours and getattr(args, "add_version", True):
        created.insert(0, run_dir.absolute())
    try:
        yield run_dir
    except BaseException:
        discard_unstarted(run_dir, created)
        raise
