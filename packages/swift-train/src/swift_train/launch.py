"""NPROC_PER_NODE / NNODES: relaunch the same command under torchrun, one run directory for all.

The launching process creates the run directory (or picks the one a resumed run continues) and
writes args.json once; the workers get its path through SWIFT_RUN_DIR and write their checkpoints
and logs (rank 0) there, and the checkpoint it verified through SWIFT_RESUME_CHECKPOINT.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from swift_args import Invocation
from swift_args.launch import DistributedLaunch
from swift_args.run_dir import RESUME_ENV, RUN_DIR_ENV, started_run
from swift_args.shell import COMMAND_ENV, swift_command


class _WorkersFailed(Exception):
    def __init__(self, exit_code: int):
        self.exit_code = exit_code


def relaunch_under_torchrun(invocation: Invocation, model_dir: Path, resume: Path | None = None,
                            continue_in: Path | None = None) -> int | None:
    """Run the command under torchrun when asked to; None when this process should train itself.

    If the workers fail before the first step, the run directory made for them goes again.
    `resume`: the verified checkpoint; `continue_in`: the run directory a resumed run goes on in.
    """
    launch = DistributedLaunch.from_env()
    if not launch.should_relaunch:
        return None
    try:
        with started_run(invocation.args, invocation.command.name, model_dir, continue_in) as run_dir:
            print(f"swift: run directory {run_dir}; starting {launch.world_size} processes with torchrun", file=sys.stderr)
            command = launch.torchrun_command(invocation.command.name, invocation.argv)
            env = {**os.environ, RUN_DIR_ENV: str(run_dir), COMMAND_ENV: swift_command(),
                   **({RESUME_ENV: str(resume)} if resume is not None else {})}
            exit_code = subprocess.call(command, env=env)
            if exit_code != 0:
                raise _WorkersFailed(exit_code)
    except _WorkersFailed as failed:
        return failed.exit_code
    return 0
