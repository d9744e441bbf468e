"""args.json: round trip, schema versions, legacy files, load_args precedence, run directories."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from swift_args import SCHEMA_VERSION, ArgumentError, parse_args, read_args_file
from swift_args.run_dir import create_run_dir, start_run
from swift_args.schema import InferArguments, TrainArguments


def train_run(tmp_path: Path, *extra: str) -> Path:
    """A run directory as `swift sft` leaves it: args.json plus a LoRA checkpoint."""
    inv = parse_args("sft", ["--model", "Qwen/Qwen2.5-7B-Instruct", "--output_dir", str(tmp_path / "out"),
                             "--system", "You are Swifty.", "--max_length", "1024", "--dataset", "train.jsonl",
                             "--lora_rank", "16", *extra])
    run_dir = start_run(inv.args, "sft")
    checkpoint = run_dir / "checkpoint-10"
    checkpoint.mkdir()
    (checkpoint / "adapter_config.json").write_text("{}")
    return run_dir


def test_round_trip(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path)
    raw = json.loads((run_dir / "args.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["command"] == "sft"
    assert "swift-args" in raw["swift_versions"]
    values, warnings = read_args_file(run_dir / "args.json", TrainArguments, "sft")
    assert warnings == []
    original = parse_args("sft", ["--model", "Qwen/Qwen2.5-7B-Instruct"]).args
    assert set(values) == set(vars(original))
    assert values["output_dir"] == str(run_dir) and values["lora_rank"] == 16 and values["max_length"] == 1024


def test_run_dir_names_count_up(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 14, 5, 9)
    first = create_run_dir(tmp_path / "out", now=now)
    second = create_run_dir(tmp_path / "out", now=now)
    (tmp_path / "out" / "v7-20260101-000000").mkdir()
    third = create_run_dir(tmp_path / "out", now=now)
    assert [p.name for p in (first, second, third)] == ["v0-20261123-140509", "v1-20261123-140509", "v8-20261123-140509"]
    assert create_run_dir(tmp_path / "plain", add_version=False) == tmp_path / "plain"


def test_load_args_fills_what_was_not_passed(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path)
    inv = parse_args("infer", ["--adapters", str(run_dir / "checkpoint-10"), "--max_length", "2048"])
    args = inv.args
    assert inv.loaded_from == run_dir / "args.json"
    assert args.model == "Qwen/Qwen2.5-7B-Instruct"  # from args.json
    assert args.system == "You are Swifty."  # template group: loaded
    assert args.max_length == 2048  # passed on the command line: wins
    assert args.dataset == []  # data arguments: only with load_data_args
    assert args.adapters == [str(run_dir / "checkpoint-10")]


def test_load_data_args_adds_the_data_arguments(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path)
    args = parse_args("infer", ["--adapters", str(run_dir / "checkpoint-10"), "--load_data_args", "true"]).args
    assert args.dataset == ["train.jsonl"]


def test_load_args_false_reads_nothing(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path)
    args = parse_args("infer", ["--adapters", str(run_dir / "checkpoint-10"), "--load_args", "false"]).args
    assert (args.model, args.system) == (None, None)  # the adapter's own config names its base model


def test_generation_arguments_are_never_loaded(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path, "--temperature", "0.7")
    assert parse_args("infer", ["--adapters", str(run_dir / "checkpoint-10")]).args.temperature is None


def test_a_training_runs_metric_is_not_taken_over_by_infer(tmp_path: Path) -> None:
    """--predict_with_generate saves metric "nlg", which is no choice of infer's --metric (acc / rouge)."""
    run_dir = train_run(tmp_path, "--predict_with_generate", "true")
    assert json.loads((run_dir / "args.json").read_text())["metric"] == "nlg"
    assert parse_args("infer", ["--adapters", str(run_dir / "checkpoint-10")]).args.metric is None


def test_training_resume_loads_only_when_asked(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path)
    ckpt = str(run_dir / "checkpoint-10")
    assert parse_args("sft", ["--resume_from_checkpoint", ckpt, "--model", "other/m"]).args.system is None
    args = parse_args("sft", ["--resume_from_checkpoint", ckpt, "--load_args", "true"]).args
    assert (args.model, args.system) == ("Qwen/Qwen2.5-7B-Instruct", "You are Swifty.")


def test_newer_schema_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "model": "m"}))
    with pytest.raises(ArgumentError) as info:
        read_args_file(path, InferArguments, "infer")
    assert info.value.problems == [
        f"{path} has schema_version {SCHEMA_VERSION + 1}, newer than this swift-args reads ({SCHEMA_VERSION}); "
        "upgrade with: pip install -U swift-args"
    ]


def test_legacy_file_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "sft_args.json"
    path.write_text(json.dumps({"model_id_or_path": "qwen/Qwen-7B", "sft_type": "lora", "dtype": "bf16",
                                "template_type": "chatml", "quantization_bit": 0, "lora_rank": 8,
                                "check_dataset_strategy": "none"}))
    values, warnings = read_args_file(path, TrainArguments, "sft")
    assert values == {"model": "qwen/Qwen-7B", "train_type": "lora", "torch_dtype": "bfloat16", "template": "chatml", "lora_rank": 8}
    assert "no schema_version" in warnings[0]


def test_wrong_types_in_args_json_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"schema_version": 1, "model": "m", "max_length": "long", "stream": "yes"}))
    with pytest.raises(ArgumentError) as info:
        read_args_file(path, InferArguments, "infer")
    assert info.value.problems == [f"{path}: --max_length: expected an integer, got 'long'"]


def test_broken_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "args.json"
    path.write_text('{\n  "model": "m",\n  oops\n}')
    with pytest.raises(ArgumentError) as info:
        read_args_file(path, InferArguments, "infer")
    assert info.value.problems[0].startswith(f"{path}:3: not valid JSON")


def test_args_json_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = train_run(tmp_path)
    before = (run_dir / "args.json").read_text()
    import swift_args.args_file as args_file

    def explode(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(args_file.json, "dump", explode)
    with pytest.raises(RuntimeError):
        args_file.save_args(parse_args("sft", ["--model", "m"]).args, run_dir, "sft")
    assert (run_dir / "args.json").read_text() == before
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []
