"""Loading a model and tokenizer for any command, from the arguments every command shares.

Run-time choices live here so training and inference agree: the dtype (config.json's unless
--torch_dtype says otherwise, and a CPU-safe one where there is no GPU), the attention
implementation, the device placement, and the adapters to attach.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from swift_args import ArgumentError
from swift_args.checkpoint_files import damage_refusal
from swift_data.models import ModelInfo, load_tokenizer, model_for_args

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
# --attn_impl names -> transformers attn_implementation names.
ATTN_IMPLEMENTATIONS = {"flash_attn": "flash_attention_2", "sdpa": "sdpa", "eager": "eager",
                        "flex_attention": "flex_attention"}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    info: ModelInfo
    dtype: torch.dtype


def choose_dtype(requested: str | None, info: ModelInfo, device: str, say: Any = None) -> torch.dtype:
    """--torch_dtype, else config.json's; on a CPU, half precision becomes float32 (and we say so)."""
    name = requested or info.torch_dtype or "float32"
    dtype = DTYPES.get(str(name).replace("torch.", ""), torch.float32)
    if device == "cpu" and dtype != torch.float32 and requested is None:
        (say or _say)(f"no GPU: using float32 instead of {name} (half precision is slow or unsupported on CPUs); "
                      "pass --torch_dtype to choose")
        return torch.float32
    return dtype


def default_device() -> str:
    """This process's accelerator: a CUDA GPU, else an Ascend NPU, else the CPU."""
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        return f"cuda:{rank}"
    if npu_available():
        return f"npu:{rank}"
    return "cpu"


def npu_available() -> bool:
    """An Ascend NPU through torch-npu (the `npu` extra, in the swift-*-npu images)."""
    if importlib.util.find_spec("torch_npu") is None:
        return False
    import torch_npu  # noqa: F401  (registers the npu device and torch.npu)

    return torch.npu.is_available()


def default_ddp_backend() -> str:
    """The collective backend of this machine's accelerator (hccl on Ascend NPUs, gloo on CPUs)."""
    if torch.cuda.is_available():
        return "nccl"
    return "hccl" if npu_available() else "gloo"


def _say(message: str) -> None:
    print(f"swift: {message}", file=sys.stderr)


def load_model(args: Any, *, device: str | None = None, say: Any = None, info: ModelInfo | None = None,
               tokenizer: Any = None) -> LoadedModel:
    """Resolve --model, read its type and template, and load weights and tokenizer.

    `info` and `tokenizer`, when the caller already resolved the model and loaded its tokenizer
    (training checks its data with them before any weights load), are used instead of doing it again.
    """
    from transformers import AutoModelForCausalLM

    if info is None:
        if args.model is None:
            raise ArgumentError("--model is required")
        _, info = model_for_args(args)
    model_dir = info.model_dir
    device = device or default_device()
    dtype = choose_dtype(args.torch_dtype, info, device.split(":")[0], say)
    kwargs: dict[str, Any] = {"dtype": dtype,
                              "attn_implementation": ATTN_IMPLEMENTATIONS.get(args.attn_impl or "sdpa")}
    if args.device_map is not None:
        kwargs["device_map"] = args.device_map
        if args.max_memory:
            kwargs["max_memory"] = args.max_memory
    if args.quant_method is not None:
        kwargs["quantization_config"] = quantization_config(args, dtype)
    if args.rope_scaling is not None:
        kwargs["config"] = scaled_rope_config(model_dir, args.rope_scaling, _rope_factor(args, info))
    auto = AutoModelForCausalLM
    if getattr(args, "task_type", "causal_lm") == "seq_cls":  # a classification head on the decoder's last token
        from transformers import AutoModelForSequenceClassification as auto  # noqa: N813

        if "config" in kwargs:  # --rope_scaling's config: the class count goes there, not to the constructor
            kwargs["config"].num_labels = args.num_labels
        else:
            kwargs["num_labels"] = args.num_labels
    try:
        model = auto.from_pretrained(model_dir, **kwargs)
    except ValueError as exc:
        if "does not support" in str(exc) and args.attn_impl is None:
            model = auto.from_pretrained(model_dir, **{**kwargs, "attn_implementation": "eager"})
        else:
            raise ArgumentError(f"cannot load {model_dir}: {str(exc).splitlines()[0]}") from None
    except ImportError as exc:  # an attention implementation whose package is missing, e.g. flash_attn
        raise ArgumentError(f"--attn_impl {args.attn_impl}: {str(exc).splitlines()[0]}") from None
    except (OSError, SafetensorError) as exc:  # weights missing, truncated or not safetensors at all
        raise ArgumentError(f"cannot load the weights in {model_dir}: {str(exc).splitlines()[0]}") from None
    if args.device_map is None:
        model.to(device)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model_dir)
    if model.config.pad_token_id is None:  # classification finds each row's last token by the pad id
        model.config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(model, tokenizer, info, dtype)


