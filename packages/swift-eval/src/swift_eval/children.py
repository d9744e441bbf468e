"""The processes `swift eval` starts (the local `swift deploy`, the evaluator), and the promise that none
outlives it.

Each child runs in its own session, so a Ctrl-C at the terminal reaches `swift eval` alone and it stops
the children in order. Should `swift eval` itself be killed (SIGKILL leaves it no last word), Linux sends
each child SIGTERM as its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `argv` with its output appended to `log`, in a session of its own, ended when we die."""
    parent = os.getpid()
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **(env or {})},
                                preexec_fn=lambda: _die_with(parent))


def _die_with(parent: int) -> None:
    """In the child, before it runs: SIGTERM when the parent dies (Linux), or now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


def stop(process: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM to the child's whole session, SIGKILL to whatever of it is left after `grace` seconds. The group is
    signalled even when the child itself has exited: what it started may still run."""
    if process is None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the child leads its own session, so its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (a pid is not reused while a group of that id has members)


def last_lines(log: Path, count: int = 12) -> list[str]:
    """The last `count` non-empty lines of `log`, progress-bar redraws (carriage returns) reduced to their last."""
    try:
        text = log.read_bytes()[-20000:].decode("utf-8", "replace")
    except OSError:
        return []
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in text.splitlines()]
    return [line for line in lines if line.strip()][-count:]
