"""The `swift` command as a user types it, in a subprocess: exit codes and what is printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SWIFT = str(Path(sys.executable).with_name("swift"))


def swift(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SWIFT, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def test_help_lists_every_command() -> None:
    result = swift("--help")
    assert result.returncode == 0
    for name in ("sft", "pt", "rlhf", "infer", "deploy", "sample", "merge-lora", "export", "eval", "app", "web-ui"):
        assert f"\n  {name} " in result.stdout
    assert "not installed" not in result.stdout


def test_bad_arguments_exit_2_without_traceback() -> None:
    result = swift("sft", "--model", "SmolLM2-135M-Instruct", "--lora_rank", "eight", "--train_type", "qlora")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "swift sft: error: --lora_rank: expected an integer, got 'eight'",
        "swift sft: error: --train_type: invalid choice 'qlora'; valid choices are: "
        "lora, full, longlora, adalora, llamapro, adapter, vera, boft, fourierft, reft",
    ]


def test_deprecated_names_warn_once_each() -> None:
    result = swift("infer", "--model_id_or_path", "org/m", "--dtype", "fp16", "--zz", "1")
    assert result.stderr.splitlines()[-1] == "swift infer: error: unknown argument --zz for swift infer; see swift infer --help"
    result = swift("deploy", "--model_id_or_path", "org/m", "--dtype", "fp16")
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "warning: --model_id_or_path org/m is deprecated (2.x); use --model org/m",
        "warning: --dtype fp16 is deprecated (2.x); use --torch_dtype float16",
    ]


@pytest.mark.slow
def test_show_sample_prints_the_encoded_training_data(tmp_path: Path) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text('{"query": "Capital of France?", "response": "Paris."}\n{"broken\n')
    result = swift("sft", "--model", "SmolLM2-135M-Instruct", "--dataset", str(data), "--show_sample", "1",
                   "--system", "Be brief.", "--split_dataset_ratio", "0")
    assert result.returncode == 0, result.stderr
    assert "=== sample 0 (" in result.stdout
    assert "<|im_start|>system\nBe brief.<|im_end|>" in result.stdout
    assert "<|im_start|>assistant\n[[Paris.<|im_end|>]]" in result.stdout
    assert f"preprocessing: skipped 1 rows: 1 malformed JSON (first: {data}:2:" in result.stderr


def test_training_without_a_dataset_says_so() -> None:
    result = swift("sft", "--model", "SmolLM2-135M-Instruct")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "swift sft: error: --dataset is required: a local file or folder, a hub id, or a built-in dataset "
        "(self-cognition, general-instructions, preference-pairs, arithmetic)"
    )


def test_python_m_entry_point_works_too() -> None:
    result = subprocess.run([sys.executable, "-m", "swift_args.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("swift-args ")