def scaled_rope_config(model_dir: Any, kind: str, factor: float) -> Any:
    """The model's config with RoPE scaled by `factor` (linear or dynamic NTK), keeping its rope_theta and
    other rope parameters: transformers 5 reads them all from one rope_parameters dict."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    text = config.get_text_config()
    old = getattr(text, "rope_parameters", None) or {}
    if not isinstance(old, dict) or "rope_theta" not in old:
        raise ArgumentError(f"--rope_scaling {kind}: {model_dir} has no RoPE parameters to scale")
    text.rope_parameters = {**old, "rope_type": kind, "factor": factor}
    if kind == "linear":  # positions are compressed: the model now takes factor times as many
        text.max_position_embeddings = int(text.max_position_embeddings * factor)
    return config


def _rope_factor(args: Any, info: ModelInfo) -> float:
    if not (args.max_length and info.max_model_len):
        raise ArgumentError("--rope_scaling needs --max_length (the length to scale to)")
    return max(1.0, args.max_length / info.max_model_len)


# What each --quant_method needs installed, and the --quant_bits it can load with.
QUANT_METHODS = {
    "bnb": ("bitsandbytes", "bnb", (4, 8)),
    "hqq": ("hqq", "hqq", (1, 2, 3, 4, 8)),
    "eetq": ("kernels", "eetq", (8,)),  # transformers 5 runs EETQ through the kernels package
}


def check_quantization(args: Any) -> None:
    """--quant_method's package is installed and --quant_bits is one it loads with: one line otherwise,
    before any run directory or weights."""
    import importlib.util

    if args.quant_method is None:
        return
    package, extra, bits = QUANT_METHODS[args.quant_method]
    if args.quant_bits is None and args.quant_method != "bnb":  # hqq's default is 4 bits, eetq is int8 only
        args.quant_bits = 4 if args.quant_method == "hqq" else 8
    if importlib.util.find_spec(package) is None:
        raise ArgumentError(f"--quant_method {args.quant_method} needs {package}: pip install 'swift-infer[{extra}]'")
    if args.quant_bits not in bits:
        raise ArgumentError(f"--quant_method {args.quant_method} loads with --quant_bits "
                            f"{' or '.join(map(str, bits))}, got {args.quant_bits}")


def quantization_config(args: Any, dtype: torch.dtype) -> Any:
    """bitsandbytes / hqq / eetq settings for loading quantized weights (each an optional extra)."""
    check_quantization(args)
    if args.quant_method == "bnb":
        from transformers import BitsAndBytesConfig

        compute = DTYPES.get(args.bnb_4bit_compute_dtype or "", dtype)
        return BitsAndBytesConfig(
            load_in_4bit=args.quant_bits == 4, load_in_8bit=args.quant_bits == 8, bnb_4bit_compute_dtype=compute,
            bnb_4bit_quant_type=args.bnb_4bit_quant_type, bnb_4bit_use_double_quant=args.bnb_4bit_use_double_quant,
            bnb_4bit_quant_storage=DTYPES.get(args.bnb_4bit_quant_storage or "", None),
        )
    if args.quant_method == "hqq":
        from transformers import HqqConfig

        return HqqConfig(nbits=args.quant_bits, axis=args.hqq_axis if args.hqq_axis is not None else 1)
    from transformers import EetqConfig

    return EetqConfig("int8")


def attach_adapter(model: Any, path: str, adapter_name: str = "default", is_trainable: bool = False) -> Any:
    """`model` with the PEFT adapter at `path` added; an adapter of another base model is one line,
    and so is a saved checkpoint whose files changed since (truncated, overwritten)."""
    from peft import PeftModel

    from swift_infer import own_tuners

    problem = damage_refusal(Path(path), "--adapters", shown=path)
    if problem is not None:
        raise ArgumentError(problem)
    if own_tuners.is_own_tuner(path) or own_tuners.attached(model) is not None:
        return _attach_own_tuner(model, path, is_trainable)
    try:
        if isinstance(model, PeftModel):
            model.load_adapter(path, adapter_name=adapter_name, is_trainable=is_trainable)
            return model
        return PeftModel.from_pretrained(model, path, adapter_name=adapter_name, is_trainable=is_trainable)
    except RuntimeError as exc:
        mismatch = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), None)
        if mismatch is None:
            raise
        raise ArgumentError(f"--adapters {path} does not fit this model, it was trained on another base "
                            f"({mismatch}); pass the --model it was trained from") from None



def _attach_own_tuner(model: Any, path: str, is_trainable: bool) -> Any:
    """An adapter or ReFT directory: one per model, not beside peft adapters."""
    from peft import PeftModel

    from swift_infer import own_tuners

    if isinstance(model, PeftModel) or own_tuners.attached(model) is not None:
        raise ArgumentError(f"--adapters {path}: an adapter or ReFT tuner is loaded alone, not beside other "
                            "adapters; pass one --adapters")
    try:
        return own_tuners.load(model, path, trainable=is_trainable)
    except (ValueError, AttributeError) as exc:
        raise ArgumentError(f"--adapters {path} does not fit this model, it was trained on another base "
                            f"({str(exc).splitlines()[0]}); pass the --model it was trained from") from None
