"""The generated docs and JSON Schemas are current, and args.json files validate against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from swift_args import parse_args
from swift_args.docs import generated_files
from swift_args.json_schema import args_json_schema
from swift_args.run_dir import start_run

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("relative,text", sorted(generated_files().items()))
def test_generated_file_is_current(relative: str, text: str) -> None:
    path = ROOT / relative
    assert path.is_file() and path.read_text(encoding="utf-8") == text, (
        f"{relative} is out of date: run `uv run python -m swift_args.docs` and commit the result"
    )


def test_args_json_validates_against_its_schema(tmp_path: Path) -> None:
    inv = parse_args("sft", ["--model", "SmolLM2-135M-Instruct", "--output_dir", str(tmp_path), "--max_memory", '{"0": "20GB"}'])
    run_dir = start_run(inv.args, "sft")
    jsonschema.validate(json.loads((run_dir / "args.json").read_text()), args_json_schema("sft"))


def test_schema_rejects_a_wrong_type() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 1, "command": "infer", "max_batch_size": "four"}, args_json_schema("infer"))
