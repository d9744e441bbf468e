"""A local `swift deploy` child: what `swift eval` evaluates and `swift app` chats through.

It listens on loopback at a free port (or --host / --port when given), with a random API key unless
--api_key is given, so nothing else on the machine can use it by accident. The caller waits for its /health
(eval: at most --deploy_timeout seconds) and checks it is still alive all the while it uses it.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, RunStopped

from swift_infer import children

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

    def start(self, timeout: float, timeout_argument: str | None = "--deploy_timeout") -> None:
        """Start the server and wait for its /health; a server that does not come up is stopped, not left behind.

        Call it from a thread that lives as long as the deployment should (the main thread, or one kept for
        the purpose): Linux ends the child when the thread that started it exits (PR_SET_PDEATHSIG)."""
        command = [sys.executable, "-m", "swift_args.cli", "deploy", *self.argv, "--host", self.host,
                   "--port", str(self.port), "--api_key", self.api_key]
        self.process = children.start(command, self.log)
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.check("while starting")  # first: a /health answer from another server on the port proves nothing
                if self._healthy():
                    self.check("while starting")
                    return
                if time.monotonic() > deadline:
                    advice = (f"{timeout_argument} {timeout:g}s; raise it for a large model" if timeout_argument
                              else f"{timeout:g}s")
                    raise RunStopped(f"the local deployment did not answer within {advice} (its log: {self.log})")
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise

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


def check_model(deploy_args: Any) -> None:
    """The model resolves (a hub id offline is one line), each adapter fits it, and the attention it asks for is
    installed, before a server starts."""
    import importlib.util

    from swift_args.adapters import adapter_path
    from swift_data.models import model_for_args

    if deploy_args.attn_impl == "flash_attn" and importlib.util.find_spec("flash_attn") is None:
        raise ArgumentError("--attn_impl flash_attn needs the flash-attn package, which is not installed (pip "
                            "install flash-attn); the default, sdpa, runs PyTorch's own FlashAttention kernels")

    _, info = model_for_args(deploy_args)
    if deploy_args.adapters:
        from swift_infer.merge import check_adapter_fits

        for adapter in deploy_args.adapters:
            check_adapter_fits(adapter_path(adapter), info.model_dir)


def models_at(url: str, api_key: str | None, argument: str) -> list[str]:
    """The model names an OpenAI-compatible server at `url` (passed as `argument`) serves; asking also proves it is
    up and takes the key."""
    request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {api_key or 'EMPTY'}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise ArgumentError(f"{argument} {url} refused the key (401); pass the server's key with --api_key") from None
        if exc.code == 404:
            return []  # an endpoint without /models: --model names the model
        raise ArgumentError(f"{argument} {url}: GET /models answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ArgumentError(f"{argument} {url}: cannot reach it ({reason}); start the server first (the URL ends in "
                            f"/v1), or drop {argument} to deploy --model locally") from None
    return [m["id"] for m in body.get("data", []) if isinstance(m, dict) and "id" in m]


def temporary_log(prefix: str) -> Path:
    """A new, empty log file in the system's temporary directory (a page's deployment leaves nothing in the cwd)."""
    import os
    import tempfile

    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(handle)
    return Path(name)


def deploy_argv(argv: list[str], command: str, leave_out: set[str]) -> list[str]:
    """The user's arguments to `command` as `swift deploy` takes them: 2.x names translated, removed ones and
    `leave_out` (what the command reads itself, or sets for the deployment) dropped."""
    from swift_args.aliases import REMOVED, find_alias
    from swift_args.parse import split_options

    options, _ = split_options(argv)
    kept: list[str] = []
    for name, values in options:
        alias = find_alias(name, command)
        if alias is not None:
            rewritten = alias.apply(values)
            if rewritten is None:
                continue
            name, values = rewritten
        elif name in REMOVED:
            continue
        if name not in leave_out:
            kept += [f"--{name}", *values]
    return kept


def local_deployment(argv: list[str], host: str | None, port: int | None, api_key: str | None,
                     log: Path) -> tuple[LocalDeployment, Any]:
    """`swift deploy <argv>`, checked as swift deploy checks it (its arguments, the model, each adapter against it)
    and ready to start, with the arguments it parsed to. Its address: loopback at a free port unless --host /
    --port say otherwise (then checked now)."""
    from swift_args import parse_args

    deploy = parse_args("deploy", argv, warn=lambda message: None)  # the caller printed the warnings already
    check_model(deploy.args)
    if port is not None:
        from swift_infer.deploy import check_can_listen

        check_can_listen(host or "127.0.0.1", port)
    deployment = LocalDeployment(argv, host or "127.0.0.1", port or free_port(), api_key or secrets.token_urlsafe(24),
                                 log, deploy.args.shutdown_timeout)
    return deployment, deploy.args


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
