"""Installing one package never needs its siblings: a serving host has args + data + infer only.

Builds real wheels with `uv build --package`, installs them into a fresh virtualenv (their PyPI
dependencies come from uv's cache), and runs `swift` there as a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVING_PACKAGES = ("swift-args", "swift-data", "swift-infer")


def uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "uv", *args], cwd=cwd, capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("partial")
    for package in SERVING_PACKAGES:
        uv("build", "--quiet", "--package", package, "--wheel", "-o", str(work / "dist"))
    wheels = sorted(str(p) for p in (work / "dist").glob("*.whl"))
    assert len(wheels) == len(SERVING_PACKAGES), wheels
    uv("venv", "--quiet", str(work / "venv"), "--python", sys.executable)
    uv("pip", "install", "--quiet", "--python", str(work / "venv" / "bin" / "python"), *wheels)
    return work / "venv"


def swift(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "swift"), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_every_package_builds_a_wheel(tmp_path: Path) -> None:
    for package in ("swift-train", "swift-export", "swift-eval", "swift-app"):
        uv("build", "--quiet", "--package", package, "--wheel", "-o", str(tmp_path))
    names = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.whl"))
    assert names == ["swift_app", "swift_eval", "swift_export", "swift_train"]


@pytest.mark.slow
def test_serving_install_has_infer_and_deploy(serving_venv: Path) -> None:
    for command in ("infer", "deploy"):
        result = swift(serving_venv, command, "--help")
        assert result.returncode == 0, result.stderr
        assert f"usage: swift {command}" in result.stdout
        assert "vLLM arguments:" in result.stdout


@pytest.mark.slow
def test_serving_install_names_the_package_for_training(serving_venv: Path) -> None:
    result = swift(serving_venv, "sft", "--model", "SmolLM2-135M-Instruct", "--dataset", "self-cognition")
    assert result.returncode == 2
    assert result.stderr == (
        "swift: error: swift sft is provided by the swift-train package, which is not installed: pip install swift-train\n"
    )
    listing = swift(serving_venv, "--help").stdout
    assert "[not installed: pip install swift-train]" in listing
    assert "[not installed: pip install swift-app]" in listing


@pytest.mark.slow
def test_serving_install_pulls_no_sibling(serving_venv: Path) -> None:
    code = "import importlib.util as u; print([m for m in ('swift_train', 'swift_export', 'swift_eval', 'swift_app') if u.find_spec(m)])"
    out = subprocess.run([str(serving_venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_serving_install_serves_an_adapter_trained_elsewhere(serving_venv: Path, tiny_chat_model: Path, tmp_path: Path) -> None:
    """swift-train in this environment writes the run; the serving venv (no swift-train) serves it unchanged."""
    import openai
    from swift_e2e import Server, run_swift

    run = tmp_path / "run"
    trained = run_swift("sft", "--model", str(tiny_chat_model), "--dataset", "general-instructions#16",
                        "--split_dataset_ratio", "0", "--per_device_train_batch_size", "2", "--learning_rate", "1e-2",
                        "--max_steps", "4", "--save_steps", "4", "--output_dir", str(run), "--add_version", "false",
                        "--report_to", "none", "--gradient_checkpointing", "false")
    assert trained.returncode == 0, trained.stderr[-3000:]
    question = [{"role": "user", "content": "Name a primary colour."}]
    answers = {}
    for where, python in (("here", None), ("serving", str(serving_venv / "bin" / "python"))):
        # --adapters alone: the base model and template come from the run's args.json.
        server = Server("--adapters", str(run / "checkpoint-4"), "--temperature", "0", "--max_new_tokens", "12",
                        log=tmp_path / f"{where}.log", python=python)
        try:
            client = openai.OpenAI(base_url=server.url, api_key="none")
            served = client.models.list().data[0].id
            answers[where] = client.chat.completions.create(model=served, messages=question).choices[0].message.content
        finally:
            server.stop()
    assert answers["serving"] == answers["here"] and answers["here"]
