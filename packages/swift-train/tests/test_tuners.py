"""Tuners on a tiny model: which parameters train, and the LoRA config each argument gives."""

from __future__ import annotations

import pytest
import torch
from swift_args import parse_args
from transformers import LlamaConfig, LlamaForCausalLM

from swift_train.tuners import lora_config, prepare_full, prepare_lora
from swift_train.tuners.lora import lora_plus_groups


def tiny_model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=64, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def sft(*argv: str):
    return parse_args("sft", ["--model", "m", *argv], warn=lambda _: None).args


def trainable(model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_full_trains_everything_by_default() -> None:
    model = prepare_full(tiny_model(), sft("--train_type", "full"))
    assert trainable(model) == {name for name, _ in model.named_parameters()}


def test_freeze_rules_and_trainable_parameters_win() -> None:
    args = sft("--train_type", "full", "--freeze_parameters", "model.layers.3", "--freeze_parameters_ratio", "0.5",
               "--trainable_parameters", "model.embed_tokens")
    model = prepare_full(tiny_model(), args)
    names = trainable(model)
    assert "model.embed_tokens.weight" in names  # frozen by the ratio, reopened by trainable_parameters
    assert not any(n.startswith("model.layers.3") for n in names)
    assert not any(n.startswith("model.layers.0") for n in names)  # the bottom half is frozen
    assert any(n.startswith("model.layers.2") for n in names)


def test_lora_trains_only_adapters_on_every_linear_layer() -> None:
    model = prepare_lora(tiny_model(), sft())
    names = trainable(model)
    assert names and all("lora_" in n for n in names)
    wrapped = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}  # not lm_head


def test_lora_arguments_map_to_peft() -> None:
    config = lora_config(sft("--lora_rank", "16", "--lora_alpha", "8", "--lora_dropout", "0.1", "--lora_bias", "all",
                             "--use_dora", "true", "--use_rslora", "true", "--init_weights", "pissa_niter_4",
                             "--target_modules", "q_proj,v_proj", "--modules_to_save", "lm_head"))
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (16, 8, 0.1, "all")
    assert (config.use_dora, config.use_rslora, config.init_lora_weights) == (True, True, "pissa_niter_4")
    assert set(config.target_modules) == {"q_proj", "v_proj"} and config.modules_to_save == ["lm_head"]
    assert lora_config(sft("--target_regex", r".*\.q_proj")).target_modules == r".*\.q_proj"
    assert lora_config(sft("--init_weights", "false")).init_lora_weights is False


def test_lora_dtype_casts_only_the_adapters() -> None:
    model = prepare_lora(tiny_model(), sft("--lora_dtype", "bfloat16"))
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert all(d == torch.bfloat16 for n, d in dtypes.items() if "lora_" in n)
    assert dtypes["base_model.model.model.embed_tokens.weight"] == torch.float32


def test_lora_plus_gives_b_a_larger_learning_rate() -> None:
    args = sft("--lorap_lr_ratio", "16", "--learning_rate", "2e-4")
    groups = lora_plus_groups(prepare_lora(tiny_model(), args), args)
    assert [g["lr"] for g in groups] == [pytest.approx(2e-4), pytest.approx(3.2e-3), pytest.approx(2e-4)]
    assert len(groups[0]["params"]) == len(groups[1]["params"]) > 0
