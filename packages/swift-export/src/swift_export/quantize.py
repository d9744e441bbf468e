"""`--quant_method gptq | awq | fp8 | bnb`: a quantized checkpoint that plain transformers loads.

gptq, awq and fp8 run llm-compressor's recipes and save compressed-tensors checkpoints (vLLM and
transformers both read them); bnb loads the model through bitsandbytes and saves its 4/8-bit layers.
Every check that needs only files (the extra, the GPU, the layer widths) runs before weights load.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from swift_args import ArgumentError
from swift_args.schema.export import CALIBRATED

# The package each method imports, and the swift-export extra that installs it.
EXTRAS = {"gptq": ("llmcompressor", "quant"), "awq": ("llmcompressor", "quant"), "fp8": ("llmcompressor", "quant"),
          "bnb": ("bitsandbytes", "bnb")}
GROUP_SIZES = (128, 64, 32, 16)  # what to suggest when --group_size does not divide a layer's width


def check_quantization(args: Any, model_dir: Path) -> list[list[int]] | None:
    """Everything that would stop the quantization, said before the model loads. Returns the encoded
    calibration rows of gptq and awq (None for the others): reading them needs only the tokenizer."""
    import torch

    method = args.quant_method
    package, extra = EXTRAS[method]
    if importlib.util.find_spec(package) is None:
        python = " (Python 3.11+)" if extra == "quant" else ""
        raise ArgumentError(f"--quant_method {method} needs {package}: pip install 'swift-export[{extra}]'{python}")
    if method == "awq" and not torch.cuda.is_available():
        raise ArgumentError("--quant_method awq needs a CUDA GPU (llm-compressor's AWQ keeps its calibration "
                            "activations in pinned memory, which needs the NVIDIA driver); on this machine use "
                            "--quant_method gptq")
    if method in CALIBRATED and args.group_size != -1:
        _check_group_size(args.group_size, model_dir)
    if method not in CALIBRATED:
        return None
    from swift_data.models import load_tokenizer

    from swift_export.calibration import calibration_rows

    return calibration_rows(args, load_tokenizer(model_dir))


def _check_group_size(group_size: int, model_dir: Path) -> None:
    widths = linear_widths(model_dir)
    misfits = {name: width for name, width in widths.items() if width % group_size}
    if not misfits:
        return
    name, width = next(iter(misfits.items()))
    fits = [size for size in GROUP_SIZES if all(w % size == 0 for w in widths.values())]
    hint = f"pass --group_size {fits[0]}" if fits else "pass --group_size -1 (one scale per output channel)"
    raise ArgumentError(f"--group_size {group_size} does not divide the input width of {len(misfits)} layers "
                        f"(e.g. {name}: {width}); {hint}")


def linear_widths(model_dir: Path) -> dict[str, int]:
    """Input width of every linear weight the recipe quantizes, read from the safetensors headers only."""
    from swift_infer.merge import weight_shapes

    return {name[: -len(".weight")]: shape[1] for name, shape in weight_shapes(model_dir).items()
            if len(shape) == 2 and name.endswith(".weight") and not _kept_whole(name)}


def _kept_whole(name: str) -> bool:
    """Embeddings and the output head stay in full precision (as in llm-compressor's and vLLM's recipes)."""
    return "embed" in name or "lm_head" in name or "wte" in name


def quantize(args: Any, model_dir: Path, output: Path, calibration: list[list[int]] | None) -> None:
    """Quantize the model in `model_dir` (calibrated on the encoded rows `calibration` for gptq and awq) and
    save it, with its tokenizer, into `output`."""
    from swift_data.models import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = _bnb_model(args, model_dir) if args.quant_method == "bnb" else _compressed_model(args, model_dir, calibration)
    kwargs = {} if args.quant_method == "bnb" else {"save_compressed": True}
    model.save_pretrained(output, max_shard_size=args.max_shard_size, **kwargs)
    tokenizer.save_pretrained(output)


def _dtype(args: Any, model_dir: Path) -> Any:
    """--torch_dtype, else the dtype the model was saved in: the quantized model keeps it for what stays whole."""
    import torch
    from swift_data.models import detect_model_info

    name = args.torch_dtype or detect_model_info(model_dir).torch_dtype or "float32"
    return getattr(torch, str(name).replace("torch.", ""), torch.float32)


def _bnb_model(args: Any, model_dir: Path) -> Any:
    from swift_infer.loading import default_device, quantization_config
    from transformers import AutoModelForCausalLM

    dtype = _dtype(args, model_dir)
    config = quantization_config(args, dtype)  # the same settings `swift sft --quant_method bnb` loads with
    device_map = args.device_map or default_device()  # bitsandbytes quantizes as the weights reach the device
    print(f"swift: quantizing {model_dir} to {args.quant_bits}-bit with bitsandbytes on {device_map}", file=sys.stderr)
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, quantization_config=config,
                                                device_map=device_map, max_memory=args.max_memory or None)


def _compressed_model(args: Any, model_dir: Path, rows: list[list[int]] | None) -> Any:
    os.environ.setdefault("LLM_COMPRESSOR_LOG_LEVEL", "WARNING")  # else it lists every layer it quantizes
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM

    from swift_export.calibration import as_calibration_dataset

    calibration: dict[str, Any] = {}
    if rows is not None:
        # Sorted by length, so each batch loses little to the collator's cut to its shortest row.
        rows = sorted(rows, key=len)
        calibration = {"dataset": as_calibration_dataset(rows), "num_calibration_samples": len(rows),
                       "max_seq_length": args.max_length, "batch_size": args.quant_batch_size,
                       "shuffle_calibration_samples": False}
    # On the CPU unless --device_map says otherwise; llm-compressor moves one layer at a time to the GPU (when
    # there is one) as it calibrates. --attn_impl is the attention the calibration passes run with.
    loading: dict[str, Any] = {"dtype": _dtype(args, model_dir), "device_map": args.device_map,
                               "max_memory": args.max_memory or None}
    if args.attn_impl:
        from swift_infer.loading import ATTN_IMPLEMENTATIONS

        loading["attn_implementation"] = ATTN_IMPLEMENTATIONS[args.attn_impl]
    model = AutoModelForCausalLM.from_pretrained(model_dir, **loading)
    what = f"on {len(rows)} calibration rows" if rows is not None else "(no calibration needed)"
    print(f"swift: quantizing {model_dir} with {args.quant_method} {args.quant_bits}-bit {what}", file=sys.stderr)
    oneshot(model=model, recipe=recipe(args), **calibration)
    return model


def recipe(args: Any) -> Any:
    """llm-compressor's modifier for --quant_method, --quant_bits and --group_size."""
    if args.quant_method == "fp8":
        from llmcompressor.modifiers.quantization import QuantizationModifier

        return QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=["lm_head"])
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    # GPTQ's error correction works with symmetric scales; AWQ's scale search is made for zero points.
    grouped = args.group_size != -1
    weights = QuantizationArgs(num_bits=args.quant_bits, type="int", symmetric=args.quant_method == "gptq",
                               strategy="group" if grouped else "channel",
                               group_size=args.group_size if grouped else None)
    groups = {"group_0": QuantizationScheme(targets=["Linear"], weights=weights)}
    if args.quant_method == "gptq":
        from llmcompressor.modifiers.quantization import GPTQModifier

        return GPTQModifier(config_groups=groups, ignore=["lm_head"])
    from llmcompressor.modifiers.awq import AWQModifier

    return AWQModifier(config_groups=groups, ignore=["lm_head"])
