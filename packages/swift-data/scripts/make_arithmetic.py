"""Writes the built-in `arithmetic` dataset: easy sums, differences and products for GRPO's accuracy reward.

Run as:

    python packages/swift-data/scripts/make_arithmetic.py

Each row is a question and its `solution`, e.g. {"messages": [<the worked example>, {"role": "user",
"content": "What is 7 + 5?"}], "solution": "12"}: every sum and every non-negative difference of two
one-digit numbers and the one-digit times table (236 problems), each once, in one of a few phrasings,
shuffled. One digit, because the set is for watching GRPO learn on a small model in minutes: SmolLM2-135M
works most of these out, while with a two-digit number it is mostly wrong ("49 + 1 = 82"), so every
completion of such a group scores 0 and gives no gradient. Every question follows one worked example of the
answer's form (WORKED_EXAMPLE: "3 + 4 = 7, so <answer>7</answer>"): GRPO's `accuracy` reward reads the
answer inside <answer> tags (or \\boxed{}), which a small model seldom writes unprompted. The same seed
writes the same file, so a change to this script shows up as a diff of the data (the tests regenerate it and
compare).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20250301
PHRASINGS = ("What is {}?", "Compute {}.", "{} = ?")
WORKED_EXAMPLE = [{"role": "user", "content": "What is 3 + 4?"},
                  {"role": "assistant", "content": "3 + 4 = 7, so <answer>7</answer>"}]
OUTPUT = Path(__file__).resolve().parents[1] / "src/swift_data/datasets/builtin/arithmetic.jsonl"


def problems() -> list[tuple[str, int]]:
    """(expression, value) for every problem, unshuffled."""
    digits = range(10)
    sums = [(f"{a} + {b}", a + b) for a in digits for b in digits]
    differences = [(f"{a} - {b}", a - b) for a in digits for b in digits if a >= b]
    products = [(f"{a} × {b}", a * b) for a in digits[1:] for b in digits[1:]]
    return sums + differences + products


def rows(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for expression, value in problems():
        question = {"role": "user", "content": rng.choice(PHRASINGS).format(expression)}
        out.append({"messages": [*WORKED_EXAMPLE, question], "solution": str(value)})
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
