"""--dataset values -> rows: the spec syntax, local files and folders, #N, the split, built-ins, hub ids."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from swift_args import ArgumentError

from swift_data.datasets import (
    BUILTIN_DATASETS,
    DataOptions,
    DatasetSpec,
    RawRow,
    load_dataset_rows,
    parse_dataset_spec,
)
from swift_data.datasets.load import LoadedRows
from swift_data.datasets.readers import read_file
from swift_data.datasets.sampling import sample_indices
from swift_data.preprocess.conversation import Conversation
from swift_data.preprocess.formats import to_conversation
from swift_data.skips import MALFORMED_JSON, WRONG_TYPES

SUFFIX_LIST = ".jsonl, .json, .csv, .parquet, .txt"


# -- helpers --------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def qa_rows(n: int, tag: str) -> list[dict[str, str]]:
    return [{"query": f"{tag} question {i}", "response": f"{tag} answer {i}"} for i in range(n)]


def load(*datasets: str, **options: Any) -> LoadedRows:
    """What a command does with `--dataset A B ...`; no held-out split unless asked for."""
    options.setdefault("split_dataset_ratio", 0.0)
    return load_dataset_rows(DataOptions(dataset=list(datasets), **options))


def wheres(rows: Any) -> list[str]:
    return [row.where for row in rows]


def datas(rows: Any) -> list[dict[str, Any] | None]:
    return [row.data for row in rows]


def argument_error(options: DataOptions) -> list[str]:
    with pytest.raises(ArgumentError) as info:
        load_dataset_rows(options)
    return info.value.problems


# -- the --dataset syntax -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data/train.jsonl", DatasetSpec("data/train.jsonl", None, (), None)),
        ("/abs/data/train.jsonl#100", DatasetSpec("/abs/data/train.jsonl", None, (), 100)),
        ("modelscope/alpaca-zh", DatasetSpec("modelscope/alpaca-zh", None, (), None)),
        ("org/name:a/b", DatasetSpec("org/name", None, ("a", "b"), None)),
        ("org/name:all", DatasetSpec("org/name", None, ("all",), None)),
        ("org/name:all#10", DatasetSpec("org/name", None, ("all",), 10)),
        ("org/name#500", DatasetSpec("org/name", None, (), 500)),
        ("HF::org/name:sub#5", DatasetSpec("org/name", "HF", ("sub",), 5)),
        ("MS::org/name", DatasetSpec("org/name", "MS", (), None)),
        ("MS::org/name:x/y#3", DatasetSpec("org/name", "MS", ("x", "y"), 3)),
        ("C:\\data.jsonl", DatasetSpec("C:\\data.jsonl", None, (), None)),
        ("C:\\data.jsonl#5", DatasetSpec("C:\\data.jsonl", None, (), 5)),
        ("D:\\datasets\\chat:zh", DatasetSpec("D:\\datasets\\chat", None, ("zh",), None)),
        ("  self-cognition#500  ", DatasetSpec("self-cognition", None, (), 500)),
    ],
)
def test_parse_dataset_spec(text: str, expected: DatasetSpec) -> None:
    assert parse_dataset_spec(text) == expected


def test_spec_label_names_the_subsets() -> None:
    assert parse_dataset_spec("HF::org/name:a/b#5").label == "org/name:a/b"
    assert parse_dataset_spec("org/name#5").label == "org/name"


def test_hash_zero_is_an_error() -> None:
    with pytest.raises(ArgumentError) as info:
        parse_dataset_spec("data.jsonl#0")
    assert info.value.problems == [
        "--dataset 'data.jsonl#0': #0 selects no rows; drop the suffix to use the whole dataset"
    ]


@pytest.mark.parametrize("text", ["#5", "HF::", "HF::#3"])
def test_nothing_before_the_suffix_is_an_error(text: str) -> None:
    with pytest.raises(ArgumentError) as info:
        parse_dataset_spec(text)
    assert info.value.problems == [f"--dataset '{text}': no dataset id or path before ':' or '#'"]


def test_nothing_before_the_subsets_is_an_error() -> None:
    with pytest.raises(ArgumentError, match="no dataset id or path before ':' or '#'"):
        parse_dataset_spec(":sub")


def test_hub_prefix_is_case_insensitive() -> None:
    assert parse_dataset_spec("hf::org/name#5") == DatasetSpec("org/name", "HF", (), 5)


# -- local files ----------------------------------------------------------------------------


def test_jsonl_rows_keep_their_line_and_bad_lines_say_why(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.jsonl", "\n".join([
        '{"query": "a", "response": "b"}',
        "",
        '{"query": "c"',
        "   ",
        "[1, 2]",
        '"just text"',
        '{"text": "ok"}',
    ]) + "\n")
    rows = list(read_file(path))
    assert wheres(rows) == [f"{path}:1", f"{path}:3", f"{path}:5", f"{path}:6", f"{path}:7"]
    assert datas(rows) == [{"query": "a", "response": "b"}, None, None, None, {"text": "ok"}]
    assert rows[0].error is None and rows[4].error is None
    errors = [(row.error.reason, row.error.detail) for row in rows[1:4]]
    assert errors == [
        (MALFORMED_JSON, "Expecting ',' delimiter"),
        (WRONG_TYPES, "a row must be a JSON object, got list"),
        (WRONG_TYPES, "a row must be a JSON object, got str"),
    ]


def test_jsonl_unicode_round_trips(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "zh.jsonl", [{"query": "你好", "response": "你好！"}])
    assert list(read_file(path)) == [RawRow(f"{path}:1", {"query": "你好", "response": "你好！"})]


def test_csv_rows_are_numbered_by_file_line(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.csv", "query,response,label\nHi,Hello,true\n\"a, b\",c,False\n")
    rows = list(read_file(path))
    assert rows == [
        RawRow(f"{path}:2", {"query": "Hi", "response": "Hello", "label": "true"}),
        RawRow(f"{path}:3", {"query": "a, b", "response": "c", "label": "False"}),
    ]
    assert to_conversation(rows[1].data, rows[1].where).label is False


def test_csv_cells_holding_json_become_conversations(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    tools = [{"name": "f", "parameters": {}}]
    path = tmp_path / "chat.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["messages", "tools"])
        writer.writerow([json.dumps(messages), json.dumps(tools)])
    [row] = list(read_file(path))
    assert to_conversation(row.data, row.where) == Conversation(
        messages=messages, tools=[{"type": "function", "function": tools[0]}]
    )


def test_csv_multiline_cell_row_is_reported_where_it_starts(tmp_path: Path) -> None:
    text = 'query,response\n"A poem","Roses are red,\nviolets are blue"\nHi,Hello\n'
    path = write_text(tmp_path / "poems.csv", text)
    assert wheres(read_file(path)) == [f"{path}:2", f"{path}:4"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("excel.csv", "query,response\nHi,Hello\n"),
        ("notepad.jsonl", '{"query": "Hi", "response": "Hello"}\n'),
    ],
)
def test_utf8_byte_order_mark_is_ignored(tmp_path: Path, name: str, text: str) -> None:
    path = write_text(tmp_path / name, "\ufeff" + text)
    assert datas(read_file(path)) == [{"query": "Hi", "response": "Hello"}]


def test_json_list(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.json", json.dumps([{"text": "one"}, 3, {"text": "two"}], indent=2))
    rows = list(read_file(path))
    assert wheres(rows) == [f"{path}[0]", f"{path}[1]", f"{path}[2]"]
    assert datas(rows) == [{"text": "one"}, None, {"text": "two"}]
    assert (rows[1].error.reason, rows[1].error.detail) == (
        WRONG_TYPES, "a row must be a JSON object, got int"
    )


def test_json_object_with_a_data_list(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.json", json.dumps({"version": 1, "data": qa_rows(2, "d")}))
    first, second = qa_rows(2, "d")
    assert list(read_file(path)) == [RawRow(f"{path}[0]", first), RawRow(f"{path}[1]", second)]


def test_json_that_is_not_a_list_of_rows(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.json", json.dumps({"rows": qa_rows(2, "d")}))
    with pytest.raises(ArgumentError) as info:
        list(read_file(path))
    assert info.value.problems == [f"{path}: expected a JSON list of rows"]


def test_malformed_json_file_names_the_line(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.json", '[\n  {"query": "a"},\n  {"query" "b"}\n]')
    with pytest.raises(ArgumentError) as info:
        list(read_file(path))
    assert info.value.problems == [
        f"{path}:3: not valid JSON (Expecting ':' delimiter); fix the file or use .jsonl"
    ]


def test_txt_lines_are_text_rows(tmp_path: Path) -> None:
    text = "First line.\n\n   \n  Indented line.\r\nLast line without newline"
    path = write_text(tmp_path / "corpus.txt", text)
    assert list(read_file(path)) == [
        RawRow(f"{path}:1", {"text": "First line."}),
        RawRow(f"{path}:4", {"text": "  Indented line."}),
        RawRow(f"{path}:5", {"text": "Last line without newline"}),
    ]


def test_parquet_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    conversations = [
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye"}],
    ]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"messages": conversations, "id": [10, 11]}), path)
    rows = list(read_file(path))
    assert rows == [
        RawRow(f"{path}[0]", {"messages": conversations[0], "id": 10}),
        RawRow(f"{path}[1]", {"messages": conversations[1], "id": 11}),
    ]
    assert to_conversation(rows[1].data, rows[1].where).messages == conversations[1]


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = write_text(tmp_path / "train.xlsx", "not really a spreadsheet")
    assert argument_error(DataOptions(dataset=[str(path)])) == [
        f"--dataset {path}: unsupported file type '.xlsx'; use one of {SUFFIX_LIST}"
    ]


# -- folders and subsets --------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A dataset folder as a git clone gives it: top-level files plus one subfolder per subset."""
    root = tmp_path / "chat-data"
    write_jsonl(root / "train.jsonl", qa_rows(2, "top"))
    write_text(root / "extra.csv", "query,response\ntop csv q,top csv a\n")
    write_text(root / "README.md", "# not data\n")
    write_jsonl(root / "zh" / "part1.jsonl", qa_rows(1, "zh1"))
    write_jsonl(root / "zh" / "part2.jsonl", qa_rows(1, "zh2"))
    write_jsonl(root / "en" / "data.jsonl", qa_rows(1, "en"))
    write_jsonl(root / ".git" / "objects.jsonl", qa_rows(1, "hidden"))
    return root


