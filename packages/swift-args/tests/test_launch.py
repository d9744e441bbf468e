from __future__ import annotations

import pytest

from swift_args import ArgumentError
from swift_args.launch import DistributedLaunch


def test_defaults_mean_a_single_process() -> None:
    launch = DistributedLaunch.from_env({})
    assert (launch.requested, launch.world_size, launch.master_port) == (False, 1, 29500)


def test_multi_node_settings() -> None:
    launch = DistributedLaunch.from_env(
        {"NPROC_PER_NODE": "8", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29600"}
    )
    assert launch.requested and launch.world_size == 16
    assert launch.torchrun_args() == [
        "--nproc_per_node=8", "--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29600",
    ]


def test_bad_values_are_all_reported() -> None:
    with pytest.raises(ArgumentError) as info:
        DistributedLaunch.from_env({"NPROC_PER_NODE": "two", "MASTER_PORT": "70000", "NNODES": "0"})
    assert info.value.problems == [
        "NPROC_PER_NODE must be an integer, got 'two'",
        "NNODES must be at least 1, got 0",
        "MASTER_PORT must be at most 65535, got 70000",
    ]
