"""Entry points of swift-train's commands (registered in the `swift.commands` group)."""

from __future__ import annotations

from swift_args import Invocation
from swift_args.cli import run_command


def _train(invocation: Invocation) -> int:
    args = invocation.args
    if args.show_sample:
        from swift_data.preview import show_samples

        return show_samples(args, args.show_sample)
    from swift_train.sft import run_training

    return run_training(invocation)


def sft(argv: list[str]) -> int:
    return run_command("sft", argv, _train)


def pt(argv: list[str]) -> int:
    return run_command("pt", argv, _train)


def rlhf(argv: list[str]) -> int:
    return run_command("rlhf", argv, _train)
