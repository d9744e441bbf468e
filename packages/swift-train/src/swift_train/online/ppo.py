"""The PPO trainer: a reward model's score, a value model, GAE, clipped policy and value losses.

Each rollout batch (per_device_train_batch_size x gradient_accumulation_steps x processes x num_mini_batches
prompts, one completion each) is sampled once from the current policy and scored: the reward model's score
on the last token, minus kl_coef times the policy's log-ratio to the reference on every token (TRL's
PPOTrainer had it so). A value model, initialised from the reward model, estimates the return of each
prefix; GAE (gamma, lam) turns rewards and values into advantages, whitened per micro batch. The batch is
then trained on num_ppo_epochs times, num_mini_batches optimizer steps per pass, with the policy's ratio
clipped to cliprange and the value's change to cliprange_value; the loss is policy + vf_coef x value.

transformers' Trainer drives the steps, the policy's checkpoints and the optimizer, whose second parameter
group holds the value model's trainable weights; a checkpoint keeps them in value_model.pt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from swift_train.online import losses
from swift_train.online.batches import GroupSampler, Sequences, lay_out, load_buffer, save_buffer, token_logps
from swift_train.online.evaluation import evaluate_rewards
from swift_train.online.rollout import PtRollout, sampling_params
from swift_train.preference.trainer import PreferenceTrainer
from swift_train.preference.trainer import _mean as _mean_here

VALUE_FILE = "value_model.pt"


def value_model(args: Any, loaded: Any) -> Any:
    """The value model: the reward model's weights, trained with the policy's tuner (LoRA + the score head)."""
    from swift_infer.loading import load_model

    from swift_train.online.reward_model import reward_model_args

    source = reward_model_args(args)
    model = load_model(source).model
    if source.adapters:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source.adapters[0]).merge_and_unload()
    if args.gradient_checkpointing:  # as the policy: the value model's backward runs over the same long batch
        _checkpoint_activations(model, args.gradient_checkpointing_kwargs or {"use_reentrant": False})
    if args.train_type == "full":
        return model.requires_grad_(True)
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules="all-linear", modules_to_save=["score"], task_type="SEQ_CLS")
    return get_peft_model(model, config)


def _checkpoint_activations(model: Any, kwargs: dict[str, Any]) -> None:
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5's name
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.enable_input_require_grads()  # frozen embeddings still pass gradients on to the checkpointed layers


def token_values(model: Any, sequences: Sequences) -> torch.Tensor:
    """The value model's estimate at each completion token [n, C]: the score head on every position's hidden state,
    read at the position before the token (the state the token is chosen in)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.model(input_ids=sequences.input_ids, attention_mask=sequences.attention_mask,
                        position_ids=sequences.position_ids, use_cache=False).last_hidden_state
    length = sequences.completion_length
    return base.score(hidden[:, -length - 1:-1]).squeeze(-1).float()


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


class ValueGradients(TrainerCallback):
    """The value model's gradients around each optimizer step. transformers' loop clips and zeroes only the
    policy's (`model`); without this the value model's gradients would add up over every step of the run."""

    def __init__(self, value_model: Any):
        self.parameters = [p for p in value_model.parameters() if p.requires_grad]

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if args.max_grad_norm and args.max_grad_norm > 0:  # on their own: the logged grad_norm stays the policy's
            torch.nn.utils.clip_grad_norm_(self.parameters, args.max_grad_norm)

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for parameter in self.parameters:
            parameter.grad = None


