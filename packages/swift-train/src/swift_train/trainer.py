"""The trainer: transformers' Trainer with our loss, metrics, LoRA+ and crash-safe checkpoints."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from swift_args import ArgumentError, RunStopped
from swift_args.checkpoint_files import newest_whole_checkpoint
from transformers import Seq2SeqTrainer

from swift_train import checkpoints, sequence_parallel, varlen
from swift_train.logging_jsonl import write_event
from swift_train.loss import (
    Head,
    chunked_token_loss,
    find_head,
    full_token_loss,
    hidden_states,
    matches_model,
)

IGNORE = -100


@contextlib.contextmanager
def embedding_copy_skipped(model: Any) -> Iterator[None]:
    """A PEFT checkpoint saved without a copy of the base model's embedding matrix.

    swift never resizes the vocabulary, so the copy is never needed. Left at peft's "auto", every save would look
    the base model's config.json up on the Hub to compare vocabulary sizes: a network call (a DNS timeout
    offline) and a warning for a built-in alias. Trained embeddings (--modules_to_save) are saved either way.
    """
    if not hasattr(model, "peft_config"):
        yield
        return
    model.save_pretrained = functools.partial(type(model).save_pretrained, model, save_embedding_layers=False)
    try:
        yield
    finally:
        del model.save_pretrained


class SwiftTrainer(Seq2SeqTrainer):
    """Adds to transformers' Trainer:

    - the loss computed here, so per-token `loss_scale` weights apply and packed batches (one
      flat row with position_ids, no attention_mask) run with use_cache=False; chunk by chunk
      over the trained tokens where that is safe (loss.py), so full logits never exist;
    - token accuracy (`acc_strategy` token or seq) in every log;
    - LoRA+ optimizer groups (`lorap_lr_ratio`);
    - with --sequence_parallel_size N, each training batch split along its length over N ranks
      (sequence_parallel.py), the ranks of a group reading the same batches;
    - checkpoints written to a temporary directory and renamed into place when complete;
    - a stop, before anything is logged or saved, at the first step whose loss or gradient norm
      is NaN or inf (transformers' logging_nan_inf_filter would hide the loss and train on).
    """

    def __init__(self, *args: Any, swift_args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = True  # our compute_loss normalises by num_items_in_batch itself
        self.swift_args = swift_args
        self.tokens_seen = 0
        self._accuracy = [0.0, 0]  # sum, count since the last log
        self._staging_parent: Path | None = None
        self._eval_accuracy = [0.0, 0]
        self._generated: tuple[list[str], list[str]] = ([], [])
        self.use_chunked_loss = True
        self._head: Head | str | None = None  # the chunked loss's modules, or why it is off
        self._step_loss: torch.Tensor | None = None  # this optimizer step's micro-step losses, summed
        size = swift_args.sequence_parallel_size
        self.sequence_parallel = sequence_parallel.setup(size) if size > 1 else None

    # -- loss and metrics ------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        if self.swift_args.task_type == "seq_cls":
            return self._classification_loss(model, dict(inputs), return_outputs)
        inputs = whole = dict(inputs)
        # Evaluation runs unsplit: each rank scores a batch of its own, whole, and attention sees no split.
        split = self.sequence_parallel if self.model.training else None
        if split is not None:
            inputs, extra = sequence_parallel.split_batch(whole, split)
        else:
            extra = varlen.batch_kwargs(self.accelerator.unwrap_model(model), inputs)
        labels = inputs.pop("labels")
        loss_scale = inputs.pop("loss_scale", None)
        plugin = self.swift_args.loss_type  # a --loss_type plugin needs the full logits
        head = None if return_outputs or plugin else self._chunked_head(model)
        outputs = None
        if head is not None:
            head, hidden, outputs = self._hidden_states(model, head, inputs, extra, split)
        if head is not None:
            parts = chunked_token_loss(head, sequence_parallel.pad_position(hidden) if split else hidden, labels,
                                       loss_scale)
        else:
            outputs = model(**inputs, use_cache=False, **extra)
            logits = sequence_parallel.pad_position(outputs.logits) if split else outputs.logits
            parts = full_token_loss(logits, labels, loss_scale)
            if plugin:
                parts.loss_sum = self._plugin_loss(plugin, outputs.logits, labels, loss_scale)
        mask = parts.mask
        # Normalised by the trained tokens of the whole accumulated batch (transformers counts them
        # over the gradient-accumulation window, and over all devices with average_tokens_across_devices).
        # A shard's own count would be too few: its loss sum is divided by the whole sequence's trained tokens.
        trained = sequence_parallel.group_tokens(whole["labels"]) if split else mask.sum()
        tokens = trained if num_items_in_batch is None else num_items_in_batch
        tokens = tokens.to(parts.loss_sum.device).clamp(min=1) if torch.is_tensor(tokens) else max(tokens, 1)
        loss = parts.loss_sum / tokens
        if split is not None:
            # DDP averages gradients over all dp * N ranks, and a group's gradient is the sum of its N ranks' (the
            # all-to-all's backward sends each token's gradient to the rank holding it): times N, the unsplit run's
            # average over dp replicas. It also cancels the N-fold count of a group's batch in a token count taken
            # across devices. The logged loss (the mean over all ranks) becomes the whole sequences' loss.
            loss = loss * split.size
        if self.swift_args.train_type == "adalora" and self.model.training:
            from swift_train.tuners.peft_tuners import orthogonal_regularisation

            # Once per optimizer step, like the loss: each micro step adds its share.
            loss = loss + orthogonal_regularisation(self.accelerator.unwrap_model(model)) / self._accumulation_steps
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        if self.model.training:
            self._track(whole, parts.correct, mask)
        else:
            self._eval_accuracy[0] += float(parts.correct.sum())
            self._eval_accuracy[1] += int(mask.sum())
        return (loss, outputs) if return_outputs else loss

    @property
    def _accuracy_name(self) -> str:
        """Classification counts samples ("acc"); language modelling counts tokens (or rows, --acc_strategy seq)."""
        return "acc" if self.swift_args.task_type == "seq_cls" else "token_acc"

    @property
    def _accumulation_steps(self) -> int:
        """Micro steps in the current optimizer step (the last window of an epoch may be shorter)."""
        return getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)

    def _classification_loss(self, model, inputs: dict[str, Any], return_outputs: bool):  # noqa: ANN001
        """--task_type seq_cls: cross-entropy of the class logits (the head reads each row's last token)."""
        labels = inputs.pop("labels")
        inputs.pop("loss_scale", None)
        outputs = model(**inputs, use_cache=False)
        logits = outputs.logits.float()
        loss_sum = torch.nn.functional.cross_entropy(logits, labels.to(logits.device), reduction="sum")
        # Per sample, averaged over the whole accumulated batch as transformers averages token losses.
        loss = loss_sum / (labels.numel() * (self._accumulation_steps if self.model.training else 1))
        correct = logits.argmax(-1).cpu() == labels.cpu()
        target = self._accuracy if self.model.training else self._eval_accuracy
        target[0] += float(correct.sum())
        target[1] += correct.numel()
        if self.model.training:
            attention = inputs.get("attention_mask")
            self.tokens_seen += int(attention.sum()) if attention is not None else inputs["input_ids"].numel()
        return (loss, outputs) if return_outputs else loss

    @staticmethod
    def _plugin_loss(name: str, logits: torch.Tensor, labels: torch.Tensor, loss_scale: torch.Tensor | None) -> torch.Tensor:
        """The --loss_type plugin's summed loss, on logits shifted so position i predicts labels[i]."""
        from swift_train.plugins import losses

        shifted_scale = loss_scale[:, 1:].to(logits.device) if loss_scale is not None else None
        loss_sum, _ = losses[name](logits[:, :-1], labels[:, 1:].to(logits.device), shifted_scale)
        return loss_sum

    def _hidden_states(self, model, head: Head, inputs: dict[str, Any], extra: dict[str, Any],  # noqa: ANN001
                       split: Any) -> tuple[Head | None, torch.Tensor, Any]:
        """The decoder's final hidden states (lm_head run on the last position only), and the head, or None where
        its first check against the model's own logits failed."""
        hidden, outputs = hidden_states(model, head, inputs, **extra)
        if not head.verified and not self._head_matches(head, hidden, outputs, split):
            # A head find_head cannot see (a scaling inside forward, a custom head, dropout in a
            # LoRA on lm_head): the full-logits path from here on, this step included.
            self._head = "lm_head(hidden states) differs from the model's own logits"
            self._say_full_logits()
            return None, hidden, outputs
        head.verified = True
        return head, hidden, outputs

    def _chunked_head(self, model) -> Head | None:  # noqa: ANN001
        """The chunked loss's modules, or None where only full logits are safe (the reason kept in self._head)."""
        if not self.use_chunked_loss:
            return None
        if self._head is None:
            # FSDP frees the root's parameters after its forward, so lm_head cannot be called after it.
            self._head = "FSDP" if self.is_fsdp_enabled else find_head(self.accelerator.unwrap_model(model))
            if isinstance(self._head, str):
                self._say_full_logits()
        return self._head if isinstance(self._head, Head) else None

    def _say_full_logits(self) -> None:
        if self.is_world_process_zero():
            print(f"swift: the loss uses full logits: {self._head}", file=sys.stderr)

    def _head_matches(self, head: Head, hidden: torch.Tensor, outputs: Any, split: Any) -> bool:
        matched = matches_model(head, hidden, outputs)
        if split is None:
            return matched
        # The ranks of a group decide together: one rank alone on the full-logits path would run a forward
        # (and its all-to-alls) the others do not.
        return not bool(split.sum(torch.tensor([0 if matched else 1], device=hidden.device)))

    @torch.no_grad()
    def _track(self, inputs: dict[str, Any], correct: torch.Tensor, mask: torch.Tensor) -> None:
        """Tokens seen and accuracy counts of one training batch (`inputs` whole, also when split)."""
        attention = inputs.get("attention_mask")
        self.tokens_seen += int(attention.sum()) if attention is not None else inputs["input_ids"].numel()
        by_row = self.swift_args.acc_strategy == "seq"
        if by_row:  # per row: wrong and trained tokens
            counts = torch.stack([(mask & ~correct).sum(dim=-1), mask.sum(dim=-1)])
        else:
            counts = torch.stack([(correct & mask).sum(), mask.sum()])
        if self.sequence_parallel is not None:  # a shard's counts: the group's rows span all its ranks
            counts = self.sequence_parallel.sum(counts)
        if by_row:
            wrong, trained = counts
            self._accuracy[0] += float(((wrong == 0) & (trained > 0)).sum())
            self._accuracy[1] += int((trained > 0).sum())
        else:
            self._accuracy[0] += float(counts[0])
            self._accuracy[1] += int(counts[1])

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._accuracy[1]:
            logs[self._accuracy_name] = round(self._accuracy[0] / self._accuracy[1], 6)
            self._accuracy = [0.0, 0]
        super().log(logs, start_time)

    # -- evaluation ------------------------------------------------------------------------

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):  # noqa: ANN001
        if self.swift_args.predict_with_generate:
            self._generate_answers(model, inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    @torch.no_grad()
    def _generate_answers(self, model, inputs) -> None:  # noqa: ANN001
        """Generate each sample's last answer from its prompt, as inference would, and keep the texts."""
        tokenizer = self.processing_class
        prompts, references = [], []
        for ids, labels, attention in zip(inputs["input_ids"], inputs["labels"], inputs["attention_mask"]):
            ids, labels = ids[attention.bool()], labels[attention.bool()]
            trained = (labels != IGNORE).nonzero().flatten()
            if len(trained) == 0:
                continue
            gaps = (trained[1:] - trained[:-1] > 1).nonzero().flatten()
            start = int(trained[gaps[-1] + 1]) if len(gaps) else int(trained[0])  # the last answer's first token
            prompts.append(ids[:start])
            references.append(tokenizer.decode(ids[start:][labels[start:] != IGNORE], skip_special_tokens=True))
        if not prompts:
            return
        width = max(len(p) for p in prompts)
        pad = tokenizer.pad_token_id
        batch = torch.stack([torch.cat([p.new_full((width - len(p),), pad), p]) for p in prompts])
        mask = torch.stack([torch.cat([p.new_zeros(width - len(p)), p.new_ones(len(p))]) for p in prompts])
        temperature = self.swift_args.temperature or 0.0
        output = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=self.swift_args.max_new_tokens or 64,
                                do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                                top_p=None, top_k=None, pad_token_id=pad)
        self._generated[0].extend(tokenizer.batch_decode(output[:, width:], skip_special_tokens=True))
        self._generated[1].extend(references)

    def evaluation_loop(self, *args, **kwargs):  # noqa: ANN002, ANN003
        from swift_infer.metrics import score

        self._eval_accuracy, self._generated = [0.0, 0], ([], [])
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        if self._eval_accuracy[1]:
            output.metrics[f"{prefix}_{self._accuracy_name}"] = round(self._eval_accuracy[0] / self._eval_accuracy[1], 6)
        if self.swift_args.predict_with_generate:
            from swift_train.plugins import metrics

            metric = self.swift_args.metric
            scores = metrics[metric](*self._generated) if metric in metrics else score(metric, *self._generated)
            for name, value in scores.items():
                output.metrics[f"{prefix}_{name}"] = round(value, 6)
        return output

    def get_train_dataloader(self):  # noqa: ANN201
        loader = super().get_train_dataloader()
        if self.sequence_parallel is not None:
            sequence_parallel.share_batches(loader, self.sequence_parallel)
        return loader

    def create_optimizer(self, model=None):  # noqa: ANN001
        if self.optimizer is None and self.swift_args.optimizer:
            from swift_train.plugins import optimizers

            self.optimizer = optimizers[self.swift_args.optimizer](self.model, self.swift_args)
            return self.optimizer
        if self.optimizer is None and self.swift_args.lorap_lr_ratio:
            from swift_train.tuners.lora import lora_plus_groups

            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
            optimizer_kwargs.pop("lr", None)
            self.optimizer = optimizer_cls(lora_plus_groups(self.model, self.swift_args), lr=self.args.learning_rate,
                                           **optimizer_kwargs)
            return self.optimizer
        if self.optimizer is None and self.swift_args.use_galore and self.swift_args.galore_with_embedding:
            from swift_train.training_args import project_embeddings_too

            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
            self.optimizer = optimizer_cls(**project_embeddings_too(optimizer_kwargs, self.model))
            return self.optimizer
        return super().create_optimizer(model)

    # -- stopping at a non-finite loss -------------------------------------------------------

    def training_step(self, model, inputs, num_items_in_batch=None):  # noqa: ANN001
        loss = super().training_step(model, inputs, num_items_in_batch)
        # Summed on the device: a NaN or inf of any micro step stays in the sum, and the host
        # waits for it once per optimizer step, not once per micro step.
        self._step_loss = loss.detach() if self._step_loss is None else self._step_loss + loss.detach()
        return loss

    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        self._stop_if_not_finite(grad_norm)
        super()._maybe_log_save_evaluate(tr_loss, grad_norm, *args, **kwargs)

    def _stop_if_not_finite(self, grad_norm: torch.Tensor | float | None) -> None:
        loss, self._step_loss = self._step_loss, None
        if loss is None:  # the end-of-epoch call, after the step was checked
            return
        values = [loss.float().reshape(())]
        # Under fp16 the loss scaler skips a step whose gradients overflowed: an inf norm is no failure there.
        if grad_norm is not None and not self.args.fp16:
            values.append(torch.as_tensor(grad_norm, dtype=torch.float32, device=loss.device).reshape(()))
        values = self._on_every_process(torch.stack(values))
        if not bool(torch.isfinite(values).all()):
            loss_value = float(values[0])
            norm = f"{float(grad_norm):.4g}" if grad_norm is not None else None
            what = f"the gradient norm became {norm}" if math.isfinite(loss_value) else \
                f"the loss became {loss_value}" + (f" (grad_norm {norm})" if norm is not None else "")
            self._stop(what)

    def _stop_if_weights_not_finite(self) -> None:
        """Before a save: an update can make the weights inf while its own step's loss was still finite."""
        trained = [p for p in self.model.parameters() if p.requires_grad and p.numel()]
        if not trained:
            return
        finite = torch.stack([torch.isfinite(p).all() for p in trained]).all().float().reshape(1)
        if float(self._on_every_process(finite, "min")[0]) < 1:
            self._stop("the trained weights became nan or inf in this step's update")

    def _on_every_process(self, values: torch.Tensor, how: str = "sum") -> torch.Tensor:
        """One process's NaN stops them all, together (a lone raise would leave the others in a collective)."""
        if self.accelerator.num_processes > 1:
            import torch.distributed as dist

            op = dist.ReduceOp.MIN if how == "min" else dist.ReduceOp.SUM
            dist.all_reduce(values, op=op)
        return values

    def _stop(self, what: str) -> None:
        run_dir = Path(self.args.output_dir)
        last, _ = newest_whole_checkpoint(run_dir)
        step = self.state.global_step
        if last is None:
            message = (f"training stopped at step {step}: {what}; no checkpoint was saved before it: "
                       "lower --learning_rate, check the data, then start again")
        else:
            message = (f"training stopped at step {step}: {what}; the last good checkpoint is {last}: "
                       f"lower --learning_rate, check the data, then resume with --resume_from_checkpoint {run_dir}")
        if self.is_world_process_zero():
            write_event(run_dir / "logging.jsonl", "stopped", global_step=step, reason=message)
        for callback in self.callback_handler.callbacks:  # the error line goes below the bar, not into it
            if getattr(callback, "training_bar", None) is not None:
                callback.training_bar.close()
        raise RunStopped(message)

    # -- crash-safe checkpoints -------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        from swift_infer import own_tuners

        model = self.accelerator.unwrap_model(self.model)
        if own_tuners.attached(model) is not None:  # adapter / ReFT: the tuner's weights alone, not the base
            if self.args.should_save:
                from swift_data.models import portable_model_name

                own_tuners.save(model, output_dir or self.args.output_dir,
                                base_model=portable_model_name(self.swift_args.model))
                if self.processing_class is not None:
                    self.processing_class.save_pretrained(output_dir or self.args.output_dir)
            return
        with embedding_copy_skipped(self.model):
            super()._save(output_dir, state_dict)
        from swift_train.tuners.lora import initial_adapter_dir, moves_base_weights

        if moves_base_weights(self.swift_args) and self.args.should_save:
            # Overwrite the adapter with the one that fits the original base (rank 2r, init true).
            self.model.save_pretrained(output_dir or self.args.output_dir, save_embedding_layers=False,
                                       path_initial_model_for_weight_conversion=str(initial_adapter_dir(self.swift_args)))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:  # noqa: ANN001
        from swift_infer import own_tuners

        unwrapped = self.accelerator.unwrap_model(model if model is not None else self.model)
        if own_tuners.attached(unwrapped) is not None:
            try:
                own_tuners.load_weights(unwrapped, resume_from_checkpoint)
            except ValueError as exc:
                raise ArgumentError(f"--resume_from_checkpoint {resume_from_checkpoint}: {exc}; resume with the "
                                    "arguments in its args.json") from None
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        from swift_infer import own_tuners

        unwrapped = self.accelerator.unwrap_model(self.model)
        if own_tuners.attached(unwrapped) is not None and self.state.best_model_checkpoint is not None:
            own_tuners.load_weights(unwrapped, self.state.best_model_checkpoint)
            return
        super()._load_best_model()

    def _get_output_dir(self, trial):  # noqa: ANN001
        return str(self._staging_parent) if self._staging_parent is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):  # noqa: ANN001
        self._stop_if_weights_not_finite()
        run_dir = Path(self.args.output_dir)
        step = self.state.global_step
        name = f"checkpoint-{step}"
        self._staging_parent = run_dir / f".tmp-{name}"
        try:
            super()._save_checkpoint(model, trial)
        finally:
            staging_parent, self._staging_parent = self._staging_parent, None
        # Every process has written its part (each its own RNG state) before the directory moves.
        # torch's barrier, not accelerate's: accelerate skips it when transformers made the group.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
        if not self.args.should_save:
            return
        final = run_dir / name
        self._point_state_at(final, staging_parent / name)
        checkpoints.publish(staging_parent / name, final, step)
        shutil.rmtree(staging_parent, ignore_errors=True)
        best = Path(self.state.best_model_checkpoint) if self.state.best_model_checkpoint else None
        checkpoints.rotate(run_dir, self.args.save_total_limit, best)
        if self.swift_args.create_checkpoint_symlink:
            checkpoints.link(run_dir, "last", final)
            checkpoints.link(run_dir, "best", best if best is not None and best.exists() else None)

    def _point_state_at(self, final: Path, staged: Path) -> None:
        """The trainer state names checkpoints by their final path, not the staging one."""
        best = self.state.best_model_checkpoint
        if best and Path(best).name == final.name:
            self.state.best_model_checkpoint = str(final)
            state_file = staged / "trainer_state.json"
            if state_file.is_file():
                state = json.loads(state_file.read_text())
                state["best_model_checkpoint"] = str(final)
                state_file.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
