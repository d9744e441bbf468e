"""The commands `swift web-ui` starts, kept on disk so that they outlive the page and the web UI itself.

Each job is three files in `<output_dir>/web_ui/jobs/`: `<id>.json` (what was run, when, its runner's
pid), `<id>.log` (everything it printed) and, once it has ended, `<id>.exit` (its exit code, written
by the runner). A job runs under `python -m swift_app.job_runner`, the leader of a session of its own
and not a child that dies with the web UI: reloading the page or restarting `swift web-ui` finds every
job again from these files. Stopping one signals its whole process group: SIGTERM, then SIGKILL after a
grace period; nothing is ever killed by name.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from swift_infer import children

# Seconds a stopped job gets to save and exit after SIGTERM before its group is killed.
STOP_GRACE = 15.0
RUN_DIR_LINE = re.compile(r"^swift: run directory (.+)$", re.MULTILINE)
# The environment variable that marks every process of a job with its id.
JOB_MARKER = "SWIFT_WEB_UI_JOB"


@dataclass
class Job:
    id: str
    command: str
    argv: list[str]  # the arguments after `swift <command>`
    cwd: str
    started: float
    pid: int | None = None  # the runner's, which is also its process group and session id
    run_dir: str | None = None  # a training job's, once its log has named it

    @property
    def command_line(self) -> str:
        import shlex

        return shlex.join(["swift", self.command, *self.argv])


class JobStore:
    """The jobs under one output directory."""

    def __init__(self, output_dir: str | Path):
        self.dir = Path(output_dir) / "web_ui" / "jobs"

    def start(self, command: str, argv: list[str]) -> Job:
        self.dir.mkdir(parents=True, exist_ok=True)
        job = Job(f"{time.strftime('%Y%m%d-%H%M%S')}-{command}-{secrets.token_hex(2)}", command, argv,
                  os.getcwd(), time.time())
        self._write(job)
        runner = [sys.executable, "-m", "swift_app.job_runner", str(self.record(job.id))]
        # A session of its own, not tied to our life: the job goes on when the web UI stops or restarts. Every
        # process of the job inherits the marker, which tells its members from a stranger that reused a pid.
        process = children.start(runner, self.log(job.id), env={JOB_MARKER: job.id}, die_with_parent=False)
        job.pid = process.pid
        self._write(job)
        # Reap it when it ends, so that no zombie is left in the process table while the web UI runs.
        threading.Thread(target=process.wait, daemon=True).start()
        return job

    def stop(self, job_id: str, grace: float = STOP_GRACE) -> None:
        """SIGTERM to the job's process group, SIGKILL to what is left of it after `grace` seconds."""
        job = self.load(job_id)
        if job.pid is None or not self.members(job):
            return
        children.stop_group(job.pid, grace, alive=lambda: bool(self.members(job)))
        if not self.exit_path(job_id).exists():  # killed before its runner could write down how it ended
            write_exit(self.record(job_id), {"code": -9, "stopped": True})

    def jobs(self) -> list[Job]:
        """Every job, newest first."""
        found = []
        for path in self.dir.glob("*.json") if self.dir.is_dir() else []:
            try:
                found.append(self.load(path.stem))
            except (OSError, ValueError, TypeError):
                continue  # a record being written, or not ours
        return sorted(found, key=lambda job: job.started, reverse=True)

    def load(self, job_id: str) -> Job:
        return Job(**json.loads(self.record(job_id).read_text(encoding="utf-8")))

    def status(self, job: Job) -> str:
        ended = self.ending(job.id)
        if ended is None:
            members = self.members(job)
            if members:
                return "running" if job.pid in members else "running (its runner was killed: Stop still ends it)"
            ended = self.ending(job.id)  # it may have ended between the two looks
            if ended is None:
                return "ended (no exit code: the runner was killed)"
        if ended.get("stopped"):
            return "stopped"
        return "finished" if ended.get("code") == 0 else f"failed (exit {ended.get('code')})"

    def is_running(self, job: Job) -> bool:
        return bool(self.members(job))

    def members(self, job: Job) -> list[int]:
        """The live processes of the job: in its process group and carrying its marker (not a reused pid)."""
        if job.pid is None:
            return []
        marker = f"{JOB_MARKER}={job.id}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                state, _, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
                if int(group) == job.pid and state not in ("Z", "X") and \
                        marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue  # gone while we looked, or not ours to read
        return found

    def ending(self, job_id: str) -> dict | None:
        try:
            return json.loads(self.exit_path(job_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def run_dir(self, job: Job) -> Path | None:
        """The run directory a training job announced near the start of its log (kept in its record once found:
        a long run's progress lines would push it out of any tail)."""
        if job.run_dir is None:
            found = RUN_DIR_LINE.search(self.read_log(job.id, 1_000_000, from_start=True))
            if found is None:
                return None
            path = Path(found.group(1).strip())
            job.run_dir = str(path if path.is_absolute() else Path(job.cwd) / path)
            self._write(job)
        return Path(job.run_dir)

    def read_log(self, job_id: str, limit: int = 20_000, from_start: bool = False) -> str:
        """The last (or first) `limit` bytes of the job's log."""
        try:
            with open(self.log(job_id), "rb") as handle:
                if not from_start:
                    handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, handle.tell() - limit))
                return handle.read(limit).decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, job_id: str, lines: int = 40) -> str:
        return "\n".join(children.last_lines(self.log(job_id), lines))

    def record(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.json"

    def log(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.log"

    def exit_path(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.exit"

    def _write(self, job: Job) -> None:
        _write_atomically(self.record(job.id), json.dumps(asdict(job), ensure_ascii=False, indent=1))


def _write_atomically(path: Path, text: str) -> None:
    """Readers (the page, polling) never see half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_exit(record: Path, ending: dict) -> None:
    """The runner's last word: how the job ended, beside its record."""
    _write_atomically(record.with_suffix(".exit"), json.dumps(ending))
