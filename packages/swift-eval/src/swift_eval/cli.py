"""Entry points of swift-eval's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def _eval(invocation):  # noqa: ANN001, ANN202
    from swift_eval.evaluate import run_eval

    return run_eval(invocation)


def eval_(argv: list[str]) -> int:
    return run_command("eval", argv, _eval)
