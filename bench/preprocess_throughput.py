"""Preprocessing throughput: synthetic chat rows -> encoded training samples, 1 vs N processes.

Run as: uv run python bench/preprocess_throughput.py [--rows 100000] [--procs 1 2]

Writes 100k synthetic multi-turn conversations (OpenAI messages, 1-3 rounds, a system prompt on
a third of them) to a temporary jsonl file, then times `prepare_datasets` -- reading, format
detection, chat-template rendering with derived loss masks, tokenization -- with the SmolLM2
tokenizer for each process count, and prints rows/s and tokens/s.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

WORDS = ("the model learns from data and each answer is checked against the reference while tokens "
         "flow through the template into the trainer which updates weights slowly over many steps").split()


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def write_rows(path: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(count):
            messages = [{"role": "system", "content": sentence(rng, 5, 15)}] if i % 3 == 0 else []
            for _ in range(rng.randint(1, 3)):
                messages += [{"role": "user", "content": sentence(rng, 5, 40)},
                             {"role": "assistant", "content": " ".join(sentence(rng, 5, 30) for _ in range(rng.randint(1, 6)))}]
            f.write(json.dumps({"messages": messages}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    options = parser.parse_args()

    from swift_args import parse_args
    from transformers import AutoTokenizer

    from swift_data.models import resolve_model_dir
    from swift_data.pipeline import prepare_datasets

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("SmolLM2-135M-Instruct"))
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "synthetic.jsonl"
        write_rows(data_file, options.rows)
        results = []
        for procs in options.procs:
            args = parse_args("sft", ["--model", "SmolLM2-135M-Instruct", "--dataset", str(data_file),
                                      "--split_dataset_ratio", "0", "--dataset_num_proc", str(procs),
                                      "--max_length", "4096"], warn=lambda _: None).args
            start = time.perf_counter()
            data = prepare_datasets(args, tokenizer)
            seconds = time.perf_counter() - start
            tokens = sum(len(s["input_ids"]) for s in data.train)
            results.append((procs, len(data.train), tokens, seconds))
    print(f"{'procs':>5} {'rows':>8} {'tokens':>11} {'seconds':>8} {'rows/s':>8} {'tokens/s':>10}")
    for procs, rows, tokens, seconds in results:
        print(f"{procs:>5} {rows:>8} {tokens:>11} {seconds:>8.1f} {rows / seconds:>8.0f} {tokens / seconds:>10.0f}")


if __name__ == "__main__":
    main()
