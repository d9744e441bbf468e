"""NPROC_PER_NODE for `swift infer` over a dataset: each process answers every N-th row on its own
device, writes its own part file, and rank 0 merges the parts into the result file in dataset order.

The launching process fixes the result path before starting the workers, so all of them agree on
it (the default name has a timestamp).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, Invocation
from swift_args.launch import DistributedLaunch


def relaunch_under_torchrun(invocation: Invocation, result_path: Path, dataset_mode: bool) -> int | None:
    """Start the workers when NPROC_PER_NODE / NNODES ask for them; None in a worker or a single process."""
    launch = DistributedLaunch.from_env()
    if not launch.should_relaunch:
        return None
    if not dataset_mode:
        raise ArgumentError("NPROC_PER_NODE runs swift infer over a dataset (--val_dataset); the terminal chat is one "
                            "process: unset NPROC_PER_NODE")
    argv = list(invocation.argv)
    if "result_path" not in invocation.passed:
        argv += ["--result_path", str(result_path)]
    print(f"swift: starting {launch.world_size} processes with torchrun; results in {result_path}", file=sys.stderr)
    return subprocess.call(launch.torchrun_command("infer", argv))


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def part_path(path: Path, rank: int) -> Path:
    return path.with_name(f"{path.name}.part{rank}")


def wait_for_all(args: Any) -> None:
    """A barrier across the workers (gloo on CPUs, nccl on GPUs, hccl on NPUs unless --ddp_backend says otherwise)."""
    import torch.distributed as dist

    from swift_infer.loading import default_ddp_backend

    if not dist.is_initialized():
        dist.init_process_group(backend=args.ddp_backend or default_ddp_backend())
    dist.barrier()


def merge_parts(path: Path, world: int) -> int:
    """Append the parts to `path`, row i coming from part i % world; returns the rows merged."""
    parts = [part_path(path, rank).read_text(encoding="utf-8").splitlines(keepends=True) for rank in range(world)]
    merged = 0
    with open(path, "a", encoding="utf-8") as out:
        for index in range(max(len(p) for p in parts)):
            for rank_lines in parts:
                if index < len(rank_lines):
                    out.write(rank_lines[index])
                    merged += 1
    for rank in range(world):
        part_path(path, rank).unlink()
    return merged
