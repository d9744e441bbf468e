"""2.x names: accepted with one warning line that names the 3.x spelling."""

from __future__ import annotations

import pytest

from swift_args import parse_args

CASES = [
    # (command, 2.x argv, 3.x field, expected value, text the warning must contain)
    ("sft", ["--sft_type", "full"], "train_type", "full", "use --train_type full"),
    ("infer", ["--model_id_or_path", "org/m"], "model", "org/m", "use --model org/m"),
    ("sft", ["--dtype", "bf16"], "torch_dtype", "bfloat16", "use --torch_dtype bfloat16"),
    ("sft", ["--quantization_bit", "4", "--quant_method", "bnb"], "quant_bits", 4, "use --quant_bits 4"),
    ("sft", ["--custom_train_dataset_path", "a.jsonl"], "dataset", ["a.jsonl"], "use --dataset a.jsonl"),
    ("sft", ["--custom_val_dataset_path", "v.jsonl"], "val_dataset", ["v.jsonl"], "use --val_dataset v.jsonl"),
    ("sft", ["--dataset_test_ratio", "0.1"], "split_dataset_ratio", 0.1, "use --split_dataset_ratio 0.1"),
    ("sft", ["--evaluation_strategy", "epoch"], "eval_strategy", "epoch", "use --eval_strategy epoch"),
    ("sft", ["--add_output_dir_suffix", "false"], "add_version", False, "use --add_version false"),
    ("sft", ["--batch_size", "4"], "per_device_train_batch_size", 4, "use --per_device_train_batch_size 4"),
    ("sft", ["--lora_lr_ratio", "16"], "lorap_lr_ratio", 16.0, "use --lorap_lr_ratio 16"),
    ("sft", ["--use_flash_attn", "true"], "attn_impl", "flash_attn", "use --attn_impl flash_attn"),
    ("sft", ["--init_lora_weights", "guassian"], "init_weights", "gaussian", "use --init_weights gaussian"),
    ("sft", ["--lora_bias_trainable", "all"], "lora_bias", "all", "use --lora_bias all"),
    ("sft", ["--train_type", "full", "--additional_trainable_parameters", "lm_head"], "trainable_parameters", ["lm_head"], None),
    ("sft", ["--template_type", "chatml"], "template", "chatml", "use --template chatml"),
    ("sft", ["--dataset_seed", "7"], "data_seed", 7, "use --data_seed 7"),
    ("sft", ["--preprocess_num_proc", "2"], "dataset_num_proc", 2, "use --dataset_num_proc 2"),
    ("sft", ["--self_cognition_sample", "500"], "dataset", ["self-cognition#500"], "use --dataset self-cognition#500"),
    ("sft", ["--max_length", "-1"], "max_length", None, "leave --max_length unset"),
    ("sft", ["--truncation_strategy", "truncation_left"], "truncation_strategy", "left", "use --truncation_strategy left"),
    ("sft", ["--deepspeed", "default-zero2"], "deepspeed", "zero2", "use --deepspeed zero2"),
    ("infer", ["--model", "m", "--do_sample", "false"], "temperature", 0.0, "use --temperature 0"),
    ("infer", ["--model", "m", "--load_dataset_config", "true"], "load_data_args", True, "use --load_data_args true"),
    ("infer", ["--model", "m", "--show_dataset_sample", "10"], "val_dataset_sample", 10, "use --val_dataset_sample 10"),
    ("infer", ["--model", "m", "--lora_modules", "a=/x"], "adapters", ["a=/x"], "use --adapters a=/x"),
    ("rlhf", ["--train_type", "full", "--ref_model_id_or_path", "r"], "ref_model", "r", "use --ref_model r"),
    ("web-ui", ["--host", "127.0.0.1"], "server_name", "127.0.0.1", "use --server_name 127.0.0.1"),
    ("eval", ["--eval_url", "http://x/v1", "--eval_nproc", "4"], "eval_num_proc", 4, "use --eval_num_proc 4"),
    ("export", ["--adapters", "a", "--merge_lora", "true", "--quant_output_dir", "q"], "output_dir", "q", "use --output_dir q"),
]


@pytest.mark.parametrize("command,argv,field,expected,warning", CASES, ids=[next(a for a in c[1] if a.startswith("--") and a not in ("--model", "--train_type", "--eval_url", "--adapters", "--merge_lora")) for c in CASES])
def test_alias(command: str, argv: list[str], field: str, expected: object, warning: str | None) -> None:
    warnings: list[str] = []
    if command in ("sft", "rlhf") and "--model" not in argv:
        argv = ["--model", "m", *argv]
    inv = parse_args(command, argv, warn=warnings.append)
    assert getattr(inv.args, field) == expected
    assert len(warnings) == 1
    assert "deprecated" in warnings[0] or "2.x" in warnings[0]
    if warning:
        assert warning in warnings[0]


def test_ckpt_dir_picks_adapters_or_model(tmp_path) -> None:
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text("{}")
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text("{}")
    quiet: list[str] = []
    assert parse_args("infer", ["--ckpt_dir", str(lora), "--load_args", "false"], warn=quiet.append).args.adapters == [str(lora)]
    assert parse_args("infer", ["--ckpt_dir", str(full), "--load_args", "false"], warn=quiet.append).args.model == str(full)
    assert f"use --model {full}" in quiet[-1]


def test_removed_arguments_warn_and_are_ignored() -> None:
    warnings: list[str] = []
    parse_args("sft", ["--model", "m", "--check_dataset_strategy", "warning"], warn=warnings.append)
    assert warnings == [
        "--check_dataset_strategy is a 2.x argument with no 3.x counterpart and is ignored "
        "(use --strict true to stop at the first bad row)"
    ]


def test_alias_does_not_apply_to_other_commands() -> None:
    # `host` is deploy's own argument; only web-ui maps the 2.x gradio host to server_name.
    assert parse_args("deploy", ["--model", "m", "--host", "127.0.0.1"], warn=pytest.fail).args.host == "127.0.0.1"


def test_alias_table_targets_exist() -> None:
    from swift_args.aliases import RENAMED
    from swift_args.commands import COMMANDS
    from swift_args.fields import specs

    for alias in RENAMED:
        commands = alias.commands or tuple(COMMANDS)
        assert any(alias.new in specs(COMMANDS[c].schema) for c in commands), alias
