"""`load_args`: fill what the user did not pass from the args.json of the run they point at.

The reference: with --resume_from_checkpoint, --adapters or --model naming a checkpoint or run
directory, its args.json supplies the base arguments (model, template, quantization, ...) except
data and generation ones; `load_data_args` adds the data arguments. The command line always wins.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from swift_args.adapters import adapter_path
from swift_args.args_file import LEGACY_FILES, read_args_file
from swift_args.fields import specs

LOADED_GROUPS = {"base", "model", "template", "quantization"}
DATA_GROUPS = {"data"}
# Per-run or per-machine choices that a later stage must not inherit.
# `metric` names a training run's evaluation (acc / nlg) but inference's scoring of its results
# (acc / rouge): same name, another choice list.
NEVER_LOADED = {
    "adapters", "seed", "load_args", "load_data_args", "hub_token", "device_map", "max_memory",
    "padding_side", "sequence_parallel_size", "metric",
}  # fmt: skip

# A training run's --quant_method says how it loaded its base (QLoRA); export's says what to write. Taken over,
# a QLoRA run's bnb would quietly turn `swift export --merge_lora true` into a 4-bit export.
WRITES_QUANTIZED = ("export", "merge-lora")


def find_args_file(path: str | Path) -> Path | None:
    """args.json in the directory itself, or in its parent (a checkpoint inside a run directory)."""
    directory = Path(path)
    if not directory.is_dir():
        return None
    for candidate_dir in (directory, directory.parent):
        for name in LEGACY_FILES:
            candidate = candidate_dir / name
            if candidate.is_file():
                return candidate
    return None


def source_directory(values: dict[str, Any]) -> str | None:
    """Which passed path to read args.json from, in the reference's order."""
    if values.get("resume_from_checkpoint"):
        return values["resume_from_checkpoint"]
    adapters = values.get("adapters") or []
    if adapters:
        return adapter_path(adapters[0])
    return values.get("model")


def loadable_names(schema: type, with_data: bool, command: str = "") -> set[str]:
    groups = LOADED_GROUPS | (DATA_GROUPS if with_data else set())
    if command in WRITES_QUANTIZED:
        groups = groups - {"quantization"}
    base_specs = specs(_base_schema())
    names = set()
    for name, spec in specs(schema).items():
        # The group as the base arguments declare it: a command's override keeps its origin.
        group = base_specs[name].group if name in base_specs else spec.group
        if group in groups and name not in NEVER_LOADED:
            names.add(name)
    return names


def _base_schema() -> type:
    from swift_args.schema.base import ModelLoadingArguments

    return ModelLoadingArguments


def load_saved_args(
    schema: type, command: str, passed: dict[str, Any], with_data: bool
) -> tuple[dict[str, Any], Path | None, list[str]]:
    """The args.json values to use for arguments not in `passed`: (values, file, warnings)."""
    source = source_directory(passed)
    if source is None:
        return {}, None, []
    args_file = find_args_file(source)
    if args_file is None:
        return {}, None, []
    names = loadable_names(schema, with_data, command) - set(passed)
    saved, warnings = read_args_file(args_file, schema, command, only=names)
    defaults = {f.name for f in dataclasses.fields(schema)}
    return {k: v for k, v in saved.items() if k in names and k in defaults}, args_file, warnings
