"""Tuners: what part of the model trains, and how (LoRA through peft, or full weights)."""

from swift_train.tuners.full import prepare_full
from swift_train.tuners.lora import lora_config, prepare_lora

__all__ = ["lora_config", "prepare_full", "prepare_lora"]
