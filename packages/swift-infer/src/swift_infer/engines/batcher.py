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

One request's failure is its own: a request that cannot be admitted, sampled or decoded into text
ends with an error for its caller alone (logged with its id) while the batch goes on. Only a
failed forward pass of the running batch, whose cache is then unusable, fails every running
request; the waiting ones still run. If the loop itself ever stops, every request still open
gets an error rather than waiting forever.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from swift_infer.engines.sampling import SamplingParams, TokenChoice, choose_tokens


def mixes_adapters(model: Any) -> bool:
    """Whether one batch can run its rows through different adapters (peft's `adapter_names`): LoRA only.
    An AdaLoRA, VeRA, BOFT or FourierFT adapter runs as the model's one active adapter."""
    configs = getattr(model, "peft_config", None) or {}
    return bool(configs) and all(getattr(c.peft_type, "value", c.peft_type) == "LORA" for c in configs.values())

BASE_MODEL = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass
class Delta:
    """New output of one request: text that is final, the tokens behind it, and when finished why."""

    text: str = ""
    tokens: list[TokenChoice] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" or "length"; "error" with `error` set
    stop_token: int | None = None  # the end-of-sequence token that ended it (not in `tokens`)


@dataclass
class Completion:
    text: str
    tokens: list[TokenChoice]
    finish_reason: str
    prompt_tokens: int
    stop_token: int | None = None  # the end-of-sequence token that ended it (not in `tokens`)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)


_request_numbers = itertools.count(1)


class RequestHandle:
    """What a caller holds for one request: iterate its deltas, wait for the result, or cancel it.

    A request that fails ends with a Delta of finish_reason "error"; `error` says why and
    `error_status` whose fault it was: 400 the request's, 503 the server is stopping, 500 ours.
    """

    def __init__(self, prompt_ids: list[int], params: SamplingParams, adapter: str | None,
                 on_delta: Callable[[Delta], None] | None, request_id: str | None = None, stream: bool = True):
        self.prompt_ids, self.params, self.adapter = prompt_ids, params, adapter
        self.stream = stream  # False: the text is decoded once, at the end (no deltas on the way)
        self.request_id = request_id or f"request-{next(_request_numbers)}"
        self.cancelled = threading.Event()
        self.error: str | None = None
        self.error_status = 500
        self.finished = False
        self._on_delta = on_delta
        self._queue: queue.Queue[Delta] = queue.Queue()

    def _emit(self, delta: Delta) -> None:
        if self.finished:  # a request ends once, even when a failure path reaches it twice
            return
        self.finished = delta.finish_reason is not None
        try:
            (self._on_delta or self._queue.put)(delta)
        except Exception:  # noqa: BLE001 - the caller's callback failed: its reader is gone, not the engine
            self.finished = True
            self.cancel()

    def _fail(self, message: str, status: int = 500) -> None:
        if not self.finished:
            self.error, self.error_status = message, status
            self._emit(Delta(finish_reason="error"))

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
        text, tokens, reason, stop_token = "", [], "stop", None
        for delta in self.deltas():
            text += delta.text
            tokens += delta.tokens
            reason = delta.finish_reason or reason
            stop_token = delta.stop_token if delta.stop_token is not None else stop_token
        if reason == "error":
            raise RuntimeError(self.error)
        return Completion(text, tokens, reason, len(self.prompt_ids), stop_token)


class _Running:
    """A request inside the batch: its tokens so far and the text already handed out."""

    def __init__(self, handle: RequestHandle, limit: int, device: torch.device):
        self.handle, self.limit = handle, limit
        self.generated: list[int] = []
        self.choices: list[TokenChoice] = []
        self.sent_text, self.sent_tokens = "", 0
        self.generator = None
        if handle.params.seed is not None:  # any integer: torch takes 64 bits
            self.generator = torch.Generator(device=device).manual_seed(handle.params.seed % 2**64)


