"""Datasets shipped inside this package, usable offline: `self-cognition`, `general-instructions`,
`preference-pairs` and `arithmetic`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from swift_args import ArgumentError

from swift_data.datasets.readers import RawRow, read_file


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    file: str
    description: str
    aliases: tuple[str, ...] = ()
    subsets: tuple[str, ...] = ("default",)  # each built-in is one file, so one subset

    def path(self) -> Path:
        return Path(str(resources.files("swift_data.datasets") / "builtin" / self.file))


BUILTIN_DATASETS = {
    d.name: d
    for d in (
        BuiltinDataset("self-cognition", "self_cognition.jsonl",
                       "Who-are-you questions answered with --model_name / --model_author (zh and en).",
                       aliases=("swift/self-cognition",)),
        BuiltinDataset("general-instructions", "general_instructions.jsonl",
                       "A small general instruction set (Alpaca format) for demos.",
                       aliases=("swift/general-instructions",)),
        BuiltinDataset("preference-pairs", "preference_pairs.jsonl",
                       "Chosen/rejected answer pairs for swift rlhf (dpo, orpo, simpo, cpo, kto, rm): the chosen one "
                       "correct, concise and polite (en and zh).",
                       aliases=("swift/preference-pairs",)),
        BuiltinDataset("arithmetic", "arithmetic.jsonl",
                       "236 one-digit arithmetic questions with a `solution` column, each after one worked example of the "
                       "answer form (<answer>7</answer>), for swift rlhf --rlhf_type "
                       "grpo --reward_funcs accuracy (written by scripts/make_arithmetic.py).",
                       aliases=("swift/arithmetic",)),
    )
}
_BY_NAME = {name: d for d in BUILTIN_DATASETS.values() for name in (d.name, *d.aliases)}


def find_builtin_dataset(name: str) -> BuiltinDataset | None:
    return _BY_NAME.get(name)


def read_builtin(dataset: BuiltinDataset, model_name: list[str] | None, model_author: list[str] | None) -> Iterator[RawRow]:
    if dataset.name == "self-cognition":
        if not model_name or not model_author:
            raise ArgumentError(
                "--dataset self-cognition needs --model_name and --model_author "
                "(e.g. --model_name 小黄 'Xiao Huang' --model_author 魔搭 ModelScope)"
            )
        yield from _fill_identity(read_file(dataset.path()), model_name, model_author, dataset.name)
    else:
        for row in read_file(dataset.path()):
            yield RawRow(_builtin_where(row.where, dataset.name), row.data, row.error)


def _builtin_where(where: str, name: str) -> str:
    # Built-in rows are reported by dataset name and line, not by an installed file path.
    return f"{name}:{where.rsplit(':', 1)[-1]}"


def _fill_identity(rows: Iterator[RawRow], names: list[str], authors: list[str], label: str) -> Iterator[RawRow]:
    """Replace {{NAME}}/{{AUTHOR}}: the first value for Chinese rows, the last for English ones."""
    for row in rows:
        if row.data is None:
            yield row
            continue
        index = 0 if row.data.get("tag") == "zh" else -1
        name, author = names[index], authors[index]
        data = {
            k: v.replace("{{NAME}}", name).replace("{{AUTHOR}}", author) if isinstance(v, str) else v
            for k, v in row.data.items()
            if k != "tag"
        }
        yield RawRow(_builtin_where(row.where, label), data)
