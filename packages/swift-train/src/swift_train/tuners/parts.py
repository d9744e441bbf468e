"""The parts of a multimodal model, for --freeze_llm / --freeze_vit / --freeze_aligner.

Parts are recognised by the module names transformers' multimodal families use: a vision tower
(`visual`, `vision_tower`, `vision_model`, ...), an aligner between it and the LLM
(`multi_modal_projector`, `mm_projector`, Qwen2-VL's `visual.merger`, ...), and the LLM (the rest).
A text-only model is all LLM.
"""

from __future__ import annotations

from typing import Any

VISION = ("visual", "vision_tower", "vision_model", "vision_encoder", "image_encoder", "vpm", "audio_tower")
ALIGNER = ("multi_modal_projector", "mm_projector", "merger", "connector", "aligner", "vision_projection",
           "audio_projector")


def part_of(name: str) -> str:
    """'aligner', 'vit' or 'llm' for a parameter or module name."""
    pieces = name.split(".")
    if any(piece in ALIGNER for piece in pieces):
        return "aligner"
    if any(piece in VISION for piece in pieces):
        return "vit"
    return "llm"


def is_multimodal(model: Any) -> bool:
    return any(part_of(name) != "llm" for name, _ in model.named_parameters())


def frozen_parts(args: Any) -> set[str]:
    return {part for part, flag in (("llm", args.freeze_llm), ("vit", args.freeze_vit), ("aligner", args.freeze_aligner))
            if flag}


def frozen_linear_modules(model: Any, args: Any) -> list[str]:
    """Names of the linear layers in the frozen parts of a multimodal model: LoRA stays out of them."""
    import torch

    if not is_multimodal(model):
        return []
    frozen = frozen_parts(args)
    return [name for name, module in model.named_modules()
            if name and isinstance(module, torch.nn.Linear) and part_of(name) in frozen]


def freeze_parts(model: Any, args: Any) -> list[str]:
    """Full training: stop the gradients of the frozen parts; returns those parts' names."""
    if not is_multimodal(model):
        return []
    frozen = frozen_parts(args)
    for name, parameter in model.named_parameters():
        if part_of(name) in frozen:
            parameter.requires_grad_(False)
    return sorted(frozen)
