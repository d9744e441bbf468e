"""Entry points of swift-export's commands (registered in the `swift.commands` group)."""

from swift_args.cli import run_command


def _export(invocation):  # noqa: ANN001, ANN202
    from swift_export.export import run_export

    return run_export(invocation)


def export(argv: list[str]) -> int:
    return run_command("export", argv, _export)
