"""The 2.x argument names we still accept, and what each becomes in 3.x.

This table is the one place the mapping lives; `docs/arguments.md` is generated from it
(`python -m swift_args.docs`). A deprecated name is rewritten on the command line (and in old
args.json files) before anything else sees it, with a one-line warning naming the new spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

TRAIN = ("sft", "pt", "rlhf")
NOT_EXPORT = ("sft", "pt", "rlhf", "infer", "deploy", "sample", "eval", "app")

Rewrite = Callable[[list[str]], "tuple[str, list[str]] | None"]


@dataclass(frozen=True)
class Alias:
    """One 2.x name. `rewrite` maps its values to (3.x name, values); None drops the argument."""

    old: str
    new: str | None
    note: str = ""
    commands: tuple[str, ...] = ()
    rewrite: Rewrite | None = None
    extend: bool = False  # the values are appended to the 3.x list instead of replacing it

    def applies_to(self, command: str) -> bool:
        return not self.commands or command in self.commands

    def apply(self, values: list[str]) -> tuple[str, list[str]] | None:
        if self.rewrite is not None:
            return self.rewrite(values)
        assert self.new is not None
        return self.new, values


def _values_map(new: str, mapping: dict[str, str | None]) -> Rewrite:
    """Rename and translate known values (case-insensitive); a value mapped to None drops the argument."""

    def rewrite(values: list[str]) -> tuple[str, list[str]] | None:
        out = []
        for value in values:
            key = value.lower()
            if key in mapping:
                if mapping[key] is None:
                    return None
                out.append(mapping[key])
            else:
                out.append(value)
        return new, out

    return rewrite


_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "auto": None}


def _flash_attn(values: list[str]) -> tuple[str, list[str]] | None:
    # 2.x false/None meant "let the library choose", which is 3.x's unset attn_impl.
    return ("attn_impl", ["flash_attn"]) if values and values[0].lower() in ("true", "1") else None


def _do_sample(values: list[str]) -> tuple[str, list[str]] | None:
    # The reference: "do_sample has been removed; set the temperature to 0 to get the same effect".
    return ("temperature", ["0"]) if values and values[0].lower() in ("false", "0") else None


def _use_loss_scale(values: list[str]) -> tuple[str, list[str]] | None:
    return ("loss_scale", ["react"]) if values and values[0].lower() in ("true", "1") else None


def _ckpt_dir(values: list[str]) -> tuple[str, list[str]] | None:
    # A LoRA checkpoint is an adapter; a full checkpoint is a model in its own right.
    from swift_args.adapters import is_adapter_dir

    if values and is_adapter_dir(values[0]):
        return "adapters", values
    if values and (Path(values[0]) / "config.json").exists():
        return "model", values
    return "adapters", values


def _self_cognition_sample(values: list[str]) -> tuple[str, list[str]] | None:
    if not values or values[0] in ("0", "-1"):
        return None
    return "dataset", [f"self-cognition#{values[0]}"]


def _quantization_bit(values: list[str]) -> tuple[str, list[str]] | None:
    return None if values and values[0] == "0" else ("quant_bits", values)


def _negative_is_unset(new: str) -> Rewrite:
    def rewrite(values: list[str]) -> tuple[str, list[str]] | None:
        return None if values and values[0].lstrip("-").isdigit() and int(values[0]) < 0 else (new, values)

    return rewrite


RENAMED: tuple[Alias, ...] = (
    # base and model
    Alias("model_id_or_path", "model"),
    Alias("sft_type", "train_type"),
    Alias("template_type", "template", "AUTO -> unset (detected from the model)", rewrite=_values_map("template", {"auto": None})),
    Alias("dtype", "torch_dtype", "bf16/fp16/fp32 -> bfloat16/float16/float32; AUTO -> unset", rewrite=_values_map("torch_dtype", _DTYPE)),
    Alias("use_flash_attn", "attn_impl", "true -> flash_attn; false -> unset (sdpa)", rewrite=_flash_attn),
    Alias("device_map_config", "device_map"),
    Alias("device_max_memory", "max_memory", "a JSON object keyed by device index: '{0: \"10GB\"}'"),
    Alias("rescale_image", "max_pixels"),
    Alias("ckpt_dir", "adapters", "a LoRA checkpoint -> --adapters; a full checkpoint -> --model", rewrite=_ckpt_dir),
    Alias("lora_modules", "adapters", "name=path items are kept"),
    Alias("load_args_from_ckpt_dir", "load_args"),
    Alias("load_dataset_config", "load_data_args"),
    # data
    Alias("custom_train_dataset_path", "dataset", "appended to --dataset", extend=True),
    Alias("custom_val_dataset_path", "val_dataset", "appended to --val_dataset", extend=True),
    Alias("dataset_test_ratio", "split_dataset_ratio"),
    Alias("dataset_seed", "data_seed"),
    Alias("preprocess_num_proc", "dataset_num_proc"),
    Alias("self_cognition_sample", "dataset", "N -> self-cognition#N appended to --dataset", TRAIN, _self_cognition_sample, extend=True),
    # quantization
    Alias("quantization_bit", "quant_bits", "0 -> unset", NOT_EXPORT, _quantization_bit),
    Alias("bnb_4bit_comp_dtype", "bnb_4bit_compute_dtype", "bf16/fp16/fp32 -> bfloat16/float16/float32; AUTO -> unset", rewrite=_values_map("bnb_4bit_compute_dtype", _DTYPE)),
    # training
    Alias("batch_size", "per_device_train_batch_size", commands=TRAIN),
    Alias("eval_batch_size", "per_device_eval_batch_size", commands=TRAIN),
    Alias("evaluation_strategy", "eval_strategy", commands=TRAIN),
    Alias("add_output_dir_suffix", "add_version", commands=TRAIN),
    Alias("check_model_is_latest", "check_model", commands=TRAIN),
    Alias("additional_trainable_parameters", "trainable_parameters", commands=TRAIN),
    Alias("use_loss_scale", "loss_scale", "true -> react; false -> unset", TRAIN, _use_loss_scale),
    Alias("loss_scale_config_path", "loss_scale", "alpha-umi -> alpha_umi, agent-flan -> agentflan", TRAIN,
          _values_map("loss_scale", {"alpha-umi": "alpha_umi", "agent-flan": "agentflan"})),
    # tuners
    Alias("init_lora_weights", "init_weights", "guassian -> gaussian", TRAIN, _values_map("init_weights", {"guassian": "gaussian"})),
    Alias("lora_bias_trainable", "lora_bias", commands=TRAIN),
    Alias("lora_lr_ratio", "lorap_lr_ratio", commands=TRAIN),
    # rlhf
    Alias("ref_model_id_or_path", "ref_model", commands=("rlhf",)),
    Alias("reward_model_id_or_path", "reward_model", commands=("rlhf",)),
    # inference, merge and export
    Alias("show_dataset_sample", "val_dataset_sample", "-1 -> unset", ("infer",), _negative_is_unset("val_dataset_sample")),
    Alias("save_safetensors", "safe_serialization", commands=("infer", "deploy", "merge-lora", "export")),
    Alias("merge_device_map", "device_map", commands=("merge-lora", "export", "infer")),
    Alias("do_sample", "temperature", "false -> --temperature 0; true -> unset", rewrite=_do_sample),
    Alias("quant_seqlen", "max_length", commands=("export",)),
    Alias("quant_output_dir", "output_dir", commands=("export",)),
    Alias("ollama_output_dir", "output_dir", commands=("export",)),
    Alias("quant_device_map", "device_map", commands=("export",)),
    Alias("eval_nproc", "eval_num_proc", commands=("eval",)),
    Alias("eval_token", "api_key", commands=("eval",)),
    # web-ui: 2.x host/port were gradio's; in 3.x app has both (deploy's host/port and web-ui's)
    Alias("host", "server_name", commands=("web-ui",)),
    Alias("port", "server_port", commands=("web-ui",)),
    Alias("max_length", "max_length", "-1 -> unset (the model's maximum)", rewrite=_negative_is_unset("max_length")),
    Alias("truncation_strategy", "truncation_strategy", "truncation_left -> left",
          rewrite=_values_map("truncation_strategy", {"truncation_left": "left"})),
    Alias("acc_strategy", "acc_strategy", "sentence -> seq", TRAIN, _values_map("acc_strategy", {"sentence": "seq"})),
    Alias("lora_dtype", "lora_dtype", "bf16/fp16/fp32 -> bfloat16/float16/float32; AUTO -> unset", TRAIN,
          _values_map("lora_dtype", _DTYPE)),
    Alias("deepspeed", "deepspeed", "default-zero2/default-zero3/zero2-offload/zero3-offload -> zero2/zero3/zero2_offload/zero3_offload", TRAIN,
          _values_map("deepspeed", {"default-zero2": "zero2", "default-zero3": "zero3", "zero2-offload": "zero2_offload", "zero3-offload": "zero3_offload"})),
)

# 2.x arguments with no 3.x counterpart: accepted with a warning and ignored, so old scripts still run.
REMOVED: dict[str, str] = {
    "check_dataset_strategy": "use --strict true to stop at the first bad row",
    "train_dataset_mix_ratio": "mix datasets by listing them in --dataset with #N",
    "train_dataset_mix_ds": "mix datasets by listing them in --dataset with #N",
    "train_dataset_sample": "append #N to the --dataset entry instead",
    "hqq_dynamic_config_path": "no per-layer HQQ config in 3.x",
    "neftune_backend": "NEFTune always uses transformers' implementation",
    "gpu_memory_fraction": "no 3.x counterpart",
    "test_oom_error": "no 3.x counterpart",
    "ignore_args_error": "argument errors always stop the command",
    "ia3_feedforward_modules": "IA3 is not a 3.x train_type",
    "to_peft_format": "adapters are always saved in PEFT format",
    "ollama_output_dir": "it is swift export's --output_dir",
    "overwrite_generation_config": "no 3.x counterpart",
    "eval_human": "swift infer is interactive when no dataset is given",
    "vllm_enable_lora": "vLLM LoRA is enabled when --adapters are given",
    "ssl_keyfile": "no 3.x counterpart",
    "ssl_certfile": "no 3.x counterpart",
    "eval_few_shot": "deprecated already in 2.x",
    "eval_is_chat_model": "no 3.x counterpart",
    "custom_eval_config": "use --eval_dataset",
}

ALIASES: dict[str, list[Alias]] = {}
for _alias in RENAMED:
    ALIASES.setdefault(_alias.old, []).append(_alias)


def find_alias(name: str, command: str) -> Alias | None:
    """The alias for `name` under `command`, if there is one."""
    for alias in ALIASES.get(name, []):
        if alias.applies_to(command):
            return alias
    return None


def is_value_alias(alias: Alias) -> bool:
    """Aliases that keep the 3.x name and only translate 2.x values (e.g. --max_length -1)."""
    return alias.old == alias.new
