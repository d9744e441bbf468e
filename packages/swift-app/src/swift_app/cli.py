"""Entry points of swift-app's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def app(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands in a later issue.
    return run_command("app", argv, None)


def web_ui(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands in a later issue.
    return run_command("web-ui", argv, None)
