"""`swift infer` as a user runs it: dataset mode into jsonl, and the terminal chat."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from swift_e2e import SWIFT, run_swift

QUESTIONS = [
    {"query": "What is the capital of France?", "response": "The capital of France is Paris."},
    {"query": "What is the capital of Japan?", "response": "The capital of Japan is Tokyo."},
    {"messages": [{"role": "user", "content": "Name a primary colour."}]},
]


def test_dataset_mode_writes_results_scores_them_and_continues(tmp_path: Path) -> None:
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    result_path = tmp_path / "results.jsonl"
    common = ("infer", "--model", "SmolLM2-135M-Instruct", "--val_dataset", str(data), "--result_path", str(result_path),
              "--temperature", "0", "--max_new_tokens", "24")
    batched = run_swift(*common, "--max_batch_size", "3", "--metric", "rouge")
    assert batched.returncode == 0, batched.stderr[-2000:]
    records = [json.loads(line) for line in result_path.read_text().splitlines()]
    assert [r["labels"] for r in records] == [QUESTIONS[0]["response"], QUESTIONS[1]["response"], None]
    assert records[0]["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert "Paris" in records[0]["response"] and "Tokyo" in records[1]["response"]
    scores = json.loads(result_path.with_suffix(".metric.json").read_text())
    assert scores["count"] == 2 and scores["rouge-l"] > 0.5
    assert f"3 results in {result_path}" in batched.stdout
    # One at a time gives the same greedy answers as the batch (left padding changes nothing).
    single_path = tmp_path / "single.jsonl"
    single = run_swift(*common[:-6], "--result_path", str(single_path), "--temperature", "0", "--max_new_tokens", "24",
                       "--max_batch_size", "1")
    assert single.returncode == 0, single.stderr[-2000:]
    assert [json.loads(x)["response"] for x in single_path.read_text().splitlines()] == [r["response"] for r in records]
    # Run again into the same file: finished rows are not redone.
    again = run_swift(*common, "--max_batch_size", "3")
    assert again.returncode == 0 and "(3 from an earlier run)" in again.stdout
    assert len(result_path.read_text().splitlines()) == 3


def test_terminal_chat_keeps_history_and_obeys_commands(tmp_path: Path) -> None:
    session = "What is 2 + 2?\nWhat is 2 + 2?\n/clear\nWhat is 2 + 2?\n/system Answer like a pirate.\nWhat is 2 + 2?\n/quit\n"
    result = subprocess.run([SWIFT, "infer", "--model", "SmolLM2-135M-Instruct", "--temperature", "0",
                             "--max_new_tokens", "20", "--stream", "true"], input=session, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    assert result.returncode == 0, result.stderr[-2000:]
    first, _, after_clear, as_pirate = [a for a in result.stdout.split("<<< ") if a.startswith(">>> ")]
    assert after_clear == first  # /clear forgot the conversation (greedy answers are deterministic)
    assert as_pirate != first  # the new system prompt is in effect
