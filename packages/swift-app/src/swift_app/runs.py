"""Past runs below the web UI's output directory: their arguments, curves and checkpoints, read from disk.

A run directory is what `swift sft | pt | rlhf` writes: args.json first, logging.jsonl as it trains,
checkpoint-N/ as it saves. Nothing here writes; a run still training is read as it is now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The curves the page plots, by their key in logging.jsonl.
CURVES = ("loss", "learning_rate", "token_acc")


def find_runs(output_dir: str | Path, limit: int = 200) -> list[Path]:
    """Run directories below `output_dir` (those with args.json and logging.jsonl), newest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    runs = [path.parent for path in root.rglob("logging.jsonl")
            if (path.parent / "args.json").is_file() and "web_ui" not in path.relative_to(root).parts]
    return sorted(runs, key=lambda run: (run / "args.json").stat().st_mtime, reverse=True)[:limit]


def read_arguments(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "args.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def curve_rows(run_dir: Path | None) -> dict[str, list[tuple[int, float]]]:
    """(step, value) for each curve; training records only (evaluation has its own eval_ keys)."""
    curves: dict[str, list[tuple[int, float]]] = {name: [] for name in CURVES}
    if run_dir is None:
        return curves
    try:
        lines = (run_dir / "logging.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return curves
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the line being written now
        step = record.get("global_step")
        for name in CURVES:
            value = record.get(name)
            if isinstance(step, int) and isinstance(value, (int, float)):
                curves[name].append((step, float(value)))
    return curves


def curve_frames(run_dir: Path | None) -> list[Any]:
    """Each curve as the table gradio's line plot takes, from one read of logging.jsonl."""
    import pandas as pd

    rows = curve_rows(run_dir)
    return [pd.DataFrame(rows[name], columns=["step", name]) for name in CURVES]


def checkpoints(run_dir: Path) -> list[Path]:
    """checkpoint-N directories, newest (highest N) first."""
    found = [path for path in run_dir.glob("checkpoint-*") if path.is_dir() and path.name[11:].isdigit()]
    return sorted(found, key=lambda path: int(path.name[11:]), reverse=True)


def is_adapter(checkpoint: Path) -> bool:
    """A tuner's checkpoint (loaded with --adapters) rather than full weights (--model)."""
    return (checkpoint / "adapter_config.json").is_file() or not (checkpoint / "config.json").is_file()
