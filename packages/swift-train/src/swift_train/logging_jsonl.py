"""`logging.jsonl`: one JSON object per logging step, the run's machine-readable history."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback


class JsonlLogger(TrainerCallback):
    """Appends every log the trainer makes, with step, elapsed time, throughput and memory."""

    def __init__(self, path: Path, token_counter: Any):
        self.path = path
        self.tokens = token_counter
        self.start = time.perf_counter()
        self.last_time = self.start
        self.last_tokens = 0

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - transformers' signature
        if not state.is_world_process_zero or not logs:
            return
        now = time.perf_counter()
        tokens = self.tokens()
        record = {**logs, "global_step": state.global_step, "max_steps": state.max_steps,
                  "elapsed_s": round(now - self.start, 3)}
        if "loss" in logs:
            record["tokens_per_s"] = round((tokens - self.last_tokens) / max(now - self.last_time, 1e-9), 1)
            self.last_time, self.last_tokens = now, tokens
        if torch.cuda.is_available():
            record["memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)  # peak GPU memory
        record["peak_rss_gib"] = round(peak_rss_bytes() / 2**30, 3)  # the process's peak host memory
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def write_event(path: Path, event: str, **fields: Any) -> None:
    """A record that is no logging step (e.g. "resumed"): `event` tells readers to skip it as such."""
    record = {"event": event, **fields, "time": round(time.time(), 3)}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def peak_rss_bytes() -> int:
    """The process's peak resident memory (ru_maxrss is KiB on Linux, bytes on macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
