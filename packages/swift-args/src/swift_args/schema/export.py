"""Arguments of `swift export` and `swift merge-lora` (reference: "Export Arguments")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swift_args.adapters import adapter_path
from swift_args.fields import arg
from swift_args.model_names import model_suffix
from swift_args.schema.base import ModelLoadingArguments
from swift_args.schema.engines import MergeArguments


@dataclass(kw_only=True)
class ExportArguments(ModelLoadingArguments, MergeArguments):
    """`swift export`: base + merge arguments and the export extras below."""

    GROUP = "export"

    output_dir: str | None = arg(
        None,
        hot=True,
        help="Where the export is written. None: <adapter>-merged, <model>-<method>-int<bits> or <model>-ollama.",
    )
    exist_ok: bool = arg(False, help="Write into an existing output_dir, overwriting its contents.")
    quant_method: Literal["gptq", "awq", "bnb"] | None = arg(
        None, hot=True, help="Export quantization: gptq, awq or bnb."
    )
    quant_n_samples: int = arg(256, help="Calibration samples for gptq/awq.")
    max_length: int | None = arg(2048, help="Calibration sample length.")
    quant_batch_size: int = arg(1, help="Quantization batch size.")
    group_size: int = arg(128, help="Quantization group size.")
    to_ollama: bool = arg(False, help="Export an Ollama Modelfile (with GGUF weights).")
    push_to_hub: bool = arg(False, hot=True, help="Push the result to the hub.")
    hub_model_id: str | None = arg(None, help="Hub repo to push to.")
    hub_private_repo: bool = arg(False, help="Make the hub repo private.")
    commit_message: str = arg("update files", help="Commit message for the push.")

    def _resolve(self, passed: set[str]) -> None:
        if self.load_args is None:
            self.load_args = True
        if self.output_dir is not None:
            return
        if self.merge_lora and self.adapters:
            self.output_dir = f"{adapter_path(self.adapters[0]).rstrip('/')}-merged"
        elif self.quant_method and self.model:
            self.output_dir = f"{model_suffix(self.model)}-{self.quant_method}-int{self.quant_bits}"
        elif self.to_ollama and self.model:
            self.output_dir = f"{model_suffix(self.model)}-ollama"

    def _check(self) -> list[str]:
        problems = []
        if self.quant_method in ("gptq", "awq") and self.quant_bits is None:
            problems.append(f"--quant_method {self.quant_method} needs --quant_bits (e.g. 4)")
        if self.quant_method in ("gptq", "awq") and not self.dataset:
            problems.append(f"--quant_method {self.quant_method} needs --dataset for calibration")
        if self.push_to_hub and not self.hub_model_id:
            problems.append("--push_to_hub needs --hub_model_id")
        if self.merge_lora and not self.adapters:
            problems.append("--merge_lora needs --adapters (the LoRA checkpoint to merge)")
        if not (self.merge_lora or self.quant_method or self.to_ollama or self.push_to_hub):
            problems.append("nothing to export: pass --merge_lora true, --quant_method, --to_ollama or --push_to_hub")
        return problems


@dataclass(kw_only=True)
class MergeLoraArguments(ExportArguments):
    """`swift merge-lora`: the same as `swift export --merge_lora true`."""

    merge_lora: bool = arg(True, group="merge", help="merge-lora always merges.")
