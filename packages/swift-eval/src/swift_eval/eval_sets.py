"""--eval_dataset: what each entry names, checked (rows included) before a server starts or a file is written.

An entry is one of:
  - a built-in set shipped with swift-eval, offline: `basic-qa` (short answers) or `basic-mcq` (multiple
    choice), each with an `en` and a `zh` subset (`basic-qa:en` picks one);
  - a local file or folder in EvalScope's custom formats: multiple choice (`question`, `A`, `B`, ...,
    `answer`) or short answer (`question`/`query` + `answer`/`response`, or `messages`); each file of a
    folder is a subset named after it;
  - an EvalScope benchmark (`gsm8k`, `mmlu`, `ceval`, ...), which EvalScope downloads from ModelScope (or
    the Hugging Face hub with --use_hf); `NAME=PATH` evaluates a local copy of it instead.
`NAME:sub1/sub2` picks subsets of a built-in set, a folder or a benchmark.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swift_args import ArgumentError

BUILTIN_DIR = Path(__file__).parent / "datasets"
BUILTIN = ("basic-qa", "basic-mcq")
ROW_FILES = (".jsonl", ".csv", ".tsv")  # what EvalScope's local loader reads (parquet needs no check of ours)
CHOICE_LETTERS = "ABCDEFGHIJ"
# Where EvalScope downloads benchmarks from, by --use_hf.
HUBS = {False: ("ModelScope", "www.modelscope.cn"), True: ("the Hugging Face hub", "huggingface.co")}


@dataclass
class EvalSet:
    """One --eval_dataset entry, resolved."""

    name: str  # the dataset's name in EvalScope's reports and in the table
    kind: Literal["qa", "mcq", "benchmark"]
    source: str | None  # the file or folder of rows; for a benchmark, its local copy (None: EvalScope downloads it)
    subsets: list[str] = field(default_factory=list)  # for a benchmark, [] means its own default list
    rows: dict[str, int] = field(default_factory=dict)  # rows per subset, where known (the progress bar's total)
    files: dict[str, str] = field(default_factory=dict)  # a local set's subset -> the file it is read from

    def planned(self, limit: int | None) -> int | None:
        """How many items this set sends, or None when EvalScope decides (a benchmark without statistics)."""
        if not self.rows:
            return None
        return sum(min(count, limit) if limit else count for count in self.rows.values())

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "source": self.source, "subsets": self.subsets,
                "files": self.files}


def resolve_eval_sets(entries: list[str], use_hf: bool) -> list[EvalSet]:
    """Every --eval_dataset entry resolved and checked; one line per bad entry, all reported together."""
    if not entries:
        raise ArgumentError("--eval_dataset is required: a built-in set (basic-qa, basic-mcq), a file or folder of "
                            "questions, or an EvalScope benchmark such as gsm8k")
    sets, problems = [], []
    for entry in entries:
        try:
            sets.append(_resolve(entry, use_hf))
        except ArgumentError as exc:
            problems += exc.problems
    if problems:
        raise ArgumentError(problems)
    _dedupe_names(sets)
    return sets


def _resolve(entry: str, use_hf: bool) -> EvalSet:
    if Path(entry).expanduser().exists():
        return local_set(entry, Path(entry).expanduser(), [])
    name, _, copy = entry.partition("=")
    base, _, picked = name.partition(":")
    subsets = [s for s in picked.split("/") if s] if picked else []
    if copy:
        return _benchmark(entry, base, subsets, copy, use_hf)
    if base in BUILTIN:
        return local_set(entry, BUILTIN_DIR / base, subsets, name=base)
    if Path(base).expanduser().exists():
        return local_set(entry, Path(base).expanduser(), subsets)
    return _benchmark(entry, base, subsets, None, use_hf)


# --- local files in EvalScope's custom formats ---------------------------------------------------------


def local_set(entry: str, path: Path, subsets: list[str], name: str | None = None) -> EvalSet:
    available = _subset_files(entry, path)
    if subsets:
        unknown = [s for s in subsets if s not in available]
        if unknown:
            raise ArgumentError(f"--eval_dataset {entry}: no subset {', '.join(unknown)}; it has "
                                f"{', '.join(available)}")
        available = {s: available[s] for s in subsets}
    kinds = {subset: _kind_and_rows(file) for subset, file in available.items()}
    if len({kind for kind, _ in kinds.values()}) > 1:
        raise ArgumentError(f"--eval_dataset {entry}: mixes multiple-choice and short-answer files; pass them as "
                            "two entries")
    kind = next(iter(kinds.values()))[0]
    files = {subset: str(file.resolve()) for subset, file in available.items()}
    return EvalSet(name or _stem(path), kind, str(path.resolve()), list(files),
                   {subset: count for subset, (_, count) in kinds.items()}, files)


def _subset_files(entry: str, path: Path) -> dict[str, Path]:
    """Subset name -> its file. A folder follows EvalScope's naming: `NAME_val` / `NAME_test` is subset NAME, and
    `NAME_dev` / `NAME_train` hold few-shot examples (not evaluated); any other file is a subset of its name."""
    if path.is_file():
        return {"default": _row_files(entry, path)[0]}
    subsets: dict[str, Path] = {}
    for file in _row_files(entry, path):
        stem = file.stem
        base, _, split = stem.rpartition("_")
        if base and split in ("dev", "train"):
            continue
        subset = base if base and split in ("val", "test") else stem
        if subset in subsets:
            raise ArgumentError(f"--eval_dataset {entry}: {subsets[subset].name} and {file.name} are both subset "
                                f"'{subset}'; keep one of them")
        subsets[subset] = file
    if not subsets:
        raise ArgumentError(f"--eval_dataset {entry}: the folder holds only few-shot files (_dev, _train)")
    return subsets


def _row_files(entry: str, path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix not in ROW_FILES:
            raise ArgumentError(f"--eval_dataset {entry}: a {path.suffix or 'extensionless'} file; evaluation rows "
                                f"are read from {', '.join(ROW_FILES)} files")
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in ROW_FILES)
    if not files:
        raise ArgumentError(f"--eval_dataset {entry}: the folder holds no {', '.join(ROW_FILES)} files")
    return files


def _stem(path: Path) -> str:
    return path.stem if path.is_file() else path.resolve().name


def _kind_and_rows(file: Path) -> tuple[Literal["qa", "mcq"], int]:
    """The file's format, from its first row, and its row count; every row is checked against that format."""
    rows = list(read_rows(file))
    if not rows:
        raise ArgumentError(f"{file}: no rows")
    kind: Literal["qa", "mcq"] = "mcq" if {"question", "A", "B", "answer"} <= set(rows[0][1]) else "qa"
    for line, row in rows:
        problem = _mcq_problem(row) if kind == "mcq" else _qa_problem(row)
        if problem:
            raise ArgumentError(f"{file}:{line}: {problem}")
    return kind, len(rows)


