"""The whole data path on the SmolLM2 tokenizer, the way `swift sft` runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from swift_args import ArgumentError, parse_args

from swift_data.pipeline import LazyDataset, StreamingDataset, prepare_datasets
from swift_data.templates.encode import IGNORE

GOOD = {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]}


def write_mixed_files(tmp_path: Path) -> tuple[Path, Path]:
    """A jsonl and a csv file, each with some deliberately broken rows."""
    jsonl = tmp_path / "chat.jsonl"
    lines = [json.dumps(GOOD)] * 6 + [
        '{"messages": [{"role": "user", "content": "hi"}',  # malformed JSON
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}),  # empty answer
        json.dumps({"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]}),  # wrong type
        json.dumps({"query": "long " * 600, "response": "ok"}),  # over max_length (delete)
        "[1, 2]",  # not an object
    ]
    jsonl.write_text("\n".join(lines) + "\n")
    table = tmp_path / "alpaca.csv"
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["instruction", "input", "output", "history"])
        writer.writeheader()
        for i in range(5):
            writer.writerow({"instruction": f"Add 1 to {i}.", "input": "", "output": str(i + 1), "history": ""})
        writer.writerow({"instruction": "Broken history", "input": "", "output": "x", "history": "[not json"})
    return jsonl, table


def sft_args(*argv: str):
    return parse_args("sft", ["--model", "SmolLM2-135M-Instruct", *argv], warn=lambda _: None).args


def test_mixed_sources_with_broken_rows_are_counted_by_reason(smollm2_tokenizer, tmp_path: Path) -> None:
    jsonl, table = write_mixed_files(tmp_path)
    args = sft_args("--dataset", str(jsonl), str(table), "self-cognition#20", "--model_name", "小黄", "Xiao Huang",
                    "--model_author", "魔搭", "ModelScope", "--max_length", "512", "--split_dataset_ratio", "0")
    data = prepare_datasets(args, smollm2_tokenizer)
    assert dict(data.skips.counts) == {
        "malformed JSON": 1, "empty assistant turn": 1, "wrong types": 3,
        "longer than max_length (truncation_strategy delete)": 1,
    }
    assert len(data.train) == 6 + 5 + 20 and data.val is None
    assert data.skips.total + len(data.train) == 11 + 6 + 20  # nothing lost without being counted
    assert f"{jsonl}:7" in data.skips.report()  # the first malformed row is named by file and line
    texts = [smollm2_tokenizer.decode(s["input_ids"]) for s in data.train]
    assert sum("Xiao Huang" in t or "小黄" in t for t in texts) == 20
    assert all("{{NAME}}" not in t for t in texts)


def test_strict_stops_at_the_first_bad_row_with_its_line(smollm2_tokenizer, tmp_path: Path) -> None:
    jsonl, _ = write_mixed_files(tmp_path)
    with pytest.raises(ArgumentError) as info:
        prepare_datasets(sft_args("--dataset", str(jsonl), "--strict", "true", "--split_dataset_ratio", "0"), smollm2_tokenizer)
    assert info.value.problems[0].startswith(f"{jsonl}:7: malformed JSON")


def test_an_unknown_row_format_names_the_file_line_and_columns(smollm2_tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"foo": "a", "bar": "b"}) + "\n")
    with pytest.raises(ArgumentError) as info:
        prepare_datasets(sft_args("--dataset", str(path)), smollm2_tokenizer)
    assert info.value.problems[0].startswith(f"{path}:1: unknown row format, columns found: bar, foo;")


def test_columns_renames_a_users_schema(smollm2_tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"q": "2+2?", "a": "4"}) + "\n")
    data = prepare_datasets(sft_args("--dataset", str(path), "--columns", '{"q": "query", "a": "response"}'), smollm2_tokenizer)
    assert smollm2_tokenizer.decode([t for t in data.train[0]["labels"] if t != IGNORE]) == "4<|im_end|>"


def test_two_processes_give_the_same_samples_as_one(smollm2_tokenizer) -> None:
    common = ("--dataset", "general-instructions#600", "--split_dataset_ratio", "0.05")
    one = prepare_datasets(sft_args(*common), smollm2_tokenizer)
    two = prepare_datasets(sft_args(*common, "--dataset_num_proc", "2"), smollm2_tokenizer)
    # 303 distinct rows: 15 held out first, then the other 288 repeated up to 600 - 15.
    assert len(one.train) == len(two.train) == 585 and len(one.val) == len(two.val) == 15
    for a, b in zip(one.train, two.train):
        np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
        np.testing.assert_array_equal(a["labels"], b["labels"])


def test_same_command_same_rows(smollm2_tokenizer) -> None:
    first = prepare_datasets(sft_args("--dataset", "general-instructions#50"), smollm2_tokenizer)
    again = prepare_datasets(sft_args("--dataset", "general-instructions#50"), smollm2_tokenizer)
    other = prepare_datasets(sft_args("--dataset", "general-instructions#50", "--data_seed", "7"), smollm2_tokenizer)
    ids = lambda d: [s["input_ids"].tolist() for s in d.train]  # noqa: E731
    assert ids(first) == ids(again) and ids(first) != ids(other)


def test_lazy_tokenize_encodes_on_access_and_counts_skips(smollm2_tokenizer, tmp_path: Path) -> None:
    jsonl, _ = write_mixed_files(tmp_path)
    data = prepare_datasets(sft_args("--dataset", str(jsonl), "--lazy_tokenize", "true", "--split_dataset_ratio", "0",
                                     "--max_length", "512"), smollm2_tokenizer)
    assert isinstance(data.train, LazyDataset) and data.skips.total == 0
    samples = [data.train[i] for i in range(len(data.train))]
    assert all(any(label != IGNORE for label in s["labels"]) for s in samples)
    assert data.skips.total > 0


def test_streaming_reads_rows_as_they_are_needed(smollm2_tokenizer, tmp_path: Path) -> None:
    jsonl, _ = write_mixed_files(tmp_path)
    data = prepare_datasets(sft_args("--dataset", f"{jsonl}#8", "--streaming", "true", "--max_steps", "10",
                                     "--max_length", "512"), smollm2_tokenizer)
    assert isinstance(data.train, StreamingDataset)
    samples = list(data.train)
    assert len(samples) == 6  # the first 8 rows: 6 good, then a malformed one and an empty answer
    assert dict(data.skips.counts) == {"malformed JSON": 1, "empty assistant turn": 1}


def test_cache_is_reused_and_keyed_by_content(smollm2_tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWIFT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    args = sft_args("--dataset", str(path), "--enable_cache", "true", "--split_dataset_ratio", "0")
    assert not prepare_datasets(args, smollm2_tokenizer).from_cache
    assert prepare_datasets(args, smollm2_tokenizer).from_cache
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    changed = prepare_datasets(args, smollm2_tokenizer)
    assert not changed.from_cache and len(changed.train) == 2
    other_template = prepare_datasets(sft_args("--dataset", str(path), "--enable_cache", "true", "--template", "llama3"),
                                      smollm2_tokenizer)
    assert not other_template.from_cache


def test_packing_through_the_pipeline(smollm2_tokenizer) -> None:
    data = prepare_datasets(sft_args("--dataset", "general-instructions#200", "--packing", "true", "--max_length", "1024",
                                     "--split_dataset_ratio", "0"), smollm2_tokenizer)
    assert len(data.train) < 40
    assert all(len(row["input_ids"]) <= 1024 for row in data.train)
    assert sum(int((row["position_ids"] == 0).sum()) for row in data.train) == 200


def test_truncation_left_and_right(smollm2_tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"query": "word " * 100, "response": "The end."}) + "\n")
    left = prepare_datasets(sft_args("--dataset", str(path), "--max_length", "32", "--truncation_strategy", "left"), smollm2_tokenizer)
    assert len(left.train[0]["input_ids"]) == 32
    assert smollm2_tokenizer.decode(left.train[0]["input_ids"]).endswith("The end.<|im_end|>\n")
    right = prepare_datasets(sft_args("--dataset", str(path), "--max_length", "32", "--truncation_strategy", "right"), smollm2_tokenizer)
    assert right.train is not None and len(right.train) == 0
    assert dict(right.skips.counts) == {"no trained tokens left after truncation": 1}
