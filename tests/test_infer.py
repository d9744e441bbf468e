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


def test_merge_lora_answers_like_base_plus_adapter(tmp_path: Path, tiny_chat_model: Path) -> None:
    trained = run_swift("sft", "--model", str(tiny_chat_model), "--dataset", "general-instructions#16", "--max_steps", "2",
                        "--save_steps", "2", "--learning_rate", "1e-2", "--split_dataset_ratio", "0", "--report_to", "none",
                        "--output_dir", str(tmp_path / "run"), "--add_version", "false")
    assert trained.returncode == 0, trained.stderr[-2000:]
    adapter = tmp_path / "run" / "checkpoint-2"
    merged = run_swift("merge-lora", "--adapters", str(adapter))
    assert merged.returncode == 0, merged.stderr[-2000:]
    merged_dir = Path(f"{adapter}-merged")
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "args.json"} <= {
        p.name for p in merged_dir.iterdir()}
    again = run_swift("merge-lora", "--adapters", str(adapter))
    assert again.returncode == 2 and "exists and is not empty; pass --exist_ok true" in again.stderr
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"query": "What is the capital of France?"}) + "\n")
    answers = []
    for source in (["--adapters", str(adapter)], ["--model", str(merged_dir)]):
        out = tmp_path / f"{len(answers)}.jsonl"
        result = run_swift("infer", *source, "--val_dataset", str(data), "--result_path", str(out), "--temperature", "0",
                           "--max_new_tokens", "12")
        assert result.returncode == 0, result.stderr[-2000:]
        answers.append(json.loads(out.read_text())["response"])
    assert answers[0] == answers[1]


def test_two_processes_answer_a_dataset_as_one_does(tmp_path: Path, tiny_chat_model: Path) -> None:
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps({"query": f"Question number {i}?"}) + "\n" for i in range(5)))
    outputs = {}
    for processes in ("1", "2"):
        out = tmp_path / f"{processes}.jsonl"
        result = run_swift("infer", "--model", str(tiny_chat_model), "--val_dataset", str(data), "--result_path", str(out),
                           "--temperature", "0", "--max_new_tokens", "8", NPROC_PER_NODE=processes)
        assert result.returncode == 0, result.stderr[-3000:]
        assert ("starting 2 processes with torchrun" in result.stderr) == (processes == "2")
        outputs[processes] = [json.loads(line) for line in out.read_text().splitlines()]
    assert outputs["2"] == outputs["1"]  # same answers, in dataset order
    assert [r["messages"][0]["content"] for r in outputs["2"]] == [f"Question number {i}?" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir() if ".part" in p.name) == []
