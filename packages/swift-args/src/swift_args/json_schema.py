"""JSON Schema of a command's args.json, generated from its dataclass (docs/schemas/ holds them)."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from swift_args.args_file import SCHEMA_VERSION
from swift_args.commands import COMMANDS
from swift_args.fields import _is_union, specs

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


def type_schema(tp: Any) -> dict[str, Any]:
    if tp is type(None):
        return {"type": "null"}
    if tp in _SIMPLE:
        return {"type": _SIMPLE[tp]}
    if get_origin(tp) is Literal:
        return {"enum": list(get_args(tp))}
    if get_origin(tp) is list:
        return {"type": "array", "items": type_schema(get_args(tp)[0])}
    if _is_union(tp):
        return {"anyOf": [type_schema(member) for member in get_args(tp)]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def args_json_schema(command: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "schema_version": {"const": SCHEMA_VERSION, "description": "Version of this file's layout."},
        "command": {"const": command, "description": "The swift command that wrote the file."},
        "swift_versions": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "Installed swift-suite package versions."},
        "model_dir": {"type": "string",
                      "description": "Where --model resolved on the machine that wrote the file (informational)."},
    }
    for name, spec in specs(COMMANDS[command].schema).items():
        properties[name] = {**type_schema(spec.type), "description": spec.help, "default": spec.default}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"args.json of swift {command}",
        "type": "object",
        "required": ["schema_version", "command"],
        "properties": properties,
        "additionalProperties": False,
    }
