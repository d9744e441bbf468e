"""Turning command-line strings (and args.json values) into typed argument values."""

from __future__ import annotations

import ast
import json
from typing import Any, Literal, get_args, get_origin

from swift_args.fields import ArgSpec, _is_union, strip_optional, type_name

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


class ConversionError(ValueError):
    """A value that does not fit its argument's type; the message says what was expected."""


def from_cli(spec: ArgSpec, values: list[str]) -> Any:
    """Convert the strings that followed `--name` on the command line."""
    if spec.is_list:
        items = []
        for raw in values:
            parts = raw.split(",") if spec.split_commas else [raw]
            items.extend(p.strip() for p in parts if p.strip() != "")
        if len(items) == 1 and items[0].lower() in _NONE and spec.optional:
            return None
        return [_convert_one(spec, spec.element_type, item) for item in items]
    if not values:
        if spec.is_bool:
            return True  # a bare `--use_hf` means `--use_hf true`
        raise ConversionError(f"--{spec.name} needs a value ({type_name(spec.type)})")
    if len(values) > 1:
        raise ConversionError(
            f"--{spec.name} takes one value, got {len(values)}: {' '.join(values)}"
            " (quote a value that contains spaces)"
        )
    raw = values[0]
    if spec.optional and raw.lower() in _NONE:
        return None
    return _convert_one(spec, strip_optional(spec.type), raw)


def from_json(spec: ArgSpec, value: Any) -> Any:
    """Check and normalise a value read from args.json (already JSON-decoded)."""
    if value is None:
        if spec.optional or spec.default is None:
            return None
        raise ConversionError(f"{spec.name} may not be null (expected {type_name(spec.type)})")
    if spec.is_list:
        if not isinstance(value, list):
            value = [value]
        return [_check_json_value(spec, spec.element_type, v) for v in value]
    return _check_json_value(spec, strip_optional(spec.type), value)


def _check_json_value(spec: ArgSpec, tp: Any, value: Any) -> Any:
    if isinstance(value, str) and tp is not str:
        return _convert_one(spec, tp, value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, bool, str, dict) and type(value) is not tp:
        raise ConversionError(f"{spec.name}: expected {type_name(tp)}, got {json.dumps(value)}")
    if get_origin(tp) is Literal and value not in get_args(tp):
        raise _bad_choice(spec, value, get_args(tp))
    return value


def _convert_one(spec: ArgSpec, tp: Any, raw: str) -> Any:
    if get_origin(tp) is Literal:
        return _choice(spec, get_args(tp), raw)
    if _is_union(tp):
        return _union(spec, tp, raw)
    if tp is bool:
        return _bool(spec, raw)
    if tp is int:
        return _number(spec, int, raw, "an integer")
    if tp is float:
        return _number(spec, float, raw, "a number")
    if tp is dict:
        return _dict(spec, raw)
    return raw


def _choice(spec: ArgSpec, choices: tuple, raw: str) -> Any:
    for choice in choices:
        if str(choice) == raw or (isinstance(choice, str) and choice.lower() == raw.lower()):
            return choice
    raise _bad_choice(spec, raw, choices)


def _bad_choice(spec: ArgSpec, raw: Any, choices: tuple) -> ConversionError:
    listed = ", ".join(str(c) for c in choices)
    return ConversionError(f"--{spec.name}: invalid choice '{raw}'; valid choices are: {listed}")


def _union(spec: ArgSpec, tp: Any, raw: str) -> Any:
    """`str | dict` style arguments: a JSON object when it looks like one, else the plain string."""
    members = get_args(tp)
    if dict in members and raw.lstrip().startswith("{"):
        return _dict(spec, raw)
    for member in members:
        if member in (int, float):
            try:
                return member(raw)
            except ValueError:
                continue
        if member is bool and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
    if str in members:
        return raw
    raise ConversionError(f"--{spec.name}: expected {type_name(tp)}, got '{raw}'")


def _bool(spec: ArgSpec, raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConversionError(f"--{spec.name}: expected true or false, got '{raw}'")


def _number(spec: ArgSpec, kind: type, raw: str, what: str) -> Any:
    try:
        return kind(raw)
    except ValueError:
        if kind is int:
            try:
                as_float = float(raw)
            except ValueError:
                as_float = None
            if as_float is not None and as_float.is_integer():
                return int(as_float)  # `--max_steps 1e3` is a whole number
        raise ConversionError(f"--{spec.name}: expected {what}, got '{raw}'") from None


def _dict(spec: ArgSpec, raw: str) -> dict:
    """JSON first; Python literals second, so `'{0: "20GB"}'` (the reference's own example) works."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = None
    if not isinstance(value, dict):
        raise ConversionError(
            f"--{spec.name}: expected a JSON object such as '{{\"key\": 1}}', got '{raw}'"
        )
    return value
