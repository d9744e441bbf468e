"""Writes the built-in `arithmetic` dataset: easy sums, differences and products for GRPO's accuracy reward.

Run as:

    python packages/swift-data/scripts/make_arithmetic.py

Each row is a question and its `solution`, e.g. {"messages": [<the worked example>, {"role": "user", "content":
"What is 7 + 5?"}], "solution": "12"}: additions and subtractions of one- and two-digit numbers (never below
zero) and the one-digit times table, each problem once, in a few phrasings, shuffled. Every question follows one
worked example of the answer's form (WORKED_EXAMPLE: "3 + 4 = 7, so <answer>7</answer>"): GRPO's `accuracy`
reward reads the answer inside <answer> tags (or \\boxed{}), which a small model does not write unprompted, so
without the example every completion of a group scores 0 and nothing is learnt. The same seed writes the same file, so
a change to this script shows up as a diff of the data (the tests regenerate it and compare).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20250301
SUMS = DIFFERENCES = 560  # with the 81 products: 1201 problems
PHRASINGS = ("What is {}?", "Compute {}.", "{} = ?")
WORKED_EXAMPLE = [{"role": "user", "content": "What is 3 + 4?"},
                  {"role": "assistant", "content": "3 + 4 = 7, so <answer>7</answer>"}]
OUTPUT = Path(__file__).resolve().parents[1] / "src/swift_data/datasets/builtin/arithmetic.jsonl"


def operand(rng: random.Random) -> int:
    """Two in five one-digit, so both easy and harder problems are common."""
    return rng.randint(0, 9) if rng.random() < 0.4 else rng.randint(10, 99)


def distinct_pairs(rng: random.Random, count: int, ordered: bool) -> list[tuple[int, int]]:
    """`count` different operand pairs; with `ordered`, the larger first (a difference stays non-negative)."""
    seen: dict[tuple[int, int], None] = {}
    while len(seen) < count:
        a, b = operand(rng), operand(rng)
        seen[(max(a, b), min(a, b)) if ordered else (a, b)] = None
    return list(seen)


def problems(rng: random.Random) -> list[tuple[str, int]]:
    """(expression, value) for every problem, unshuffled."""
    sums = [(f"{a} + {b}", a + b) for a, b in distinct_pairs(rng, SUMS, ordered=False)]
    differences = [(f"{a} - {b}", a - b) for a, b in distinct_pairs(rng, DIFFERENCES, ordered=True)]
    products = [(f"{a} × {b}", a * b) for a in range(1, 10) for b in range(1, 10)]
    return sums + differences + products


def rows(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    out = [{"messages": [*WORKED_EXAMPLE, {"role": "user", "content": rng.choice(PHRASINGS).format(expression)}],
            "solution": str(value)} for expression, value in problems(rng)]
    rng.shuffle(out)
    return out


def render(seed: int = SEED) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows(seed))


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    path.write_text(render(), encoding="utf-8")
    print(f"{path}: {len(rows())} problems")


if __name__ == "__main__":
    main()
