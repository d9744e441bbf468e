"""Base arguments: shared by every command that loads a model (reference: "Base Arguments").

The reference nests model, data, template, generation and quantization arguments under
"Base Arguments"; each is its own dataclass here so `--help` can show them as sections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from swift_args.adapters import adapter_problems
from swift_args.fields import arg, range_problems

TRAIN_TYPES = ("lora", "full", "longlora", "adalora", "llamapro", "adapter", "vera", "boft", "fourierft", "reft")
DTYPES = Literal["float16", "bfloat16", "float32"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(kw_only=True)
class BaseArguments:
    GROUP = "base"

    tuner_backend: Literal["peft", "unsloth"] = arg("peft", hot=True, help="Tuner implementation: peft or unsloth.")
    train_type: Literal[TRAIN_TYPES] = arg(  # type: ignore[valid-type]
        "lora", hot=True, help="Fine-tuning method: " + ", ".join(TRAIN_TYPES) + "."
    )
    adapters: list[str] = arg(
        factory=list,
        hot=True,
        split_commas=True,
        help="Adapter ids or paths to load (also `name=path` to give each a name).",
    )
    seed: int = arg(42, help="Global random seed.")
    model_kwargs: dict | None = arg(
        None,
        help="Model-specific extras as JSON, e.g. '{\"fps_max_frames\": 12}'; the reference's environment "
        "variables (MAX_PIXELS, FPS_MAX_FRAMES, ...) are read too, and this argument wins over them.",
    )
    load_args: bool | None = arg(
        None,
        help="Read args.json saved beside --model/--adapters/--resume_from_checkpoint and take every "
        "non-data, non-generation argument you did not pass from it. None: true for inference and export, "
        "false for training.",
    )
    load_data_args: bool = arg(False, help="With load_args, also take the data arguments from args.json.")
    use_hf: bool = arg(
        False,
        help="Download models and datasets from the Hugging Face hub instead of ModelScope "
        "(the USE_HF environment variable sets the default).",
    )
    hub_token: str | None = arg(None, help="Token for the model hub.")
    custom_register_path: list[str] = arg(
        factory=list, help="Python files that register custom models, templates and datasets."
    )

    def _resolve(self, passed: set[str]) -> None:
        if "use_hf" not in passed and _env_flag("USE_HF"):
            self.use_hf = True
        if self.model_kwargs is None:
            self.model_kwargs = {}
        self.model_kwargs = {**model_kwargs_from_env(), **{k.upper(): v for k, v in self.model_kwargs.items()}}

    def _check(self) -> list[str]:
        return adapter_problems(self.adapters)


# The reference's "Specific Model Arguments": each can be set as --model_kwargs key or as an env var.
MODEL_KWARGS_ENV = (
    "IMAGE_FACTOR", "MIN_PIXELS", "MAX_PIXELS", "MAX_RATIO", "VIDEO_MIN_PIXELS", "VIDEO_MAX_PIXELS",
    "VIDEO_TOTAL_PIXELS", "FRAME_FACTOR", "FPS", "FPS_MIN_FRAMES", "FPS_MAX_FRAMES", "SAMPLING_RATE",
    "MAX_NUM", "INPUT_SIZE", "VIDEO_MAX_NUM", "VIDEO_SEGMENTS", "MAX_SLICE_NUMS", "VIDEO_MAX_SLICE_NUMS",
    "MAX_NUM_FRAMES", "INIT_TTS", "INIT_AUDIO", "MAX_PARTITION", "HD_NUM", "NUM_FRAMES", "NUM_CROPS", "N_MELS",
)  # fmt: skip


def model_kwargs_from_env() -> dict[str, str]:
    """The specific-model arguments that are set as environment variables."""
    return {key: os.environ[key] for key in MODEL_KWARGS_ENV if key in os.environ}


@dataclass(kw_only=True)
class ModelArguments:
    GROUP = "model"

    model: str | None = arg(
        None,
        hot=True,
        help="Model: a local Hugging Face directory, a .gguf file, a hub id, a run directory or "
        "checkpoint, or the built-in alias SmolLM2-135M-Instruct.",
    )
    model_type: str | None = arg(None, help="Model type; detected from config.json when not given.")
    model_revision: str | None = arg(None, help="Hub revision of the model.")
    task_type: Literal["causal_lm", "seq_cls"] = arg(
        "causal_lm", help="causal_lm, or seq_cls: a classification head reads each sample's last token, trained on "
        "the rows' `label` column (class indices); set automatically when --num_labels is given."
    )
    torch_dtype: DTYPES | None = arg(
        None, hot=True, help="Weight dtype: float16, bfloat16 or float32. None: read from config.json."
    )
    attn_impl: Literal["flash_attn", "sdpa", "eager", "flex_attention"] | None = arg(
        None, help="Attention implementation. None: sdpa, or eager where the model does not support sdpa."
    )
    num_labels: int | None = arg(None, help="Number of classes for --task_type seq_cls (2 or more).")
    rope_scaling: Literal["linear", "dynamic"] | None = arg(
        None, help="RoPE scaling type; use together with --max_length."
    )
    device_map: str | dict | None = arg(
        None, help="Device map: 'auto', 'cpu', a JSON object or a JSON file. None: chosen for the setup."
    )
    max_memory: dict | None = arg(
        None, help="Per-device memory for device_map auto/sequential, e.g. '{0: \"20GB\", 1: \"20GB\"}'."
    )
    local_repo_path: str | None = arg(None, help="Local clone of a GitHub repo that some models need.")

    def _resolve(self, passed: set[str]) -> None:
        if self.num_labels is not None and "task_type" not in passed:
            self.task_type = "seq_cls"

    def _check(self) -> list[str]:
        if self.task_type == "seq_cls" and (self.num_labels is None or self.num_labels < 1):
            return [f"--task_type seq_cls needs --num_labels N (2 or more classes; 1 is a reward model's score), "
                    f"got {self.num_labels}"]
        return []


@dataclass(kw_only=True)
class DataArguments:
    GROUP = "data"

    dataset: list[str] = arg(
        factory=list,
        hot=True,
        split_commas=True,
        help="Datasets: ID_OR_PATH[:subset1/subset2|all][#N], several separated by spaces or commas.",
    )
    val_dataset: list[str] = arg(
        factory=list, hot=True, split_commas=True, help="Validation datasets, same syntax as --dataset."
    )
    split_dataset_ratio: float = arg(
        0.01, hot=True, help="Share of the training set held out for validation when --val_dataset is not given."
    )
    data_seed: int = arg(42, help="Random seed for dataset sampling and splitting.")
    dataset_num_proc: int = arg(1, hot=True, help="Processes for dataset preprocessing.")
    streaming: bool = arg(False, hot=True, help="Stream the dataset instead of loading it whole.")
    enable_cache: bool = arg(False, help="Cache preprocessed datasets.")
    download_mode: Literal["reuse_dataset_if_exists", "force_redownload"] = arg(
        "reuse_dataset_if_exists", help="Hub datasets: reuse the cached copy, or force_redownload to fetch it again."
    )
    columns: dict | None = arg(None, help="Column renames as JSON, e.g. '{\"text1\": \"query\"}'.")
    strict: bool = arg(False, help="Stop at the first unusable row instead of skipping and counting it.")
    remove_unused_columns: bool = arg(True, help="Drop dataset columns the template does not use.")
    model_name: list[str] | None = arg(
        None,
        hot=True,
        help="For self-cognition: the model's name in Chinese and English, e.g. --model_name 小黄 'Xiao Huang'.",
    )
    model_author: list[str] | None = arg(
        None,
        hot=True,
        help="For self-cognition: the author in Chinese and English, e.g. --model_author 魔搭 ModelScope.",
    )
    custom_dataset_info: list[str] = arg(
        factory=list, help="JSON files registering dataset names: entries with dataset_name, dataset_path (relative "
        "to the file), ms_dataset_id or hf_dataset_id, and columns renames; then --dataset NAME."
    )


LOSS_SCALES = ("default", "last_round", "all", "react", "agentflan", "alpha_umi", "qwen")


@dataclass(kw_only=True)
class TemplateArguments:
    GROUP = "template"

    template: str | None = arg(None, hot=True, help="Chat template name. None: the model's own.")
    system: str | None = arg(
        None, hot=True, help="System prompt, or a .txt file holding it. None: the template's default."
    )
    max_length: int | None = arg(
        None, hot=True, help="Maximum tokens per sample. None: the model's maximum length."
    )
    truncation_strategy: Literal["delete", "left", "right"] = arg(
        "delete", help="What to do with samples longer than max_length: delete, left or right truncation."
    )
    max_pixels: int | None = arg(None, hot=True, help="Maximum image pixels (H*W) for multimodal models.")
    tools_prompt: Literal["react_en", "react_zh", "glm4", "toolbench", "qwen"] = arg(
        "react_en", help="How a tool list is turned into the system prompt."
    )
    norm_bbox: Literal["norm1000", "none"] | None = arg(None, help="Bounding-box scaling. None: per model.")
    padding_side: Literal["left", "right"] = arg("right", help="Padding side for training batches.")
    loss_scale: str = arg(
        "default",
        help="Loss weights: " + ", ".join(LOSS_SCALES) + ", or a JSON file with a custom loss-scale config.",
    )
    sequence_parallel_size: int = arg(1, help="Processes one sequence is split over (Ulysses); NPROC_PER_NODE must be a multiple.")
    use_chat_template: bool = arg(True, help="Use the chat template (false: generation template, as swift pt).")
    template_backend: Literal["swift", "jinja"] = arg(
        "swift", help="swift, or jinja (inference only): the model's own chat template through transformers' "
        "apply_chat_template, with the messages and tools as they are (no tools_prompt folding)."
    )

    def _check(self) -> list[str]:
        if self.template_backend == "jinja" and self.template is not None:
            return [f"--template_backend jinja renders with the model's own chat template; drop --template {self.template}"]
        return []


@dataclass(kw_only=True)
class GenerationArguments:
    GROUP = "generation"

    max_new_tokens: int | None = arg(None, hot=True, help="Maximum new tokens. None: unlimited.")
    temperature: float | None = arg(
        None, help="Sampling temperature; 0 means greedy. None: from generation_config.json."
    )
    top_k: int | None = arg(None, help="top_k. None: from generation_config.json.")
    top_p: float | None = arg(None, help="top_p. None: from generation_config.json.")
    repetition_penalty: float | None = arg(None, help="Repetition penalty. None: from generation_config.json.")
    num_beams: int = arg(1, help="Beams for beam search.")
    stream: bool = arg(False, hot=True, help="Stream the output.")
    stop_words: list[str] = arg(
        factory=list, help="Extra stop words; kept in the output (the eos token is removed)."
    )
    logprobs: bool = arg(False, help="Return log probabilities.")
    top_logprobs: int | None = arg(None, help="How many top log probabilities to return per token.")


@dataclass(kw_only=True)
class QuantizationArguments:
    GROUP = "quantization"
    QUANT_BITS_NEED = "bnb, hqq or eetq when loading"

    quant_method: Literal["bnb", "hqq", "eetq"] | None = arg(
        None, hot=True, help="Quantization applied when loading the model: bnb, hqq or eetq."
    )
    quant_bits: Literal[1, 2, 3, 4, 8] | None = arg(None, hot=True, help="Quantization bits.")
    hqq_axis: int | None = arg(None, help="HQQ quantization axis.")
    bnb_4bit_compute_dtype: DTYPES | None = arg(None, help="bnb compute dtype. None: torch_dtype.")
    bnb_4bit_quant_type: Literal["fp4", "nf4"] = arg("nf4", help="bnb 4-bit quantization type.")
    bnb_4bit_use_double_quant: bool = arg(True, help="bnb double quantization.")
    bnb_4bit_quant_storage: str | None = arg(None, help="bnb quantized storage dtype.")

    def _check(self) -> list[str]:
        problems = []
        if self.quant_bits is not None and self.quant_method is None:
            problems.append(f"--quant_bits needs --quant_method ({self.QUANT_BITS_NEED})")
        return problems


# Values the model, the sampler and torch's generator can take; outside them they fail mid-run or hang.
_RANGES = {
    "seed": f"[0, {2**32 - 1}]", "data_seed": f"[0, {2**32 - 1}]", "max_new_tokens": "[1, inf)", "top_k": "[0, inf)",
    "repetition_penalty": "(0, inf)", "num_beams": "[1, inf)", "top_logprobs": "[0, 20]",
}  # fmt: skip


@dataclass(kw_only=True)
class ModelLoadingArguments(
    BaseArguments, ModelArguments, DataArguments, TemplateArguments, GenerationArguments, QuantizationArguments
):
    """All of the reference's base arguments: what every model-loading command shares."""

    def _check(self) -> list[str]:
        problems = range_problems(self, _RANGES)
        if not 0 <= self.split_dataset_ratio < 1:
            problems.append(f"--split_dataset_ratio must be in [0, 1), got {self.split_dataset_ratio}")
        if self.dataset_num_proc < 1:
            problems.append(f"--dataset_num_proc must be at least 1, got {self.dataset_num_proc}")
        if self.max_length is not None and self.max_length <= 0:
            problems.append(f"--max_length must be positive, got {self.max_length}")
        if self.temperature is not None and self.temperature < 0:
            problems.append(f"--temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            problems.append(f"--top_p must be in (0, 1], got {self.top_p}")
        for name in ("model_name", "model_author"):
            value = getattr(self, name)
            if value is not None and not 1 <= len(value) <= 2:
                problems.append(f"--{name} takes the Chinese and the English name (1 or 2 values), got {len(value)}")
        return problems
