"""Entry points of swift-export's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def export(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands in a later issue.
    return run_command("export", argv, None)
