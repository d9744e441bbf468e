"""Tuners: what part of the model trains, and how.

LoRA and the other adapters (AdaLoRA, VeRA, BOFT, FourierFT) go through peft and save PEFT adapter
directories; full training, LISA and LLaMA-Pro save whole models.
"""

from swift_train.tuners.full import prepare_full
from swift_train.tuners.lora import lora_config, prepare_lora
from swift_train.tuners.peft_tuners import PEFT_TUNERS, prepare_peft_tuner, tuner_config

ADAPTER_TUNERS = ("lora", *PEFT_TUNERS)  # saved as adapters on top of --model; the rest save whole models

__all__ = ["ADAPTER_TUNERS", "PEFT_TUNERS", "lora_config", "prepare_full", "prepare_lora", "prepare_peft_tuner",
           "tuner_config"]
