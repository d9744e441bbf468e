"""Run directories: `<output_dir>/vN-YYYYMMDD-HHMMSS`, N counting up per output_dir."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

# Set by the torchrun launcher so every worker process writes into the one run directory it made.
RUN_DIR_ENV = "SWIFT_RUN_DIR"
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


def start_run(args: Any, command: str) -> Path:
    """Create the run directory for a training invocation and write args.json into it first.

    `args.output_dir` is updated to the run directory, so args.json records where the run lives
    and every later stage (infer --adapters, resume) finds it from a checkpoint's parent.
    """
    from swift_args.args_file import save_args

    launched_in = os.environ.get(RUN_DIR_ENV)
    if launched_in:  # a worker of a multi-process run: the launcher made the directory and args.json
        args.output_dir = launched_in
        if getattr(args, "logging_dir", "unset") is None:
            args.logging_dir = str(Path(launched_in) / "runs")
        return Path(launched_in)
    run_dir = create_run_dir(args.output_dir, getattr(args, "add_version", True))
    args.output_dir = str(run_dir)
    if getattr(args, "logging_dir", "unset") is None:
        args.logging_dir = str(run_dir / "runs")
    save_args(args, run_dir, command)
    return run_dir
