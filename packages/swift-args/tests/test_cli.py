"""The `swift` dispatcher and `--help`, called the way a user types them."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from swift_args.cli import main
from swift_args.commands import COMMANDS, ENTRY_POINT_GROUP
from swift_args.fields import specs
from swift_args.help import GROUP_TITLES, grouped_specs


def test_command_table_and_entry_points_agree() -> None:
    """Every registered entry point is in the table, and comes from the package the table names."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        assert ep.name in COMMANDS, ep.name
        assert ep.dist is not None and ep.dist.name == COMMANDS[ep.name].package, ep


def test_workspace_installs_every_command() -> None:
    assert {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)} == set(COMMANDS)


def test_overview_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sftt"]) == 2
    assert capsys.readouterr().err == "swift: error: unknown command 'sftt'; did you mean 'sft'?\n"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_shows_every_argument_with_its_default(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    for spec in specs(COMMANDS[name].schema).values():
        assert f"  --{spec.name} " in out
    for group in grouped_specs(COMMANDS[name].schema):
        assert f"\n{GROUP_TITLES[group]}:\n" in out


def test_help_groups_follow_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    main(["sft", "--help"])
    out = capsys.readouterr().out
    titles = [line[:-1] for line in out.splitlines() if line.endswith("arguments:") or line.endswith("(Seq2SeqTrainer):")]
    assert titles[:6] == ["Base arguments", "Model arguments", "Data arguments", "Template arguments",
                          "Generation arguments", "Quantization arguments"]
    assert {"Trainer arguments (Seq2SeqTrainer)", "Tuner arguments", "LoRA arguments", "BOFT arguments",
            "Training arguments"} <= set(titles)
    assert "--learning_rate FLOAT" not in out and "--learning_rate NUMBER" in out
    assert "(default: 1e-05 for full" not in out


def test_errors_exit_2_with_one_line_and_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sft", "--model", "m", "--lora_rank", "x"]) == 2
    err = capsys.readouterr().err
    assert err == "swift sft: error: --lora_rank: expected an integer, got 'x'\n"


def test_every_entry_point_runs_its_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each entry point in the group is a command of the table, and hands run_command a function to run."""
    passed: dict[str, object] = {}

    def record(name: str, argv: list[str], command_main: object) -> int:
        passed[name] = command_main
        return 0

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry = ep.load()
        monkeypatch.setattr(sys.modules[entry.__module__], "run_command", record)
        assert entry([]) == 0
        assert callable(passed[ep.name]), ep.name
    assert set(passed) == set(COMMANDS)


def test_overview_names_the_package_of_a_missing_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("swift_args.cli.installed_commands", dict)
    main(["--help"])
    out = capsys.readouterr().out
    assert "(LoRA, full and other tuners).  [not installed: pip install swift-train]\n" in out  # sft
    assert "over a local or remote deployment.  [not installed: pip install swift-app]\n" in out  # app


def test_swift_args_does_not_import_torch() -> None:
    import subprocess

    code = "import swift_args.cli, sys; swift_args.cli.main(['sft', '--help']); print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False")
