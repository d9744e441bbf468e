"""Every argument the 3.x reference documents exists in our schemas, with the reference's default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from swift_args.commands import COMMANDS
from swift_args.fields import specs

SEEDS = Path(__file__).resolve().parents[3].parent / "shared" / "seeds"
# Documented names that are not arguments: environment variables (read by the launcher or as
# model_kwargs) and prose bullets.
NOT_ARGUMENTS = {"IMAGE_FACTOR", "MIN_PIXELS", "MAX_PIXELS", "MAX_RATIO", "VIDEO_MIN_PIXELS", "VIDEO_MAX_PIXELS",
                 "VIDEO_TOTAL_PIXELS", "FRAME_FACTOR", "FPS", "FPS_MIN_FRAMES", "FPS_MAX_FRAMES", "SAMPLING_RATE",
                 "MAX_NUM", "INPUT_SIZE", "VIDEO_MAX_NUM", "VIDEO_SEGMENTS", "MAX_SLICE_NUMS", "VIDEO_MAX_SLICE_NUMS",
                 "MAX_NUM_FRAMES", "INIT_TTS", "INIT_AUDIO", "MAX_PARTITION", "HD_NUM", "NUM_FRAMES", "NUM_CROPS",
                 "N_MELS", "CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES", "MODELSCOPE_CACHE", "NPROC_PER_NODE",
                 "MASTER_PORT", "MASTER_ADDR", "NNODES", "NODE_RANK", "Note"}
_BULLET = re.compile(r"^\s*- (?:🔥)?(?:\*\*|`)?([A-Za-z_][A-Za-z0-9_]*)(?:\*\*|`)?(?: \(default[^)]*\))?:")


def reference_names() -> list[str]:
    files = sorted(SEEDS.glob("001_*.txt"))
    if not files:
        pytest.skip(f"the argument reference is not at {SEEDS}")
    names = []
    for line in files[0].read_text(encoding="utf-8").splitlines():
        match = _BULLET.match(line)
        if match and match.group(1) not in NOT_ARGUMENTS:
            names.append(match.group(1))
    return names


def test_every_reference_argument_is_in_a_schema() -> None:
    known = {name for command in COMMANDS.values() for name in specs(command.schema)}
    missing = sorted(set(reference_names()) - known)
    assert missing == []


def test_reference_defaults_we_checked_by_hand() -> None:
    sft = specs(COMMANDS["sft"].schema)
    expected = {
        "lora_rank": 8, "lora_alpha": 32, "lora_dropout": 0.05, "weight_decay": 0.1, "logging_steps": 5,
        "save_steps": 500, "num_train_epochs": 3.0, "gradient_checkpointing": True, "split_dataset_ratio": 0.01,
        "data_seed": 42, "seed": 42, "truncation_strategy": "delete", "tools_prompt": "react_en",
        "target_modules": ["all-linear"], "freeze_vit": True, "vera_rank": 256, "adalora_init_r": 12,
        "galore_rank": 128, "lisa_step_interval": 20, "reft_rank": 4, "fourier_n_frequency": 2000,
        "report_to": ["tensorboard"], "max_grad_norm": 1.0, "lr_scheduler_type": "cosine",
    }
    assert {k: sft[k].default for k in expected} == expected
    infer = specs(COMMANDS["infer"].schema)
    assert (infer["gpu_memory_utilization"].default, infer["max_num_seqs"].default, infer["cache_max_entry_count"].default,
            infer["max_shard_size"].default, infer["vllm_max_lora_rank"].default) == (0.9, 256, 0.8, "5GB", 16)
