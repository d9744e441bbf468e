"""Tuner arguments (reference: "Tuner Arguments" and one section per tuner)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from swift_args.fields import arg

DTYPES = Literal["float16", "bfloat16", "float32"]
_INIT_WEIGHTS = re.compile(r"^(true|false|gaussian|pissa|pissa_niter_\d+|olora|loftq|bat|corda|eva|lora-ga)$")


@dataclass(kw_only=True)
class TunerArguments:
    GROUP = "tuner"

    freeze_llm: bool = arg(False, hot=True, help="Multimodal models: freeze (full) or skip (LoRA) the LLM part.")
    freeze_vit: bool = arg(True, hot=True, help="Multimodal models: freeze or skip the vision tower.")
    freeze_aligner: bool = arg(True, hot=True, help="Multimodal models: freeze or skip the aligner.")
    target_modules: list[str] = arg(
        factory=lambda: ["all-linear"],
        hot=True,
        split_commas=True,
        help="Modules that get a tuner: all-linear (every linear layer but lm_head), or module names.",
    )
    target_regex: str | None = arg(None, hot=True, help="Regex of modules that get a tuner; overrides target_modules.")
    init_weights: str = arg(
        "true", help="LoRA init: true, false, gaussian, pissa, pissa_niter_N, olora or lora-ga (with the lora_ga_* "
        "arguments). PiSSA, OLoRA and LoRA-GA adapters are saved converted to plain LoRA for the original model."
    )
    modules_to_save: list[str] = arg(
        factory=list, hot=True, split_commas=True, help="Extra original modules to train and save (e.g. embed_tokens)."
    )

    def _check(self) -> list[str]:
        problems = []
        if not _INIT_WEIGHTS.match(self.init_weights.lower()):
            problems.append(f"--init_weights '{self.init_weights}' is not valid; use true, false, gaussian, pissa, "
                            "pissa_niter_N, olora or lora-ga")
        if self.target_regex is not None:
            try:
                re.compile(self.target_regex)
            except re.error as exc:
                problems.append(f"--target_regex '{self.target_regex}' is not a valid regular expression ({exc})")
        return problems


@dataclass(kw_only=True)
class FullArguments:
    GROUP = "full"

    freeze_parameters: list[str] = arg(factory=list, split_commas=True, help="Prefixes of parameters to freeze.")
    freeze_parameters_ratio: float = arg(0.0, help="Share of parameters to freeze from the bottom up (0 to 1).")
    trainable_parameters: list[str] = arg(
        factory=list,
        split_commas=True,
        help="Prefixes of parameters to train anyway; wins over freeze_parameters and freeze_parameters_ratio.",
    )

    def _check(self) -> list[str]:
        if not 0 <= self.freeze_parameters_ratio <= 1:
            return [f"--freeze_parameters_ratio must be in [0, 1], got {self.freeze_parameters_ratio}"]
        return []


@dataclass(kw_only=True)
class LoraArguments:
    GROUP = "lora"

    lora_rank: int = arg(8, hot=True, help="LoRA rank.")
    lora_alpha: int = arg(32, hot=True, help="LoRA alpha.")
    lora_dropout: float = arg(0.05, help="LoRA dropout.")
    lora_bias: Literal["none", "all"] = arg("none", help="Train biases: none or all.")
    lora_dtype: DTYPES | None = arg(None, help="dtype of the LoRA weights. None: the base module's.")
    use_dora: bool = arg(False, hot=True, help="Use DoRA.")
    use_rslora: bool = arg(False, help="Use rank-stabilised LoRA.")
    lorap_lr_ratio: float | None = arg(None, hot=True, help="LoRA+ learning-rate ratio for B (10 to 16 is usual).")

    def _check(self) -> list[str]:
        problems = []
        if self.lora_rank < 1:
            problems.append(f"--lora_rank must be at least 1, got {self.lora_rank}")
        if self.lora_alpha <= 0:
            problems.append(f"--lora_alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        return problems


@dataclass(kw_only=True)
class LoraGAArguments:
    GROUP = "lora_ga"

    lora_ga_batch_size: int = arg(2, help="Batch size for LoRA-GA gradient estimation.")
    lora_ga_iters: int = arg(2, help="Iterations for LoRA-GA gradient estimation.")
    lora_ga_max_length: int = arg(1024, help="Max input length for LoRA-GA gradient estimation.")
    lora_ga_direction: Literal["ArBr", "A2rBr", "ArB2r", "random"] = arg("ArB2r", help="LoRA-GA init direction.")
    lora_ga_scale: Literal["gd", "unit", "stable", "weightS"] = arg("stable", help="LoRA-GA scaling.")
    lora_ga_stable_gamma: int = arg(16, help="Gamma for stable scaling.")


@dataclass(kw_only=True)
class FourierFtArguments:
    GROUP = "fourierft"

    fourier_n_frequency: int = arg(2000, help="Frequencies in the Fourier transform (like LoRA's r).")
    fourier_scaling: float = arg(300.0, help="Scaling of W (like lora_alpha).")


@dataclass(kw_only=True)
class BoftArguments:
    GROUP = "boft"

    boft_block_size: int = arg(4, help="BOFT block size; not together with boft_block_num.")
    boft_block_num: int | None = arg(None, help="BOFT block count; not together with boft_block_size.")
    boft_dropout: float = arg(0.0, help="BOFT dropout.")

    def _resolve(self, passed: set[str]) -> None:
        if self.boft_block_num is not None and "boft_block_size" not in passed:
            self.boft_block_size = 0  # peft wants exactly one of the two set

    def _check(self) -> list[str]:
        if self.boft_block_num is not None and self.boft_block_size:
            return ["--boft_block_size and --boft_block_num cannot be used together; pass only one"]
        return []


@dataclass(kw_only=True)
class VeraArguments:
    GROUP = "vera"

    vera_rank: int = arg(256, help="Vera rank.")
    vera_projection_prng_key: bool = arg(True, help="Store the Vera projection matrices.")
    vera_dropout: float = arg(0.0, help="Vera dropout.")
    vera_d_initial: float = arg(0.1, help="Initial value of Vera's d vector.")


@dataclass(kw_only=True)
class GaloreArguments:
    GROUP = "galore"

    use_galore: bool = arg(False, hot=True, help="Use GaLore.")
    galore_target_modules: list[str] | None = arg(None, help="GaLore modules. None: attention and MLP.")
    galore_rank: int = arg(128, help="GaLore rank.")
    galore_update_proj_gap: int = arg(50, help="Steps between projection updates.")
    galore_scale: float = arg(1.0, help="GaLore scale.")
    galore_proj_type: str = arg("std", help="GaLore projection type.")
    galore_optim_per_parameter: bool = arg(False, help="One optimizer per GaLore parameter.")
    galore_with_embedding: bool = arg(False, help="Apply GaLore to the embedding too.")
    galore_quantization: bool = arg(False, help="Use Q-GaLore.")
    galore_proj_quant: bool = arg(False, help="Quantize the projection matrices.")
    galore_proj_bits: int = arg(4, help="Bits for projection quantization.")
    galore_proj_group_size: int = arg(256, help="Group size for projection quantization.")
    galore_cos_threshold: float = arg(0.4, help="Cosine threshold for projection updates.")
    galore_gamma_proj: int = arg(2, help="Growth factor of the update interval.")
    galore_queue_size: int = arg(5, help="Queue length for the projection similarity.")


@dataclass(kw_only=True)
class LisaArguments:
    GROUP = "lisa"

    lisa_activated_layers: int = arg(
        0, hot=True, help="Layers LISA keeps trainable at a time; 0 disables LISA (needs train_type full)."
    )
    lisa_step_interval: int = arg(20, help="Steps between switching the active layers.")

    def _check(self) -> list[str]:
        problems = []
        if self.lisa_activated_layers < 0:
            problems.append(f"--lisa_activated_layers must be 0 (off) or more, got {self.lisa_activated_layers}")
        if self.lisa_step_interval < 1:
            problems.append(f"--lisa_step_interval must be at least 1, got {self.lisa_step_interval}")
        return problems


@dataclass(kw_only=True)
class LlamaproArguments:
    GROUP = "llamapro"

    llamapro_num_new_blocks: int = arg(4, hot=True, help="New blocks to insert.")
    llamapro_num_groups: int | None = arg(None, help="Groups the new blocks are inserted in. None: one per block.")

    def _resolve(self, passed: set[str]) -> None:
        if self.llamapro_num_groups is None:
            self.llamapro_num_groups = self.llamapro_num_new_blocks

    def _check(self) -> list[str]:
        problems = []
        if self.llamapro_num_new_blocks < 1:
            problems.append(f"--llamapro_num_new_blocks must be at least 1, got {self.llamapro_num_new_blocks}")
        elif not 1 <= self.llamapro_num_groups <= self.llamapro_num_new_blocks or (
                self.llamapro_num_new_blocks % self.llamapro_num_groups):
            problems.append(f"--llamapro_num_groups {self.llamapro_num_groups} must divide --llamapro_num_new_blocks "
                            f"{self.llamapro_num_new_blocks} (the new blocks are spread evenly over the groups)")
        return problems


@dataclass(kw_only=True)
class AdaloraArguments:
    GROUP = "adalora"

    adalora_target_r: int = arg(8, help="Average AdaLoRA rank.")
    adalora_init_r: int = arg(12, help="Initial AdaLoRA rank.")
    adalora_tinit: int = arg(0, help="AdaLoRA initial warmup.")
    adalora_tfinal: int = arg(0, help="AdaLoRA final warmup.")
    adalora_deltaT: int = arg(1, help="AdaLoRA step interval.")
    adalora_beta1: float = arg(0.85, help="AdaLoRA EMA beta1.")
    adalora_beta2: float = arg(0.85, help="AdaLoRA EMA beta2.")
    adalora_orth_reg_weight: float = arg(0.5, help="AdaLoRA orthogonal regularisation weight.")


REFT_TYPES = (
    "NoreftIntervention", "LoreftIntervention", "ConsreftIntervention",
    "LobireftIntervention", "DireftIntervention", "NodireftIntervention",
)  # fmt: skip


@dataclass(kw_only=True)
class ReftArguments:
    GROUP = "reft"

    reft_layers: list[int] | None = arg(None, hot=True, help="Layers ReFT is applied to. None: all.")
    reft_rank: int = arg(4, hot=True, help="ReFT rank.")
    reft_intervention_type: Literal[REFT_TYPES] = arg(  # type: ignore[valid-type]
        "LoreftIntervention", help="ReFT intervention type."
    )
    reft_args: dict | None = arg(None, help='Extra intervention options as JSON: dropout, act_fn, add_bias.')


@dataclass(kw_only=True)
class LigerArguments:
    GROUP = "liger"

    use_liger: bool = arg(False, help="Use liger-kernel fused kernels for training.")


@dataclass(kw_only=True)
class AllTunerArguments(
    TunerArguments,
    FullArguments,
    LoraArguments,
    LoraGAArguments,
    FourierFtArguments,
    BoftArguments,
    VeraArguments,
    GaloreArguments,
    LisaArguments,
    LlamaproArguments,
    AdaloraArguments,
    ReftArguments,
    LigerArguments,
):
    """Every tuner's arguments; cross-tuner consistency checks live here."""

    def _check(self) -> list[str]:
        problems = []
        train_type = getattr(self, "train_type", "lora")
        if self.lisa_activated_layers and train_type != "full":
            problems.append(
                f"--lisa_activated_layers needs --train_type full (got --train_type {train_type})"
            )
        full_only = ("freeze_parameters", "trainable_parameters")
        for name in full_only:
            if getattr(self, name) and train_type != "full":
                problems.append(f"--{name} only applies to --train_type full (got --train_type {train_type})")
        if self.freeze_parameters_ratio and train_type != "full":
            problems.append(
                f"--freeze_parameters_ratio only applies to --train_type full (got --train_type {train_type})"
            )
        if self.lorap_lr_ratio is not None and train_type != "lora":
            problems.append(f"--lorap_lr_ratio (LoRA+) needs --train_type lora (got --train_type {train_type})")
        if self.use_dora and train_type != "lora":
            problems.append(f"--use_dora needs --train_type lora (got --train_type {train_type})")
        if self.use_galore and train_type != "full":
            problems.append(f"--use_galore needs --train_type full (got --train_type {train_type}); GaLore is an "
                            "optimizer for full training")
        if self.use_galore and self.lisa_activated_layers:
            problems.append("--use_galore and --lisa_activated_layers are two ways to save optimizer memory; pick one")
        max_steps = getattr(self, "max_steps", -1)
        if train_type == "adalora" and 0 < max_steps <= self.adalora_tinit + self.adalora_tfinal:
            problems.append(f"--adalora_tinit {self.adalora_tinit} + --adalora_tfinal {self.adalora_tfinal} leave no "
                            f"steps of --max_steps {max_steps} to reallocate ranks in; lower them")
        if self.init_weights.lower() == "lora-ga" and train_type != "lora":
            problems.append(f"--init_weights lora-ga needs --train_type lora (got --train_type {train_type})")
        return problems
