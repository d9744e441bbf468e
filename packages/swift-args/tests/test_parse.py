"""Parsing: every argument of every command accepts a value of its type, lists and dicts work."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from swift_args import ArgumentError

from swift_args import COMMANDS, parse_args
from swift_args.fields import ArgSpec, specs, strip_optional
from swift_args.parse import parse_command_line


def sample_value(spec: ArgSpec) -> tuple[list[str], Any]:
    """A command-line value for `spec` that differs from its default, and what it should parse to."""
    if spec.choices:
        choice = next((c for c in spec.choices if c != spec.default), spec.choices[0])
        return ([str(choice)], [choice]) if spec.is_list else ([str(choice)], choice)
    kind = spec.element_type
    if spec.is_list:
        if kind is int:
            return ["1", "2"], [1, 2]
        if kind is float:
            return ["0.5", "1.5"], [0.5, 1.5]
        return ["a", "b"], ["a", "b"]
    if kind is bool:
        return ["false" if spec.default else "true"], not spec.default
    if kind is int:
        return ["7"], 7
    if kind is float:
        return ["0.25"], 0.25
    if kind is dict or (dict in get_args(strip_optional(kind))):
        return ['{"k": 1}'], {"k": 1}
    return ["some/value"], "some/value"


ALL_FIELDS = [(name, spec) for name, cmd in COMMANDS.items() for spec in specs(cmd.schema).values()]


@pytest.mark.parametrize("command,spec", ALL_FIELDS, ids=[f"{c}--{s.name}" for c, s in ALL_FIELDS])
def test_every_argument_parses(command: str, spec: ArgSpec) -> None:
    raw, expected = sample_value(spec)
    parsed = parse_command_line(command, COMMANDS[command].schema, [f"--{spec.name}", *raw])
    assert parsed.values == {spec.name: expected}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_defaults_resolve_for_every_command(command: str) -> None:
    argv = {"web-ui": [], "merge-lora": ["--adapters", "ckpt"], "export": ["--model", "m", "--merge_lora", "true", "--adapters", "a"]}
    inv = parse_args(command, argv.get(command, ["--model", "Qwen/Qwen2.5-7B"]))
    assert inv.args is not None


def test_lists_take_spaces_and_commas() -> None:
    inv = parse_args("sft", ["--model", "m", "--dataset", "a.jsonl,b.jsonl", "c.jsonl", "--target_modules", "q_proj,v_proj"])
    assert inv.args.dataset == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert inv.args.target_modules == ["q_proj", "v_proj"]


def test_stop_words_keep_commas() -> None:
    inv = parse_args("infer", ["--model", "m", "--stop_words", ",", "Observation:"])
    assert inv.args.stop_words == [",", "Observation:"]


def test_dicts_are_json_or_python_literals() -> None:
    inv = parse_args("sft", ["--model", "m", "--max_memory", '{0: "20GB", 1: "20GB"}', "--gradient_checkpointing_kwargs",
                             '{"use_reentrant": True}'])
    assert inv.args.max_memory == {0: "20GB", 1: "20GB"}
    assert inv.args.gradient_checkpointing_kwargs == {"use_reentrant": True}


def test_model_kwargs_come_from_env_and_the_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from swift_args.resolve import build_args

    monkeypatch.setenv("MAX_PIXELS", "1003520")
    monkeypatch.setenv("FPS_MAX_FRAMES", "4")
    args = build_args("infer", {"model": "m", "model_kwargs": {"fps_max_frames": 12}})
    assert args.model_kwargs == {"MAX_PIXELS": "1003520", "FPS_MAX_FRAMES": 12}
    # Multimodal models are not supported yet, so a text model refuses them rather than ignoring them.
    with pytest.raises(ArgumentError, match="--model_kwargs .*multimodal"):
        parse_args("infer", ["--model", "m"])


def test_use_hf_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USE_HF", "1")
    assert parse_args("infer", ["--model", "m"]).args.use_hf is True
    assert parse_args("infer", ["--model", "m", "--use_hf", "false"]).args.use_hf is False


def test_booleans_bare_and_explicit_and_equals_form() -> None:
    args = parse_args("sft", ["--model=m", "--packing", "--add_version=false", "--check_model", "False"]).args
    assert (args.packing, args.add_version, args.check_model) == (True, False, False)


def test_dashes_are_accepted_for_underscores() -> None:
    assert parse_args("sft", ["--model", "m", "--per-device-train-batch-size", "4"]).args.per_device_train_batch_size == 4


def test_none_unsets_optional_arguments() -> None:
    assert parse_args("infer", ["--model", "m", "--max_new_tokens", "none"]).args.max_new_tokens is None


def test_passed_records_only_what_the_user_typed() -> None:
    assert parse_args("sft", ["--model", "m", "--lora_rank", "16"]).passed == {"model", "lora_rank"}


def test_adapter_entries_are_read_one_way(tmp_path) -> None:  # noqa: ANN001
    from swift_args.adapters import split_adapter

    assert split_adapter("output/run/checkpoint-4") == (None, "output/run/checkpoint-4")
    assert split_adapter("chat=output/run/checkpoint-4") == ("chat", "output/run/checkpoint-4")
    assert split_adapter("chat=runs/lr=1e-4/checkpoint-4") == ("chat", "runs/lr=1e-4/checkpoint-4")
    existing = tmp_path / "lr=1e-4"
    existing.mkdir()
    assert split_adapter(str(existing)) == (None, str(existing))
