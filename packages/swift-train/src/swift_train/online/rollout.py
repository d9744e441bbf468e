"""Completions from the policy being trained: the rollouts GRPO and PPO learn from.

The pt rollout runs the training model itself (its LoRA adapter live, no copy of the weights) through
swift-infer's continuous batcher: every completion of a batch is in flight at once, a finished one
leaves the batch at once, and nothing is decoded to text until a completion ends. The vLLM rollout
(--use_vllm true) keeps a vLLM engine in the same process and loads the policy's current weights into
it before each rollout (LoRA merged for the copy, then unmerged), as TRL's colocated mode does.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from swift_infer.engines.batcher import ContinuousBatcher
from swift_infer.engines.sampling import SamplingParams


@dataclass
class Rollouts:
    completion_ids: list[list[int]]  # ending with the end-of-sequence token where the model wrote one
    texts: list[str]
    ended: list[bool]  # False: cut at the length limit
    seconds: float

    @property
    def tokens(self) -> int:
        return sum(len(c) for c in self.completion_ids)


def sampling_params(args: Any, max_new_tokens: int) -> SamplingParams:
    """The rlhf sampling arguments (--temperature 0.9, --top_k 50, --top_p 0.9, --repetition_penalty 1)."""
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                          top_p=args.top_p, repetition_penalty=args.repetition_penalty)


def stop_token_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


class PtRollout:
    """Rollouts on the training model's current weights: on a GPU, the whole batch decoded in lockstep with each
    step a CUDA graph replay (swift_infer.engines.static_batch); elsewhere, or for a model it cannot take,
    through the continuous batcher."""

    def __init__(self, model: Any, tokenizer: Any, params: SamplingParams, max_batch_size: int,
                 gather: contextlib.AbstractContextManager | None = None):
        from swift_infer.engines import static_batch

        self.model, self.tokenizer, self.params, self.gather = model, tokenizer, params, gather
        self.max_batch_size = max_batch_size
        self.stop_ids = stop_token_ids(model, tokenizer)
        self.batcher: ContinuousBatcher | None = None
        self.static: Any = None
        why_not = static_batch.supported(model) if torch.cuda.is_available() else "no GPU"
        if why_not is None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(self.stop_ids), 0)
            self.static = static_batch.StaticBatchGenerator(model, self.stop_ids, pad)
        elif torch.cuda.is_available():
            print(f"swift: rollouts run through the continuous batcher, not CUDA graphs: {why_not}", file=sys.stderr)

    def generate(self, prompts: list[list[int]]) -> Rollouts:
        start = time.perf_counter()
        training = self.model.training
        self.model.eval()  # no dropout while sampling: the completions come from the policy itself
        try:
            with self.gather() if self.gather is not None else contextlib.nullcontext():
                ids = self._static(prompts) if self.static is not None else None
                if ids is None:
                    ids = self._batched(prompts)
        finally:
            self.model.train(training)
        ended = [bool(c) and c[-1] in self.stop_ids for c in ids]
        texts = [self.tokenizer.decode(c[:-1] if end else c, skip_special_tokens=True) for c, end in zip(ids, ended)]
        return Rollouts(ids, texts, ended, time.perf_counter() - start)

    def _static(self, prompts: list[list[int]]) -> list[list[int]] | None:
        try:
            return self.static.generate(prompts, self.params, self.params.max_new_tokens)
        except Exception as error:  # noqa: BLE001 - a model the graphs cannot take: the batcher still can
            print(f"swift: CUDA-graph rollouts failed ({type(error).__name__}: {error}); using the continuous "
                  "batcher from here on", file=sys.stderr)
            self.static = None
            return None

    def _batched(self, prompts: list[list[int]]) -> list[list[int]]:
        if self.batcher is None:
            self.batcher = ContinuousBatcher(self.model, self.tokenizer, self.max_batch_size, self.stop_ids,
                                             max_length=10**9, mixed_adapters=False)
        handles = [self.batcher.submit(p, self.params, stream=False) for p in prompts]
        completions = [h.result() for h in handles]
        return [[c.token for c in done.tokens] + ([done.stop_token] if done.stop_token is not None else [])
                for done in completions]

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()


class VllmRollout:
    """Rollouts through a vLLM engine in this process, loaded with the policy's weights before each one."""

    def __init__(self, model: Any, tokenizer: Any, params: SamplingParams, args: Any, max_model_len: int):
        from swift_infer.engines.vllm import import_vllm

        vllm = import_vllm()
        self.model, self.tokenizer, self.stop_ids = model, tokenizer, stop_token_ids(model, tokenizer)
        self.llm = vllm.LLM(
            model=model.name_or_path if hasattr(model, "name_or_path") else model.config._name_or_path,
            gpu_memory_utilization=args.vllm_gpu_memory_utilization, max_model_len=args.vllm_max_model_len or max_model_len,
            max_num_seqs=args.vllm_max_num_seqs, enforce_eager=args.vllm_enforce_eager,
            enable_prefix_caching=args.vllm_enable_prefix_caching, seed=args.seed,
            distributed_executor_backend="external_launcher", dtype=str(next(model.parameters()).dtype).split(".")[-1],
        )
        self.sampling = vllm.SamplingParams(
            n=1, max_tokens=params.max_new_tokens, temperature=params.temperature or 0.0, top_k=params.top_k or -1,
            top_p=params.top_p if params.top_p is not None else 1.0, repetition_penalty=params.repetition_penalty or 1.0)

    def generate(self, prompts: list[list[int]]) -> Rollouts:
        start = time.perf_counter()
        self._load_weights()
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], self.sampling, use_tqdm=False)
        ids = [list(o.outputs[0].token_ids) for o in outputs]
        texts = [self.tokenizer.decode([t for t in c if t not in self.stop_ids], skip_special_tokens=True) for c in ids]
        return Rollouts(ids, texts, [bool(c) and c[-1] in self.stop_ids for c in ids], time.perf_counter() - start)

    @torch.no_grad()
    def _load_weights(self) -> None:
        """The policy's weights as vLLM names them: LoRA merged into the base for the copy, then unmerged."""
        model = self.model
        target = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        peft = hasattr(model, "merge_adapter")
        if peft:
            model.merge_adapter()
        try:
            for name, param in model.named_parameters():
                if peft:
                    name = name.removeprefix("base_model.model.").replace(".base_layer", "")
                    if "lora_" in name or "original_module" in name:
                        continue
                    name = name.replace("modules_to_save.default.", "")
                target.load_weights([(name, param.data)])
        finally:
            if peft:
                model.unmerge_adapter()
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        pass
