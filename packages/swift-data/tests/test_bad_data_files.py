"""Data files that are not what they claim: wrong encodings, binary files, broken Parquet, bad #N and subsets.

Each case is one ArgumentError naming the file (and line), or a counted skip; never a traceback.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from swift_args import ArgumentError

from swift_data.datasets import DataOptions, load_dataset_rows, parse_dataset_spec
from swift_data.datasets.load import LoadedRows
from swift_data.datasets.readers import MALFORMED_CSV, read_file

ROWS = [{"query": "héllo", "response": "世界"}, {"query": "second", "response": "line, with comma"}]
JSONL = "".join(json.dumps(row, ensure_ascii=False) + "\r\n" for row in ROWS)  # as Windows tools write it
NEEDS_TEXT = re.escape("datasets must be UTF-8 text (or UTF-16 with a byte-order mark)")
IDENTITY = {"model_name": ["小黄", "Xiao Huang"], "model_author": ["魔搭", "ModelScope"]}


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def load(*datasets: str, **options: Any) -> LoadedRows:
    options.setdefault("split_dataset_ratio", 0.0)
    return load_dataset_rows(DataOptions(dataset=list(datasets), **options))


def lines_and_data(rows: Any) -> list[tuple[str, Any]]:
    """Rows without their file path: the line (or index) and the data."""
    return [(re.sub(r"^.*?([:\[])", r"\1", row.where), row.data) for row in rows]


# -- encodings ------------------------------------------------------------------------------

TWINS = {
    ".jsonl": JSONL,
    ".json": json.dumps(ROWS, ensure_ascii=False, indent=2).replace("\n", "\r\n"),
    ".csv": 'query,response\r\nhéllo,世界\r\nsecond,"line, with comma"\r\n',
    ".txt": "héllo 世界\r\n\r\nsecond line\r\n",
}
ENCODINGS = {
    "utf-16-le-bom": lambda text: b"\xff\xfe" + text.encode("utf-16-le"),
    "utf-16-be-bom": lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
    "utf-32-le-bom": lambda text: b"\xff\xfe\x00\x00" + text.encode("utf-32-le"),
    "utf-32-be-bom": lambda text: b"\x00\x00\xfe\xff" + text.encode("utf-32-be"),
    "utf-8-bom": lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
}


@pytest.mark.parametrize("suffix", list(TWINS))
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_files_with_a_byte_order_mark_load_like_their_utf8_twin(
    tmp_path: Path, suffix: str, encoding: str
) -> None:
    text = TWINS[suffix]
    utf8 = write_bytes(tmp_path / "utf8" / f"train{suffix}", text.encode("utf-8"))
    other = write_bytes(tmp_path / encoding / f"train{suffix}", ENCODINGS[encoding](text))
    expected = lines_and_data(load(str(utf8)).train)
    assert expected and all(data is not None for _, data in expected)
    assert lines_and_data(load(str(other)).train) == expected


def test_utf16_jsonl_rows_are_exactly_the_utf8_rows(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "windows.jsonl", JSONL.encode("utf-16"))
    assert [row.data for row in read_file(path)] == ROWS
    assert [row.where for row in read_file(path)] == [f"{path}:1", f"{path}:2"]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".txt"])
def test_latin1_file_names_line_and_column_and_how_to_fix(tmp_path: Path, suffix: str) -> None:
    text = '{"a": "x"}\n' * 3 + '{"query": "café"}\n' if suffix != ".csv" else "query\nx\nx\ncafé\n"
    path = write_bytes(tmp_path / f"latin{suffix}", text.encode("latin-1"))
    column = 15 if suffix != ".csv" else 4
    expected = (
        f"{re.escape(str(path))}:4: not UTF-8 text \\(byte 0xe9 at column {column} cannot be decoded\\); "
        f"{NEEDS_TEXT}: re-save it as UTF-8$"
    )
    with pytest.raises(ArgumentError, match=expected):
        load(str(path))


def test_a_bad_byte_deep_in_a_large_file_is_located_and_rows_before_it_stream(tmp_path: Path) -> None:
    good = '{"query": "q", "response": "r"}\n' * 20000  # past the 64 KiB the locator decodes at once
    path = write_bytes(tmp_path / "big.jsonl", (good + '{"query": "\xff"}\n').encode("latin-1"))
    rows = read_file(path)
    assert next(rows).data == {"query": "q", "response": "r"}  # read as a stream, not checked whole first
    with pytest.raises(ArgumentError, match=r"big\.jsonl:20001: not UTF-8 text \(byte 0xff at column 12 "):
        list(rows)


def test_gzip_file_named_jsonl_looks_binary(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "train.jsonl", gzip.compress(JSONL.encode()))
    expected = (
        rf"{re.escape(str(path))}:1: looks like a binary file, not text "
        r"\(byte 0x8b at column 2 cannot be decoded\)"
    )
    with pytest.raises(
        ArgumentError, match=expected + f"; {NEEDS_TEXT}: check that it is the dataset you meant"
    ):
        load(str(path))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".txt", ".json"])
def test_nul_bytes_in_valid_utf8_look_binary(tmp_path: Path, suffix: str) -> None:
    path = write_bytes(tmp_path / f"data{suffix}", b'"hello"\n"wor\x00ld"\n')
    with pytest.raises(
        ArgumentError, match=r"data\.\w+:2: looks like a binary file, not text \(NUL byte at column 5\)"
    ):
        list(read_file(path))


def test_utf16_without_a_byte_order_mark_is_named(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "nobom.jsonl", JSONL.encode("utf-16-le"))
    expected = (
        r"nobom\.jsonl:1: looks like UTF-16 text without a byte-order mark \(NUL byte at column 2\); "
        + NEEDS_TEXT
    )
    with pytest.raises(ArgumentError, match=expected + ": re-save it as UTF-8$"):
        load(str(path))


def test_broken_utf16_after_its_byte_order_mark(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path / "broken.txt", "ab\ncd".encode("utf-16-le").join([b"\xff\xfe", b"\x00\xdcx\x00"])
    )
    with pytest.raises(
        ArgumentError, match=r"broken\.txt:2: not UTF-16 text \(bytes 0x00 0xdc at column 3 cannot"
    ):
        load(str(path))


def test_file_cut_inside_a_character(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "cut.txt", "ok\nab世".encode()[:-1])
    with pytest.raises(
        ArgumentError, match=r"cut\.txt:2: not UTF-8 text \(the file ends inside a character, at column 3\)"
    ):
        load(str(path))


# -- Parquet --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "pyarrow_says"),
    [(b"query,response\nHi,Hello\n", "magic bytes not found"), (b"", "file size is 0 bytes")],
    ids=["csv-text", "empty"],
)
def test_file_named_parquet_that_is_not_parquet(tmp_path: Path, content: bytes, pyarrow_says: str) -> None:
    path = write_bytes(tmp_path / "train.parquet", content)
    with pytest.raises(ArgumentError) as info:
        load(str(path))
    [problem] = info.value.problems
    assert problem.startswith(f"{path}: not a valid Parquet file (") and pyarrow_says in problem
    assert problem.endswith("); re-export it (pandas: df.to_parquet) or use .jsonl") and "\n" not in problem


# -- JSON and CSV shapes --------------------------------------------------------------------


def test_missing_json_file(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match=r"missing\.json: no such file or folder"):
        load(str(tmp_path / "missing.json"))


def test_empty_json_file(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "empty.json", b"\n  \n")
    with pytest.raises(
        ArgumentError, match=rf"^{re.escape(str(path))}: the file is empty; a \.json dataset is a list"
    ):
        load(str(path))


def test_truncated_json_file(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "cut.json", b'[\n  {"query": "a"},\n  {"query": ')
    with pytest.raises(
        ArgumentError, match=r"cut\.json:3: not valid JSON \(Expecting value\); fix the file or use \.jsonl"
    ):
        load(str(path))


@pytest.mark.parametrize("value", [{"rows": []}, {"data": {"a": 1}}, "text", 3, None])
def test_json_that_is_not_rows(tmp_path: Path, value: Any) -> None:
    path = write_bytes(tmp_path / "odd.json", json.dumps(value).encode())
    with pytest.raises(ArgumentError, match=r"odd\.json: expected a JSON list of rows$"):
        load(str(path))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"\n   \n\r\n"),
        ("empty-list.json", b"[]"),
        ("header-only.csv", b"query,response\n"),
        ("empty.csv", b""),
        ("blank.txt", b"\n\n"),
    ],
)
def test_a_dataset_with_no_rows_says_so(tmp_path: Path, name: str, content: bytes) -> None:
    path = write_bytes(tmp_path / name, content)
    good = write_bytes(tmp_path / "good.jsonl", JSONL.encode())
    expected = (
        rf"^--dataset {re.escape(str(path))}: it has no rows "
        r"\(an empty file, blank lines only, or a CSV header alone\)"
    )
    with pytest.raises(ArgumentError, match=expected):
        load(str(good), str(path))  # even next to a dataset that has rows
    with pytest.raises(ArgumentError, match=expected):
        list(load(str(path), streaming=True).train)


def test_csv_row_with_more_cells_than_the_header_is_a_counted_skip(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "unquoted.csv", b"query,response\nHi,Hello, world\nBye,Goodbye\n")
    first, second = read_file(path)
    assert (first.where, first.data) == (f"{path}:2", None)
    assert (first.error.reason, first.error.detail) == (
        MALFORMED_CSV,
        "3 cells but 2 columns in the header; quote cells that hold commas",
    )
    assert (second.where, second.data, second.error) == (
        f"{path}:3",
        {"query": "Bye", "response": "Goodbye"},
        None,
    )


def test_csv_cell_longer_than_csvs_default_field_limit(tmp_path: Path) -> None:
    document = "word " * 60_000  # 300 KB, over csv's 128 KiB default
    path = write_bytes(tmp_path / "long.csv", f'text\n"{document}"\n'.encode())
    assert [row.data for row in read_file(path)] == [{"text": document}]


# -- the #N suffix --------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_bytes(tmp_path / "file.jsonl", JSONL.encode())


@pytest.mark.parametrize("suffix", ["abc", "-3", "", "1.5", "+2", "5x"])
def test_sample_suffix_must_be_a_positive_integer(data_file: Path, suffix: str) -> None:
    text = f"{data_file}#{suffix}"
    expected = (
        f"--dataset '{text}': the #N suffix must be a positive integer (the number of rows to sample), "
        f"got '{suffix}'"
    )
    with pytest.raises(ArgumentError, match=f"^{re.escape(expected)}$"):
        load(text)


@pytest.mark.parametrize("text", ["self-cognition#abc", "HF::org/name#x", "data/absent.jsonl#-1"])
def test_sample_suffix_of_builtins_hub_ids_and_absent_files(text: str) -> None:
    with pytest.raises(ArgumentError, match="the #N suffix must be a positive integer"):
        parse_dataset_spec(text)


def test_sample_zero_is_still_refused(data_file: Path) -> None:
    with pytest.raises(ArgumentError, match="#0 selects no rows; drop the suffix"):
        load(f"{data_file}#0")


def test_hash_in_a_directory_name_is_part_of_the_path(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "x#1" / "train.jsonl", JSONL.encode())
    assert [row.data for row in load(str(path)).train] == ROWS
    assert len(load(f"{path}#1").train) == 1
    assert len(load(f"{path}#5").train) == 5


def test_hash_in_an_existing_file_or_folder_name_is_part_of_it(tmp_path: Path) -> None:
    notes = write_bytes(tmp_path / "notes#draft.jsonl", JSONL.encode())
    write_bytes(tmp_path / "run#2" / "train.jsonl", JSONL.encode())
    assert [row.data for row in load(str(notes)).train] == ROWS
    assert [row.data for row in load(str(tmp_path / "run#2")).train] == ROWS
    assert len(load(f"{tmp_path / 'run#2'}:default#1").train) == 1


def test_colon_in_an_existing_file_name_is_part_of_it(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "chat:v2.jsonl", JSONL.encode())
    assert [row.data for row in load(str(path)).train] == ROWS


# -- subsets --------------------------------------------------------------------------------


def test_a_file_has_only_the_default_subset(data_file: Path) -> None:
    with pytest.raises(
        ArgumentError, match=f"^--dataset {re.escape(str(data_file))}: no subset zh; available: default$"
    ):
        load(f"{data_file}:zh")
    with pytest.raises(ArgumentError, match="no subset zh, en; available: default$"):
        load(f"{data_file}:default/zh/en#1")


@pytest.mark.parametrize("subset", [":default", ":all", ":default/all"])
def test_a_files_default_and_all_subsets_are_the_whole_file(data_file: Path, subset: str) -> None:
    assert [row.data for row in load(f"{data_file}{subset}").train] == ROWS


@pytest.mark.parametrize("name", ["self-cognition", "swift/self-cognition", "general-instructions"])
def test_a_builtin_dataset_has_only_the_default_subset(name: str) -> None:
    canonical = name.removeprefix("swift/")
    with pytest.raises(
        ArgumentError, match=f"^--dataset {canonical}: no subset nosuchsubset; available: default$"
    ):
        load(f"{name}:nosuchsubset", **IDENTITY)


@pytest.mark.parametrize("name", ["self-cognition", "general-instructions"])
def test_builtin_default_and_all_subsets_are_the_whole_set(name: str) -> None:
    whole = [row.data for row in load(name, **IDENTITY).train]
    assert [row.data for row in load(f"{name}:default", **IDENTITY).train] == whole
    assert [row.data for row in load(f"{name}:all", **IDENTITY).train] == whole


def test_hub_subsets_are_left_to_the_hub() -> None:
    assert parse_dataset_spec("org/name:nosuchsubset").subsets == ("nosuchsubset",)
