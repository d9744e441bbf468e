"""Helpers for end-to-end tests: run `swift` as a user would and read what a run leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SWIFT = str(Path(sys.executable).with_name("swift"))


def run_swift(*args: str, cwd: Path | None = None, timeout: int = 900, **env: str) -> subprocess.CompletedProcess[str]:
    """`swift ...` exactly as a user types it."""
    return subprocess.run([SWIFT, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **env})


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "logging.jsonl").read_text().splitlines()]


def only_run_dir(output_dir: Path) -> Path:
    runs = [p for p in output_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
