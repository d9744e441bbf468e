"""Fixtures for end-to-end tests: tiny or real models."""

from __future__ import annotations

from pathlib import Path

import pytest
from swift_e2e import SwiftyRun

@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from swift_data.models import resolve_model_dir

    return resolve_model_dir("SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer and chat template: fast, and deterministic."""
    from swift_e2e import write_tiny_chat_model

    return write_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "tiny-chat", smollm2_dir)


@pytest.fixture(scope="session")
def swifty_run(tmp_path_factory: pytest.TempPathFactory) -> SwiftyRun:
    """LoRA on SmolLM2 teaching it the name Swifty (the quick start's job, shorter): trained once per session,
    checked by test_train and exported by test_export_cli. Its users write nothing into its directory."""
    from swift_e2e import SELF_COGNITION, only_run_dir, run_swift

    home = tmp_path_factory.mktemp("swifty")
    result = run_swift("sft", "--model", "SmolLM2-135M-Instruct", *SELF_COGNITION, "--train_type", "lora",
                       "--learning_rate", "1e-3", "--per_device_train_batch_size", "4", "--max_steps", "30",
                       "--split_dataset_ratio", "0", "--output_dir", str(home / "out"), cwd=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return SwiftyRun(result, only_run_dir(home / "out"))
