"""A reward model's score of each completion: the seq-cls layout `swift rlhf --rlhf_type rm` writes.

--reward_model is a whole model directory (full rm training), or the base model with the rm run's LoRA
checkpoint in --reward_adapters; an adapter checkpoint passed as --reward_model itself is taken as
the adapter on the base its run's args.json names.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import torch
from swift_args import ArgumentError
from swift_args.adapters import is_adapter_dir
from swift_args.load_args import find_args_file
from swift_data.preprocess.conversation import Conversation
from swift_data.templates.encode import Encoder, EncoderOptions


def reward_model_args(args: Any) -> Any:
    """The arguments that load the reward model (a seq-cls model with one output)."""
    model, adapters = args.reward_model, list(args.reward_adapters)
    if model and is_adapter_dir(model):
        saved = find_args_file(model)
        base = json.loads(saved.read_text()).get("model") if saved is not None else None
        if not base:
            raise ArgumentError(f"--reward_model {model} is an adapter without the run's args.json naming its base "
                                "model; pass the base as --reward_model and the adapter as --reward_adapters")
        model, adapters = base, [model, *adapters]
    return dataclasses.replace(args, model=model, adapters=adapters, model_type=args.reward_model_type,
                               model_revision=args.reward_model_revision, task_type="seq_cls", num_labels=1,
                               quant_method=None, max_length=None, rlhf_type=None)


class RewardModel:
    """Scores (prompt messages + completion) conversations; the score is the model's single logit."""

    name = "reward_model"

    def __init__(self, args: Any, batch_size: int = 8):
        from swift_infer.infer import adapter_names, load_adapters
        from swift_infer.loading import load_model

        loaded = load_model(reward_model_args(args))
        if loaded.model.config.num_labels != 1:
            raise ArgumentError(f"--reward_model {args.reward_model} has {loaded.model.config.num_labels} outputs; a "
                                "reward model has one (train it with swift rlhf --rlhf_type rm)")
        self.model = load_adapters(loaded.model, adapter_names(reward_model_args(args).adapters)).eval()
        self.model.requires_grad_(False)
        self.tokenizer = loaded.tokenizer
        self.encoder = Encoder(loaded.tokenizer, EncoderOptions.from_args(reward_model_args(args)))
        self.device = next(self.model.parameters()).device
        self.batch_size = batch_size

    @torch.no_grad()
    def score(self, prompts: list[list[dict[str, Any]]], completions: list[str]) -> torch.Tensor:
        ids = [self.encoder.classification_ids(Conversation([*messages, {"role": "assistant", "content": text}]))
               for messages, text in zip(prompts, completions)]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        scores = []
        for start in range(0, len(ids), self.batch_size):
            block = ids[start:start + self.batch_size]
            width = max(len(row) for row in block)
            # Right padding: transformers' seq-cls head reads each row's last non-pad token.
            input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in block], device=self.device)
            mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in block], device=self.device)
            scores.append(self.model(input_ids=input_ids, attention_mask=mask).logits[:, 0].float())
        return torch.cat(scores).cpu()


def check_reward_model(args: Any) -> None:
    """The reward model's files and adapters, named as --reward_model / --reward_adapters (before any model loads)."""
    from swift_args.adapters import adapter_problems, missing_adapters
    from swift_data.models import model_for_args

    problems = [p.replace("--adapters", "--reward_adapters") for p in
                missing_adapters(list(args.reward_adapters)) + adapter_problems(list(args.reward_adapters))]
    if problems:
        raise ArgumentError("\n".join(problems))
    source = reward_model_args(args)
    try:
        model_for_args(source)
    except ArgumentError as exc:
        raise ArgumentError(str(exc).replace(f"--model {source.model}", f"--reward_model {args.reward_model}", 1)) from None