def read_rows(file: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of a .jsonl, .csv or .tsv file; a row that is not an object is one line naming it."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArgumentError(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if file.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ArgumentError(f"{file}:{number}: not valid JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(row, dict):
                raise ArgumentError(f"{file}:{number}: a row is a JSON object, got {type(row).__name__}")
            rows.append((number, row))
        return rows
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if file.suffix == ".tsv" else ",")
    return [(reader.line_num, row) for row in reader]


def _mcq_problem(row: dict[str, Any]) -> str | None:
    if not _text(row.get("question")):
        return "a multiple-choice row needs a non-empty question"
    letters = [letter for letter in CHOICE_LETTERS if _text(row.get(letter))]
    if letters != list(CHOICE_LETTERS[:len(letters)]) or len(letters) < 2:
        return f"the choices are columns A, B, C, ... in order, at least two, got {', '.join(letters) or 'none'}"
    answer = str(row.get("answer", "")).strip()
    if answer not in letters:
        return f"answer must be one of the choice letters {', '.join(letters)}, got '{answer}'"
    return None


def _qa_problem(row: dict[str, Any]) -> str | None:
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
            return "messages must be a list of {role, content} objects"
        if messages[-1].get("role") != "assistant":
            return "the last message is the reference answer, an assistant message"
        return None
    if not _text(first_of(row, "question", "query")):
        return ("a short-answer row needs question (or query) and answer (or response), or messages; a "
                "multiple-choice row needs question, A, B, ... and answer")
    if not _text(first_of(row, "answer", "response")):
        return "a short-answer row needs a non-empty answer (or response)"
    aliases = row.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        return "aliases must be a list of strings (other accepted forms of the answer)"
    return None


def first_of(row: dict[str, Any], *keys: str) -> Any:
    """The value of the first of `keys` the row has (0 and "0" are answers too)."""
    return next((row[key] for key in keys if row.get(key) is not None and str(row[key]).strip() != ""), None)


