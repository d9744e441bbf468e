"""`swift export`: merge the adapter, then quantize or write GGUF + an Ollama Modelfile, then push.

Run as, after `swift sft`:
    swift export --adapters output/.../checkpoint-N --merge_lora true           # <checkpoint>-merged
    swift export --adapters ... --quant_method gptq --quant_bits 4 --dataset d  # <checkpoint>-gptq-int4
    swift export --adapters ... --to_ollama true                                # <checkpoint>-ollama
    swift export --model <dir> --push_to_hub true --hub_model_id me/my-model

Every check that needs no weights runs first (extras installed, layer widths, template, output
free), so bad input costs nothing and writes nothing. Each output is written under a temporary name
and renamed into place when complete; an existing output is replaced only with --exist_ok, and only
once the new one is whole.
"""

from __future__ import annotations

import copy
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import Invocation, save_args
from swift_args.adapters import adapter_path
from swift_args.run_dir import check_writable_dir
from swift_args.shell import swift_command
from swift_infer.merge import read_sources
from swift_infer.output_dir import check_output_dir, staged

PEFT_ALREADY = ("--to_peft_format: adapters saved by swift are PEFT adapters already (adapter_config.json + "
                "adapter_model.safetensors, loadable with peft.PeftModel.from_pretrained); nothing to convert")


@dataclass
class ExportPlan:
    """What the checks found, for the steps to use: the model directory and, for gptq/awq, the encoded
    calibration rows (read before any weights load, so a bad --dataset costs nothing)."""

    model_dir: Path
    calibration: list[list[int]] | None = None


def run_export(invocation: Invocation) -> int:
    args = invocation.args
    if args.to_peft_format:
        print(f"swift: {PEFT_ALREADY}", file=sys.stderr)
    if not (builds(args) or args.push_to_hub):
        return 0
    plan = check_export(args)
    pushed = _build(args, plan) if builds(args) else _source_folder(args, plan.model_dir)
    if args.push_to_hub:
        from swift_export.hub import push_folder

        push_folder(args, pushed)
    return 0


def builds(args: Any) -> bool:
    """Whether the export writes a new model (else it only pushes what is there)."""
    return bool(args.merge_lora or args.quant_method or args.to_ollama)


def _loading(args: Any) -> Any:
    """The arguments a model loads with: export's --quant_method is what it writes, not how it loads."""
    loading = copy.copy(args)
    loading.quant_method = loading.quant_bits = None
    return loading


def check_export(args: Any) -> ExportPlan:
    """Refuse, before any weights load or any file is written, what the export could not finish: the cheap
    checks on the arguments' files first, then the ones that need the (resolved) model directory."""
    from swift_data.models import model_for_args

    if builds(args):
        check_output_dir(args.output_dir, read_sources(args), args.exist_ok)
    if builds(args) and args.adapters:
        from swift_infer.merge import the_adapter_to_merge

        the_adapter_to_merge(args, "export")
    if args.push_to_hub:
        from swift_export.hub import check_push

        check_push(args)
    _, info = model_for_args(_loading(args))  # resolves the hub or built-in name; offline, one line
    plan = ExportPlan(Path(info.model_dir))
    if builds(args) and args.adapters:
        from swift_infer.merge import check_adapter_fits

        check_adapter_fits(adapter_path(args.adapters[0]), plan.model_dir)
    if args.quant_method:
        from swift_export.quantize import check_quantization

        plan.calibration = check_quantization(args, plan.model_dir)
    if args.to_ollama:
        from swift_export.ollama_export import check_ollama

        check_ollama(args, plan.model_dir)
    return plan


def _build(args: Any, plan: ExportPlan) -> Path:
    """Run the export's steps; returns the directory it wrote."""
    output = Path(args.output_dir)
    scratch_parent = output.expanduser().resolve().parent
    scratch_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.work-", dir=scratch_parent) as scratch:
        source = _merged(args, output, Path(scratch)) if args.adapters else plan.model_dir
        if args.quant_method:
            from swift_export.quantize import quantize

            with staged(output) as staging:
                quantize(args, source, staging, plan.calibration)
                _save_args(args, staging, output)
            done = f"{args.quant_method} {args.quant_bits}-bit model"
        elif args.to_ollama:
            from swift_export.ollama_export import write_ollama

            with staged(output) as staging:
                write_ollama(args, source, staging)
            done = "GGUF model and Ollama Modelfile"
        else:
            done = "merged model"  # --merge_lora alone: the merge wrote the output
    print(f"swift: wrote the {done} to {output}; next: {_next_step(args, output)}", file=sys.stderr)
    return output


def _merged(args: Any, output: Path, scratch: Path) -> Path:
    """The adapter merged into its base, on disk: the output itself (--merge_lora alone), `<checkpoint>-merged`
    kept beside the adapter (--merge_lora true before another step), or a scratch copy (no --merge_lora)."""
    from swift_infer.merge import merge_adapter

    adapter = adapter_path(args.adapters[0])
    if not args.merge_lora:
        target = scratch / "merged"
    elif not (args.quant_method or args.to_ollama):
        target = output
    else:
        target = Path(f"{adapter.rstrip('/')}-merged")
        if (target / "config.json").is_file():
            print(f"swift: using the merged model already at {target}", file=sys.stderr)
            return target
        check_writable_dir(target, "--adapters (its -merged directory)")
    merge_adapter(_loading(args), adapter, target, "export")
    if target not in (output, scratch / "merged"):
        print(f"swift: merged {adapter} into {target}", file=sys.stderr)
    return target


def _save_args(args: Any, staging: Path, output: Path) -> None:
    """args.json saying how to load the export: as a plain model (its quantization is in config.json)."""
    saved = _loading(args)
    saved.model, saved.adapters = str(output), []
    saved.max_length = None  # the calibration length, not a limit for whoever loads the export
    save_args(saved, staging, "export")


def _source_folder(args: Any, model_dir: Path) -> Path:
    """What --push_to_hub alone pushes: the adapter when one is given, else the model directory."""
    return Path(adapter_path(args.adapters[0])) if args.adapters else model_dir


def _next_step(args: Any, output: Path) -> str:
    if args.to_ollama:
        return f"ollama create my-model -f {output / 'Modelfile'}"
    return f"{swift_command()} infer --model {output}"