class PpoTrainer(PreferenceTrainer):
    def __init__(self, *args: Any, reward_model: Any, value_model: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reward_model = reward_model
        self.value_model = value_model.to(self.args.device).train()
        self.add_callback(ValueGradients(self.value_model))
        args = self.swift_args
        self.steps_per_batch = args.num_mini_batches * args.num_ppo_epochs  # optimizer steps on one rollout batch
        self._rollout: Any = None
        self._buffer: dict[int, dict[str, Any]] = {}
        self._micro_step = 0
        self.completions_file = Path(self.args.output_dir) / "completions.jsonl"

    def _get_train_sampler(self, train_dataset: Any = None) -> GroupSampler:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        args = self.swift_args
        window = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return GroupSampler(len(dataset), 1, window * args.num_mini_batches, args.num_ppo_epochs, self.args.seed)

    def create_optimizer(self, model: Any = None) -> Any:
        optimizer = super().create_optimizer(model)
        trainable = [p for p in self.value_model.parameters() if p.requires_grad]
        if trainable and not any(p is trainable[0] for g in optimizer.param_groups for p in g["params"]):
            optimizer.add_param_group({"params": trainable, "weight_decay": self.args.weight_decay})
        return optimizer

    # -- rollouts -------------------------------------------------------------------------------

    def _prepare_inputs(self, inputs: Any) -> Any:
        if not self.model.training:
            return inputs
        slots = self.args.gradient_accumulation_steps * self.swift_args.num_mini_batches
        slot = self._micro_step % slots
        self._micro_step += 1
        if self.state.global_step % self.steps_per_batch < self.swift_args.num_mini_batches or slot not in self._buffer:
            self._buffer[slot] = self._sample_and_score(inputs)
        return self._buffer[slot]

    def rollout(self) -> PtRollout:
        if self._rollout is None:
            model = self.accelerator.unwrap_model(self.model)
            params = sampling_params(self.swift_args, self.swift_args.response_length)
            self._rollout = PtRollout(model, self.processing_class, params, self.args.per_device_train_batch_size)
        return self._rollout

    @torch.no_grad()
    def _sample_and_score(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        args = self.swift_args
        prompts = [s["prompt_ids"].tolist() for s in samples]
        rollouts = self.rollout().generate(prompts)
        tokenizer = self.processing_class
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        sequences = lay_out(prompts, rollouts.completion_ids, pad).to(self.args.device)
        chunks = [sequences.rows(slice(i, i + args.local_rollout_forward_batch_size))
                  for i in range(0, len(prompts), args.local_rollout_forward_batch_size)]
        policy = self.accelerator.unwrap_model(self.model)
        training = policy.training
        policy.eval()
        self.value_model.eval()
        try:
            logps = torch.cat([token_logps(policy, c, args.temperature, _logp_head(self, policy)) for c in chunks])
            reference = self.ref_model if self.ref_model is not None else policy
            with self._without_tuner(reference):
                ref_logps = torch.cat([token_logps(reference, c, args.temperature, _logp_head(self, reference)) for c in chunks])
            values = torch.cat([token_values(self.value_model, c) for c in chunks])
        finally:
            policy.train(training)
            self.value_model.train()
        scores = self.reward_model.score([s["messages"] for s in samples], rollouts.texts).to(self.args.device)
        if args.missing_eos_penalty is not None:  # a completion cut at response_length never finished its answer
            scores = scores - args.missing_eos_penalty * (~torch.tensor(rollouts.ended, device=scores.device)).float()
        mask = sequences.completion_mask
        rewards, kl = losses.ppo_rewards(scores, logps, ref_logps, mask, args.kl_coef)
        if args.whiten_rewards:
            rewards = losses.whiten(rewards, mask, shift_mean=False) * mask
        advantages, returns = losses.gae(rewards, values, mask, args.gamma, args.lam)
        advantages = losses.whiten(advantages, mask) * mask
        metrics = self._metrics["train"]
        metrics["score"].append(_mean(scores))
        metrics["kl"].append(_mean(kl.sum(1)))
        metrics["non_score_reward"].append(_mean((-args.kl_coef * kl).sum(1)))
        metrics["completion_length"].append(_mean(mask.sum(1)))
        metrics["completions_ended"].append(_mean(torch.tensor(rollouts.ended, dtype=torch.float32)))
        metrics["rollout_tokens_per_second"].append(_mean(torch.tensor(rollouts.tokens / max(rollouts.seconds, 1e-9))))
        self._maybe_log_samples(samples, rollouts.texts, scores)
        return {"sequences": sequences, "old_logps": logps, "old_values": values, "advantages": advantages,
                "returns": returns}

    def _maybe_log_samples(self, samples: list[dict[str, Any]], texts: list[str], scores: torch.Tensor) -> None:
        """--num_sample_generations times in a run, the batch's completions go to completions.jsonl."""
        count = self.swift_args.num_sample_generations
        if count <= 0 or not self.is_world_process_zero():
            return
        every = max(1, self.state.max_steps // count)
        if self.state.global_step % every or self._micro_step != 1 + self.state.global_step * self.args.gradient_accumulation_steps:
            return
        with open(self.completions_file, "a", encoding="utf-8") as out:
            for sample, text, value in zip(samples, texts, scores.tolist()):
                out.write(json.dumps({"step": self.state.global_step + 1, "prompt": sample["messages"],
                                      "completion": text, "score": round(value, 6)}, ensure_ascii=False) + "\n")

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The reward model's mean score of one completion per validation prompt."""
        return evaluate_rewards(self, eval_dataset, metric_key_prefix, lambda samples, rollouts: {
            "score": self.reward_model.score([s["messages"] for s in samples], rollouts.texts)})

    # -- the loss -------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        args = self.swift_args
        sequences: Sequences = inputs["sequences"]
        logps = token_logps(model, sequences, args.temperature, _logp_head(self, model))
        values = token_values(self.value_model, sequences)
        result = losses.ppo_loss(logps, inputs["old_logps"], inputs["advantages"], values, inputs["old_values"],
                                 inputs["returns"], sequences.completion_mask, args.cliprange, args.cliprange_value, args.vf_coef)
        metrics = self._metrics["train"]
        for name in ("policy_loss", "value_loss", "clip_ratio", "value_clip_ratio", "approx_kl"):
            metrics[name].append(_mean(getattr(result, name)))
        self.tokens_seen += int(sequences.attention_mask.sum())
        return (result.loss, None) if return_outputs else result.loss

    # -- the value model in checkpoints ---------------------------------------------------------

    def _save_rng_state(self, output_dir: str) -> None:
        super()._save_rng_state(output_dir)
        if self.is_world_process_zero():
            trainable = {n: p.detach().cpu() for n, p in self.value_model.named_parameters() if p.requires_grad}
            torch.save(trainable, Path(output_dir) / VALUE_FILE)
        save_buffer(self._buffer, output_dir, self.args.process_index)

    def _load_rng_state(self, checkpoint: str | None) -> None:
        super()._load_rng_state(checkpoint)
        path = Path(checkpoint or "") / VALUE_FILE
        if checkpoint is not None and path.is_file():
            self.value_model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=False)
        self._buffer = load_buffer(checkpoint, self.args.process_index, self.args.device)
