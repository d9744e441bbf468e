"""Command line -> typed arguments: `--key value`, lists as `--k a b` or `--k a,b`, 2.x aliases.

Unknown names get the closest valid ones suggested; every problem found is reported together.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from swift_args.aliases import REMOVED, Alias, find_alias, is_value_alias
from swift_args.convert import ConversionError, from_cli
from swift_args.errors import ArgumentError
from swift_args.fields import ArgSpec, specs


@dataclass
class ParsedCommandLine:
    """What the user typed, converted: only the arguments actually passed."""

    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> set[str]:
        return set(self.values)


def split_options(argv: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Group argv into (name, values) pairs; tokens before the first option are reported as stray."""
    options: list[tuple[str, list[str]]] = []
    stray: list[str] = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            options.append((name.replace("-", "_"), [value] if eq else []))
        elif options:
            options[-1][1].append(token)
        else:
            stray.append(token)
    return options, stray


def parse_command_line(command: str, schema: type, argv: list[str]) -> ParsedCommandLine:
    """Parse `argv` for `command`; raises ArgumentError listing every problem."""
    arg_specs = specs(schema)
    result = ParsedCommandLine()
    problems: list[str] = []
    options, stray = split_options(argv)
    if stray:
        problems.append(
            f"unexpected value '{stray[0]}': arguments are given as --name value (see swift {command} --help)"
        )
    for name, values in options:
        try:
            _take_option(command, arg_specs, name, values, result)
        except ConversionError as exc:
            problems.append(str(exc))
    if problems:
        raise ArgumentError(problems)
    return result


def _take_option(
    command: str, arg_specs: dict[str, ArgSpec], name: str, values: list[str], result: ParsedCommandLine
) -> None:
    alias = find_alias(name, command)
    if name in arg_specs and (alias is None or not is_value_alias(alias)):
        _store(arg_specs[name], values, result, extend=False)
        return
    if alias is not None and alias.new is not None and (alias.new in arg_specs):
        _take_alias(alias, arg_specs, values, result)
        return
    if name in REMOVED:
        result.warnings.append(
            f"--{name} is a 2.x argument with no 3.x counterpart and is ignored ({REMOVED[name]})"
        )
        return
    raise ConversionError(_unknown(command, name, arg_specs))


def _take_alias(alias: Alias, arg_specs: dict[str, ArgSpec], values: list[str], result: ParsedCommandLine) -> None:
    rewritten = alias.apply(values)
    old = " ".join([f"--{alias.old}", *values])
    if rewritten is None:
        if not is_value_alias(alias):
            result.warnings.append(f"{old} is deprecated (2.x) and now means the default; remove it")
        else:
            result.warnings.append(f"{old} is 2.x syntax; leave --{alias.new} unset for the default")
        return
    new_name, new_values = rewritten
    if is_value_alias(alias) and new_values == values:
        _store(arg_specs[new_name], values, result, extend=False)
        return
    result.warnings.append(f"{old} is deprecated (2.x); use " + " ".join([f"--{new_name}", *new_values]))
    _store(arg_specs[new_name], new_values, result, extend=alias.extend)


def _store(spec: ArgSpec, values: list[str], result: ParsedCommandLine, *, extend: bool) -> None:
    value = from_cli(spec, values)
    if extend and spec.is_list and isinstance(result.values.get(spec.name), list):
        value = result.values[spec.name] + value
    elif extend and spec.is_list:
        value = list(spec.default or []) + value
    result.values[spec.name] = value


def _unknown(command: str, name: str, arg_specs: dict[str, ArgSpec]) -> str:
    close = difflib.get_close_matches(name, list(arg_specs), n=3, cutoff=0.6)
    hint = "did you mean " + " or ".join(f"--{c}" for c in close) + "?" if close else f"see swift {command} --help"
    return f"unknown argument --{name} for swift {command}; {hint}"
