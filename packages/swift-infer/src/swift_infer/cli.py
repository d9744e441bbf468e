"""Entry points of swift-infer's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def _infer(invocation):  # noqa: ANN001, ANN202
    from swift_infer.infer import run_infer

    return run_infer(invocation)


def infer(argv: list[str]) -> int:
    return run_command("infer", argv, _infer)


def deploy(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands with issue #5.
    return run_command("deploy", argv, None)


def sample(argv: list[str]) -> int:
    # Arguments are parsed and checked now; the command itself lands with issue #5.
    return run_command("sample", argv, None)


def _merge(invocation):  # noqa: ANN001, ANN202
    from swift_infer.merge import run_merge

    return run_merge(invocation)


def merge_lora(argv: list[str]) -> int:
    return run_command("merge-lora", argv, _merge)
