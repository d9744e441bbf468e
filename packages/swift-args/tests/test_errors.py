"""Bad input: one clear line per problem, naming what to fix."""

from __future__ import annotations

import pytest

from swift_args import ArgumentError, parse_args


def problems(command: str, *argv: str) -> list[str]:
    with pytest.raises(ArgumentError) as info:
        parse_args(command, list(argv), warn=lambda _: None)
    return info.value.problems


def test_unknown_argument_suggests_the_closest() -> None:
    assert problems("sft", "--model", "m", "--lerning_rate", "1e-4") == [
        "unknown argument --lerning_rate for swift sft; did you mean --learning_rate or --logging_strategy?"
    ]


def test_unknown_argument_without_a_close_match() -> None:
    assert problems("infer", "--zzz", "1") == ["unknown argument --zzz for swift infer; see swift infer --help"]


def test_bad_choice_lists_the_valid_ones() -> None:
    assert problems("sft", "--model", "m", "--truncation_strategy", "middle") == [
        "--truncation_strategy: invalid choice 'middle'; valid choices are: delete, left, right"
    ]


def test_bad_type_names_the_expected_type() -> None:
    assert problems("sft", "--model", "m", "--lora_rank", "eight", "--learning_rate", "fast", "--packing", "maybe") == [
        "--lora_rank: expected an integer, got 'eight'",
        "--learning_rate: expected a number, got 'fast'",
        "--packing: expected true or false, got 'maybe'",
    ]


def test_bad_json() -> None:
    assert problems("sft", "--model", "m", "--model_kwargs", "{fps: }") == [
        "--model_kwargs: expected a JSON object such as '{\"key\": 1}', got '{fps: }'"
    ]


def test_scalar_with_two_values_and_missing_value() -> None:
    assert problems("sft", "--model", "a", "b") == ["--model takes one value, got 2: a b (quote a value that contains spaces)"]
    assert problems("sft", "--model", "m", "--lora_rank") == ["--lora_rank needs a value (integer)"]


def test_stray_value() -> None:
    assert problems("sft", "m") == ["unexpected value 'm': arguments are given as --name value (see swift sft --help)"]


def test_inconsistent_settings_are_all_reported_together() -> None:
    assert sorted(problems(
        "sft", "--model", "m", "--boft_block_size", "4", "--boft_block_num", "2", "--lisa_activated_layers", "2",
        "--split_dataset_ratio", "1.5",
    )) == [
        "--boft_block_size and --boft_block_num cannot be used together; pass only one",
        "--lisa_activated_layers needs --train_type full (got --train_type lora)",
        "--split_dataset_ratio must be in [0, 1), got 1.5",
    ]


def test_more_cross_field_checks() -> None:
    assert problems("sft") == ["--model is required (a local directory, a .gguf file, a hub id or SmolLM2-135M-Instruct)"]
    assert "--streaming true needs --max_steps (the dataset length is unknown)" in problems("sft", "--model", "m", "--streaming", "true")
    assert problems("sft", "--model", "m", "--deepspeed", "zero9") == [
        "--deepspeed 'zero9' is neither a built-in config (zero0, zero1, zero2, zero3, zero2_offload, zero3_offload) nor a .json file"
    ]
    assert problems("sft", "--model", "m", "--freeze_parameters", "model.embed") == [
        "--freeze_parameters only applies to --train_type full (got --train_type lora)"
    ]
    assert problems("sft", "--model", "m", "--quant_bits", "4") == [
        "--quant_bits needs --quant_method (bnb, hqq or eetq when loading)"
    ]
    assert problems("export", "--model", "m") == [
        "nothing to export: pass --merge_lora true, --quant_method, --to_ollama true or --push_to_hub true"
    ]
    assert problems("sft", "--model", "m", "--init_weights", "magic") == [
        "--init_weights 'magic' is not valid; use true, false, gaussian, pissa, pissa_niter_N, olora or lora-ga"
    ]
