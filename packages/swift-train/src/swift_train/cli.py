"""Entry points of swift-train's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def sft(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands with issue #4.
    return run_command("sft", argv, None)


def pt(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands with issue #4.
    return run_command("pt", argv, None)


def rlhf(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands with issue #4.
    return run_command("rlhf", argv, None)