def test_folder_default_subset_is_its_top_level_files(folder: Path) -> None:
    train = load(str(folder)).train
    assert wheres(train) == [f"{folder}/extra.csv:2", f"{folder}/train.jsonl:1", f"{folder}/train.jsonl:2"]


def test_folder_subsets_are_its_subfolders_in_the_order_given(folder: Path) -> None:
    train = load(f"{folder}:zh/en").train
    assert wheres(train) == [
        f"{folder}/zh/part1.jsonl:1", f"{folder}/zh/part2.jsonl:1", f"{folder}/en/data.jsonl:1"
    ]


def test_folder_all_is_every_subset_but_hidden_ones(folder: Path) -> None:
    train = load(f"{folder}:all").train
    assert [row.data["query"] for row in train] == [
        "top csv q", "top question 0", "top question 1", "en question 0", "zh1 question 0", "zh2 question 0",
    ]


def test_folder_default_subset_by_name(folder: Path) -> None:
    assert len(load(f"{folder}:default").train) == 3


def test_folder_missing_subset(folder: Path) -> None:
    assert argument_error(DataOptions(dataset=[f"{folder}:fr/zh"])) == [
        f"--dataset {folder}: no subset fr; available: default, en, zh"
    ]


def test_folder_without_top_level_files_reads_every_subfolder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data" / "b" / "x.jsonl", qa_rows(1, "b"))
    write_jsonl(tmp_path / "data" / "a" / "x.jsonl", qa_rows(1, "a"))
    train = load(str(tmp_path / "data")).train
    assert [row.data["query"] for row in train] == ["a question 0", "b question 0"]
    assert argument_error(DataOptions(dataset=[f"{tmp_path / 'data'}:default"])) == [
        f"--dataset {tmp_path / 'data'}: no subset default; available: a, b"
    ]


