"""What grpo and ppo check before the run directory exists and before any model loads."""

from __future__ import annotations

from typing import Any

from swift_args import ArgumentError

ONLINE_RL = ("grpo", "ppo")


def check_online_rl(args: Any) -> None:
    """Every problem of the online RL arguments at once, one line each."""
    kind = getattr(args, "rlhf_type", None)
    if kind not in ONLINE_RL:
        return
    problems = []
    if kind == "grpo":
        problems += _grpo_problems(args)
    if args.truncation_strategy == "right":
        problems.append("--truncation_strategy right: the end of a prompt is what the answer follows, so prompts "
                        "are cut from the left (--truncation_strategy left) or dropped (delete, the default)")
    problems += _offline_only(args)
    if args.streaming:
        problems.append("--streaming true: online RL samples whole groups of prompts from a dataset of known size; "
                        "drop it")
    if problems:
        raise ArgumentError("\n".join(problems))
    if kind == "grpo":
        from swift_train.rewards import reward_funcs

        unknown = [name for name in args.reward_funcs if name not in reward_funcs]
        if unknown:
            raise ArgumentError(f"--reward_funcs {unknown[0]}: no such reward function (registered: "
                                f"{', '.join(sorted(reward_funcs))}); register one in swift_train.rewards.reward_funcs "
                                "from an --external_plugins file")
    if args.use_vllm:
        from swift_infer.engines.vllm import import_vllm

        import_vllm()
    if args.reward_model:
        from swift_train.online.reward_model import check_reward_model

        check_reward_model(args)


def _grpo_problems(args: Any) -> list[str]:
    problems = []
    if not args.reward_funcs and not args.reward_model:
        problems.append("--rlhf_type grpo needs rewards: --reward_funcs (accuracy, format, cosine, repetition or a "
                        "plugin's) and/or --reward_model")
    if args.num_generations < 2:
        problems.append(f"--num_generations {args.num_generations}: GRPO compares each completion with the others of "
                        "its prompt; use at least 2")
    elif args.per_device_train_batch_size % args.num_generations:
        problems.append(f"--per_device_train_batch_size {args.per_device_train_batch_size} is not a multiple of "
                        f"--num_generations {args.num_generations}: each batch holds whole groups of completions "
                        f"(e.g. --per_device_train_batch_size {args.num_generations})")
    if args.num_iterations < 1:
        problems.append(f"--num_iterations {args.num_iterations}: must be at least 1")
    if not 0 < args.epsilon < 1:
        problems.append(f"--epsilon {args.epsilon}: the clipping range must be in (0, 1)")
    if args.max_completion_length < 1:
        problems.append(f"--max_completion_length {args.max_completion_length}: must be at least 1")
    if args.async_generate and not args.use_vllm:
        problems.append("--async_generate true: the pt engine samples with the very weights the update is changing, "
                        "so the next batch cannot be sampled during this step; use --use_vllm true with it, or drop it")
    elif args.async_generate:
        problems.append("--async_generate true: overlapping vLLM's next rollout with this step's update is not "
                        "built yet; drop it (rollouts run before each update)")
    if args.temperature is None or args.temperature <= 0:
        problems.append(f"--temperature {args.temperature}: GRPO needs different completions of each prompt; "
                        "use a sampling temperature above 0 (default 0.9)")
    return problems


def check_columns(args: Any, data: Any) -> None:
    """The reward functions' columns are in the training rows (named, before any model loads)."""
    if args.rlhf_type != "grpo" or not args.reward_funcs:
        return
    from swift_train.rewards import check_columns as check
    from swift_train.rewards import required_columns, reward_funcs

    sample = data.train[0]
    columns = set(sample["row"]) | {"messages"}
    needed = [_Needs(name, required_columns(reward_funcs[name])) for name in args.reward_funcs]
    check(needed, columns, "the dataset")


class _Needs:
    """A reward function's name and columns, before it is built (building may need the tokenizer)."""

    def __init__(self, name: str, columns: tuple[str, ...]):
        self.name, self.columns = name, columns


# The offline algorithms' own arguments: grpo and ppo have objectives of their own and read none of them.
OFFLINE_ONLY = ("loss_type", "label_smoothing", "rpo_alpha", "cpo_alpha", "simpo_gamma", "desirable_weight",
                "undesirable_weight", "loss_scale")


def _offline_only(args: Any) -> list[str]:
    from swift_args.fields import specs

    fields = specs(type(args))
    return [f"--{name} {getattr(args, name)}: configures the offline algorithms (dpo, orpo, simpo, cpo, kto); "
            f"--rlhf_type {args.rlhf_type} does not read it; drop it"
            for name in OFFLINE_ONLY if name in fields and getattr(args, name) != fields[name].default]
