"""The progress bar: transformers' (steps, ETA) with the latest loss and tokens/s beside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers.trainer_callback import ProgressCallback


class TokensProgress(ProgressCallback):
    def __init__(self, tokens_seen: Callable[[], int]):
        super().__init__()
        self.tokens_seen = tokens_seen
        self.loss: float | None = None
        self.window: tuple[float, int] = (0.0, 0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        super().on_train_begin(args, state, control, **kwargs)
        self.window = (time.perf_counter(), self.tokens_seen())

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        super().on_step_end(args, state, control, **kwargs)
        if self.training_bar is None:
            return
        # Tokens/s since the last update, so a slow first step does not weigh on it for ever.
        now, tokens = time.perf_counter(), self.tokens_seen()
        started, counted = self.window
        postfix = {"tok/s": f"{(tokens - counted) / max(now - started, 1e-9):,.0f}"}
        if self.loss is not None:
            postfix["loss"] = f"{self.loss:.4f}"
        self.training_bar.set_postfix(postfix, refresh=False)
        self.window = (now, tokens)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
        super().on_log(args, state, control, logs=logs, **kwargs)
