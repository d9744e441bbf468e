"""Tuners: what part of the model trains, and how.

LoRA (also trained as LongLoRA) and the other adapters (AdaLoRA, VeRA, BOFT, FourierFT) go through peft and save PEFT adapter
directories; bottleneck adapters and ReFT are our own and save swift_tuner directories; full
training, LISA and LLaMA-Pro save whole models.
"""

from swift_train.tuners.full import prepare_full
from swift_train.tuners.hooked import HOOKED_TUNERS, prepare_hooked_tuner
from swift_train.tuners.lora import lora_config, prepare_lora
from swift_train.tuners.peft_tuners import PEFT_TUNERS, prepare_peft_tuner, tuner_config

# Saved as adapters on top of --model; the rest save whole models.
ADAPTER_TUNERS = ("lora", "longlora", *PEFT_TUNERS, *HOOKED_TUNERS)

__all__ = ["ADAPTER_TUNERS", "HOOKED_TUNERS", "PEFT_TUNERS", "lora_config", "prepare_full", "prepare_hooked_tuner",
           "prepare_lora", "prepare_peft_tuner", "tuner_config"]