class ContinuousBatcher:
    """Runs requests through `model` with at most `max_batch_size` of them in flight."""

    def __init__(self, model: Any, tokenizer: Any, max_batch_size: int, stop_token_ids: set[int], max_length: int,
                 log: Callable[[str], None] | None = None, mixed_adapters: bool | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.log = log or (lambda message: print(f"swift: {message}", file=sys.stderr, flush=True))
        self.max_batch_size, self.stop_token_ids, self.max_length = max_batch_size, stop_token_ids, max_length
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(stop_token_ids), 0)
        # False: every row runs through the model's active adapter (training's rollouts), without peft's
        # per-row routing.
        self.mixed_adapters = mixes_adapters(model) if mixed_adapters is None else mixed_adapters
        self.vocab_size = model.get_input_embeddings().num_embeddings
        self._waiting: queue.Queue[RequestHandle] = queue.Queue()
        self._running: list[_Running] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None  # [rows, cached length]: 1 where a real token is
        self._admitting: list[RequestHandle] = []  # out of the queue, not yet running
        self._gate = threading.Lock()  # orders submit against stop_all and the loop's end
        self._stopped_for: str | None = None  # the stop_all message already applied
        self._wake = threading.Event()
        self._closing = False
        self._stopping: str | None = None  # set by stop_all: every open request ends with this error
        self.stopped_because: str | None = None  # why the loop ended, once it has
        self.stats = {"requests": 0, "prompt_tokens": 0, "generated_tokens": 0}
        self._thread = threading.Thread(target=self._loop, name="swift-batcher", daemon=True)
        self._thread.start()
        # A daemon thread still inside torch while the interpreter shuts down aborts the process:
        # stop the loop between steps first.
        atexit.register(self.close)

    # -- the caller's side -------------------------------------------------------------------------

    def submit(self, prompt_ids: list[int], params: SamplingParams, adapter: str | None = None,
               on_delta: Callable[[Delta], None] | None = None, request_id: str | None = None,
               stream: bool = True) -> RequestHandle:
        handle = RequestHandle(list(prompt_ids), params, adapter, on_delta, request_id, stream)
        with self._gate:  # the loop's final drain and stop_all cannot slip between this check and the put
            refusal = self._refusal()
            if refusal is None:
                self._waiting.put(handle)
        if refusal is not None:
            handle._fail(refusal, 503)
            return handle
        self._wake.set()
        return handle

    def _refusal(self) -> str | None:
        if self.stopped_because is not None:
            return f"the engine has stopped: {self.stopped_because}"
        return self._stopping

    @property
    def alive(self) -> bool:
        """Whether the loop still runs requests (False once it has stopped, for whatever reason)."""
        return self._thread.is_alive() and self.stopped_because is None

    def stop_all(self, message: str) -> None:
        """End every running and waiting request with `message` (status 503) at the next step, and refuse
        every later one: the server is stopping."""
        with self._gate:
            self._stopping = message
        self._wake.set()

    @property
    def load(self) -> tuple[int, int]:
        """(running, waiting) requests."""
        return len(self._running), self._waiting.qsize()

    # -- the model's side ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the loop after the step in progress; requests still open end with an error."""
        self._closing = True
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        try:
            while not self._closing:
                if self._stopping is not None and self._stopped_for != self._stopping:
                    self._stopped_for = self._stopping
                    self._end_all(self._stopping, 503)
                if not self._running and self._waiting.empty():
                    self._wake.wait()
                    self._wake.clear()
                    continue
                self._step()
            self.stopped_because = "it was closed"
        except BaseException as error:  # noqa: BLE001 - the thread must not die with requests waiting on it
            self.stopped_because = f"{type(error).__name__}: {error}"
            self.log(f"the engine loop stopped: {self.stopped_because}")
        finally:
            with self._gate:  # from here on, submit refuses: nothing can be queued after this drain
                self.stopped_because = self.stopped_because or "it stopped"
            self._end_all(f"the engine has stopped: {self.stopped_because}", 503)

    def _step(self) -> None:
        try:
            with torch.inference_mode():
                self._admit()
                if self._running:
                    self._decode()
        except Exception as error:  # noqa: BLE001 - the running batch's cache is lost; the server goes on
            message = f"{type(error).__name__}: {error}"
            self.log(f"a batch step failed, ending its {len(self._running) + len(self._admitting)} request(s): {message}")
            for handle in self._admitting + [r.handle for r in self._running]:
                self._fail_and_log(handle, message)
            self._admitting, self._running, self._cache, self._mask = [], [], None, None

    def _fail_and_log(self, handle: RequestHandle, message: str, status: int = 500) -> None:
        if status >= 500:  # the client hears about its own mistakes; the log is for the server's
            self.log(f"request {handle.request_id} failed: {message}")
        handle._fail(message, status)

    def _end_all(self, message: str, status: int) -> None:
        open_ = self._admitting + [r.handle for r in self._running]
        while True:
            try:
                open_.append(self._waiting.get_nowait())
            except queue.Empty:
                break
        for handle in open_:
            handle._fail(message, status)
        self._admitting, self._running, self._cache, self._mask = [], [], None, None

    def _admit(self) -> None:
        new: list[_Running] = []
        while len(self._running) + len(new) < self.max_batch_size and not self._waiting.empty():
            handle = self._waiting.get()
            if handle.cancelled.is_set():
                continue
            try:
                new.append(self._start(handle))
            except ValueError as error:
                handle._fail(str(error), 400)
            except Exception as error:  # noqa: BLE001 - this request's own failure
                self._fail_and_log(handle, f"{type(error).__name__}: {error}")
        if new:
            self._admitting = [r.handle for r in new]
            self._prefill(new)
            self._admitting = []

    def _start(self, handle: RequestHandle) -> _Running:
        """A request ready to run; ValueError when it can never run here."""
        prompt = len(handle.prompt_ids)
        if not prompt:
            raise ValueError("the prompt is empty: it needs at least one token")
        # On CUDA an id past the embedding is a device-side assert that ends every later kernel.
        outside = [t for t in handle.prompt_ids if not 0 <= t < self.vocab_size]
        if outside:
            raise ValueError(f"token id {outside[0]} is outside the model's vocabulary of {self.vocab_size}")
        limit = self.max_length - prompt
        if handle.params.max_new_tokens:
            limit = min(limit, handle.params.max_new_tokens)
        if limit <= 0:
            raise ValueError(f"the prompt has {prompt} tokens; this model's context is {self.max_length} tokens for "
                             f"prompt and answer together, so a prompt may have at most {self.max_length - 1}")
        return _Running(handle, limit, self.device)

    def _prefill(self, new: list[_Running]) -> None:
        """Run the new requests' prompts and join them to the batch; if that fails, find the one that fails."""
        try:
            width = max(len(r.handle.prompt_ids) for r in new)
            ids = torch.tensor([[self.pad_id] * (width - len(r.handle.prompt_ids)) + r.handle.prompt_ids for r in new])
            mask = torch.tensor([[0] * (width - len(r.handle.prompt_ids)) + [1] * len(r.handle.prompt_ids) for r in new])
            from transformers import DynamicCache

            cache, mask = DynamicCache(config=self.model.config), mask.to(self.device)
            logits = self._forward(ids.to(self.device), mask, cache, new)
        except Exception as error:  # noqa: BLE001 - nothing was merged yet: the running batch is intact
            if len(new) == 1:
                self._fail_and_log(new[0].handle, f"{type(error).__name__}: {error}")
                return
            for running in new:  # one by one, so only the request that fails fails
                self._prefill([running])
            return
        self._merge(new, cache, mask)
        self._admitting = []  # running now: a failure from here on ends them as running requests
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
        ended: set[int] = set()
        for running, choice in zip(rows, self._choose(rows, logits)):
            if isinstance(choice, Exception):
                self._fail_and_log(running.handle, f"choosing the next token failed: {type(choice).__name__}: {choice}")
                ended.add(id(running))
                continue
            running.generated.append(choice.token)
            running.choices.append(choice)
            self.stats["generated_tokens"] += 1
        for running in rows:
            if id(running) in ended:
                continue
            try:
                if self._publish(running):
                    ended.add(id(running))
            except Exception as error:  # noqa: BLE001 - e.g. text the tokenizer cannot decode
                self._fail_and_log(running.handle, f"{type(error).__name__}: {error}")
                ended.add(id(running))
        if ended:
            self._retire([i for i, r in enumerate(self._running) if id(r) not in ended])

    def _choose(self, rows: list[_Running], logits: torch.Tensor) -> list[TokenChoice | Exception]:
        """The rows' next tokens together; if that fails, row by row, so a row's failure stays its own."""
        # Only a repetition penalty looks at the tokens so far: no copies of them for the other rows.
        histories = [r.handle.prompt_ids + r.generated if r.handle.params.repetition_penalty not in (None, 1.0) else []
                     for r in rows]
        params, generators = [r.handle.params for r in rows], [r.generator for r in rows]
        try:
            return list(choose_tokens(logits, params, histories, generators))
        except Exception:  # noqa: BLE001
            pass
        choices: list[TokenChoice | Exception] = []
        for row in range(len(rows)):
            try:
                choices += choose_tokens(logits[row:row + 1], params[row:row + 1], histories[row:row + 1],
                                         generators[row:row + 1])
            except Exception as error:  # noqa: BLE001
                choices.append(error)
        return choices

    def _publish(self, running: _Running) -> bool:
        """Send the text that can no longer change; True when the request is over."""
        handle, params = running.handle, running.handle.params
        if handle.cancelled.is_set():
            handle._emit(Delta(finish_reason="cancelled"))
            return True
        ended_by_eos = running.generated[-1] in self.stop_token_ids
        if not handle.stream and not params.stop_words and not ended_by_eos and len(running.generated) < running.limit:
            return False  # nobody reads partial text: decode once, at the end, not every step
        tokens = running.generated[:-1] if ended_by_eos else running.generated
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        reason = "stop" if ended_by_eos else None
        words = [w for w in params.stop_words if w]  # an empty word would match everywhere
        for word in words:
            at = text.find(word, max(0, len(running.sent_text) - len(word)))
            if at >= 0:
                text, reason = text[: at + len(word)], "stop"  # stop words stay in the output
        if reason is None and len(running.generated) >= running.limit:
            reason = "length"
        if reason is None:
            # Hold back an incomplete character and anything that may still become a stop word.
            hold = max((len(w) - 1 for w in words), default=0)
            safe = len(text) - hold if hold else len(text)
            while safe > 0 and text[safe - 1] == "\ufffd":
                safe -= 1
            text = text[:max(safe, len(running.sent_text))]
        new_text = text[len(running.sent_text):]
        new_tokens = running.choices[running.sent_tokens:len(tokens) if reason else len(running.choices)]
        if new_text or new_tokens or reason:
            running.sent_text += new_text
            running.sent_tokens += len(new_tokens)
            handle._emit(Delta(new_text, new_tokens, reason, running.generated[-1] if ended_by_eos and reason else None))
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

