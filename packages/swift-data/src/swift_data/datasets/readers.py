"""Reading local dataset files row by row, remembering where each row came from.

A row that cannot be read (a malformed JSON line, a value that is not an object) is reported as
a SkippedRow with its file and line, so it is counted instead of silently lost.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from swift_args import ArgumentError

from swift_data.skips import MALFORMED_JSON, WRONG_TYPES, SkippedRow

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")

# A CSV row with more cells than its header; counted here because the reason is particular to CSV.
MALFORMED_CSV = "malformed CSV row"


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
    for number, line in enumerate(text_lines(path), start=1):
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
    text = "".join(text_lines(path))
    if not text.strip():
        raise ArgumentError(f"{path}: the file is empty; a .json dataset is a list of rows: [{{...}}, ...]")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the file or use .jsonl") from None
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise ArgumentError(f"{path}: expected a JSON list of rows")
    for index, item in enumerate(value):
        yield _as_row(f"{path}[{index}]", item)


def _read_csv(path: Path) -> Iterator[RawRow]:
    # Pretraining documents in one cell pass csv's default 128 KiB field limit; raising the limit
    # for the whole process harms no other reader.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.DictReader(text_lines(path, newline=""))
    try:
        reader.fieldnames  # read the header, so line_num counts from it
        last_line = reader.line_num
        for row in reader:
            # A quoted cell may span lines: a row is named by the line it starts on.
            yield _csv_row(f"{path}:{last_line + 1}", row, len(reader.fieldnames))
            last_line = reader.line_num
    except csv.Error as exc:
        where = f"{path}:{reader.line_num}"
        raise ArgumentError(f"{where}: not valid CSV ({exc}); fix the file or save it as .jsonl") from None


def _csv_row(where: str, row: dict[str | None, Any], columns: int) -> RawRow:
    extra = row.pop(None, None)  # DictReader puts the cells beyond the header under None
    if extra is None:
        return RawRow(where, row)
    detail = f"{columns + len(extra)} cells but {columns} columns in the header; quote cells that hold commas"
    return RawRow(where, None, SkippedRow(MALFORMED_CSV, detail))


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArgumentError(
            f"{path}: not a valid Parquet file ({first}); re-export it (pandas: df.to_parquet) or use .jsonl"
        ) from None
    for index, row in enumerate(table.to_pylist()):
        yield RawRow(f"{path}[{index}]", row)


def _read_txt(path: Path) -> Iterator[RawRow]:
    for number, line in enumerate(text_lines(path), start=1):
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
    check_subsets(str(folder), chosen, available)
    files: list[Path] = []
    for name in chosen:
        directory = available[name]
        files += sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise ArgumentError(f"--dataset {folder}: no {', '.join(SUFFIXES)} files in it")
    return files


def check_subsets(label: str, asked: Iterable[str], available: Iterable[str]) -> None:
    """Refuse subsets a local or built-in dataset does not have, naming those it has."""
    available = sorted(available)
    missing = [s for s in asked if s not in available]
    if missing:
        names = ", ".join(available) or "none"
        raise ArgumentError(f"--dataset {label}: no subset {', '.join(missing)}; available: {names}")


# -- text decoding ----------------------------------------------------------------------------

# UTF-32-LE's mark begins with UTF-16-LE's, so the longer marks are tried first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NAMES = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32"}
_TEXT_ONLY = "datasets must be UTF-8 text (or UTF-16 with a byte-order mark)"


def text_lines(path: Path, newline: str | None = None) -> Iterator[str]:
    """The lines of a text dataset file, decoded as they are read (files may be larger than memory).

    The encoding comes from the byte-order mark (UTF-8 without one). Undecodable bytes or NUL
    characters raise ArgumentError naming the line; `newline` is passed to open() as for csv.
    """
    encoding = _encoding_of(path)
    with open(path, encoding=encoding, newline=newline) as f:
        try:
            for line in f:
                # Valid UTF-8 may hold NULs, but no text dataset does: binary, or UTF-16 without a mark.
                if "\x00" in line:
                    raise _not_text(path, encoding)
                yield line
        except UnicodeDecodeError:
            raise _not_text(path, encoding) from None


def _encoding_of(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    return next((encoding for bom, encoding in _BOMS if head.startswith(bom)), "utf-8-sig")


class _Problem(NamedTuple):
    line: int
    detail: str  # what and at which column
    nul: bool = False


def _not_text(path: Path, encoding: str) -> ArgumentError:
    """The error for a file that is not text, located by reading it again (only when one is met)."""
    problem = _first_problem(path, encoding)
    where = f"{path}:{problem.line}"
    with open(path, "rb") as f:
        head = f.read(512)
    if encoding == "utf-8-sig" and _looks_like_utf16(head):
        return ArgumentError(
            f"{where}: looks like UTF-16 text without a byte-order mark ({problem.detail}); "
            f"{_TEXT_ONLY}: re-save it as UTF-8"
        )
    if problem.nul or (encoding == "utf-8-sig" and b"\x00" in head):
        return ArgumentError(
            f"{where}: looks like a binary file, not text ({problem.detail}); {_TEXT_ONLY}: "
            "check that it is the dataset you meant, or export it as UTF-8 .jsonl or .csv"
        )
    return ArgumentError(
        f"{where}: not {_NAMES[encoding]} text ({problem.detail}); {_TEXT_ONLY}: re-save it as UTF-8"
    )


def _looks_like_utf16(head: bytes) -> bool:
    """UTF-16 without a mark, of mostly Latin text: NULs in most bytes of one parity, few in the other."""
    even, odd = head[0::2], head[1::2]
    if len(odd) < 4:
        return False
    pairs = ((odd, even), (even, odd))
    return any(a.count(0) > len(a) // 2 and b.count(0) <= len(b) // 10 for a, b in pairs)


def _first_problem(path: Path, encoding: str) -> _Problem:
    """Line and column of the first NUL or undecodable byte; a failing chunk is decoded byte by byte."""
    decoder = codecs.getincrementaldecoder(encoding)()
    cursor = _Cursor()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            state = decoder.getstate()
            try:
                problem = cursor.take(decoder.decode(chunk))
            except UnicodeDecodeError:
                decoder.setstate(state)
                problem = _first_problem_in(chunk, decoder, cursor)
            if problem is not None:
                return problem
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return _Problem(cursor.line, f"the file ends inside a character, at column {cursor.column}")
    return _Problem(cursor.line, "undecodable text")  # not reached: open() failed on the same bytes


def _first_problem_in(chunk: bytes, decoder: codecs.IncrementalDecoder, cursor: _Cursor) -> _Problem | None:
    for i in range(len(chunk)):
        try:
            text = decoder.decode(chunk[i : i + 1])
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.end]
            noun = "byte" if len(bad) == 1 else "bytes"
            hex_bytes = " ".join(f"0x{b:02x}" for b in bad)
            return _Problem(cursor.line, f"{noun} {hex_bytes} at column {cursor.column} cannot be decoded")
        if (problem := cursor.take(text)) is not None:
            return problem
    return None


class _Cursor:
    """Line and column (1-based, in characters) reached while decoding; lines end at "\\n"."""

    def __init__(self) -> None:
        self.line, self.column = 1, 1

    def take(self, text: str) -> _Problem | None:
        nul = text.find("\x00")
        self._advance(text if nul < 0 else text[:nul])
        return None if nul < 0 else _Problem(self.line, f"NUL byte at column {self.column}", nul=True)

    def _advance(self, text: str) -> None:
        newlines = text.count("\n")
        self.line += newlines
        self.column = len(text) - text.rfind("\n") if newlines else self.column + len(text)
