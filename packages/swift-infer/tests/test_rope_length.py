"""--rope_scaling raises the length the pt engine accepts to what the scaled model can take."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig, LlamaForCausalLM

from swift_infer.engines.pt import _max_length
from swift_infer.loading import scaled_rope_config


@pytest.mark.parametrize("kind", ["linear", "dynamic"])
def test_scaled_rope_raises_the_engine_length_by_the_factor(tmp_path, kind):
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=64, max_position_embeddings=1024)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    assert _max_length(LlamaForCausalLM(config), tokenizer=None) == 1024
    scaled = scaled_rope_config(tmp_path, kind, 3000 / 1024)  # --max_length 3000
    assert scaled.rope_parameters["rope_theta"] == config.rope_parameters["rope_theta"]
    assert _max_length(LlamaForCausalLM(scaled), tokenizer=None) == 3000
