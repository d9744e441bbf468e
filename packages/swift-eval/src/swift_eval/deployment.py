"""The local `swift deploy` that `swift eval` evaluates a --model / --adapters through.

It listens on loopback at a free port (or --host / --port when given), with a random API key unless
--api_key is given, so nothing else on the machine can use it by accident. `swift eval` waits for its
/health, at most --deploy_timeout seconds, and checks it is still alive all the while it evaluates.
"""

from __future__ import annotations

import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from swift_args import ArgumentError, RunStopped

from swift_eval import children

# Seconds a stopping server gets beyond its --shutdown_timeout before it is killed.
STOP_MARGIN = 5


@dataclass
class LocalDeployment:
    """`swift deploy <argv>` as a child process; `url` is its OpenAI-compatible base URL once it answers."""

    argv: list[str]
    host: str
    port: int
    api_key: str
    log: Path
    shutdown_timeout: float = 10.0
    process: object = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self, timeout: float) -> None:
        command = [sys.executable, "-m", "swift_args.cli", "deploy", *self.argv, "--host", self.host,
                   "--port", str(self.port), "--api_key", self.api_key]
        self.process = children.start(command, self.log)
        deadline = time.monotonic() + timeout
        while True:
            self.check("while starting")  # first: a /health answer from another server on the port proves nothing
            if self._healthy():
                self.check("while starting")
                return
            if time.monotonic() > deadline:
                raise RunStopped(f"the local deployment did not answer within --deploy_timeout {timeout:g}s; raise "
                                 f"it for a large model (its log: {self.log})")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url.removesuffix("/v1") + "/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def check(self, when: str) -> None:
        """Raise with the server's last log lines if it has exited."""
        code = self.process.poll() if self.process is not None else None
        if code is None:
            return
        lines = children.last_lines(self.log)
        error = next((line for line in reversed(lines) if ": error: " in line), None)
        if code == 2 and error is not None:  # its own bad-input line, e.g. an adapter of another base
            raise ArgumentError(error.split(": error: ", 1)[1])
        tail = "".join(f"\n    {line}" for line in lines)
        raise RunStopped(f"the local deployment exited (code {code}) {when}; its last lines ({self.log}):{tail}")

    def stop(self) -> None:
        children.stop(self.process, self.shutdown_timeout + STOP_MARGIN)


def local_deployment(argv: list[str], host: str | None, port: int | None, api_key: str | None, log: Path,
                     shutdown_timeout: float) -> LocalDeployment:
    """The deployment's address: loopback at a free port unless --host / --port say otherwise (then checked now)."""
    if port is not None:
        from swift_infer.deploy import check_can_listen

        check_can_listen(host or "127.0.0.1", port)
    return LocalDeployment(argv, host or "127.0.0.1", port or free_port(), api_key or secrets.token_urlsafe(24), log,
                           shutdown_timeout)


def port_free(host: str, port: int) -> bool:
    """Whether `swift deploy` could listen at host:port now (its own check)."""
    from swift_infer.deploy import check_can_listen

    try:
        check_can_listen(host, port)
    except ArgumentError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
