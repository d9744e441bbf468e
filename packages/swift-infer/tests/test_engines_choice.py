"""--infer_backend: vLLM's options come from the reference's vLLM arguments; a missing engine is one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from swift_args import parse_args
from swift_infer.engines.lmdeploy import backend_options
from swift_infer.engines.vllm import engine_options

SWIFT = str(Path(sys.executable).with_name("swift"))


def test_vllm_options_follow_the_reference_arguments() -> None:
    args = parse_args("infer", ["--model", "m", "--infer_backend", "vllm", "--gpu_memory_utilization", "0.5",
                                "--tensor_parallel_size", "2", "--max_model_len", "4096", "--enable_prefix_caching", "true",
                                "--adapters", "a=/x", "b=/y", "--vllm_max_lora_rank", "64", "--enforce_eager", "true"],
                      warn=lambda _: None).args
    options = engine_options(args, "/models/m", "bfloat16")
    assert options["model"] == "/models/m" and options["dtype"] == "bfloat16"
    assert (options["gpu_memory_utilization"], options["tensor_parallel_size"], options["max_model_len"]) == (0.5, 2, 4096)
    assert options["enable_prefix_caching"] and options["enforce_eager"]
    assert (options["enable_lora"], options["max_lora_rank"], options["max_loras"]) == (True, 64, 2)
    assert "enable_lora" not in engine_options(parse_args("infer", ["--model", "m"], warn=lambda _: None).args, "m", "auto")


def test_lmdeploy_options_follow_the_reference_arguments() -> None:
    args = parse_args("infer", ["--model", "m", "--infer_backend", "lmdeploy", "--tp", "2", "--session_len", "8192",
                                "--cache_max_entry_count", "0.5", "--quant_policy", "8"], warn=lambda _: None).args
    assert backend_options(args) == {"tp": 2, "session_len": 8192, "cache_max_entry_count": 0.5, "quant_policy": 8}


@pytest.mark.skipif(importlib.util.find_spec("vllm") or importlib.util.find_spec("lmdeploy"), reason="an engine is installed here")
@pytest.mark.parametrize(("command", "backend", "message"), [
    ("infer", "vllm", "swift infer: error: --infer_backend vllm needs vLLM, which is not installed: pip install vllm "
                      "(or use the swift-infer vLLM image, docker/swift-infer/Dockerfile.vllm)\n"),
    ("infer", "lmdeploy", "swift infer: error: --infer_backend lmdeploy needs LMDeploy, which is not installed: pip install lmdeploy\n"),
    ("deploy", "vllm", "swift deploy: error: --infer_backend vllm: swift deploy (also as swift eval's local deployment) "
                       "serves with the pt engine in this release; drop it\n"),
])
def test_an_unavailable_engine_is_one_line(tmp_path: Path, command: str, backend: str, message: str) -> None:
    result = subprocess.run([SWIFT, command, "--model", str(tmp_path), "--infer_backend", backend],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == message
