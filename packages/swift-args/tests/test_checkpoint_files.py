"""The checkpoint marker: a checkpoint changed after it was saved is named, file by file, before anything loads."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest

from swift_args.checkpoint_files import (
    MARKER,
    complete_checkpoints,
    crc32,
    newest_whole_checkpoint,
    refusal,
    verify,
    write_marker,
)


def saved(run: Path, step: int, saved_at: float | None = None) -> Path:
    """A checkpoint as the trainer leaves it: weights, optimizer state, a nested shard, then the marker."""
    checkpoint = run / f"checkpoint-{step}"
    (checkpoint / "global_step1").mkdir(parents=True)
    (checkpoint / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 4)
    (checkpoint / "adapter_config.json").write_text('{"r": 8}')
    (checkpoint / "optimizer.pt").write_bytes(b"\x01" * 300)
    (checkpoint / "global_step1" / "shard.pt").write_bytes(b"\x02" * 50)
    write_marker(checkpoint, step)
    if saved_at is not None:
        marker = json.loads((checkpoint / MARKER).read_text())
        (checkpoint / MARKER).write_text(json.dumps({**marker, "saved_at": saved_at}))
    return checkpoint


def test_the_marker_records_every_file_with_its_size_and_checksum(tmp_path: Path) -> None:
    checkpoint = saved(tmp_path, 5)
    marker = json.loads((checkpoint / MARKER).read_text())
    assert marker["global_step"] == 5 and marker["saved_at"] > 0
    assert sorted(marker["files"]) == ["adapter_config.json", "adapter_model.safetensors", "global_step1/shard.pt",
                                       "optimizer.pt"]
    weights = (checkpoint / "adapter_model.safetensors").read_bytes()
    assert marker["files"]["adapter_model.safetensors"] == {"size": 1024, "crc32": f"{zlib.crc32(weights):08x}"}
    assert verify(checkpoint) is None


def test_crc32_over_chunks_equals_the_whole_file(tmp_path: Path) -> None:
    data = os.urandom(40 * 2**20 + 7)  # more than two 16 MiB chunks
    (tmp_path / "big").write_bytes(data)
    assert crc32(tmp_path / "big") == f"{zlib.crc32(data):08x}"


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "checkpoint-5/adapter_model.safetensors is damaged: 100 bytes, 1024 when saved"),
    (lambda p: p.write_bytes(b"\xff" * 1024), "checkpoint-5/adapter_model.safetensors is damaged: its content differs "
                                              "from when it was saved (checksum)"),
    (lambda p: p.unlink(), "checkpoint-5/adapter_model.safetensors is missing"),
])
def test_a_damaged_file_is_named_with_how(tmp_path: Path, damage, expected: str) -> None:  # noqa: ANN001
    checkpoint = saved(tmp_path, 5)
    damage(checkpoint / "adapter_model.safetensors")
    assert verify(checkpoint) == expected


def test_inference_checks_only_what_it_loads(tmp_path: Path) -> None:
    checkpoint = saved(tmp_path, 5)
    (checkpoint / "optimizer.pt").write_bytes(b"")
    (checkpoint / "global_step1" / "shard.pt").unlink()
    assert verify(checkpoint) == "checkpoint-5/global_step1/shard.pt is missing"
    assert verify(checkpoint, training_state=False) is None


def test_older_markers_list_names_and_are_checked_for_presence(tmp_path: Path) -> None:
    checkpoint = saved(tmp_path, 5)
    (checkpoint / MARKER).write_text(json.dumps({"global_step": 5, "files": ["adapter_model.safetensors", "global_step1"]}))
    (checkpoint / "adapter_model.safetensors").write_bytes(b"\xff")  # nothing recorded to compare with
    assert verify(checkpoint) is None
    (checkpoint / "adapter_model.safetensors").unlink()
    assert verify(checkpoint) == "checkpoint-5/adapter_model.safetensors is missing"
    (checkpoint / MARKER).write_text('{"global_step": 5}')
    assert verify(checkpoint) is None


def test_no_marker_or_a_broken_one(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-5").mkdir()
    assert verify(tmp_path / "checkpoint-5") == f"checkpoint-5 is incomplete: it has no {MARKER} (its saving never finished)"
    (tmp_path / "checkpoint-5" / MARKER).write_text('{"global_st')
    assert verify(tmp_path / "checkpoint-5") == f"checkpoint-5/{MARKER} is damaged: not a JSON object"


def test_the_newest_whole_checkpoint_across_runs_skips_the_damaged_ones(tmp_path: Path) -> None:
    saved(tmp_path / "v0-20250101-000000", 10, saved_at=100.0)
    saved(tmp_path / "v1-20250102-000000", 5, saved_at=200.0)  # resumed from an earlier step, but saved later
    newest = saved(tmp_path / "v1-20250102-000000", 6, saved_at=300.0)
    (newest / "optimizer.pt").write_bytes(b"\x00" * 300)
    (tmp_path / "v1-20250102-000000" / "checkpoint-7").mkdir()  # its save was killed
    staged = saved(tmp_path / "v1-20250102-000000" / ".tmp-checkpoint-8", 8, saved_at=400.0)  # never renamed in
    found, skipped = newest_whole_checkpoint(tmp_path)
    assert found == tmp_path / "v1-20250102-000000" / "checkpoint-5"
    assert [(c.name, why) for c, why in skipped] == [
        ("checkpoint-6", "checkpoint-6/optimizer.pt is damaged: its content differs from when it was saved (checksum)"),
        ("checkpoint-7", f"checkpoint-7 is incomplete: it has no {MARKER} (its saving never finished)"),
    ]
    assert staged.is_dir()
    assert newest_whole_checkpoint(tmp_path, training_state=False)[0] == newest  # weights only: it will do
    assert complete_checkpoints(tmp_path / "v1-20250102-000000") == [tmp_path / "v1-20250102-000000" / "checkpoint-5", newest]


def test_a_refusal_names_the_previous_whole_checkpoint(tmp_path: Path) -> None:
    saved(tmp_path, 2)
    saved(tmp_path, 4)
    damaged = saved(tmp_path, 6)
    (tmp_path / "checkpoint-4" / "adapter_config.json").unlink()
    (damaged / "adapter_model.safetensors").write_bytes(b"")
    assert refusal(damaged, "--adapters") == (
        f"--adapters {damaged}: checkpoint-6/adapter_model.safetensors is damaged: 0 bytes, 1024 when saved; "
        f"use the previous whole checkpoint: --adapters {tmp_path / 'checkpoint-2'}"
    )
    assert refusal(tmp_path / "checkpoint-2", "--adapters") is None
    (tmp_path / "checkpoint-2" / "optimizer.pt").unlink()
    assert refusal(damaged, "--resume_from_checkpoint", training_state=True).endswith(
        "; no earlier checkpoint of this run is whole")


def test_configs_edited_on_purpose_do_not_make_a_checkpoint_damaged(tmp_path: Path) -> None:
    checkpoint = saved(tmp_path, 5)
    marker = json.loads((checkpoint / MARKER).read_text())
    assert marker["files"]["adapter_config.json"] == {"size": 8}  # text: no checksum
    # Moving an adapter to another machine means pointing it at the base model there.
    (checkpoint / "adapter_config.json").write_text('{"r": 8, "base_model_name_or_path": "/models/base"}')
    assert verify(checkpoint) is None
    (checkpoint / "adapter_config.json").unlink()
    assert verify(checkpoint) == "checkpoint-5/adapter_config.json is missing"


def test_a_hand_edited_marker_is_reported_not_a_traceback(tmp_path: Path) -> None:
    checkpoint = saved(tmp_path, 5)
    (checkpoint / MARKER).write_text('{"global_step": 5, "files": null}')
    assert verify(checkpoint) == f"checkpoint-5/{MARKER} is damaged: 'files' is not a list or an object"
