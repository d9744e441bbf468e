"""--custom_dataset_info: JSON files that register dataset names, as the reference's custom-dataset docs describe.

Each file holds a list of entries; an entry names its data with `dataset_path` (a file or folder, relative
to the JSON file), `ms_dataset_id` or `hf_dataset_id`, and may add `dataset_name` and `columns` (renames
applied to every row of it, e.g. {"input": "query", "output": "response"}):

    [{"dataset_name": "my-faq", "dataset_path": "faq.jsonl", "columns": {"q": "query", "a": "response"}},
     {"ms_dataset_id": "org/data", "hf_dataset_id": "org/data-hf"}]

`--dataset my-faq` (or the path or either id) then reads that entry, with `#N` and `:subset` as usual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

KEYS = ("dataset_name", "dataset_path", "ms_dataset_id", "hf_dataset_id", "columns", "subsets", "split")


@dataclass(frozen=True)
class RegisteredDataset:
    path: Path | None  # a local file or folder
    hub_id: str | None  # else a hub dataset (ms_dataset_id, or hf_dataset_id with --use_hf)
    hf_id: str | None
    columns: dict[str, str] | None
    source: str  # "file.json[index]", for messages


REGISTERED: dict[str, RegisteredDataset] = {}


def register_dataset_info(paths: list[str]) -> None:
    """Read each --custom_dataset_info file and register its entries under every name they give."""
    for path in paths:
        for name, entry in _entries(Path(path)):
            REGISTERED[name] = entry


def find_registered(name: str) -> RegisteredDataset | None:
    return REGISTERED.get(name)


def _entries(path: Path) -> list[tuple[str, RegisteredDataset]]:
    if not path.is_file():
        raise ArgumentError(f"--custom_dataset_info {path}: no such file")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"--custom_dataset_info {path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise ArgumentError(f"--custom_dataset_info {path}: expected a list of dataset entries")
    found = []
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        found += [(name, dataset) for name, dataset in _entry(entry, path.parent, where)]
    return found


def _entry(entry: Any, base: Path, where: str) -> list[tuple[str, RegisteredDataset]]:
    if not isinstance(entry, dict):
        raise ArgumentError(f"--custom_dataset_info {where}: each entry is a JSON object")
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise ArgumentError(f"--custom_dataset_info {where}: unknown key(s) {', '.join(unknown)}; "
                            f"an entry takes {', '.join(KEYS)}")
    if entry.get("subsets") or entry.get("split"):
        raise ArgumentError(f"--custom_dataset_info {where}: per-entry subsets and split are not supported yet; "
                            "select subsets in --dataset (name:subset)")
    columns = entry.get("columns")
    if columns is not None and not (isinstance(columns, dict) and all(isinstance(v, str) for v in columns.values())):
        raise ArgumentError(f"--custom_dataset_info {where}: columns maps column names to names, e.g. "
                            '{"input": "query"}')
    local = entry.get("dataset_path")
    path = (base / local).resolve() if local is not None and not Path(local).is_absolute() else local and Path(local)
    if path is not None and not path.exists():
        raise ArgumentError(f"--custom_dataset_info {where}: dataset_path {local} does not exist "
                            f"(relative paths are read from {base})")
    hub_id, hf_id = entry.get("ms_dataset_id"), entry.get("hf_dataset_id")
    if path is None and hub_id is None and hf_id is None:
        raise ArgumentError(f"--custom_dataset_info {where}: an entry needs dataset_path, ms_dataset_id or hf_dataset_id")
    dataset = RegisteredDataset(path, hub_id, hf_id, columns, where)
    names = [entry.get("dataset_name"), local, str(path) if path is not None else None, hub_id, hf_id]
    return [(name, dataset) for name in dict.fromkeys(n for n in names if n)]
