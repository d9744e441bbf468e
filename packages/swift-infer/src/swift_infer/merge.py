"""`swift merge-lora` (= `swift export --merge_lora true`): adapter + base -> one plain model directory.

Run as: swift merge-lora --adapters output/<model>/vN-.../checkpoint-N
The result (`<checkpoint>-merged` unless --output_dir says otherwise) holds safetensors shards,
the tokenizer with its chat template, the generation config and an args.json, so every later
stage loads it as `--model` like any other model.
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from swift_args import ArgumentError, Invocation, save_args
from swift_args.adapters import adapter_path
from swift_args.files import apply_umask
from swift_args.run_dir import check_writable_dir
from swift_args.shell import swift_command


def run_merge(invocation: Invocation) -> int:
    args = invocation.args
    output = Path(args.output_dir)
    check_writable_dir(output, "--output_dir")  # also its parent, where the merged model is staged
    if output.exists() and any(output.iterdir()) and not args.exist_ok:
        raise ArgumentError(f"--output_dir {output} exists and is not empty; pass --exist_ok true to overwrite it")
    adapter = adapter_path(args.adapters[0])
    check_mergeable(adapter)
    merge_adapter(args, adapter, output, invocation.command.name)
    print(f"swift: merged {adapter} into {output}; next: {swift_command()} infer --model {output}", file=sys.stderr)
    return 0


def merge_for_inference(args: Any) -> None:
    """`swift infer|deploy --merge_lora true`: merge the adapter into its base once (into
    `<adapter>-merged`, reused when it is already there), then load that instead of base + adapter."""
    if not args.merge_lora or not args.adapters:
        return
    if len(args.adapters) > 1:
        raise ArgumentError("--merge_lora true merges one adapter; pass one --adapters, or drop --merge_lora to "
                            "serve several side by side")
    adapter = adapter_path(args.adapters[0])
    check_mergeable(adapter)
    output = Path(f"{adapter.rstrip('/')}-merged")
    if (output / "config.json").is_file():
        print(f"swift: using the merged model already at {output}", file=sys.stderr)
    else:
        check_writable_dir(output, "--adapters (its -merged directory)")
        merge_adapter(args, adapter, output, "merge-lora")
        print(f"swift: merged {adapter} into {output}", file=sys.stderr)
    args.model, args.adapters = str(output), []


def check_mergeable(adapter: str) -> None:
    """Bottleneck adapters and ReFT add nonlinear modules: there are no merged weights to write."""
    from swift_infer import own_tuners

    if own_tuners.is_own_tuner(adapter):
        raise ArgumentError(f"--adapters {adapter}: a {own_tuners.kind_of(adapter)} tuner adds modules that cannot be "
                            "merged into the weights; drop --merge_lora and load it with --adapters")


def merge_adapter(args: Any, adapter: str, output: Path, command: str) -> None:
    """Load the base of `adapter`, merge it, and write the whole model to `output` (complete, or not there)."""
    from swift_infer.loading import DTYPES, attach_adapter, load_model

    loaded = load_model(args, device="cpu")  # merging needs no accelerator, and never runs out of its memory
    model = attach_adapter(loaded.model, adapter).merge_and_unload()
    if args.torch_dtype is None and loaded.info.torch_dtype:  # merged in float32, saved as the base was
        model = model.to(DTYPES.get(str(loaded.info.torch_dtype).replace("torch.", ""), torch.float32))
    staging = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=args.safe_serialization, max_shard_size=args.max_shard_size)
    loaded.tokenizer.save_pretrained(staging)
    saved = copy.copy(args)
    saved.model, saved.adapters = str(output), []
    save_args(saved, staging, command)
    apply_umask(staging)  # safetensors writes 0600; a merged model is shared like any other
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
