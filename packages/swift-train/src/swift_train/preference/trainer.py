"""The preference trainer: SwiftTrainer (checkpoints, NaN stop, logging, resume) with the rlhf losses.

One forward pass scores every answer of a batch (batch.py lays them out); lm_head runs chunk by
chunk on the answer tokens only, so the [sequences, length, vocabulary] logits never exist. The
reference model is the same model with its adapter disabled for LoRA and the other tuners (or switched
to a frozen copy of the adapter training started from: --adapters, PiSSA/OLoRA/LoRA-GA), and a frozen
second model (--ref_model) for full training; it runs without gradient and without dropout.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import defaultdict
from typing import Any

import torch

from swift_train.loss import find_head, hidden_states, sequence_logps
from swift_train.preference import losses
from swift_train.preference.batch import sequence_index
from swift_train.trainer import SwiftTrainer
from swift_train import varlen

REFERENCE_ADAPTER = "ref"  # a frozen copy of the adapter training started from (--adapters)


def keep_reference_adapter(model: Any) -> None:
    """Training on from --adapters (say, an SFT adapter): the reference is that adapter, not the bare base.

    A frozen copy of it is added as a second adapter of the same model (megabytes, not a second model),
    and the reference forward switches to it.
    """
    config = model.peft_config["default"]
    if getattr(config, "init_lora_weights", True) is not True:  # PiSSA/OLoRA would rewrite the base weights again
        config = dataclasses.replace(config, init_lora_weights=True)
    model.add_adapter(REFERENCE_ADAPTER, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if f".{REFERENCE_ADAPTER}." in name:
                param.copy_(model.get_parameter(name.replace(f".{REFERENCE_ADAPTER}.", ".default.")))
    model.set_adapter("default")  # add_adapter leaves the new one frozen; the trained one stays active


class PreferenceTrainer(SwiftTrainer):
    def __init__(self, *args: Any, ref_model: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Each micro step's loss is a mean over its pairs; transformers divides it by the accumulation steps.
        self.model_accepts_loss_kwargs = False
        self.ref_model = ref_model
        args = self.swift_args
        uses_reference = args.rlhf_type in ("dpo", "kto", "ppo") or (args.rlhf_type == "grpo" and args.beta)
        if ref_model is None and uses_reference and hasattr(self.model, "peft_config"):
            from swift_train.tuners.lora import moves_base_weights

            # PiSSA, OLoRA and LoRA-GA take the starting adapter out of the base weights: disabling it would leave
            # the residual, not the starting model. A frozen copy of the starting adapter restores it exactly.
            if args.adapters or moves_base_weights(args):
                keep_reference_adapter(self.model)
        self._ref_head: Any = None
        # Per metric, [sum, count] of each step: averaged at log time over steps and processes. Every process
        # records every name each step (a count may be 0), so the gather at log time lines up.
        self._metrics: dict[str, dict[str, list[torch.Tensor]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    # -- the loss ----------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        args = self.swift_args
        inputs = dict(inputs)
        if args.rlhf_type == "rm":
            loss, metrics = self._reward_model_loss(model, inputs)
        elif args.rlhf_type == "kto":
            loss, metrics = self._kto_loss(model, inputs)
        else:
            loss, metrics = self._pair_loss(model, inputs)
        if args.train_type == "adalora" and self.model.training:
            from swift_train.tuners.peft_tuners import orthogonal_regularisation

            loss = loss + orthogonal_regularisation(self.accelerator.unwrap_model(model))
        split = "train" if self.model.training else "eval"
        for name, value in metrics.items():  # kept on the device; read once per log, not once per step
            self._metrics[split][name].append(value.detach().float())
        if self.model.training:
            attention = inputs.get("attention_mask")
            self.tokens_seen += int(attention.sum()) if attention is not None else inputs["input_ids"].numel()
        return (loss, None) if return_outputs else loss

    def _pair_loss(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # noqa: ANN001
        args = self.swift_args
        kind, loss_type = args.rlhf_type, args.loss_type or "sigmoid"
        sums, tokens = self._logps(model, inputs)
        pairs = len(sums) // 2
        means = sums / tokens.clamp(min=1)
        use_mean = losses.uses_mean(kind, loss_type)
        policy = means if use_mean else sums
        chosen, rejected = policy[:pairs], policy[pairs:]
        nll = -sums[:pairs].sum() / tokens[:pairs].sum().clamp(min=1)  # the chosen answers' token cross-entropy
        if kind == "dpo":
            ref_sums, ref_tokens = self._reference_logps(model, inputs)
            reference = ref_sums / ref_tokens.clamp(min=1) if use_mean else ref_sums
            per_pair, chosen_reward, rejected_reward = losses.dpo(
                chosen, rejected, reference[:pairs], reference[pairs:], beta=args.beta,
                label_smoothing=args.label_smoothing, loss_type=loss_type)
            loss = per_pair.mean() + args.rpo_alpha * nll if args.rpo_alpha else per_pair.mean()
        elif kind == "cpo":
            per_pair, chosen_reward, rejected_reward = losses.cpo(
                chosen, rejected, beta=args.beta, label_smoothing=args.label_smoothing, loss_type=loss_type)
            loss = per_pair.mean() + args.cpo_alpha * nll
        elif kind == "simpo":
            per_pair, chosen_reward, rejected_reward = losses.simpo(
                chosen, rejected, beta=args.beta, gamma=args.simpo_gamma, label_smoothing=args.label_smoothing)
            loss = per_pair.mean() + args.cpo_alpha * nll
        else:  # orpo
            per_pair, chosen_reward, rejected_reward = losses.orpo(chosen, rejected, beta=args.beta)
            loss = per_pair.mean() + nll
        metrics = _reward_metrics(chosen_reward, rejected_reward)
        metrics.update({"logps/chosen": _mean(sums[:pairs]), "logps/rejected": _mean(sums[pairs:]),
                        "nll_loss": _mean(nll)})
        return loss, metrics

    def _kto_loss(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # noqa: ANN001
        args = self.swift_args
        desirable = inputs.pop("desirable").to(self.args.device)
        n = len(desirable)
        sums, _ = self._logps(model, inputs)
        ref_sums, _ = self._reference_logps(model, inputs)
        # The reference point: KL(policy || reference) over mismatched pairs, averaged over every process's batch.
        kl = (sums[n:] - ref_sums[n:]).detach().mean()
        kl = self.accelerator.gather(kl[None]).mean()
        per_sequence, rewards = losses.kto(sums[:n], ref_sums[:n], desirable, kl, beta=args.beta,
                                           desirable_weight=args.desirable_weight,
                                           undesirable_weight=args.undesirable_weight)
        metrics: dict[str, torch.Tensor] = {"kl": _mean(kl)}
        for name, which in (("chosen", desirable), ("rejected", ~desirable)):  # a batch may hold only one kind
            metrics[f"rewards/{name}"] = _mean(rewards[which])
            metrics[f"logps/{name}"] = _mean(sums[:n][which])
        return per_sequence.mean(), metrics

    def _reward_model_loss(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # noqa: ANN001
        scores = model(**inputs, use_cache=False).logits.float().squeeze(-1)
        pairs = len(scores) // 2
        chosen, rejected = scores[:pairs], scores[pairs:]
        return losses.reward_model(chosen, rejected).mean(), _reward_metrics(chosen.detach(), rejected.detach())

    # -- log-probabilities -------------------------------------------------------------------

    def _logps(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """The trained model's per-sequence log-probabilities (chunked lm_head where it is safe)."""
        labels = inputs["labels"]
        batch = {k: v for k, v in inputs.items() if k != "labels"}
        index, count = sequence_index(inputs)
        extra = varlen.batch_kwargs(self.accelerator.unwrap_model(model), batch)
        head = self._chunked_head(model)
        if head is not None:
            head, hidden, _ = self._hidden_states(model, head, batch, extra, None)
            if head is not None:
                return sequence_logps(head, hidden, labels, index, count)
        logits = model(**batch, use_cache=False, **extra).logits
        return sequence_logps(None, logits, labels, index, count)

    @torch.no_grad()
    def _reference_logps(self, model, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        labels = inputs["labels"]
        batch = {k: v for k, v in inputs.items() if k != "labels"}
        index, count = sequence_index(inputs)
        reference = self.ref_model if self.ref_model is not None else self.accelerator.unwrap_model(model)
        extra = varlen.batch_kwargs(reference, batch)
        head = self._reference_head(reference)
        training = reference.training
        reference.eval()  # no dropout: the reference's log-probabilities are a fixed target, not a sample
        try:
            with self._without_tuner(reference):
                if head is not None:
                    hidden, _ = hidden_states(reference, head, batch, **extra)
                    return sequence_logps(head, hidden, labels, index, count)
                logits = reference(**batch, use_cache=False, **extra).logits
                return sequence_logps(None, logits, labels, index, count)
        finally:
            reference.train(training)

    def _reference_head(self, reference: Any) -> Any:
        if self.ref_model is None:  # the policy itself: its head, once verified
            head = self._head
            return head if not isinstance(head, str) and head is not None and head.verified else None
        if self._ref_head is None:
            self._ref_head = find_head(reference)
            if not isinstance(self._ref_head, str):
                self._ref_head.verified = True  # a frozen transformers model: find_head's checks suffice
        return None if isinstance(self._ref_head, str) else self._ref_head

    def _without_tuner(self, reference: Any) -> contextlib.AbstractContextManager:
        """The reference is the policy with its adapter switched off (no second copy in memory)."""
        if self.ref_model is not None:
            return contextlib.nullcontext()
        from swift_infer import own_tuners

        if own_tuners.attached(reference) is not None:
            return own_tuners.disabled(reference)
        if REFERENCE_ADAPTER in getattr(reference, "peft_config", {}):
            return _active_adapter(reference, REFERENCE_ADAPTER)
        if hasattr(reference, "disable_adapter"):
            return reference.disable_adapter()
        raise RuntimeError("the reference model is the policy without its adapter, but no adapter is attached")

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        import shutil
        from pathlib import Path

        # peft saves every adapter; the reference copy is the --adapters directory the run started from.
        shutil.rmtree(Path(output_dir or self.args.output_dir) / REFERENCE_ADAPTER, ignore_errors=True)

    # -- logs --------------------------------------------------------------------------------

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        split = "train" if "loss" in logs else "eval" if "eval_loss" in logs else None
        if split is not None:
            prefix = "eval_" if split == "eval" else ""
            logs.update({prefix + name: value for name, value in self._averages(split).items()})
        super().log(logs, start_time)

    def evaluation_loop(self, *args, **kwargs):  # noqa: ANN002, ANN003
        self._metrics["eval"].clear()
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        output.metrics.update({f"{prefix}_{name}": value for name, value in self._averages("eval").items()})
        return output

    def _averages(self, split: str) -> dict[str, float]:
        """Each metric's mean since the last log, over this process's steps and then over all processes."""
        names = sorted(self._metrics[split])
        if not names:
            return {}
        totals = torch.stack([torch.stack(self._metrics[split][n]).sum(0) for n in names])  # [names, (sum, count)]
        totals = self.accelerator.gather(totals[None]).sum(0)
        self._metrics[split].clear()
        averages = {name: round(float(total / count), 6) for name, (total, count) in zip(names, totals) if count > 0}
        if "rewards/margins" not in averages and {"rewards/chosen", "rewards/rejected"} <= set(averages):  # kto
            averages["rewards/margins"] = round(averages["rewards/chosen"] - averages["rewards/rejected"], 6)
        return averages


@contextlib.contextmanager
def _active_adapter(model: Any, name: str) -> Any:
    """`name` as the model's active adapter while the block runs (peft also moves requires_grad to it)."""
    previous = model.active_adapter
    model.set_adapter(name)
    try:
        yield
    finally:
        model.set_adapter(previous)


def _mean(values: torch.Tensor) -> torch.Tensor:
    """[sum, count] of a metric's values in one step."""
    values = values.detach().float().reshape(-1)
    return torch.stack([values.sum(), values.new_tensor(values.numel())])


def _reward_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"rewards/chosen": _mean(chosen), "rewards/rejected": _mean(rejected),
            "rewards/accuracies": _mean((chosen > rejected).float()), "rewards/margins": _mean(chosen - rejected)}
