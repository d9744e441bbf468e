"""--freeze_llm / --freeze_vit / --freeze_aligner on a (tiny, random) LLaVA: which weights train."""

from __future__ import annotations

import pytest
from _tiny import sft
from swift_train.tuners import prepare_full, prepare_lora
from swift_train.tuners.parts import part_of


def tiny_llava():  # noqa: ANN201
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=16, projection_dim=32)
    text = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=128)
    return LlavaForConditionalGeneration(LlavaConfig(vision_config=vision, text_config=text, image_token_index=127))


def trainable_parts(model) -> set[str]:  # noqa: ANN001
    return {part_of(name) for name, p in model.named_parameters() if p.requires_grad}


def test_parts_are_recognised() -> None:
    parts = {part_of(name) for name, _ in tiny_llava().named_parameters()}
    assert parts == {"llm", "vit", "aligner"}
    assert part_of("model.visual.merger.mlp.0.weight") == "aligner"  # Qwen2-VL keeps its aligner inside visual


@pytest.mark.parametrize(("flags", "expected"), [
    ((), {"llm"}),  # the reference's defaults: vision tower and aligner frozen
    (("--freeze_aligner", "false"), {"llm", "aligner"}),
    (("--freeze_llm", "true", "--freeze_vit", "false", "--freeze_aligner", "false"), {"vit", "aligner"}),
])
def test_full_training_freezes_the_named_parts(flags: tuple[str, ...], expected: set[str]) -> None:
    model = prepare_full(tiny_llava(), sft("--train_type", "full", "--gradient_checkpointing", "false", *flags))
    assert trainable_parts(model) == expected


@pytest.mark.parametrize(("flags", "expected"), [
    (("--freeze_aligner", "false"), {"llm", "aligner"}),
    (("--freeze_aligner", "false", "--freeze_vit", "false"), {"llm", "vit", "aligner"}),
])
def test_lora_stays_out_of_frozen_parts(flags: tuple[str, ...], expected: set[str]) -> None:
    model = prepare_lora(tiny_llava(), sft("--gradient_checkpointing", "false", *flags))
    adapted = {part_of(name) for name, _ in model.named_parameters() if "lora_" in name}
    assert adapted == expected
