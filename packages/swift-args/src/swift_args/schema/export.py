"""Arguments of `swift export` and `swift merge-lora` (reference: "Export Arguments").

`swift export` runs its steps in one order: merge the adapter (--merge_lora), then quantize
(--quant_method) or write GGUF + an Ollama Modelfile (--to_ollama), then push what was produced
(--push_to_hub). The checks below are the ones that need nothing but the arguments; the command
checks the model's shape and the installed extras before it loads any weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swift_args.adapters import adapter_path
from swift_args.fields import arg
from swift_args.model_names import model_suffix
from swift_args.schema.base import ModelLoadingArguments
from swift_args.schema.engines import MergeArguments

# The --quant_bits each --quant_method writes (what its library packs and transformers loads back).
QUANT_BITS = {"gptq": (2, 3, 4, 8), "awq": (4,), "bnb": (4, 8), "fp8": (8,)}
CALIBRATED = ("gptq", "awq")  # the methods that run the model over --dataset to choose their weights
GGUF_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")


@dataclass(kw_only=True)
class ExportArguments(ModelLoadingArguments, MergeArguments):
    """`swift export`: base + merge arguments and the export extras below."""

    GROUP = "export"
    MERGE_ONLY = False
    QUANT_BITS_NEED = "gptq, awq, bnb or fp8; with --to_ollama the GGUF type is --gguf_type"

    output_dir: str | None = arg(
        None,
        hot=True,
        help="Where the export is written. None: <checkpoint>-merged, <model>-<method>-int<bits> or <model>-ollama.",
    )
    exist_ok: bool = arg(False, help="Replace an existing output_dir that holds a model or an earlier export (the new "
                         "export is complete before it replaces it).")
    quant_method: Literal["gptq", "awq", "bnb", "fp8"] | None = arg(
        None, hot=True,
        help="Quantize the (merged) model: gptq or awq (calibrated on --dataset, llm-compressor), bnb (bitsandbytes) "
        "or fp8 (llm-compressor, dynamic activations; an extension of the reference).",
    )
    quant_n_samples: int = arg(256, help="Calibration samples (rows of --dataset) for gptq/awq.")
    max_length: int | None = arg(
        2048, help="Calibration sample length in tokens (longer rows are skipped; --truncation_strategy right cuts them).")
    quant_batch_size: int = arg(1, help="Calibration batch size for gptq/awq.")
    group_size: int = arg(128, help="Weights sharing one scale for gptq/awq; -1: one scale per output channel.")
    to_ollama: bool = arg(False, help="Write model.gguf and an Ollama Modelfile (chat template, stops, parameters).")
    gguf_type: Literal["f32", "f16", "bf16", "q8_0", "q4_0"] | None = arg(
        None, help="With --to_ollama: the GGUF weight type. None: the model's dtype (or --torch_dtype). An extension "
        "of the reference.",
    )
    push_to_hub: bool = arg(False, hot=True, help="Push the export (or, alone, --model / --adapters) to the hub.")
    hub_model_id: str | None = arg(None, help="Hub repo to push to, e.g. my-name/my-model.")
    hub_private_repo: bool = arg(False, help="Create the hub repo as private.")
    commit_message: str = arg("update files", help="Commit message for the push.")
    to_peft_format: bool = arg(False, help="2.x: convert a swift-format LoRA to PEFT. Adapters here are always PEFT.")

    def _resolve(self, passed: set[str]) -> None:
        if self.load_args is None:
            self.load_args = True
        if self.quant_method == "fp8" and self.quant_bits is None:
            self.quant_bits = 8
        if self.output_dir is not None:
            return
        source = adapter_path(self.adapters[0]).rstrip("/\\") if self.adapters else None
        source = source or (model_suffix(self.model) if self.model else None)
        if source is None:
            return
        if self.MERGE_ONLY:
            self.output_dir = f"{source}-merged"
        elif self.quant_method:
            self.output_dir = f"{source}-{self.quant_method}-int{self.quant_bits}"
        elif self.to_ollama:
            self.output_dir = f"{source}-ollama"
        elif self.merge_lora and self.adapters:
            self.output_dir = f"{source}-merged"

    def _check(self) -> list[str]:
        if self.MERGE_ONLY:  # merge-lora refuses the export-only arguments itself, naming swift export
            return [] if self.adapters else ["--adapters is required: the LoRA checkpoint to merge"]
        problems = []
        method = self.quant_method
        if method in QUANT_BITS and self.quant_bits is None:
            problems.append(f"--quant_method {method} needs --quant_bits ({_or(QUANT_BITS[method])})")
        elif method in QUANT_BITS and self.quant_bits not in QUANT_BITS[method]:
            problems.append(f"--quant_method {method} writes --quant_bits {_or(QUANT_BITS[method])}, "
                            f"got {self.quant_bits}")
        if method in CALIBRATED and not self.dataset:
            problems.append(f"--quant_method {method} calibrates on data: pass --dataset (the rows you fine-tuned on, "
                            "or the built-in general-instructions)")
        if method and self.to_ollama:
            problems.append("--quant_method and --to_ollama: a GGUF file carries its own weight type; pass "
                            "--gguf_type q8_0 (or q4_0) with --to_ollama, or drop one of them")
        if self.quant_n_samples < 1 or self.quant_batch_size < 1:
            problems.append("--quant_n_samples and --quant_batch_size must be at least 1")
        if self.group_size == 0 or self.group_size < -1:
            problems.append(f"--group_size must be positive, or -1 for one scale per output channel; got {self.group_size}")
        if self.push_to_hub and not self.hub_model_id:
            problems.append("--push_to_hub needs --hub_model_id (the repo to push to, e.g. my-name/my-model)")
        if self.merge_lora and not self.adapters:
            problems.append("--merge_lora needs --adapters (the LoRA checkpoint to merge)")
        if not (self.merge_lora or method or self.to_ollama or self.push_to_hub or self.to_peft_format):
            problems.append("nothing to export: pass --merge_lora true, --quant_method, --to_ollama true or "
                            "--push_to_hub true")
        return problems


def _or(values: tuple[int, ...]) -> str:
    return " or ".join(map(str, values))


@dataclass(kw_only=True)
class MergeLoraArguments(ExportArguments):
    """`swift merge-lora`: the same as `swift export --merge_lora true`."""

    MERGE_ONLY = True

    merge_lora: bool = arg(True, group="merge", help="merge-lora always merges.")
