"""The torchrun environment variables the reference names (NPROC_PER_NODE, NNODES, ...).

Setting NPROC_PER_NODE or NNODES makes a command relaunch itself under torchrun; this module
only reads and checks them, so a typo fails before any process starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from swift_args.errors import ArgumentError


@dataclass(frozen=True)
class DistributedLaunch:
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def requested(self) -> bool:
        """Whether the user asked for torchrun (NPROC_PER_NODE or NNODES set)."""
        return self.nproc_per_node > 1 or self.nnodes > 1

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def should_relaunch(self) -> bool:
        """Asked for torchrun, and this process is the launcher rather than one of its workers."""
        return self.requested and "LOCAL_RANK" not in os.environ

    def torchrun_command(self, command: str, argv: list[str]) -> list[str]:
        """`swift COMMAND ARGV` once per process, under torchrun, with this interpreter."""
        return [sys.executable, "-m", "torch.distributed.run", *self.torchrun_args(), "-m", "swift_args.cli", command, *argv]

    def torchrun_args(self) -> list[str]:
        return [
            f"--nproc_per_node={self.nproc_per_node}",
            f"--nnodes={self.nnodes}",
            f"--node_rank={self.node_rank}",
            f"--master_addr={self.master_addr}",
            f"--master_port={self.master_port}",
        ]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DistributedLaunch:
        env = os.environ if env is None else env
        problems: list[str] = []

        def integer(name: str, default: int, minimum: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be an integer, got '{raw}'")
                return default
            if value < minimum:
                problems.append(f"{name} must be at least {minimum}, got {value}")
            return value

        launch = cls(
            nproc_per_node=integer("NPROC_PER_NODE", 1, 1),
            nnodes=integer("NNODES", 1, 1),
            node_rank=integer("NODE_RANK", 0, 0),
            master_addr=env.get("MASTER_ADDR", "").strip() or "127.0.0.1",
            master_port=integer("MASTER_PORT", 29500, 1),
        )
        if launch.master_port > 65535:
            problems.append(f"MASTER_PORT must be at most 65535, got {launch.master_port}")
        if not problems and launch.node_rank >= launch.nnodes:
            problems.append(f"NODE_RANK must be below NNODES ({launch.nnodes}), got {launch.node_rank}")
        if problems:
            raise ArgumentError(problems)
        return launch
