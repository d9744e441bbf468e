"""args.json: the resolved arguments of a run, written before the run does any work.

The file is flat, like ms-swift's, plus three reserved keys: `schema_version`, `command` and
`swift_versions`. A file without `schema_version` is a legacy one (ms-swift 3.x `args.json`,
2.x `sft_args.json`): it is upgraded on read through the alias table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from swift_args.aliases import REMOVED, find_alias
from swift_args.convert import ConversionError, from_json
from swift_args.errors import ArgumentError
from swift_args.fields import specs
from swift_args.files import apply_umask

SCHEMA_VERSION = 1
ARGS_FILE = "args.json"
LEGACY_FILES = ("args.json", "sft_args.json")
# model_dir: where --model resolved on the machine that wrote the file (a cache path that means
# nothing elsewhere: readers use --model, the portable name, and never load it back).
RESERVED = ("schema_version", "command", "swift_versions", "model_dir")
PACKAGES = ("swift-args", "swift-data", "swift-infer", "swift-train", "swift-export", "swift-eval", "swift-app")


def installed_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def to_json_dict(args: Any, command: str, model_dir: str | Path | None = None) -> dict[str, Any]:
    body = {"schema_version": SCHEMA_VERSION, "command": command, "swift_versions": installed_versions()}
    if model_dir is not None:
        body["model_dir"] = str(Path(model_dir).resolve())
    body.update(dataclasses.asdict(args))
    return body


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file beside `path`, then rename: a reader never sees half a file.

    The file gets the umask's mode (mkstemp alone would leave it 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
            f.write("\n")
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_args(args: Any, run_dir: str | Path, command: str, model_dir: str | Path | None = None) -> Path:
    path = Path(run_dir) / ARGS_FILE
    write_json_atomic(path, to_json_dict(args, command, model_dir))
    return path


def read_args_file(path: str | Path, schema: type, command: str,
                   only: set[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The arguments stored in `path` that `schema` knows, checked against their types.

    Returns (values, warnings). Keys the schema does not have (another command's arguments), and with
    `only` the keys outside it, are skipped; a value of the wrong type, a newer schema or a broken file raise ArgumentError.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix or delete the file") from None
    except OSError as exc:
        raise ArgumentError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise ArgumentError(f"{path}: expected a JSON object of arguments")
    version = raw.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ArgumentError(
            f"{path} has schema_version {version}, newer than this swift-args reads ({SCHEMA_VERSION}); "
            "upgrade with: pip install -U swift-args"
        )
    warnings: list[str] = []
    if version == 0:
        raw = _upgrade_legacy(raw, command, warnings)
        warnings.insert(0, f"{path} has no schema_version (an older swift); read it as schema {SCHEMA_VERSION}")
    if only is not None:  # values nobody will use are not checked against this command's schema
        raw = {key: value for key, value in raw.items() if key in only or key in RESERVED}
    return _typed_values(path, raw, schema), warnings


def _upgrade_legacy(raw: dict[str, Any], command: str, warnings: list[str]) -> dict[str, Any]:
    """Rename 2.x keys through the alias table; values go through the same rewrites as on the command line."""
    upgraded: dict[str, Any] = {}
    for key, value in raw.items():
        alias = find_alias(key, command)
        if alias is None or alias.old == alias.new:
            if key not in REMOVED:
                upgraded.setdefault(key, value)
            continue
        as_strings = [str(v) for v in value] if isinstance(value, list) else ([] if value is None else [_cli_str(value)])
        rewritten = alias.apply(as_strings) if as_strings else None
        if rewritten is not None:
            new_values = rewritten[1] if isinstance(value, list) else rewritten[1][0]
            upgraded[rewritten[0]] = value if rewritten[1] == as_strings else new_values
    return upgraded


def _cli_str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _typed_values(path: Path, raw: dict[str, Any], schema: type) -> dict[str, Any]:
    arg_specs = specs(schema)
    values, problems = {}, []
    for key, value in raw.items():
        if key in RESERVED or key not in arg_specs:
            continue
        try:
            values[key] = from_json(arg_specs[key], value)
        except ConversionError as exc:
            problems.append(f"{path}: {exc}")
    if problems:
        raise ArgumentError(problems)
    return values
