"""Fixtures for end-to-end tests: tiny or real models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from swift_data.models import resolve_model_dir

    return resolve_model_dir("SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer and chat template: fast, and deterministic."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    model_dir = tmp_path_factory.mktemp("tiny") / "tiny-chat"
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=49152, max_position_embeddings=1024,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(model_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        shutil.copy(smollm2_dir / name, model_dir / name)
    return model_dir
