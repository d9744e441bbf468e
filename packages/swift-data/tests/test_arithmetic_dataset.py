"""The built-in `arithmetic` dataset: what its generator writes, that every solution is right and checkable by
math_verify (GRPO's accuracy reward), and that --dataset finds it by name and alias."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from swift_data.datasets import BUILTIN_DATASETS, DataOptions, load_dataset_rows

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_arithmetic.py"
PROBLEM = re.compile(r"^(?:What is (?P<q1>.+)\?|Compute (?P<q2>.+)\.|(?P<q3>.+) = \?)$")
EXPRESSION = re.compile(r"^(\d+) ([+\-×]) (\d+)$")
WORKED_EXAMPLE = [{"role": "user", "content": "What is 3 + 4?"},
                  {"role": "assistant", "content": "3 + 4 = 7, so <answer>7</answer>"}]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    text = BUILTIN_DATASETS["arithmetic"].path().read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_the_file_is_what_the_script_writes(rows: list[dict]) -> None:
    spec = importlib.util.spec_from_file_location("make_arithmetic", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert BUILTIN_DATASETS["arithmetic"].path().read_text(encoding="utf-8") == script.render()
    assert script.rows(seed=1) != rows  # the order comes from the seed


def test_each_problem_once_with_its_value(rows: list[dict]) -> None:
    assert len(rows) == 236
    operations, phrasings, digits = Counter(), Counter(), Counter()
    problems = set()
    for row in rows:
        assert set(row) == {"messages", "solution"}
        *example, message = row["messages"]
        assert example == WORKED_EXAMPLE and message["role"] == "user"
        match = PROBLEM.match(message["content"])
        phrasing = next(k for k, v in match.groupdict().items() if v)
        a, op, b = EXPRESSION.match(match[phrasing]).groups()
        value = {"+": int(a) + int(b), "-": int(a) - int(b), "×": int(a) * int(b)}[op]
        assert row["solution"] == str(value) and value >= 0
        problems.add((int(a), op, int(b)))
        operations[op] += 1
        phrasings[phrasing] += 1
        digits[len(a), len(b)] += 1
    assert len(problems) == len(rows)  # no problem twice, however phrased
    assert operations == {"+": 100, "-": 55, "×": 81}  # every one-digit sum, difference >= 0 and product
    assert min(phrasings.values()) > 60 and len(phrasings) == 3
    assert set(digits) == {(1, 1)}


def test_every_solution_parses_with_math_verify(rows: list[dict]) -> None:
    math_verify = pytest.importorskip("math_verify")
    for row in rows:
        parsed = math_verify.parse(row["solution"])
        assert parsed and parsed[0] == int(row["solution"]), row


@pytest.mark.parametrize("name", ["arithmetic#10", "swift/arithmetic#10"])
def test_loaded_by_name_and_alias(name: str) -> None:
    loaded = load_dataset_rows(DataOptions(dataset=[name], split_dataset_ratio=0.0))
    assert len(loaded.train) == 10
    assert all(row.where.startswith("arithmetic:") and row.data["solution"].isdigit() for row in loaded.train)
