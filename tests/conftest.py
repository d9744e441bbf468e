"""Fixtures for end-to-end tests: tiny or real models."""

from __future__ import annotations

from pathlib import Path

import pytest

@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from swift_data.models import resolve_model_dir

    return resolve_model_dir("SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer and chat template: fast, and deterministic."""
    from swift_e2e import write_tiny_chat_model

    return write_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "tiny-chat", smollm2_dir)
