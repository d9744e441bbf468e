from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The built-in SmolLM2-135M-Instruct (llama), dequantized into the user cache (once per machine)."""
    from swift_data.models import resolve_model_dir

    return resolve_model_dir("SmolLM2-135M-Instruct")


def write_tiny_model(model_dir: Path, tokenizer_dir: Path, kind: str) -> Path:
    """A 2-layer random model of a real architecture (4 heads, 2 key/value heads) with SmolLM2's tokenizer,
    chat template and generation config, in float32. Every parameter gets noise, so norms and biases are
    not constants: a dropped, swapped or misnamed one changes the logits."""
    import torch
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

    shape = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 49152, "max_position_embeddings": 1024,
             "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    models = {
        "llama": lambda: LlamaForCausalLM(LlamaConfig(tie_word_embeddings=True, **shape)),
        "mistral": lambda: MistralForCausalLM(MistralConfig(tie_word_embeddings=False, sliding_window=None,
                                                            **shape)),
        # Qwen2 always has q/k/v biases; untied, so the output projection is a tensor of its own.
        "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=False, **shape)),
        # transformers' GGUF reader takes Qwen3's head_dim from Qwen3Config's default (128, as every Qwen3 has).
        "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(tie_word_embeddings=True, head_dim=128, **shape)),
    }
    torch.manual_seed(0)
    model = models[kind]().to(torch.float32)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    model.save_pretrained(model_dir)
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / name, model_dir / name)
    return model_dir


@pytest.fixture
def prepend_bos() -> Callable[[Path], None]:
    """`prepend_bos(model_dir)`: make its tokenizer add the bos (SmolLM2's `<|im_start|>`, id 1) to every
    encoding, as Llama 3's does."""
    return _prepend_bos


def _prepend_bos(model_dir: Path) -> None:
    spec = json.loads((model_dir / "tokenizer.json").read_text())
    bos, text = {"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}
    spec["post_processor"] = {"type": "TemplateProcessing", "single": [bos, text],
                              "pair": [bos, text, {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1],
                                                                  "tokens": ["<|im_start|>"]}}}
    (model_dir / "tokenizer.json").write_text(json.dumps(spec))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Callable[[str], Path]:
    """`tiny_model(kind)`: the directory of a tiny random model (see write_tiny_model), built once per session."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = write_tiny_model(tmp_path_factory.mktemp(f"tiny-{kind}"), smollm2_dir, kind)
        return built[kind]

    return get