def test_folder_without_data_files(tmp_path: Path) -> None:
    write_text(tmp_path / "empty" / "notes.md", "nothing here")
    assert argument_error(DataOptions(dataset=[str(tmp_path / "empty")])) == [
        f"--dataset {tmp_path / 'empty'}: no {SUFFIX_LIST} files in it"
    ]


# -- #N arithmetic --------------------------------------------------------------------------


def test_sample_fewer_than_the_dataset_is_distinct_rows() -> None:
    indices = sample_indices(10, 4, np.random.default_rng(42))
    assert len(indices) == 4 and len(set(indices)) == 4
    assert all(0 <= i < 10 for i in indices)


def test_sample_more_than_the_dataset_repeats_each_row_then_adds_distinct_extras() -> None:
    indices = sample_indices(4, 11, np.random.default_rng(42))  # 11 = 2 * 4 + 3
    counts = Counter(indices)
    assert len(indices) == 11 and set(counts) == {0, 1, 2, 3}
    assert sorted(counts.values()) == [2, 3, 3, 3]  # every row twice, three distinct rows once more


@pytest.mark.parametrize(("size", "n"), [(3, 9), (5, 5), (1, 4)])
def test_sample_a_multiple_of_the_dataset_is_each_row_equally(size: int, n: int) -> None:
    assert Counter(sample_indices(size, n, np.random.default_rng(0))) == {i: n // size for i in range(size)}


def test_sample_of_an_empty_dataset() -> None:
    assert sample_indices(0, 5, np.random.default_rng(0)) == []


def test_sample_is_reproducible_from_the_seed() -> None:
    first = sample_indices(100, 10, np.random.default_rng(42))
    assert sample_indices(100, 10, np.random.default_rng(42)) == first
    assert sample_indices(100, 10, np.random.default_rng(43)) != first
    upsampled = sample_indices(100, 130, np.random.default_rng(7))
    assert sample_indices(100, 130, np.random.default_rng(7)) == upsampled
    assert sample_indices(100, 130, np.random.default_rng(8)) != upsampled


# -- load_dataset_rows ----------------------------------------------------------------------


@pytest.fixture
def big(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "big.jsonl", qa_rows(10, "big"))


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write_text(tmp_path / "small.csv", "query,response\nq0,a0\nq1,a1\nq2,a2\n")


def test_several_datasets_are_mixed_in_order(big: Path, small: Path) -> None:
    loaded = load(str(big), str(small))
    assert wheres(loaded.train) == [f"{big}:{i}" for i in range(1, 11)] + [f"{small}:{i}" for i in (2, 3, 4)]
    assert loaded.val == []


def test_sample_suffix_applies_to_each_dataset(big: Path, small: Path) -> None:
    loaded = load(f"{big}#4", f"{small}#7")
    from_big = [w for w in wheres(loaded.train) if w.startswith(str(big))]
    from_small = Counter(w for w in wheres(loaded.train) if w.startswith(str(small)))
    assert len(loaded.train) == 11
    assert len(from_big) == 4 and len(set(from_big)) == 4
    assert sorted(from_small.values()) == [2, 2, 3]  # 7 = 2 * 3 + 1
    assert from_big != [f"{big}:{i}" for i in range(1, 5)]  # drawn at random, not the first four


def test_sampling_is_reproducible_from_data_seed(big: Path) -> None:
    first = wheres(load(f"{big}#5", data_seed=1).train)
    assert wheres(load(f"{big}#5", data_seed=1).train) == first
    assert wheres(load(f"{big}#5", data_seed=2).train) != first


def test_each_dataset_is_split_on_its_own(big: Path, small: Path) -> None:
    loaded = load(str(big), str(small), split_dataset_ratio=0.25)
    val_big = [w for w in wheres(loaded.val) if w.startswith(str(big))]
    val_small = [w for w in wheres(loaded.val) if w.startswith(str(small))]
    assert (len(val_big), len(val_small)) == (2, 1)  # int(10 * 0.25), and at least one of the small one
    assert len(loaded.train) == 8 + 2
    everything = wheres(load(str(big), str(small)).train)
    assert sorted(wheres(loaded.train) + wheres(loaded.val)) == sorted(everything)
    assert not set(wheres(loaded.train)) & set(wheres(loaded.val))
    again = load(str(big), str(small), split_dataset_ratio=0.25)
    assert (wheres(again.train), wheres(again.val)) == (wheres(loaded.train), wheres(loaded.val))


def test_default_ratio_still_holds_out_one_row_of_a_small_dataset(small: Path) -> None:
    loaded = load_dataset_rows(DataOptions(dataset=[str(small)]))
    assert (len(loaded.train), len(loaded.val)) == (2, 1)


def test_sample_then_split_keeps_n_rows_in_all(big: Path) -> None:
    loaded = load(f"{big}#6", split_dataset_ratio=0.5)
    assert (len(loaded.train), len(loaded.val)) == (3, 3)
    assert len(set(wheres(loaded.train)) | set(wheres(loaded.val))) == 6


def test_upsampled_dataset_does_not_leak_validation_rows_into_training(big: Path) -> None:
    loaded = load(f"{big}#20", split_dataset_ratio=0.1)
    assert loaded.val
    assert not set(wheres(loaded.val)) & set(wheres(loaded.train))


def test_val_dataset_given_means_no_split(big: Path, small: Path) -> None:
    loaded = load(str(big), val_dataset=[f"{small}#2"], split_dataset_ratio=0.5)
    assert wheres(loaded.train) == [f"{big}:{i}" for i in range(1, 11)]
    assert len(loaded.val) == 2 and all(w.startswith(str(small)) for w in wheres(loaded.val))


def test_streaming_reads_lazily_and_takes_the_first_n(big: Path, small: Path) -> None:
    loaded = load(f"{big}#3", str(small), streaming=True)
    assert isinstance(loaded.train, Iterator) and not isinstance(loaded.train, list)
    assert wheres(loaded.train) == [
        f"{big}:1", f"{big}:2", f"{big}:3", f"{small}:2", f"{small}:3", f"{small}:4"
    ]
    assert loaded.val == []


def test_streaming_with_a_val_dataset(big: Path, small: Path) -> None:
    loaded = load(str(big), val_dataset=[str(small)], streaming=True)
    assert len(list(loaded.train)) == 10
    assert wheres(loaded.val) == [f"{small}:{i}" for i in range(2, 5)]


def test_options_from_parsed_arguments(big: Path) -> None:
    args = SimpleNamespace(dataset=[f"{big}#2"], split_dataset_ratio=0.0, data_seed=3, learning_rate=1e-4)
    options = DataOptions.from_args(args)
    assert options == DataOptions(dataset=[f"{big}#2"], split_dataset_ratio=0.0, data_seed=3)
    assert len(load_dataset_rows(options).train) == 2


def test_unknown_local_name(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    expected_tail = (
        ": no such file or folder, not a built-in dataset (self-cognition, general-instructions, "
        f"preference-pairs, arithmetic) and not a hub id (org/name); local files may be {SUFFIX_LIST}"
    )
    assert argument_error(DataOptions(dataset=[str(missing)])) == [f"--dataset {missing}{expected_tail}"]
    for typed, name in [("self-cognitoin#5", "self-cognitoin"), ("data/train.jsonl", "data/train.jsonl")]:
        assert argument_error(DataOptions(dataset=[typed])) == [f"--dataset {name}{expected_tail}"]


# -- built-in datasets ----------------------------------------------------------------------

IDENTITY = {"model_name": ["小黄", "Xiao Huang"], "model_author": ["魔搭", "ModelScope"]}


@pytest.mark.parametrize(
    "identity",
    [{}, {"model_name": ["小黄", "Xiao Huang"]}, {"model_author": ["魔搭", "ModelScope"]}],
    ids=["neither", "no-author", "no-name"],
)
def test_self_cognition_needs_model_name_and_author(identity: dict[str, list[str]]) -> None:
    assert argument_error(DataOptions(dataset=["self-cognition"], **identity)) == [
        "--dataset self-cognition needs --model_name and --model_author "
        "(e.g. --model_name 小黄 'Xiao Huang' --model_author 魔搭 ModelScope)"
    ]


def test_self_cognition_fills_chinese_rows_with_the_first_name_and_english_with_the_last() -> None:
    raw = [row.data for row in read_file(BUILTIN_DATASETS["self-cognition"].path())]
    loaded = load("self-cognition", **IDENTITY)
    assert len(loaded.train) == len(raw) > 0
    tags = Counter(row["tag"] for row in raw)
    assert tags["zh"] > 0 and tags["en"] > 0
    for original, row in zip(raw, loaded.train):
        name, author = ("小黄", "魔搭") if original["tag"] == "zh" else ("Xiao Huang", "ModelScope")
        expected = {
            key: value.replace("{{NAME}}", name).replace("{{AUTHOR}}", author)
            for key, value in original.items()
            if key != "tag"
        }
        assert row.data == expected
    text = json.dumps(datas(loaded.train), ensure_ascii=False)
    assert "{{NAME}}" not in text and "{{AUTHOR}}" not in text and '"tag"' not in text
    assert "Xiao Huang" in text and "小黄" in text and "ModelScope" in text and "魔搭" in text
    assert wheres(loaded.train)[:2] == ["self-cognition:1", "self-cognition:2"]
    conversation = to_conversation(loaded.train[0].data, loaded.train[0].where)
    assert conversation.messages[-1]["role"] == "assistant"


def test_self_cognition_alias_with_sample() -> None:
    loaded = load("swift/self-cognition#5", **IDENTITY)
    assert len(loaded.train) == 5 and len(set(wheres(loaded.train))) == 5
    assert all(w.startswith("self-cognition:") for w in wheres(loaded.train))


def test_self_cognition_with_one_name_uses_it_for_both_languages() -> None:
    loaded = load("self-cognition", model_name=["Robo"], model_author=["Acme"])
    text = json.dumps(datas(loaded.train), ensure_ascii=False)
    assert "Robo" in text and "Acme" in text and "{{" not in text


def test_general_instructions_with_sample() -> None:
    loaded = load("general-instructions#20")
    assert len(loaded.train) == 20 and len(set(wheres(loaded.train))) == 20
    assert all(w.startswith("general-instructions:") for w in wheres(loaded.train))
    for row in loaded.train:
        conversation = to_conversation(row.data, row.where)
        assert [m["role"] for m in conversation.messages] == ["user", "assistant"]


# -- hub ids --------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, as a user without network sets it (otherwise every request is retried for ~25 s)."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize(
    ("dataset", "use_hf"),
    [("HF::swift-test-org/no-such-dataset:sub#5", False), ("swift-test-org/no-such-dataset", True)],
)
def test_hugging_face_dataset_offline_is_a_clean_error(offline: None, dataset: str, use_hf: bool) -> None:
    problems = argument_error(DataOptions(dataset=[dataset], use_hf=use_hf))
    assert len(problems) == 1
    assert problems[0].startswith("cannot load dataset 'swift-test-org/no-such-dataset'")


def test_custom_dataset_info_registers_names_with_column_renames(tmp_path) -> None:
    """--custom_dataset_info: a JSON file registers a name for a file (relative to the JSON) with renames."""
    import json as _json

    from swift_args import ArgumentError as _ArgumentError
    from swift_data.datasets.load import DataOptions, load_dataset_rows

    (tmp_path / "data").mkdir()
    rows = [{"q": f"question {i}", "a": f"answer {i}"} for i in range(5)]
    (tmp_path / "data" / "faq.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in rows))
    info = tmp_path / "dataset_info.json"
    info.write_text(_json.dumps([{"dataset_name": "my-faq", "dataset_path": "data/faq.jsonl",
                                  "columns": {"q": "query", "a": "response"}}]))
    loaded = load_dataset_rows(DataOptions(dataset=["my-faq#3"], split_dataset_ratio=0, custom_dataset_info=[str(info)]))
    assert len(loaded.train) == 3 and all(set(r.data) == {"query", "response"} for r in loaded.train)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"dataset_name": "x", "dataset_path": "nope.jsonl"}]')
    with pytest.raises(_ArgumentError, match=r"bad.json\[0\]: dataset_path nope.jsonl does not exist"):
        load_dataset_rows(DataOptions(dataset=["x"], custom_dataset_info=[str(bad)]))
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"dataset_name": "x",\n}]')
    with pytest.raises(_ArgumentError, match=r"broken.json:3: not valid JSON"):
        load_dataset_rows(DataOptions(dataset=["x"], custom_dataset_info=[str(broken)]))


