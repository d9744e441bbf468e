"""A published checkpoint is group-readable like the rest of the run, though safetensors writes 0600."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import torch
from safetensors.torch import save_file
from swift_train import checkpoints


def test_publish_gives_every_file_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        staging = tmp_path / ".tmp-checkpoint-5" / "checkpoint-5"
        staging.mkdir(parents=True)
        save_file({"w": torch.zeros(2)}, str(staging / "adapter_model.safetensors"))
        (staging / "adapter_config.json").write_text(json.dumps({"r": 8}))
        (staging / "adapter_config.json").chmod(0o600)
        final = tmp_path / "checkpoint-5"
        checkpoints.publish(staging, final, step=5)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in final.iterdir()}
    expected = ("adapter_model.safetensors", "adapter_config.json", checkpoints.MARKER)
    assert modes == {name: 0o644 for name in expected}
    assert checkpoints.is_complete(final) and not staging.exists()
