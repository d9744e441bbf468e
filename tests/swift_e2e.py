"""Helpers for end-to-end tests: run `swift` as a user would and read what a run leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SWIFT = str(Path(sys.executable).with_name("swift"))
# The built-in self-cognition data with the name the quick start teaches SmolLM2.
SELF_COGNITION = ["--dataset", "self-cognition#200", "--model_name", "小黄", "Swifty",
                  "--model_author", "魔搭", "the Swift Suite team"]


def run_swift(*args: str, cwd: Path | None = None, timeout: int = 900, input: str | None = None,
              **env: str) -> subprocess.CompletedProcess[str]:
    """`swift ...` exactly as a user types it (`input`: what they type at its prompt)."""
    return subprocess.run([SWIFT, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, input=input,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **env})


@dataclass
class SwiftyRun:
    """The quick start's kind of run, trained once per test session (the `swifty_run` fixture)."""

    result: subprocess.CompletedProcess[str]
    run_dir: Path

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoint-30"


def tiny_sft(model: Path, output: Path, *extra: str) -> list[str]:
    """`swift sft` of the tiny model on 64 rows, one log record per step, into `output` itself (no vN- directory)."""
    return ["sft", "--model", str(model), "--dataset", "general-instructions#64", "--split_dataset_ratio", "0",
            "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--logging_steps", "1",
            "--output_dir", str(output), "--add_version", "false", "--report_to", "none", "--seed", "1",
            "--gradient_checkpointing", "false", *extra]


def kill_when(signal_file: Path, *args: str, timeout: int = 300) -> bool:
    """Run `swift *args` until it writes `signal_file` (a plugin does, at the moment to test), then SIGKILL it.

    Returns whether the file appeared: False when the run ended or timed out first.
    """
    import signal
    import time

    process = subprocess.Popen([SWIFT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    deadline = time.time() + timeout
    while not signal_file.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return signal_file.exists()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_log(run_dir: Path) -> list[dict]:
    return read_jsonl(run_dir / "logging.jsonl")


def only_run_dir(output_dir: Path) -> Path:
    runs = [p for p in output_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`swift deploy ...` running in the background on a free loopback port; its output goes to `log`."""

    def __init__(self, *args: str, log: Path, python: str | None = None, timeout: int = 300):
        import time

        import httpx2 as httpx

        self.port, self.log = free_port(), log
        swift = str(Path(python).with_name("swift")) if python else SWIFT
        self.process = subprocess.Popen([swift, "deploy", *args, "--host", "127.0.0.1", "--port", str(self.port)],
                                        stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        self.url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"swift deploy exited with {self.process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(f"{self.url}/models", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"swift deploy did not answer within {timeout}s:\n{log.read_text()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def write_tiny_chat_model(model_dir: Path, tokenizer_dir: Path) -> Path:
    """A 2-layer random Llama (4 heads, 2 key/value heads) with SmolLM2's tokenizer and chat template: fast,
    and deterministic."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=49152, max_position_embeddings=1024,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(model_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        shutil.copy(tokenizer_dir / name, model_dir / name)
    return model_dir
