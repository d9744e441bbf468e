"""NPROC_PER_NODE / NNODES: relaunch the same command under torchrun, one run directory for all.

The launching process creates the run directory and writes args.json once; the workers get its
path through SWIFT_RUN_DIR and write their checkpoints and logs (rank 0) there.
"""

from __future__ import annotations

import os
import subprocess
import sys

from swift_args import Invocation
from swift_args.launch import DistributedLaunch
from swift_args.run_dir import RUN_DIR_ENV, start_run


def relaunch_under_torchrun(invocation: Invocation) -> int | None:
    """Run the command under torchrun when asked to; None when this process should train itself."""
    launch = DistributedLaunch.from_env()
    if not launch.should_relaunch:
        return None
    run_dir = start_run(invocation.args, invocation.command.name)
    print(f"swift: run directory {run_dir}; starting {launch.world_size} processes with torchrun", file=sys.stderr)
    command = launch.torchrun_command(invocation.command.name, invocation.argv)
    return subprocess.call(command, env={**os.environ, RUN_DIR_ENV: str(run_dir)})
