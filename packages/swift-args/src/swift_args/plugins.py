"""User Python files imported before a command runs (--external_plugins, --custom_register_path).

They register or patch things; an error inside one is the user's to fix, so it is reported as
one line naming the file and line, not as our traceback.
"""

from __future__ import annotations

import importlib.util
import traceback
from pathlib import Path

from swift_args.errors import ArgumentError


def import_files(paths: list[str], argument: str) -> None:
    """Import each file as its own module, in order; `argument` names the option in errors."""
    for index, path in enumerate(paths):
        if not Path(path).is_file():
            raise ArgumentError(f"{argument} {path}: no such file")
        name = f"swift_plugin_{argument.strip('-')}_{index}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        try:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except Exception as exc:  # noqa: BLE001 - any error of the user's code
            raise ArgumentError(f"{argument} {path}{_line_in(path, exc)}: {type(exc).__name__}: {exc}") from None


def _line_in(path: str, exc: Exception) -> str:
    """':N', the deepest line of `path` the error passed through (or its syntax error's line)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f":{exc.lineno}"
    target = Path(path).resolve()
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == target]
    return f":{lines[-1]}" if lines else ""
