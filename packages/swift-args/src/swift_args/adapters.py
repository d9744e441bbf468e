"""Entries of --adapters: `name=path` or a bare path, read the same way by every command."""

from __future__ import annotations

import json
from pathlib import Path

from swift_args.checkpoint_files import damage_refusal

# What marks a directory as an adapter: peft's config, or our own tuners' (adapter, ReFT).
OWN_TUNER_CONFIG = "swift_tuner.json"
ADAPTER_CONFIGS = ("adapter_config.json", OWN_TUNER_CONFIG)


def is_adapter_dir(path: str | Path) -> bool:
    return any((Path(path) / name).is_file() for name in ADAPTER_CONFIGS)


# peft's adapter types, by the --train_type that trains them.
PEFT_TYPES = {"LORA": "lora", "ADALORA": "adalora", "VERA": "vera", "BOFT": "boft", "FOURIERFT": "fourierft"}


def saved_tuner(path: str | Path) -> str | None:
    """The --train_type that trained the adapter in `path` (lora also for longlora), None when unknown."""
    for name in ADAPTER_CONFIGS:
        config_file = Path(path) / name
        if config_file.is_file():
            try:
                config = json.loads(config_file.read_text())
            except (OSError, ValueError):
                return None
            return config.get("kind") if name == OWN_TUNER_CONFIG else PEFT_TYPES.get(config.get("peft_type"))
    return None


def tuner_mismatch(path: str | Path, train_type: str, flag: str) -> str | None:
    """Why `train_type` cannot train on from the adapter at `path`, or None when it can."""
    saved = saved_tuner(path)
    if saved is None or saved == train_type or (saved, train_type) == ("lora", "longlora"):
        return None
    return f"{flag} {path} holds a {saved} tuner; train on from it with --train_type {saved}"


def split_adapter(spec: str) -> tuple[str | None, str]:
    """(name, path), name None for a bare path. Names never hold '='; a path may, so an existing path
    is taken whole and otherwise the name ends at the first '='."""
    name, separator, path = spec.partition("=")
    if not separator or Path(spec).exists():
        return None, spec
    return name, path


def adapter_path(spec: str) -> str:
    return split_adapter(spec)[1]


def adapter_problems(adapters: list[str]) -> list[str]:
    """What is wrong with each --adapters entry that names something on disk, said while parsing."""
    problems = []
    for spec in adapters:
        raw = adapter_path(spec)
        path = Path(raw).expanduser()
        if is_adapter_dir(path):
            # A saved checkpoint truncated or overwritten since: named now, before any model loads.
            problem = damage_refusal(path, "--adapters", shown=raw)
            problems.extend([problem] if problem else [])
            continue
        if not path.exists():
            continue
        if path.is_file():
            problems.append(f"--adapters {raw} is a file; pass the checkpoint directory that holds adapter_config.json")
        elif (path / "config.json").is_file():
            problems.append(f"--adapters {raw} is a full model (config.json, no adapter_config.json); "
                            f"pass it as --model {raw}")
        else:
            problems.append(f"no adapter in {raw} (no adapter_config.json); pass a checkpoint directory"
                            + _checkpoint_hint(path))
    return problems


def missing_adapters(adapters: list[str]) -> list[str]:
    """Entries that name no local path and cannot be hub ids (`org/name`), said before a command runs."""
    return [f"--adapters {adapter_path(spec)}: no such directory" for spec in adapters
            if not Path(adapter_path(spec)).expanduser().exists() and not _looks_like_hub_id(adapter_path(spec))]


def _looks_like_hub_id(raw: str) -> bool:
    return raw.count("/") == 1 and not raw.startswith((".", "/", "~"))


def _checkpoint_hint(path: Path) -> str:
    """', e.g. <run>/checkpoint-30' when `path` is a run directory holding adapter checkpoints."""
    found = sorted((p for p in path.glob("checkpoint-*") if is_adapter_dir(p)),
                   key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    return f", e.g. {found[-1]}" if found else " (output/<model>/vN-.../checkpoint-N)"
