"""The pt engine: transformers models served with continuous batching (see batcher.py).

Beam search is the one thing the batcher does not do; `num_beams > 1` goes through
transformers' own `generate`, one static batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from swift_args.fields import pick_fields
from swift_data.preprocess.conversation import Conversation
from swift_data.templates.encode import Encoder

from swift_infer.engines.batcher import (
    BASE_MODEL,
    Completion,
    ContinuousBatcher,
    Delta,
    RequestHandle,
    mixes_adapters,
)
from swift_infer.engines.sampling import SamplingParams, TokenChoice


@dataclass
class GenerationSettings:
    """The reference's generation arguments; None means "as generation_config.json says"."""

    max_new_tokens: int | None = None
    temperature: float | None = None  # 0 means greedy
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    num_beams: int = 1
    stop_words: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int | None = None
    seed: int | None = None

    @classmethod
    def from_args(cls, args: Any) -> GenerationSettings:
        options = pick_fields(cls, args)
        options.pop("seed", None)  # the command's --seed seeds the run; a per-request seed would repeat samples
        return cls(**options)

    def sampling_params(self, generation_config: Any) -> SamplingParams:
        """Fill what the user left unset from the model's generation_config.json."""
        temperature = self.temperature
        if temperature is None:
            # generation_config.json decides between greedy and sampling through do_sample.
            temperature = getattr(generation_config, "temperature", None) if getattr(generation_config, "do_sample", False) else 0.0
        default = lambda name: getattr(generation_config, name, None)  # noqa: E731
        return SamplingParams(
            max_new_tokens=self.max_new_tokens,
            temperature=temperature,
            top_k=self.top_k if self.top_k is not None else default("top_k"),
            top_p=self.top_p if self.top_p is not None else default("top_p"),
            repetition_penalty=self.repetition_penalty if self.repetition_penalty is not None else default("repetition_penalty"),
            stop_words=list(self.stop_words),
            logprobs=self.logprobs or bool(self.top_logprobs),
            top_logprobs=self.top_logprobs or 0,
            seed=self.seed,
        )


def _stop_token_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _max_length(model: Any, tokenizer: Any) -> int:
    for value in (getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)):
        if isinstance(value, int) and 0 < value < 10**8:
            return int(value * _dynamic_rope_factor(model.config))
    return 32768


def _dynamic_rope_factor(config: Any) -> float:
    """Dynamic NTK RoPE (--rope_scaling dynamic) stretches past max_position_embeddings, which it keeps
    as the length it was trained at; the engine may take `factor` times as many tokens."""
    rope = getattr(config, "rope_parameters", None)
    if isinstance(rope, dict) and rope.get("rope_type") == "dynamic":
        return max(1.0, float(rope.get("factor") or 1.0))
    return 1.0


def _batches_safely(model: Any) -> bool:
    """Rows can only be merged and dropped in a cache of plain (full attention) layers."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        layers = DynamicCache(config=model.config).layers
    except Exception:  # noqa: BLE001 - a config the cache cannot read: play safe
        return False
    return all(type(layer) is DynamicLayer for layer in layers)


class PtEngine:
    def __init__(self, model: Any, tokenizer: Any, encoder: Encoder, max_batch_size: int = 1,
                 default_adapter: str | None = None):
        self.model, self.tokenizer, self.encoder = model.eval(), tokenizer, encoder
        self.default_adapter = default_adapter
        if max_batch_size > 1 and not _batches_safely(model):
            print(f"swift: {type(model).__name__} keeps a cache that cannot be batched continuously; serving one request at a time")
            max_batch_size = 1
        self.stop_token_ids = _stop_token_ids(model, tokenizer)
        self.batcher = ContinuousBatcher(model, tokenizer, max_batch_size, self.stop_token_ids, _max_length(model, tokenizer))

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The prompt exactly as the chat template renders it for generation."""
        return self.tokenizer(self.encoder.prompt_text(conversation), add_special_tokens=False)["input_ids"]

    def submit(self, prompt_ids: list[int], settings: GenerationSettings, adapter: str | None = None,
               on_delta: Callable[[Delta], None] | None = None, request_id: str | None = None) -> RequestHandle:
        """Queue one request; `adapter` None means the engine's default, BASE_MODEL the bare model."""
        params = settings.sampling_params(self.model.generation_config)
        return self.batcher.submit(prompt_ids, params, adapter or self.default_adapter, on_delta, request_id)

    @property
    def max_length(self) -> int:
        """Tokens of prompt and answer together that the model takes."""
        return self.batcher.max_length

    def complete(self, conversations: list[Conversation], settings: GenerationSettings) -> list[Completion]:
        """All answers, with tokens and logprobs; requests run concurrently in the batcher."""
        if settings.num_beams > 1:
            return self._beam_search(conversations, settings)
        handles = [self.submit(self.prompt_ids(c), settings) for c in conversations]
        return [h.result() for h in handles]

    def complete_iter(self, conversations: list[Conversation], settings: GenerationSettings) -> Iterator[Completion]:
        """Like complete, yielding each answer in order as soon as it is ready."""
        if settings.num_beams > 1:
            yield from self._beam_search(conversations, settings)
            return
        handles = [self.submit(self.prompt_ids(c), settings) for c in conversations]
        try:
            for handle in handles:
                yield handle.result()
        finally:
            for handle in handles:
                handle.cancel()

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        return [c.text for c in self.complete(conversations, settings)]

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        if settings.num_beams > 1:  # beams only know their answer at the end
            yield self.generate([conversation], settings)[0]
            return
        handle = self.submit(self.prompt_ids(conversation), settings)
        try:
            for delta in handle.deltas():
                if delta.finish_reason == "error":
                    raise RuntimeError(handle.error)
                if delta.text:
                    yield delta.text
        finally:
            handle.cancel()  # a no-op once finished; frees the slot if the reader stopped early

    @torch.no_grad()
    def _beam_search(self, conversations: list[Conversation], settings: GenerationSettings) -> list[Completion]:
        prompts = [self.prompt_ids(c) for c in conversations]
        width = max(len(p) for p in prompts)
        pad = self.batcher.pad_id
        device = self.batcher.device
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        extra = {}
        if mixes_adapters(self.model):
            extra["adapter_names"] = [self.default_adapter or BASE_MODEL] * len(prompts)
        params = replace(settings, temperature=0).sampling_params(self.model.generation_config)
        output = self.model.generate(input_ids=input_ids, attention_mask=attention, pad_token_id=pad,
                                     num_beams=settings.num_beams, do_sample=False, max_new_tokens=settings.max_new_tokens or 2048,
                                     repetition_penalty=params.repetition_penalty, temperature=None, top_k=None, top_p=None,
                                     stop_strings=settings.stop_words or None, tokenizer=self.tokenizer, **extra)
        completions = []
        for prompt, row in zip(prompts, output[:, width:].tolist()):
            tokens = [t for t in row if t != pad]
            finished = bool(tokens) and tokens[-1] in self.stop_token_ids
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            ends = [text.find(w) + len(w) for w in settings.stop_words if w and w in text]
            text = text[: min(ends)] if ends else text
            reason = "stop" if finished or ends else "length"
            completions.append(Completion(text, [TokenChoice(t) for t in tokens], reason, len(prompt)))
        return completions
