"""Web-ui jobs live on disk: another JobStore (a restarted web UI) finds them, and a stop ends the whole group."""

from __future__ import annotations

import os
import time
from pathlib import Path

from swift_app.jobs import JobStore


def wait_for(condition, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_finished_and_a_failed_job_are_read_back_by_a_new_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = JobStore(tmp_path / "output")
    done = store.start("sft", ["--help"])
    bad = store.start("sft", ["--model", "m", "--lora_rank", "x"])
    wait_for(lambda: store.status(store.load(done.id)) != "running" and store.status(store.load(bad.id)) != "running")

    again = JobStore(tmp_path / "output")  # the web UI restarted: only the files are left
    assert [job.id for job in again.jobs()] == [bad.id, done.id]  # newest first
    assert again.status(again.load(done.id)) == "finished"
    assert again.status(again.load(bad.id)) == "failed (exit 2)"
    assert "swift sft: error: --lora_rank: expected an integer, got 'x'" in again.tail(bad.id)
    assert "--lora_rank" in again.load(done.id).command_line or again.load(done.id).command_line == "swift sft --help"
    assert not list(tmp_path.glob("*.partial")) and sorted(p.suffix for p in (tmp_path / "output/web_ui/jobs").iterdir()) \
        == [".exit", ".exit", ".json", ".json", ".log", ".log"]


def test_a_job_whose_runner_was_killed_says_so(tmp_path: Path, monkeypatch) -> None:
    import signal

    monkeypatch.chdir(tmp_path)
    store = JobStore(tmp_path / "output")
    job = store.start("sft", ["--model", "SmolLM2-135M-Instruct", "--dataset", "self-cognition#8"])
    os.killpg(job.pid, signal.SIGKILL)  # at once: the runner has no time to write how it ended
    wait_for(lambda: not store.is_running(store.load(job.id)), 30)
    assert store.status(store.load(job.id)) == "ended (no exit code: the runner was killed)"


def test_the_run_directory_comes_from_the_jobs_log(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "output")
    store.dir.mkdir(parents=True)
    from swift_app.jobs import Job

    job = Job("j1", "sft", [], str(tmp_path), 0.0)
    store.log(job.id).write_text("loading\nswift: run directory output/m/v0-1\nstep 1\n")
    assert store.run_dir(job) == tmp_path / "output/m/v0-1"


def test_a_job_whose_runner_alone_was_killed_is_still_stopped_whole(tmp_path: Path, monkeypatch) -> None:
    """The runner killed (say, by the OOM killer) and its command still running: the job says so, and Stop ends
    the command all the same."""
    import signal

    monkeypatch.chdir(tmp_path)
    store = JobStore(tmp_path / "output")
    job = store.start("sft", ["--model", "SmolLM2-135M-Instruct", "--dataset", "self-cognition#400",
                              "--max_steps", "100000", "--output_dir", str(tmp_path / "out")])
    wait_for(lambda: len(store.members(job)) == 2)  # the runner and its command
    os.kill(job.pid, signal.SIGKILL)
    wait_for(lambda: job.pid not in store.members(job), 30)
    assert store.status(job).startswith("running (its runner was killed")
    store.stop(job.id, grace=20)
    assert not store.members(job)  # (an orphan may stay a zombie until init reaps it; none runs)
    assert store.status(store.load(job.id)) == "stopped"
