"""Continuous batching for the pt engine: requests join and leave the running batch at every step.

A background thread owns the model. Each iteration it
  1. prefills the requests that arrived (left-padded together) and merges their KV cache into the
     running batch's cache, padding the shorter side on the left;
  2. decodes one token for every running request in a single forward pass;
  3. retires finished or cancelled requests by dropping their rows from the cache.
So a short request returns as soon as it is done, and a new one waits at most one step, instead
of both waiting for the longest request of a static batch.

Several LoRA adapters can share one batch: peft routes each row through its own adapter
(`adapter_names`), with "__base__" meaning no adapter.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from swift_infer.engines.sampling import SamplingParams, TokenChoice, choose_tokens

BASE_MODEL = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass
class Delta:
    """New output of one request: text that is final, the tokens behind it, and when finished why."""

    text: str = ""
    tokens: list[TokenChoice] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" or "length"; "error" with `error` set


@dataclass
class Completion:
    text: str
    tokens: list[TokenChoice]
    finish_reason: str
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)


class RequestHandle:
    """What a caller holds for one request: iterate its deltas, wait for the result, or cancel it."""

    def __init__(self, prompt_ids: list[int], params: SamplingParams, adapter: str | None,
                 on_delta: Callable[[Delta], None] | None):
        self.prompt_ids, self.params, self.adapter = prompt_ids, params, adapter
        self.cancelled = threading.Event()
        self.error: str | None = None
        self._on_delta = on_delta
        self._queue: queue.Queue[Delta] = queue.Queue()

    def _emit(self, delta: Delta) -> None:
        (self._on_delta or self._queue.put)(delta)

    def cancel(self) -> None:
        """Free this request's slot (a client that went away)."""
        self.cancelled.set()

    def deltas(self) -> Iterator[Delta]:
        while True:
            delta = self._queue.get()
            yield delta
            if delta.finish_reason is not None:
                return

    def result(self) -> Completion:
        text, tokens, reason = "", [], "stop"
        for delta in self.deltas():
            text += delta.text
            tokens += delta.tokens
            reason = delta.finish_reason or reason
        if reason == "error":
            raise RuntimeError(self.error)
        return Completion(text, tokens, reason, len(self.prompt_ids))


class _Running:
    """A request inside the batch: its tokens so far and the text already handed out."""

    def __init__(self, handle: RequestHandle, limit: int, device: torch.device):
        self.handle, self.limit = handle, limit
        self.generated: list[int] = []
        self.choices: list[TokenChoice] = []
        self.sent_text, self.sent_tokens = "", 0
        self.generator = None
        if handle.params.seed is not None:
            self.generator = torch.Generator(device=device).manual_seed(handle.params.seed)


