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


def published(run: Path, step: int) -> Path:
    staging = run / f".tmp-checkpoint-{step}" / f"checkpoint-{step}"
    staging.mkdir(parents=True)
    (staging / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    checkpoints.publish(staging, run / f"checkpoint-{step}", step)
    staging.parent.rmdir()
    return run / f"checkpoint-{step}"


def test_rotation_hides_a_checkpoint_before_deleting_it(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    for step in (2, 4, 6):
        published(tmp_path, step)

    def killed(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - the process dies mid-delete
        (Path(path) / "adapter_model.safetensors").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.shutil, "rmtree", killed)
    try:
        checkpoints.rotate(tmp_path, keep=2, best=None)
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-checkpoint-2.deleting", "checkpoint-4", "checkpoint-6"]
    assert all(checkpoints.verify(c) is None for c in checkpoints.complete_checkpoints(tmp_path))
    checkpoints.clean_staging(tmp_path)  # what the next run in this directory does first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-6"]


def test_a_damaged_checkpoint_of_the_same_step_is_replaced(tmp_path: Path) -> None:
    old = published(tmp_path, 4)
    (old / "adapter_model.safetensors").write_bytes(b"\xff")
    published(tmp_path, 4)
    assert checkpoints.verify(tmp_path / "checkpoint-4") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]