def _text(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and str(value).strip() != ""


# --- EvalScope's benchmarks ------------------------------------------------------------------------------


def _benchmark(entry: str, name: str, subsets: list[str], copy: str | None, use_hf: bool) -> EvalSet:
    names = benchmark_names()
    if name not in names:
        close = difflib.get_close_matches(name.lower(), [*BUILTIN, *names], n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ArgumentError(f"--eval_dataset {entry}: not a built-in set ({', '.join(BUILTIN)}), an existing file or "
                            f"folder, or an EvalScope benchmark{hint}")
    meta = _benchmark_meta(name)
    if subsets and (unknown := [s for s in subsets if s not in meta.subset_list]):
        raise ArgumentError(f"--eval_dataset {entry}: {name} has no subset {', '.join(unknown)}; its subsets are "
                            f"{', '.join(meta.subset_list)}")
    if copy:
        if not Path(copy).expanduser().exists():
            raise ArgumentError(f"--eval_dataset {entry}: the local copy {copy} does not exist")
        copy = str(Path(copy).expanduser().resolve())
    else:
        _check_downloadable(entry, meta.dataset_id, use_hf)
    return EvalSet(name, "benchmark", copy, subsets, _benchmark_rows(name, subsets))


def benchmark_names() -> list[str]:
    from evalscope.api.registry import BENCHMARK_REGISTRY

    return list(BENCHMARK_REGISTRY.keys())


def _benchmark_meta(name: str) -> Any:
    from evalscope.api.registry import BENCHMARK_REGISTRY

    return BENCHMARK_REGISTRY.get(name)


def _benchmark_rows(name: str, subsets: list[str]) -> dict[str, int]:
    """Rows per subset from the statistics EvalScope ships for its benchmarks ({} where it has none)."""
    try:
        from evalscope.utils.resource_utils import load_benchmark_data

        stats = load_benchmark_data(name).get(name, {}).get("statistics", {}).get("subset_stats", [])
    except Exception:  # noqa: BLE001 - the statistics only size the progress bar
        return {}
    rows = {s["name"]: int(s["sample_count"]) for s in stats if "name" in s and "sample_count" in s}
    return {k: v for k, v in rows.items() if k in subsets} if subsets else rows


def _check_downloadable(entry: str, dataset_id: str, use_hf: bool) -> None:
    """EvalScope downloads a benchmark when it first runs it; offline, say so now rather than after a server
    started and a download timed out. One already in ModelScope's or EvalScope's cache needs no hub."""
    from evalscope.constants import DEFAULT_DATASET_CACHE_DIR, DEFAULT_EVALSCOPE_CACHE_DIR
    from evalscope.utils.io_utils import safe_filename

    if not use_hf and (Path(DEFAULT_DATASET_CACHE_DIR) / dataset_id).is_dir():
        return
    if any(Path(DEFAULT_EVALSCOPE_CACHE_DIR, "datasets").glob(f"{safe_filename(dataset_id)}-*")):
        return
    hub, host = HUBS[use_hf]
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as exc:
        raise ArgumentError(
            f"--eval_dataset {entry}: EvalScope downloads this benchmark ({dataset_id}) from {hub}, which cannot be "
            f"reached from here ({exc.strerror or type(exc).__name__}); download it where the hub is reachable "
            f"(modelscope download --dataset {dataset_id} --local_dir DIR) and pass --eval_dataset "
            f"{entry.partition(':')[0]}=DIR") from None


def _dedupe_names(sets: list[EvalSet]) -> None:
    """Two entries may not report under one name (a file named like a benchmark, two files called test); a
    benchmark keeps its name, so it may be listed once."""
    benchmarks = [s.name for s in sets if s.kind == "benchmark"]
    if twice := sorted({name for name in benchmarks if benchmarks.count(name) > 1}):
        raise ArgumentError(f"--eval_dataset lists {', '.join(twice)} twice; pick its subsets in one entry "
                            f"({twice[0]}:a/b)")
    seen, taken = set(benchmarks), set(benchmark_names())
    for eval_set in sets:
        if eval_set.kind == "benchmark":
            continue
        base = re.sub(r"[^\w.-]", "_", eval_set.name)
        name, n = base, 2
        while name in seen or name in taken:
            name, n = f"{base}-{n}", n + 1
        eval_set.name = name
        seen.add(name)
