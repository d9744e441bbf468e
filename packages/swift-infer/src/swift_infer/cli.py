"""Entry points of swift-infer's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def _infer(invocation):  # noqa: ANN001, ANN202
    from swift_infer.infer import run_infer

    return run_infer(invocation)


def infer(argv: list[str]) -> int:
    return run_command("infer", argv, _infer)


def _deploy(invocation):  # noqa: ANN001, ANN202
    from swift_infer.deploy import run_deploy

    return run_deploy(invocation)


def deploy(argv: list[str]) -> int:
    return run_command("deploy", argv, _deploy)


def _sample(invocation):  # noqa: ANN001, ANN202
    from swift_infer.sample import run_sample

    return run_sample(invocation)


def sample(argv: list[str]) -> int:
    return run_command("sample", argv, _sample)


def _merge(invocation):  # noqa: ANN001, ANN202
    from swift_infer.merge import run_merge

    return run_merge(invocation)


def merge_lora(argv: list[str]) -> int:
    return run_command("merge-lora", argv, _merge)
