"""The online trainer of --rlhf_type, with what it needs beside the policy (rewards, reward and value models)."""

from __future__ import annotations

from typing import Any

from swift_train.online.batches import collate


def online_trainer(args: Any, loaded: Any, ref_model: Any) -> tuple[type, dict[str, Any], Any]:
    """(trainer class, its extra constructor arguments, the collator) for grpo or ppo."""
    reward_model = None
    if args.reward_model:
        from swift_train.online.reward_model import RewardModel

        reward_model = RewardModel(args)
    if args.rlhf_type == "grpo":
        from swift_train.online.grpo import GrpoTrainer
        from swift_train.rewards import build_reward_functions

        functions = build_reward_functions(args.reward_funcs, args, loaded.tokenizer)
        return GrpoTrainer, {"ref_model": ref_model, "reward_functions": functions, "reward_model": reward_model}, collate
    from swift_train.online.ppo import PpoTrainer, value_model

    return PpoTrainer, {"ref_model": ref_model, "reward_model": reward_model,
                        "value_model": value_model(args, loaded)}, collate
