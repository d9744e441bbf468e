"""Reading local dataset files row by row, remembering where each row came from.

A row that cannot be read (a malformed JSON line, a value that is not an object) is reported as
a SkippedRow with its file and line, so it is counted instead of silently lost.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

from swift_data.skips import MALFORMED_JSON, WRONG_TYPES, SkippedRow

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")


@dataclass(frozen=True)
class RawRow:
    """One row as read, or the reason it could not be read."""

    where: str  # "file:line" or "file[index]" or "name[index]"
    data: dict[str, Any] | None
    error: SkippedRow | None = None


def read_file(path: Path) -> Iterator[RawRow]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _read_jsonl(path)
    elif suffix == ".json":
        yield from _read_json(path)
    elif suffix == ".csv":
        yield from _read_csv(path)
    elif suffix == ".parquet":
        yield from _read_parquet(path)
    elif suffix == ".txt":
        yield from _read_txt(path)
    else:
        raise ArgumentError(f"--dataset {path}: unsupported file type '{suffix}'; use one of {', '.join(SUFFIXES)}")


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawRow(where, None, SkippedRow(MALFORMED_JSON, exc.msg))
                continue
            yield _as_row(where, value)


def _read_json(path: Path) -> Iterator[RawRow]:
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the file or use .jsonl") from None
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise ArgumentError(f"{path}: expected a JSON list of rows")
    for index, item in enumerate(value):
        yield _as_row(f"{path}[{index}]", item)


def _read_csv(path: Path) -> Iterator[RawRow]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        reader.fieldnames  # read the header, so line_num counts from it
        last_line = reader.line_num
        for row in reader:
            # A quoted cell may span lines: a row is named by the line it starts on.
            yield RawRow(f"{path}:{last_line + 1}", {k: v for k, v in row.items() if k is not None})
            last_line = reader.line_num


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for index, row in enumerate(table.to_pylist()):
        yield RawRow(f"{path}[{index}]", row)


def _read_txt(path: Path) -> Iterator[RawRow]:
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield RawRow(f"{path}:{number}", {"text": line.rstrip("\n")})


def _as_row(where: str, value: Any) -> RawRow:
    if not isinstance(value, dict):
        return RawRow(where, None, SkippedRow(WRONG_TYPES, f"a row must be a JSON object, got {type(value).__name__}"))
    return RawRow(where, value)


def files_in_folder(folder: Path, subsets: tuple[str, ...]) -> list[Path]:
    """Files of a dataset folder: top-level files are the `default` subset, subfolders the others."""
    available = {p.name: p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    top_files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if top_files:
        available.setdefault("default", folder)
    if subsets == ("all",) or (not subsets and not top_files):
        chosen = sorted(available)
    else:
        chosen = list(subsets or ("default",))
    missing = [s for s in chosen if s not in available]
    if missing:
        raise ArgumentError(
            f"--dataset {folder}: no subset {', '.join(missing)}; available: {', '.join(sorted(available)) or 'none'}"
        )
    files: list[Path] = []
    for name in chosen:
        directory = available[name]
        files += sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise ArgumentError(f"--dataset {folder}: no {', '.join(SUFFIXES)} files in it")
    return files
