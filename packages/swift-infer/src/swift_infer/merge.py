"""`swift merge-lora` (= `swift export --merge_lora true`): adapter + base -> one plain model directory.

Run as: swift merge-lora --adapters output/<model>/vN-.../checkpoint-N
The result (`<checkpoint>-merged` unless --output_dir says otherwise) holds safetensors shards,
the tokenizer with its chat template, the generation config and an args.json, so every later
stage loads it as `--model` like any other model.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from swift_args import ArgumentError, Invocation, save_args
from swift_args.adapters import adapter_path
from swift_args.files import apply_umask
from swift_args.run_dir import check_writable_dir
from swift_args.shell import swift_command


def run_merge(invocation: Invocation) -> int:
    from swift_infer.loading import DTYPES, attach_adapter, load_model

    args = invocation.args
    output = Path(args.output_dir)
    check_writable_dir(output, "--output_dir")  # also its parent, where the merged model is staged
    if output.exists() and any(output.iterdir()) and not args.exist_ok:
        raise ArgumentError(f"--output_dir {output} exists and is not empty; pass --exist_ok true to overwrite it")
    adapter = adapter_path(args.adapters[0])
    loaded = load_model(args, device="cpu")  # merging needs no accelerator, and never runs out of its memory
    model = attach_adapter(loaded.model, adapter).merge_and_unload()
    if args.torch_dtype is None and loaded.info.torch_dtype:  # merged in float32, saved as the base was
        model = model.to(DTYPES.get(str(loaded.info.torch_dtype).replace("torch.", ""), torch.float32))
    staging = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=args.safe_serialization, max_shard_size=args.max_shard_size)
    loaded.tokenizer.save_pretrained(staging)
    args.model, args.adapters = str(output), []
    save_args(args, staging, invocation.command.name)
    apply_umask(staging)  # safetensors writes 0600; a merged model is shared like any other
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)  # complete, or not there at all
    print(f"swift: merged {adapter} into {output}; next: {swift_command()} infer --model {output}", file=sys.stderr)
    return 0
