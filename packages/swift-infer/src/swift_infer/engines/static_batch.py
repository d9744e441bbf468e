"""A batch of requests known up front, decoded in lockstep over a preallocated KV cache; on CUDA each
decode step is one CUDA graph replay.

A small model's decode step is bound by kernel launches, not by the GPU: a LoRA-wrapped 24-layer model
launches ~1,650 kernels a step for ~9 ms of GPU work. Captured once as a CUDA graph, the step is replayed
with one launch. That needs static shapes and addresses: the KV cache is allocated for the whole batch
(prompts left-padded to a bucketed width, plus max_new_tokens), each row's step writes at the same slot,
and a boolean mask says which slots each row may attend to. Sampling (temperature, top_k, top_p,
repetition penalty) runs vectorised on the device outside the graph; the host looks at the tokens only
every CHECK_EVERY steps, to stop once every row has ended.

Rows that end early keep computing until the batch ends (what `generate` does too); this suits GRPO's
rollouts, whose rows all start together. The continuous batcher (batcher.py) is the engine for traffic.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from swift_infer.engines.sampling import SamplingParams

CHECK_EVERY = 8  # decode steps between the host's checks whether every row has ended
PROMPT_BUCKET = 64  # prompt widths are rounded up to this, so a few captured graphs serve every batch
KEPT_GRAPHS = 4  # captured (batch, width) shapes kept; each holds its own KV cache


def supported(model: Any) -> str | None:
    """None when the model can be decoded here, else why not."""
    from transformers.cache_utils import Cache, CacheLayerMixin  # noqa: F401 - transformers 5's cache API

    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return "its attention is not sdpa"
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if any(kind != "full_attention" for kind in (getattr(text, "layer_types", None) or ["full_attention"])):
        return "it has sliding-window or linear-attention layers"
    return None


def _slot_cache(layers: list[Any]) -> Any:
    from transformers.cache_utils import Cache, CacheLayerMixin

    class SlotLayer(CacheLayerMixin):
        """Preallocated keys and values; a forward writes its tokens at `slot`, slot+1, ... (a device tensor)."""

        is_compileable = True

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, slot: torch.Tensor):
            super().__init__()
            self.keys, self.values, self.slot = keys, values, slot
            self.is_initialized = True

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            pass

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            where = self.slot + torch.arange(key_states.shape[-2], device=key_states.device)
            self.keys.index_copy_(2, where, key_states.to(self.keys.dtype))
            self.values.index_copy_(2, where, value_states.to(self.values.dtype))
            return self.keys, self.values

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.keys.shape[2], 0

        def get_seq_length(self) -> int:
            return 0  # positions are always passed explicitly

        def get_max_cache_shape(self) -> int:
            return self.keys.shape[2]

        def get_max_length(self) -> int:
            return self.keys.shape[2]

    return Cache(layers=[SlotLayer(*layer) for layer in layers])


@dataclass
class _Shape:
    """Everything one (batch, width) shape keeps between batches: the cache, the static inputs, the graph."""

    cache: Any
    slot: torch.Tensor  # [1] the cache slot the next token is written to
    ids: torch.Tensor  # [B, 1] the tokens fed to the next step
    positions: torch.Tensor  # [B, 1] their position ids
    valid: torch.Tensor  # [B, width] True on slots a row may attend to
    logits: torch.Tensor | None = None  # [B, V] the captured step's output
    graph: Any = None


class StaticBatchGenerator:
    """Completions for a batch of prompts at once; `use_graphs` (CUDA) replays each decode step."""

    def __init__(self, model: Any, stop_token_ids: set[int], pad_id: int, use_graphs: bool | None = None):
        self.model, self.pad_id = model, pad_id
        self.device = next(model.parameters()).device
        self.stop = torch.tensor(sorted(stop_token_ids) or [pad_id], device=self.device)
        self.use_graphs = self.device.type == "cuda" if use_graphs is None else use_graphs
        self._shapes: OrderedDict[tuple[int, int], _Shape] = OrderedDict()

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], params: SamplingParams, max_new_tokens: int) -> list[list[int]]:
        """Each prompt's completion tokens, ending with the stop token that ended it (if one did)."""
        batch, longest = len(prompts), max(len(p) for p in prompts)
        width = -(-longest // PROMPT_BUCKET) * PROMPT_BUCKET
        shape = self._shape(batch, width + max_new_tokens)
        self._prefill(shape, prompts, width)
        tokens = torch.full((batch, max_new_tokens), self.pad_id, dtype=torch.long, device=self.device)
        ended = torch.zeros(batch, dtype=torch.bool, device=self.device)
        seen = self._seen(prompts, params)
        next_token = self._sample(self._last_logits, params, seen)
        for step in range(max_new_tokens):
            tokens[:, step] = torch.where(ended, self.pad_id, next_token)
            ended |= torch.isin(next_token, self.stop)
            if step + 1 == max_new_tokens or ((step + 1) % CHECK_EVERY == 0 and bool(ended.all())):
                break
            if seen is not None:
                seen.scatter_(1, next_token[:, None], True)
            next_token = self._sample(self._decode(shape, next_token, width + step), params, seen)
        return [_until_stop(row, self.stop.tolist()) for row in tokens.tolist()]

    # -- the cache and the graph ----------------------------------------------------------------

    def _shape(self, batch: int, length: int) -> _Shape:
        key = (batch, length)
        if key in self._shapes:
            self._shapes.move_to_end(key)
            return self._shapes[key]
        while len(self._shapes) >= KEPT_GRAPHS:
            self._shapes.popitem(last=False)
        config = self.model.config.get_text_config() if hasattr(self.model.config, "get_text_config") else self.model.config
        heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        dtype = next(self.model.parameters()).dtype
        slot = torch.zeros(1, dtype=torch.long, device=self.device)
        layers = [(torch.zeros(batch, heads, length, head_dim, dtype=dtype, device=self.device),
                   torch.zeros(batch, heads, length, head_dim, dtype=dtype, device=self.device), slot)
                  for _ in range(config.num_hidden_layers)]
        shape = _Shape(_slot_cache(layers), slot, torch.zeros(batch, 1, dtype=torch.long, device=self.device),
                       torch.zeros(batch, 1, dtype=torch.long, device=self.device),
                       torch.zeros(batch, length, dtype=torch.bool, device=self.device))
        self._shapes[key] = shape
        return shape

    def _step(self, shape: _Shape) -> torch.Tensor:
        out = self.model(input_ids=shape.ids, position_ids=shape.positions, past_key_values=shape.cache,
                         attention_mask=shape.valid[:, None, None, :], use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def _capture(self, shape: _Shape) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up outside the graph: cuBLAS workspaces, lazy kernel loading
                self._step(shape)
        torch.cuda.current_stream().wait_stream(stream)
        shape.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(shape.graph):
            shape.logits = self._step(shape)

    def _prefill(self, shape: _Shape, prompts: list[list[int]], width: int) -> None:
        """Run the left-padded prompts into slots 0..width-1; pad positions attend only to themselves."""
        batch = len(prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + list(p) for p in prompts], device=self.device)
        real = torch.tensor([[False] * (width - len(p)) + [True] * len(p) for p in prompts], device=self.device)
        shape.valid.zero_()
        shape.valid[:, :width] = real
        causal = torch.ones(width, width, dtype=torch.bool, device=self.device).tril()
        mask = torch.zeros(batch, 1, width, shape.valid.shape[1], dtype=torch.bool, device=self.device)
        mask[:, 0, :, :width] = causal & real[:, None, :]
        mask[:, 0, torch.arange(width), torch.arange(width)] = True  # a pad row with nothing to see sees itself
        positions = (real.long().cumsum(-1) - 1).clamp(min=0)
        shape.slot.zero_()
        out = self.model(input_ids=ids, position_ids=positions, past_key_values=shape.cache, attention_mask=mask,
                         use_cache=True, logits_to_keep=1)
        self._last_logits = out.logits[:, -1]
        shape.positions.copy_(positions[:, -1:])

    def _decode(self, shape: _Shape, token: torch.Tensor, slot: int) -> torch.Tensor:
        shape.ids.copy_(token[:, None])
        shape.positions.add_(1)
        shape.slot.fill_(slot)
        shape.valid[:, slot] = True
        if not self.use_graphs:
            return self._step(shape)
        if shape.graph is None:
            self._capture(shape)
        shape.graph.replay()
        return shape.logits

    # -- sampling -------------------------------------------------------------------------------

    def _seen(self, prompts: list[list[int]], params: SamplingParams) -> torch.Tensor | None:
        if params.repetition_penalty in (None, 1.0):
            return None
        vocab = self.model.get_output_embeddings().weight.shape[0]
        seen = torch.zeros(len(prompts), vocab, dtype=torch.bool, device=self.device)
        for row, prompt in enumerate(prompts):
            seen[row, torch.tensor(prompt, device=self.device)] = True
        return seen

    def _sample(self, logits: torch.Tensor, params: SamplingParams, seen: torch.Tensor | None) -> torch.Tensor:
        """The batcher's rules (sampling.py), vectorised: penalty on seen tokens, temperature, top_k, then
        top_p over the untruncated distribution."""
        logits = logits.float()
        if seen is not None:
            penalised = torch.where(logits > 0, logits / params.repetition_penalty, logits * params.repetition_penalty)
            logits = torch.where(seen, penalised, logits)
        if params.greedy:
            return logits.argmax(-1)
        probs = ((logits - logits.max(-1, keepdim=True).values) / params.temperature).softmax(-1)
        k = min(params.top_k or probs.shape[-1], probs.shape[-1])
        top, ids = probs.topk(k, dim=-1)
        if params.top_p is not None and params.top_p < 1.0:
            top = top.masked_fill(top.cumsum(-1) - top > params.top_p, 0.0)
        return ids.gather(-1, torch.multinomial(top, 1)).squeeze(-1)


def _until_stop(row: list[int], stop: list[int]) -> list[int]:
    for index, token in enumerate(row):
        if token in stop:
            return row[:index + 1]
    return row
