"""Declaring arguments: `arg()` puts help text, group and parsing hints on a dataclass field.

The dataclass is the single source of truth: the field's type annotation decides how a
command-line string is converted, its default is the reference's default, and its metadata
feeds `--help`, the JSON Schema and the args.json validator.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING
from typing import Any, Literal, Union, get_args, get_origin

_NO_DEFAULT: Any = MISSING


def arg(
    default: Any = _NO_DEFAULT,
    *,
    help: str,
    factory: Any = None,
    group: str | None = None,
    split_commas: bool = False,
    hot: bool = False,
    metavar: str | None = None,
) -> Any:
    """A dataclass field for one command-line argument.

    Args:
        default: the reference's default (use `factory` for lists and dicts).
        help: one or two sentences; shown by `--help` and in the JSON Schema.
        factory: a zero-argument callable producing a mutable default.
        group: the `--help` section; by default the section of the class that declares it.
        split_commas: list arguments also accept `a,b` for `a b` (dataset names, module names).
        hot: the reference marks it as important (shown first in its section).
        metavar: the value placeholder in `--help`.
    """
    metadata = {"help": help, "group": group, "split_commas": split_commas, "hot": hot, "metavar": metavar}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class ArgSpec:
    """Everything the parser, the help printer and the validators need about one field."""

    name: str
    type: Any
    default: Any
    help: str
    group: str
    split_commas: bool
    hot: bool
    metavar: str | None

    @property
    def is_list(self) -> bool:
        return get_origin(strip_optional(self.type)) is list

    @property
    def is_bool(self) -> bool:
        return strip_optional(self.type) is bool

    @property
    def choices(self) -> tuple | None:
        inner = strip_optional(self.type)
        if self.is_list:
            inner = strip_optional(get_args(inner)[0])
        if get_origin(inner) is Literal:
            return get_args(inner)
        return None

    @property
    def element_type(self) -> Any:
        """The type of one value: the list's item type for list arguments."""
        inner = strip_optional(self.type)
        return strip_optional(get_args(inner)[0]) if self.is_list else inner

    @property
    def optional(self) -> bool:
        return _allows_none(self.type)


def strip_optional(tp: Any) -> Any:
    """`X | None` -> `X`; other unions keep their other members."""
    if _is_union(tp):
        members = [a for a in get_args(tp) if a is not type(None)]
        return members[0] if len(members) == 1 else Union[tuple(members)]
    return tp


def _is_union(tp: Any) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _allows_none(tp: Any) -> bool:
    return _is_union(tp) and type(None) in get_args(tp)


def specs(cls: type) -> dict[str, ArgSpec]:
    """The argument specs of a schema class, in declaration order.

    A field's group is the `group` given to `arg()`, or else the `GROUP` of the class that
    declared (or last re-declared) it, so an override such as training's `temperature=0`
    is listed under training where the reference documents it.
    """
    hints = typing.get_type_hints(cls)
    declared_in: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__.get("__annotations__", {}):
            declared_in[name] = getattr(klass, "GROUP", "other")
    result = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        result[f.name] = ArgSpec(
            name=f.name,
            type=hints[f.name],
            default=default,
            help=meta.get("help", ""),
            group=meta.get("group") or declared_in.get(f.name, "other"),
            split_commas=meta.get("split_commas", False),
            hot=meta.get("hot", False),
            metavar=meta.get("metavar"),
        )
    return result


def pick_fields(cls: type, source: Any) -> dict[str, Any]:
    """The values of `cls`'s dataclass fields that `source` has: an options object from any command's args."""
    return {f.name: getattr(source, f.name) for f in dataclasses.fields(cls) if hasattr(source, f.name)}


def type_name(tp: Any) -> str:
    """A short human name for a type, used in error messages and help."""
    tp_inner = strip_optional(tp)
    if get_origin(tp_inner) is list:
        return f"list of {type_name(get_args(tp_inner)[0])}"
    if get_origin(tp_inner) is Literal:
        return "one of " + ", ".join(str(c) for c in get_args(tp_inner))
    if _is_union(tp_inner):
        return " or ".join(type_name(a) for a in get_args(tp_inner))
    names = {str: "string", int: "integer", float: "number", bool: "true/false", dict: "JSON object"}
    return names.get(tp_inner, getattr(tp_inner, "__name__", str(tp_inner)))


def range_problems(args: Any, ranges: dict[str, str]) -> list[str]:
    """One line for each numeric argument outside its interval; None (unset) is always allowed.

    Args:
        ranges: argument name -> interval in the usual notation: "[1, inf)", "(0, inf)", "[0, 1)".
    """
    problems = []
    for name, interval in ranges.items():
        value = getattr(args, name)
        if value is None:
            continue
        low, high = (float(part) for part in interval[1:-1].split(","))
        inside_low = value > low if interval[0] == "(" else value >= low
        inside_high = value < high if interval[-1] == ")" else value <= high
        if not (inside_low and inside_high):
            problems.append(f"--{name} must be {_describe(interval, low, high)}, got {value}")
    return problems


def _describe(interval: str, low: float, high: float) -> str:
    if high == float("inf") and low == 0 and interval[0] == "(":
        return "positive"
    if high == float("inf") and interval[0] == "[":
        return f"at least {low:g}"
    return f"in {interval}"
