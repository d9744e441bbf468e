"""Runs one web-ui job and writes down how it ended.

Run as (by swift_app.jobs, never by hand):
    python -m swift_app.job_runner <output_dir>/web_ui/jobs/<id>.json

The runner leads the job's session: the swift command runs as its child in the same process group, so
a stop reaches both. On SIGTERM the runner only notes that the job was stopped and waits for the
command to finish stopping (it got the same signal), then writes `<id>.exit`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from swift_app.jobs import write_exit


def main(record: Path) -> int:
    job = json.loads(record.read_text(encoding="utf-8"))
    stopped = False

    def note_stop(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True  # the command got the signal too (same process group): wait for it to end

    signal.signal(signal.SIGTERM, note_stop)
    signal.signal(signal.SIGINT, note_stop)
    print(f"swift web-ui: {job['command']} job {job['id']} started", flush=True)
    process = subprocess.Popen([sys.executable, "-m", "swift_args.cli", job["command"], *job["argv"]],
                               cwd=job["cwd"], stdin=subprocess.DEVNULL)
    code = process.wait()  # (a signal does not interrupt it: Python retries the wait)
    print(f"swift web-ui: job {job['id']} " + ("stopped" if stopped else f"ended with exit code {code}"), flush=True)
    write_exit(record, {"code": code, "stopped": stopped})
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
