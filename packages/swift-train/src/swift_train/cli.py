"""Entry points of swift-train's commands (registered in the `swift.commands` group)."""

from __future__ import annotations

from swift_args import ArgumentError, Invocation
from swift_args.cli import run_command


def _train(invocation: Invocation) -> int:
    args = invocation.args
    if args.show_sample:
        from swift_data.preview import show_samples

        return show_samples(args, args.show_sample)
    # Training itself lands with issue #4; until then the data path above is what works.
    raise ArgumentError(
        f"swift {invocation.command.name} is not implemented yet in this release; your arguments were checked and are "
        "valid (add --show_sample N to see the encoded training data)"
    )


def sft(argv: list[str]) -> int:
    return run_command("sft", argv, _train)


def pt(argv: list[str]) -> int:
    return run_command("pt", argv, _train)


def rlhf(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands with issue #4.
    return run_command("rlhf", argv, None)
