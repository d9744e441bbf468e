"""From parsed values to final arguments: load_args, conditional defaults, cross-field checks."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_args.commands import COMMANDS, Command
from swift_args import refusals
from swift_args.errors import ArgumentError
from swift_args.load_args import load_saved_args
from swift_args.parse import parse_command_line


@dataclass
class Invocation:
    """One command as the user asked for it, with everything resolved."""

    command: Command
    args: Any
    passed: set[str]
    loaded_from: Path | None = None
    loaded: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)  # as typed, for relaunching under torchrun


def resolve_defaults(args: Any, passed: set[str]) -> None:
    """Run each schema class's own `_resolve`, base classes first (so overrides see base results)."""
    for klass in reversed(type(args).__mro__):
        hook = klass.__dict__.get("_resolve")
        if hook is not None:
            hook(args, passed)


def find_problems(args: Any) -> list[str]:
    """Every cross-field problem, from every schema class's own `_check`, reported together."""
    problems: list[str] = []
    for klass in reversed(type(args).__mro__):
        hook = klass.__dict__.get("_check")
        if hook is not None:
            problems.extend(hook(args))
    return problems


def build_args(command: str, values: dict[str, Any], passed: set[str] | None = None) -> Any:
    """Construct, resolve and check a command's arguments from a dict of field values."""
    schema = COMMANDS[command].schema
    args = schema(**values)
    resolve_defaults(args, set(values) if passed is None else passed)
    problems = find_problems(args)
    if problems:
        raise ArgumentError(problems)
    return args


def parse_args(command: str, argv: list[str], warn: Any = None) -> Invocation:
    """The whole path from argv to checked arguments; raises ArgumentError on any bad input.

    Args:
        command: a name from COMMANDS.
        argv: the arguments after the command name.
        warn: where warnings go (default: one line each on stderr).
    """
    warn = warn or _print_warning
    spec = COMMANDS[command]
    parsed = parse_command_line(command, spec.schema, argv)
    for message in parsed.warnings:
        warn(message)
    values = dict(parsed.values)
    loaded, loaded_from, warnings = {}, None, list(parsed.warnings)
    if values.get("load_args", _default_load_args(spec)):
        loaded, loaded_from, load_warnings = load_saved_args(
            spec.schema, command, values, with_data=bool(values.get("load_data_args", False))
        )
        for message in load_warnings:
            warn(message)
        warnings += load_warnings
    args = build_args(command, {**loaded, **values}, passed=set(values) | set(loaded))
    refused = refusals.problems(command, args, typed=set(values))
    if refused:  # before any work: an option the command cannot honour is never stored as if applied
        raise ArgumentError(refused)
    return Invocation(spec, args, set(values), loaded_from, set(loaded), warnings, list(argv))


def _default_load_args(spec: Command) -> bool:
    # The reference: load_args defaults to true for inference and export, false for training.
    return not spec.is_training and spec.name != "web-ui"


def _print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
