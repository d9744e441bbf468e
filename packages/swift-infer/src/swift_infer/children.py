"""Child processes in sessions of their own: `swift eval`'s deployment and evaluator, `swift app`'s deployment,
`swift web-ui`'s jobs.

Each child runs in its own session, so a Ctrl-C at the terminal reaches the parent alone and it stops
the children in order, each whole session at once. Should the parent itself be killed (SIGKILL leaves it
no last word), Linux sends each child SIGTERM as its parent dies (PR_SET_PDEATHSIG); a web-ui job opts
out of that, since it is meant to outlive the page that started it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def start(argv: list[str], log: Path, env: dict[str, str] | None = None,
          die_with_parent: bool = True) -> subprocess.Popen:
    """Start `argv` with its output appended to `log`, in a session of its own, ended when we die (unless
    `die_with_parent` is False). Linux's "we" is the calling thread: start a child that must outlive a worker
    thread (gradio runs handlers in threads it retires when idle) from a thread that lives as long as it should."""
    parent = os.getpid()
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **(env or {})},
                                preexec_fn=(lambda: _die_with(parent)) if die_with_parent else None)


def _die_with(parent: int) -> None:
    """In the child, before it runs: SIGTERM when the parent dies (Linux), or now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


def stop_group(group: int, grace: float, alive: Callable[[], bool]) -> None:
    """SIGTERM to process group `group`, SIGKILL after `grace` seconds unless `alive()` turned False first: for a
    session we did not start ourselves (a web-ui job started before the web UI restarted)."""
    _signal(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive():  # (never to a group that has ended: its id could belong to another one by now)
        _signal(group, signal.SIGKILL)


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
    _signal(process.pid, sig)  # the child leads its own session, so its group id is its pid


def _signal(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
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