@pytest.fixture
def cached_hub_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None) -> str:
    """'alice/tiny', cached by `datasets` as if downloaded earlier; the hub is off (HF_HUB_OFFLINE)."""
    import datasets
    import datasets.config

    cache = tmp_path / "datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    source = write_jsonl(tmp_path / "tiny.jsonl", qa_rows(2, "cached"))
    datasets.load_dataset("json", data_files=str(source), split="train")  # prepares an arrow cache we can move
    prepared = next((cache / "json").glob("default-*/0.0.0/*/"))
    target = cache / "alice___tiny" / "default" / "0.0.0" / prepared.name
    target.parent.mkdir(parents=True)
    prepared.rename(target)
    (target / "json-train.arrow").rename(target / "tiny-train.arrow")
    return "HF::alice/tiny"


def test_download_mode_force_redownload_refuses_a_silent_cache_hit(cached_hub_dataset: str) -> None:
    """`datasets` falls back to its cache when the hub is off or unreachable, even under force_redownload.

    The default mode reuses the cached rows; force_redownload must fetch them again or say it cannot.
    """
    loaded = load(cached_hub_dataset)
    assert [row.data["query"] for row in loaded.train] == ["cached question 0", "cached question 1"]
    problems = argument_error(DataOptions(dataset=[cached_hub_dataset], download_mode="force_redownload"))
    assert len(problems) == 1
    assert problems[0].startswith("--download_mode force_redownload: cannot download dataset 'alice/tiny' again")
    assert "drop the option to use the cached copy" in problems[0]
