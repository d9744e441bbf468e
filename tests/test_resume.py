"""Checkpoints that break, and resuming past them, as a user meets them: kills, damaged files, a NaN loss."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from swift_args.checkpoint_files import verify
from swift_e2e import kill_when, only_run_dir, read_log, run_swift, tiny_sft


def steps(run_dir: Path) -> list[int]:
    return [r["global_step"] for r in read_log(run_dir) if "loss" in r]


def events(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in read_log(run_dir) if "event" in r]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("swift sft: error:")]


KILL_WHILE_DELETING = '''
import shutil, time
from pathlib import Path

_rmtree = shutil.rmtree

def slow_rmtree(path, *args, **kwargs):
    path = Path(path)
    if (path / "swift_checkpoint.json").is_file():  # deleting a checkpoint: get one file out, then be killed
        (path / "adapter_model.safetensors").unlink()
        Path({signal!r}).write_text(str(path))
        time.sleep(600)
    _rmtree(path, *args, **kwargs)

shutil.rmtree = slow_rmtree
'''


def test_a_run_killed_while_deleting_an_old_checkpoint_leaves_none_half_deleted(tmp_path: Path, tiny_chat_model: Path) -> None:
    signal_file, plugin, run = tmp_path / "deleting", tmp_path / "kill.py", tmp_path / "run"
    plugin.write_text(KILL_WHILE_DELETING.format(signal=str(signal_file)))
    command = tiny_sft(tiny_chat_model, run, "--max_steps", "8", "--save_steps", "2", "--save_total_limit", "2")
    assert kill_when(signal_file, *command, "--external_plugins", str(plugin)), "the run never deleted a checkpoint"
    kept = sorted(run.glob("checkpoint-*"))
    assert [c.name for c in kept] == ["checkpoint-4", "checkpoint-6"]  # checkpoint-2 is gone, not half there
    assert all(verify(c) is None for c in kept)
    resumed = run_swift(*command, "--resume_from_checkpoint", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert steps(run) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert not list(run.glob(".tmp-*"))  # the half-deleted leftover went when the resumed run started


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_chat_model: Path) -> Path:
    """A LoRA run of 6 steps with checkpoints at 2, 4 and 6."""
    run = tmp_path_factory.mktemp("trained") / "run"
    result = run_swift(*tiny_sft(tiny_chat_model, run, "--max_steps", "6", "--save_steps", "2"))
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def overwrite_with_ff(path: Path) -> None:
    path.write_bytes(b"\xff" * path.stat().st_size)  # same size: only the checksum can tell


DAMAGE = [
    ("adapter_model.safetensors", truncate, "is damaged: {now} bytes, {then} when saved"),
    ("optimizer.pt", truncate, "is damaged: {now} bytes, {then} when saved"),
    ("adapter_model.safetensors", overwrite_with_ff, "is damaged: its content differs from when it was saved (checksum)"),
]


@pytest.mark.parametrize(("name", "damage", "how"), DAMAGE, ids=["truncated adapter", "truncated optimizer", "0xFF adapter"])
def test_a_damaged_checkpoint_is_named_and_resuming_the_run_falls_back(
    tmp_path: Path, tiny_chat_model: Path, trained_run: Path, name: str, damage: Callable[[Path], None], how: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, symlinks=True)
    then = (run / "checkpoint-6" / name).stat().st_size
    damage(run / "checkpoint-6" / name)
    problem = f"checkpoint-6/{name} " + how.format(now=(run / "checkpoint-6" / name).stat().st_size, then=then)
    log_before = (run / "logging.jsonl").read_text()
    command = tiny_sft(tiny_chat_model, run, "--max_steps", "6", "--save_steps", "2")

    named = run_swift(*command, "--resume_from_checkpoint", str(run / "checkpoint-6"))
    assert named.returncode == 2
    assert error_lines(named.stderr) == [f"swift sft: error: --resume_from_checkpoint {run / 'checkpoint-6'}: {problem}; "
                                         f"use the previous whole checkpoint: --resume_from_checkpoint {run / 'checkpoint-4'}"]
    assert "Traceback" not in named.stderr and (run / "logging.jsonl").read_text() == log_before

    if name != "optimizer.pt":  # inference reads the weights only: a damaged optimizer state does not stop it
        infer = run_swift("infer", "--adapters", str(run / "checkpoint-6"), input="")
        assert infer.returncode == 2
        assert [line for line in infer.stderr.splitlines() if line.startswith("swift infer: error:")] == [
            f"swift infer: error: --adapters {run / 'checkpoint-6'}: {problem}; "
            f"use the previous whole checkpoint: --adapters {run / 'checkpoint-4'}"]

    resumed = run_swift(*command, "--resume_from_checkpoint", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"swift: skipping checkpoint-6: {problem}; resuming from checkpoint-4" in resumed.stderr.splitlines()
    assert steps(run) == [1, 2, 3, 4, 5, 6, 5, 6]  # one history: the first run, then the steps trained again
    assert events(run) == [{"event": "resumed", "checkpoint": "checkpoint-4", "global_step": 4}]
    assert verify(run / "checkpoint-6") is None  # saved again, whole


CORRUPT_AT_STEP_5 = '''
import torch
from swift_train.trainer import SwiftTrainer

_training_step = SwiftTrainer.training_step

def training_step(self, model, inputs, num_items_in_batch=None):
    if self.state.global_step == 4:  # the fifth step, after checkpoint-4 was saved: a weight goes NaN
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if "lora_B" in n).fill_(float("nan"))
    return _training_step(self, model, inputs, num_items_in_batch)

SwiftTrainer.training_step = training_step
'''


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path, tiny_chat_model: Path) -> None:
    plugin, run = tmp_path / "corrupt.py", tmp_path / "run"
    plugin.write_text(CORRUPT_AT_STEP_5)
    result = run_swift(*tiny_sft(tiny_chat_model, run, "--max_steps", "8", "--save_steps", "2",
                                 "--external_plugins", str(plugin)))
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"swift sft: error: training stopped at step 5: the loss became nan (grad_norm nan); the last good checkpoint "
        f"is {run / 'checkpoint-4'}: lower --learning_rate, check the data, then resume with --resume_from_checkpoint {run}"]
    assert "Traceback" not in result.stderr and "swift: done." not in result.stdout
    assert sorted(p.name for p in run.glob("*checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]  # nothing after step 5
    assert verify(run / "checkpoint-4") is None
    assert steps(run) == [1, 2, 3, 4]
    assert [e["global_step"] for e in events(run) if e["event"] == "stopped"] == [5]


def test_a_huge_learning_rate_stops_at_the_first_nan(tmp_path: Path, tiny_chat_model: Path) -> None:
    result = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "run", "--max_steps", "6", "--save_steps", "3",
                                 "--learning_rate", "1e30"))
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        "swift sft: error: training stopped at step 2: the loss became nan (grad_norm nan); no checkpoint was saved "
        "before it: lower --learning_rate, check the data, then start again"]
    assert not list((tmp_path / "run").glob("*checkpoint-*"))


WEIGHT_TO_INF_IN_STEP_4 = '''
import torch
from swift_train.trainer import SwiftTrainer

_training_step = SwiftTrainer.training_step

def training_step(self, model, inputs, num_items_in_batch=None):
    loss = _training_step(self, model, inputs, num_items_in_batch)
    if self.state.global_step == 3:  # after step 4's loss and gradients, before its update: they stay finite
        with torch.no_grad():
            next(p for p in model.parameters() if p.requires_grad).fill_(float("inf"))
    return loss

SwiftTrainer.training_step = training_step
'''


def test_weights_that_became_inf_are_never_saved(tmp_path: Path, tiny_chat_model: Path) -> None:
    plugin, run = tmp_path / "inf.py", tmp_path / "run"
    plugin.write_text(WEIGHT_TO_INF_IN_STEP_4)
    result = run_swift(*tiny_sft(tiny_chat_model, run, "--max_steps", "6", "--save_steps", "2"),
                       "--external_plugins", str(plugin))
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        "swift sft: error: training stopped at step 4: the trained weights became nan or inf in this step's update; "
        f"the last good checkpoint is {run / 'checkpoint-2'}: lower --learning_rate, check the data, then resume "
        f"with --resume_from_checkpoint {run}"]
    assert sorted(p.name for p in run.glob("*checkpoint-*")) == ["checkpoint-2"]


CRASH_AT_STEP_5 = '''
import os
from swift_train.trainer import SwiftTrainer

_training_step = SwiftTrainer.training_step

def training_step(self, model, inputs, num_items_in_batch=None):
    if self.state.global_step == 4:
        os._exit(1)  # a crash: no cleanup, no exception handler
    return _training_step(self, model, inputs, num_items_in_batch)

SwiftTrainer.training_step = training_step
'''


def test_resuming_from_the_output_dir_continues_the_run_in_its_own_directory(tmp_path: Path, tiny_chat_model: Path) -> None:
    plugin, output = tmp_path / "crash.py", tmp_path / "output"
    plugin.write_text(CRASH_AT_STEP_5)
    command = [*tiny_sft(tiny_chat_model, output, "--max_steps", "6", "--save_steps", "2"), "--add_version", "true"]
    crashed = run_swift(*command, "--external_plugins", str(plugin))
    assert crashed.returncode == 1
    run = only_run_dir(output)
    (output / "v1-20990101-000000").mkdir()  # what an older swift's failed resume left: a run dir without checkpoints
    (output / "v1-20990101-000000" / "args.json").write_text("{}")
    (run / ".tmp-checkpoint-6" / "checkpoint-6").mkdir(parents=True)  # a save the crash interrupted

    resumed = run_swift(*command, "--resume_from_checkpoint", str(output))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert sorted(p.name for p in output.iterdir()) == sorted([run.name, "v1-20990101-000000"])  # no new run dir
    assert f"swift: resumed from checkpoint-4 at step 4 in {run}" in resumed.stderr.splitlines()
    assert steps(run) == [1, 2, 3, 4, 5, 6]
    records = read_log(run)
    resumed_at = next(i for i, r in enumerate(records) if r.get("event") == "resumed")
    assert (records[resumed_at - 1]["global_step"], records[resumed_at]["checkpoint"], records[resumed_at + 1]["global_step"]) \
        == (4, "checkpoint-4", 5)
    assert json.loads((run / "args.json").read_text())["resume_from_checkpoint"] == str(output)
    assert not (run / ".tmp-checkpoint-6").exists() and verify(run / "checkpoint-6") is None

    log, args = (run / "logging.jsonl").read_text(), (run / "args.json").read_text()
    again = run_swift(*command, "--resume_from_checkpoint", str(run))  # nothing left to train: refused before any work
    assert again.returncode == 2
    assert error_lines(again.stderr) == [f"swift sft: error: --resume_from_checkpoint {run / 'checkpoint-6'}: the run had "
                                         "already reached step 6 of --max_steps 6; raise --max_steps to train further"]
    assert (run / "logging.jsonl").read_text() == log and (run / "args.json").read_text() == args
