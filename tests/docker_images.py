"""What the tests know about docker/: the Dockerfiles, what each installs, and building them."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
# The stand-in for the CUDA and CANN bases on machines without a registry (../shared/tools/docker-here.sh).
LOCAL_BASE = "local/debian:bookworm"


@dataclass(frozen=True)
class Dockerfile:
    path: Path

    @property
    def stage(self) -> str:
        return self.path.parent.name

    @property
    def text(self) -> str:
        return self.path.read_text()

    def arg_default(self, name: str) -> str:
        match = re.search(rf"^ARG {name}=\"?([^\"\n]*)\"?$", self.text, re.M)
        assert match, f"{self.path}: no ARG {name}=..."
        return match.group(1)

    def install(self, phase: str) -> list[str]:
        """The arguments of `install-stage.sh PHASE ...`: the package and its --extra options."""
        (line,) = re.findall(rf"^RUN install-stage\.sh {phase} (.+)$", self.text, re.M)
        return line.split()


def dockerfiles(pattern: str = "Dockerfile*") -> list[Dockerfile]:
    return [Dockerfile(p) for p in sorted(DOCKER.glob(f"*/{pattern}"))]


def locked_versions(name: str) -> set[str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {p["version"] for p in lock["package"] if p["name"] == name}


def package_version(stage: str) -> str:
    return tomllib.loads((ROOT / "packages" / stage / "pyproject.toml").read_text())["project"]["version"]


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def docker(*args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args[:3])} ...: {result.stderr[-3000:]}"
    return result


def build(dockerfile: Path, tag: str, base: str) -> float:
    """`docker build` from the repository root, as docker/README.md says; returns the seconds it took."""
    started = time.monotonic()
    docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-f", str(dockerfile),
           "-t", tag, str(ROOT), timeout=3600)
    return time.monotonic() - started


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
