"""The GRPO trainer: groups of completions per prompt, scored by reward functions and reward models.

Each optimizer step takes (per_device_train_batch_size / num_generations) prompts per micro step, samples
num_generations completions of each from the current policy (rollout.py), scores them, and turns each
completion's reward into an advantage relative to its group (losses.group_advantages). The completions
are trained on num_iterations times (the clipped ratio to the sampling policy keeps the later passes
honest), then the next prompts are sampled. beta > 0 adds a KL penalty to the reference: the policy with
its adapter disabled (LoRA and the other tuners), or a frozen copy of the starting model (full training).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from swift_train.online import losses
from swift_train.online.batches import GroupSampler, Sequences, lay_out, load_buffer, save_buffer, token_logps
from swift_train.online.evaluation import evaluate_rewards
from swift_train.online.rollout import PtRollout, Rollouts, sampling_params
from swift_train.preference.trainer import PreferenceTrainer
from swift_train.preference.trainer import _mean as _mean_here


def _mean(values: torch.Tensor) -> torch.Tensor:
    """[sum, count] on the GPU where there is one: every metric of a step is stacked together at log time."""
    return _mean_here(values.to('cuda' if torch.cuda.is_available() else 'cpu'))


def _logp_head(trainer: Any, model: Any) -> Any:
    """lm_head and decoder of `model` for the chunked log-probabilities (loss.find_head), found once; None: the
    full-logits path (a model whose logits lm_head alone does not give)."""
    from swift_train.loss import find_head

    unwrapped = trainer.accelerator.unwrap_model(model)
    heads = trainer.__dict__.setdefault("_logp_heads", {})
    if id(unwrapped) not in heads:
        head = find_head(unwrapped)
        heads[id(unwrapped)] = None if isinstance(head, str) else head
    return heads[id(unwrapped)]


class GrpoTrainer(PreferenceTrainer):
    def __init__(self, *args: Any, reward_functions: list[Any], reward_model: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        swift_args = self.swift_args
        self.reward_functions = list(reward_functions) + ([reward_model] if reward_model is not None else [])
        weights = swift_args.reward_weights or [1.0] * len(self.reward_functions)
        self.reward_weights = torch.tensor(weights, dtype=torch.float32)
        self.group = swift_args.num_generations
        self._rollout: Any = None
        self._buffer: dict[int, dict[str, Any]] = {}
        self._micro_step = 0
        self._equal_groups = [0, 0]  # groups whose completions all got the same reward, groups, since the last log
        self.completions_file = Path(self.args.output_dir) / "completions.jsonl"

    # -- prompts --------------------------------------------------------------------------------

    def _get_train_sampler(self, train_dataset: Any = None) -> GroupSampler:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        window = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return GroupSampler(len(dataset), self.group, window, self.swift_args.num_iterations, self.args.seed)

    def _prepare_inputs(self, inputs: Any) -> Any:
        if not self.model.training:
            return inputs
        slot = self._micro_step % self.args.gradient_accumulation_steps
        self._micro_step += 1
        if self.state.global_step % self.swift_args.num_iterations == 0 or slot not in self._buffer:
            self._buffer[slot] = self._sample_and_score(inputs)
        return self._buffer[slot]

    # -- rollouts and rewards -------------------------------------------------------------------

    def rollout(self) -> Any:
        if self._rollout is None:
            args = self.swift_args
            model = self.accelerator.unwrap_model(self.model)
            params = sampling_params(args, args.max_completion_length)
            if args.use_vllm:
                from swift_train.online.rollout import VllmRollout

                self._rollout = VllmRollout(model, self.processing_class, params, args,
                                            max_model_len=(args.max_length or 2048) + args.max_completion_length)
            else:
                self._rollout = PtRollout(model, self.processing_class, params, self.args.per_device_train_batch_size,
                                          gather=self._gathered_for_generation())
        return self._rollout

    def _gathered_for_generation(self) -> Any:
        """ZeRO-3 with ds3_gather_for_generation: the whole weights on each GPU while sampling (much faster)."""
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is None or plugin.zero_stage != 3 or not self.swift_args.ds3_gather_for_generation:
            return None
        import deepspeed

        model = self.accelerator.unwrap_model(self.model)
        return lambda: deepspeed.zero.GatheredParameters(list(model.parameters()))

    def _sample_and_score(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        prompts = [s["prompt_ids"].tolist() for s in samples]
        rollouts = self.rollout().generate(prompts)
        sequences = lay_out(prompts, rollouts.completion_ids, self._pad_id()).to(self.args.device)
        per_function = self._rewards(samples, rollouts)
        rewards = (per_function * self.reward_weights).nansum(1)
        advantages, stds = losses.group_advantages(rewards, self.group)
        batch: dict[str, Any] = {"sequences": sequences, "advantages": advantages.to(self.args.device),
                                 "old_logps": None, "ref_logps": None}
        with torch.no_grad():
            if self.swift_args.num_iterations > 1:  # later passes need the sampling policy's own log-probs
                batch["old_logps"] = token_logps(self.model, sequences, self.swift_args.temperature, _logp_head(self, self.model))
            if self.swift_args.beta:
                batch["ref_logps"] = self._reference_token_logps(sequences)
        self._record_rollout(rollouts, per_function, rewards, stds, sequences)
        if self.swift_args.log_completions:
            self._log_completions(samples, rollouts, per_function, rewards, advantages)
        return batch

    def _pad_id(self) -> int:
        tokenizer = self.processing_class
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def _rewards(self, samples: list[dict[str, Any]], rollouts: Rollouts) -> torch.Tensor:
        """[completions, functions]: each function's reward of each completion (NaN where it gave None)."""
        from swift_train.rewards import score

        columns: dict[str, list[Any]] = {"messages": [s["messages"] for s in samples]}
        for name in samples[0]["row"]:
            if name != "messages":
                columns[name] = [s["row"].get(name) for s in samples]
        functions = [f for f in self.reward_functions if f.name != "reward_model"]
        parts = [score(functions, rollouts.texts, columns)] if functions else []
        if len(functions) < len(self.reward_functions):  # the reward model comes last, as the reference adds it
            parts.append(self.reward_functions[-1].score(columns["messages"], rollouts.texts)[:, None])
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def _reference_token_logps(self, sequences: Sequences) -> torch.Tensor:
        reference = self.ref_model if self.ref_model is not None else self.accelerator.unwrap_model(self.model)
        training = reference.training
        reference.eval()
        try:
            with self._without_tuner(reference):
                return token_logps(reference, sequences, self.swift_args.temperature, _logp_head(self, reference))
        finally:
            reference.train(training)

    # -- the loss -------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        sequences: Sequences = inputs["sequences"]
        logps = token_logps(model, sequences, self.swift_args.temperature, _logp_head(self, model))
        result = losses.grpo_loss(logps, inputs["old_logps"], inputs["ref_logps"], inputs["advantages"],
                                  sequences.completion_mask, beta=self.swift_args.beta, epsilon=self.swift_args.epsilon)
        self._metrics["train"]["kl"].append(_mean(result.kl))
        self._metrics["train"]["clip_ratio"].append(_mean(result.clip_ratio))
        self.tokens_seen += int(sequences.attention_mask.sum())
        return (result.loss, None) if return_outputs else result.loss

    # -- logs -----------------------------------------------------------------------------------

    def _record_rollout(self, rollouts: Rollouts, per_function: torch.Tensor, rewards: torch.Tensor,
                        stds: torch.Tensor, sequences: Sequences) -> None:
        metrics = self._metrics["train"]
        for index, function in enumerate(self.reward_functions):
            values = per_function[:, index]
            values = values[~values.isnan()]
            metrics[f"rewards/{function.name}"].append(_mean(values))
            metrics[f"rewards/{function.name}_std"].append(_mean(values.std() if len(values) > 1 else values.new_zeros(())))
        metrics["reward"].append(_mean(rewards))
        metrics["reward_std"].append(_mean(stds))
        equal = stds == 0
        metrics["frac_reward_zero_std"].append(_mean(equal.float()))
        self._equal_groups[0] += int(equal.sum())
        self._equal_groups[1] += len(equal)
        metrics["completion_length"].append(_mean(sequences.completion_mask.sum(1)))
        metrics["completions_ended"].append(_mean(torch.tensor(rollouts.ended, dtype=torch.float32)))
        metrics["rollout_tokens_per_second"].append(_mean(torch.tensor(rollouts.tokens / max(rollouts.seconds, 1e-9))))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            self._say_equal_groups()
        super().log(logs, start_time)

    def _say_equal_groups(self) -> None:
        equal, total = self._equal_groups
        self._equal_groups = [0, 0]
        if equal and self.is_world_process_zero():
            which = "every group" if equal == total else f"{equal} of {total} prompt groups"
            print(f"swift: step {self.state.global_step}: {which} since the last log got the same reward for all "
                  f"{self.group} completions: no gradient from them (frac_reward_zero_std); harder or easier prompts, "
                  "more --num_generations or a finer reward give signal", file=sys.stderr)

    def _log_completions(self, samples: list[dict[str, Any]], rollouts: Rollouts, per_function: torch.Tensor,
                         rewards: torch.Tensor, advantages: torch.Tensor) -> None:
        """Every process's completions of this step, gathered, then written by the first process."""
        from accelerate.utils import gather_object

        names = [f.name for f in self.reward_functions]
        records = []
        for index, sample in enumerate(samples):
            values = [None if v != v else round(float(v), 6) for v in per_function[index].tolist()]
            records.append({"step": self.state.global_step + 1, "prompt": sample["messages"],
                            "completion": rollouts.texts[index], "rewards": dict(zip(names, values)),
                            "reward": round(float(rewards[index]), 6), "advantage": round(float(advantages[index]), 6)})
        if self.args.world_size > 1:
            records = gather_object(records)
        if self.is_world_process_zero():
            with open(self.completions_file, "a", encoding="utf-8") as out:
                out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)

    # -- evaluation: the mean reward of completions to held-out prompts -------------------------

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        return evaluate_rewards(self, eval_dataset, metric_key_prefix, self._eval_rewards)

    def _eval_rewards(self, samples: list[dict[str, Any]], rollouts: Rollouts) -> dict[str, torch.Tensor]:
        per_function = self._rewards(samples, rollouts)
        named = {f"rewards/{f.name}": per_function[:, i] for i, f in enumerate(self.reward_functions)}
        return {"reward": (per_function * self.reward_weights).nansum(1), **named}

    # -- resume: the completions of an unfinished num_iterations window ----------------------------

    def _save_rng_state(self, output_dir: str) -> None:
        super()._save_rng_state(output_dir)
        if self.swift_args.num_iterations > 1:
            save_buffer(self._buffer, output_dir, self.args.process_index)

    def _load_rng_state(self, checkpoint: str | None) -> None:
        super()._load_rng_state(checkpoint)
        self._buffer = load_buffer(checkpoint, self.args.process_index, self.args.device)
