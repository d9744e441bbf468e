"""Entries of --adapters: `name=path` or a bare path, read the same way by every command."""

from __future__ import annotations

from pathlib import Path


def split_adapter(spec: str) -> tuple[str | None, str]:
    """(name, path), name None for a bare path. Names never hold '='; a path may, so an existing path
    is taken whole and otherwise the name ends at the first '='."""
    name, separator, path = spec.partition("=")
    if not separator or Path(spec).exists():
        return None, spec
    return name, path


def adapter_path(spec: str) -> str:
    return split_adapter(spec)[1]