class ContinuousBatcher:
    """Runs requests through `model` with at most `max_batch_size` of them in flight."""

    def __init__(self, model: Any, tokenizer: Any, max_batch_size: int, stop_token_ids: set[int], max_length: int):
        self.model, self.tokenizer = model, tokenizer
        self.max_batch_size, self.stop_token_ids, self.max_length = max_batch_size, stop_token_ids, max_length
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(stop_token_ids), 0)
        self.mixed_adapters = hasattr(model, "peft_config")
        self._waiting: queue.Queue[RequestHandle] = queue.Queue()
        self._running: list[_Running] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None  # [rows, cached length]: 1 where a real token is
        self._wake = threading.Event()
        self._closing = False
        self.stats = {"requests": 0, "prompt_tokens": 0, "generated_tokens": 0}
        self._thread = threading.Thread(target=self._loop, name="swift-batcher", daemon=True)
        self._thread.start()
        # A daemon thread still inside torch while the interpreter shuts down aborts the process:
        # stop the loop between steps first.
        atexit.register(self.close)

    # -- the caller's side -------------------------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams, adapter: str | None = None,
               on_delta: Callable[[Delta], None] | None = None) -> RequestHandle:
        handle = RequestHandle(list(prompt_ids), params, adapter, on_delta)
        self._waiting.put(handle)
        self._wake.set()
        return handle

    @property
    def load(self) -> tuple[int, int]:
        """(running, waiting) requests."""
        return len(self._running), self._waiting.qsize()

    # -- the model's side ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the loop after the step in progress; requests still running are left unfinished."""
        self._closing = True
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._closing:
            if not self._running and self._waiting.empty():
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                with torch.inference_mode():
                    self._admit()
                    if self._running:
                        self._decode()
            except Exception as error:  # noqa: BLE001 - a failed step fails its requests, not the server
                self._fail_all(f"{type(error).__name__}: {error}")

    def _fail_all(self, message: str) -> None:
        for running in self._running:
            running.handle.error = message
            running.handle._emit(Delta(finish_reason="error"))
        self._running, self._cache, self._mask = [], None, None

    def _admit(self) -> None:
        new: list[_Running] = []
        while len(self._running) + len(new) < self.max_batch_size and not self._waiting.empty():
            handle = self._waiting.get()
            if handle.cancelled.is_set():
                continue
            limit = self.max_length - len(handle.prompt_ids)
            if handle.params.max_new_tokens:
                limit = min(limit, handle.params.max_new_tokens)
            if limit <= 0:
                handle.error = f"the prompt has {len(handle.prompt_ids)} tokens, the model's limit is {self.max_length}"
                handle._emit(Delta(finish_reason="error"))
                continue
            new.append(_Running(handle, limit, self.device))
        if not new:
            return
        width = max(len(r.handle.prompt_ids) for r in new)
        ids = torch.tensor([[self.pad_id] * (width - len(r.handle.prompt_ids)) + r.handle.prompt_ids for r in new])
        mask = torch.tensor([[0] * (width - len(r.handle.prompt_ids)) + [1] * len(r.handle.prompt_ids) for r in new])
        from transformers import DynamicCache

        cache, mask = DynamicCache(config=self.model.config), mask.to(self.device)
        logits = self._forward(ids.to(self.device), mask, cache, new)
        self._merge(new, cache, mask)
        self._advance(new, logits)
        self.stats["requests"] += len(new)
        self.stats["prompt_tokens"] += sum(len(r.handle.prompt_ids) for r in new)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, cache: Any, rows: list[_Running]) -> torch.Tensor:
        """Logits of the last position of each row; `mask` covers the cache and these ids."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1]:]
        extra = {}
        if self.mixed_adapters:
            extra["adapter_names"] = [r.handle.adapter or BASE_MODEL for r in rows]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                         use_cache=True, logits_to_keep=1, **extra)
        return out.logits[:, -1]

    def _merge(self, new: list[_Running], cache: Any, mask: torch.Tensor) -> None:
        """Join the new rows' cache to the running one; the shorter side is padded on the left."""
        if self._cache is None:
            self._cache, self._mask, self._running = cache, mask, new
            return
        old_len, new_len = self._mask.shape[1], mask.shape[1]
        width = max(old_len, new_len)

        def left_pad(t: torch.Tensor, length: int) -> torch.Tensor:
            if length == width:
                return t
            pad = torch.zeros(*t.shape[:-2], width - length, t.shape[-1], dtype=t.dtype, device=t.device)
            return torch.cat([pad, t], dim=-2)

        for old, fresh in zip(self._cache.layers, cache.layers):
            old.keys = torch.cat([left_pad(old.keys, old_len), left_pad(fresh.keys, new_len)])
            old.values = torch.cat([left_pad(old.values, old_len), left_pad(fresh.values, new_len)])
        pad = lambda m: torch.nn.functional.pad(m, (width - m.shape[1], 0))  # noqa: E731
        self._mask = torch.cat([pad(self._mask), pad(mask)])
        self._running += new

    def _decode(self) -> None:
        last = torch.tensor([[r.generated[-1]] for r in self._running], device=self.device)
        self._mask = torch.cat([self._mask, torch.ones_like(self._mask[:, :1])], dim=1)
        logits = self._forward(last, self._mask, self._cache, self._running)
        self._advance(self._running, logits)

    def _advance(self, rows: list[_Running], logits: torch.Tensor) -> None:
        """Append one chosen token to each row, hand out the new text, then retire the finished rows."""
        # Only a repetition penalty looks at the tokens so far: no copies of them for the other rows.
        histories = [r.handle.prompt_ids + r.generated if r.handle.params.repetition_penalty not in (None, 1.0) else []
                     for r in rows]
        choices = choose_tokens(logits, [r.handle.params for r in rows], histories, [r.generator for r in rows])
        for running, choice in zip(rows, choices):
            running.generated.append(choice.token)
            running.choices.append(choice)
            self.stats["generated_tokens"] += 1
        finished = {id(r) for r in rows if self._publish(r)}
        if finished:
            self._retire([i for i, r in enumerate(self._running) if id(r) not in finished])

    def _publish(self, running: _Running) -> bool:
        """Send the text that can no longer change; True when the request is over."""
        handle, params = running.handle, running.handle.params
        if handle.cancelled.is_set():
            handle._emit(Delta(finish_reason="cancelled"))
            return True
        ended_by_eos = running.generated[-1] in self.stop_token_ids
        tokens = running.generated[:-1] if ended_by_eos else running.generated
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        reason = "stop" if ended_by_eos else None
        for word in params.stop_words:
            at = text.find(word, max(0, len(running.sent_text) - len(word)))
            if word and at >= 0:
                text, reason = text[: at + len(word)], "stop"  # stop words stay in the output
        if reason is None and len(running.generated) >= running.limit:
            reason = "length"
        if reason is None:
            # Hold back an incomplete character and anything that may still become a stop word.
            hold = max((len(w) - 1 for w in params.stop_words), default=0)
            safe = len(text) - hold if hold else len(text)
            while safe > 0 and text[safe - 1] == "\ufffd":
                safe -= 1
            text = text[:max(safe, len(running.sent_text))]
        new_text = text[len(running.sent_text):]
        new_tokens = running.choices[running.sent_tokens:len(tokens) if reason else len(running.choices)]
        if new_text or new_tokens or reason:
            running.sent_text += new_text
            running.sent_tokens += len(new_tokens)
            handle._emit(Delta(new_text, new_tokens, reason))
        return reason is not None

    def _retire(self, keep: list[int]) -> None:
        if not keep:
            self._running, self._cache, self._mask = [], None, None
            return
        index = torch.tensor(keep, device=self.device)
        for layer in self._cache.layers:
            layer.keys, layer.values = layer.keys[index], layer.values[index]
        self._mask = self._mask[index]
        self._running = [self._running[i] for i in keep]
        # Columns that are padding for every remaining row cost attention time for nothing.
        first = int(self._mask.any(0).nonzero()[0])
        if first:
            self._mask = self._mask[:, first:]
            for layer in self._cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]

