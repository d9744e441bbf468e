"""The progress bar of `swift eval`: answered items out of the planned total, and requests per second.

EvalScope writes each answer to `predictions/<model>/<dataset>_<subset>.jsonl` as it arrives (the cache it
resumes from), so counting those lines counts answered requests, without any hook into the evaluator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


class PredictionCounter:
    """A tqdm bar over the lines of the run's prediction files; `update()` reads what was appended since."""

    def __init__(self, work_dir: Path, total: int | None):
        self.directory = work_dir / "predictions"
        self.total = total
        self.done = 0
        self._read: dict[Path, int] = {}  # bytes of each file already counted
        self._lines = 0  # complete lines in those bytes
        self._bar: Any = None

    def __enter__(self) -> PredictionCounter:
        from tqdm import tqdm

        self.done = self._count()  # a resumed run (--eval_use_cache) starts at what it reuses
        self._bar = tqdm(total=self.total, initial=self.done, unit="req", desc="swift eval", file=sys.stderr,
                         dynamic_ncols=True, smoothing=0.1)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.close()

    def update(self) -> None:
        counted = self._count()
        if counted > self.done:
            self._bar.update(counted - self.done)
            self.done = counted

    def _count(self) -> int:
        for file in self.directory.glob("*/*.jsonl"):
            size = file.stat().st_size
            start = self._read.get(file, 0)
            if size > start:
                with open(file, "rb") as f:
                    f.seek(start)
                    chunk = f.read(size - start)
                whole = chunk.rfind(b"\n") + 1  # a line being written counts once it is complete
                self._read[file] = start + whole
                self._lines += chunk[:whole].count(b"\n")
        return self._lines
