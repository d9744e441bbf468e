"""The reference's conditional defaults."""

from __future__ import annotations

import pytest

from swift_args import parse_args
from swift_args.resolve import build_args


def sft(*argv: str):
    return parse_args("sft", ["--model", "Qwen/Qwen2.5-7B-Instruct", *argv]).args


def test_learning_rate_follows_train_type() -> None:
    assert sft().learning_rate == 1e-4
    assert sft("--train_type", "full").learning_rate == 1e-5
    assert sft("--train_type", "full", "--learning_rate", "3e-5").learning_rate == 3e-5


def test_eval_strategy_and_steps_follow_save() -> None:
    args = sft("--save_strategy", "epoch", "--save_steps", "50")
    assert (args.eval_strategy, args.eval_steps) == ("epoch", 50)
    args = sft("--save_steps", "50", "--eval_steps", "10", "--eval_strategy", "steps")
    assert (args.eval_strategy, args.eval_steps) == ("steps", 10)


def test_output_dir_is_output_model_name() -> None:
    assert sft().output_dir == "output/Qwen2.5-7B-Instruct"
    assert parse_args("sft", ["--model", "SmolLM2-135M-Instruct"]).args.output_dir == "output/SmolLM2-135M-Instruct"
    assert parse_args("sft", ["--model", "/models/m.Q4_1.gguf"]).args.output_dir == "output/m.Q4_1"


def test_metric_defaults_follow_predict_with_generate() -> None:
    args = sft()
    assert (args.metric_for_best_model, args.greater_is_better, args.metric) == ("loss", False, "acc")
    args = sft("--predict_with_generate", "true")
    assert (args.metric_for_best_model, args.greater_is_better, args.metric) == ("rouge-l", True, "nlg")


@pytest.mark.parametrize("rlhf_type,beta", [("dpo", 0.1), ("simpo", 2.0), ("grpo", 0.04), ("kto", 0.1)])
def test_beta_follows_rlhf_type(rlhf_type: str, beta: float) -> None:
    # grpo is refused until online RL exists; its defaults are the reference's all the same
    assert build_args("rlhf", {"model": "m", "rlhf_type": rlhf_type}).beta == beta


def test_rlhf_overrides() -> None:
    args = parse_args("rlhf", ["--model", "m", "--train_type", "full"]).args
    assert (args.loss_scale, args.temperature, args.ref_model) == ("last_round", 0.9, "m")
    grpo = build_args("rlhf", {"model": "m", "rlhf_type": "grpo"})
    assert (grpo.metric_for_best_model, grpo.cosine_max_len, grpo.top_k) == ("reward", 512, 50)


def test_pt_defaults_differ_from_sft() -> None:
    args = parse_args("pt", ["--model", "m"]).args
    assert (args.train_type, args.lazy_tokenize, args.use_chat_template, args.learning_rate) == ("full", True, False, 1e-5)


def test_training_generation_overrides() -> None:
    args = sft()
    assert (args.max_new_tokens, args.temperature) == (64, 0.0)


def test_load_args_default_per_command() -> None:
    assert sft().load_args is False
    assert parse_args("infer", ["--model", "m"]).args.load_args is True
    assert parse_args("export", ["--model", "m", "--adapters", "a", "--merge_lora", "true"]).args.load_args is True


def test_serving_defaults() -> None:
    deploy = parse_args("deploy", ["--model", "Qwen/Qwen2.5-7B-Instruct"]).args
    assert (deploy.served_model_name, deploy.verbose, deploy.port, deploy.log_interval) == ("Qwen2.5-7B-Instruct", True, 8000, 20)
    app = parse_args("app", ["--model", "org/m"]).args
    assert (app.lang, app.studio_title, app.server_port) == ("en", "m", 7860)
    assert parse_args("web-ui", []).args.lang == "zh"
    ev = parse_args("eval", ["--eval_url", "http://127.0.0.1:8000/v1"]).args
    assert (ev.temperature, ev.verbose, ev.eval_output_dir) == (0.0, False, "eval_output")


def test_export_output_dir() -> None:
    merge = parse_args("merge-lora", ["--adapters", "output/m/v0/checkpoint-10"]).args
    assert (merge.merge_lora, merge.output_dir) == (True, "output/m/v0/checkpoint-10-merged")
    quant = parse_args("export", ["--model", "org/m", "--quant_method", "awq", "--quant_bits", "4", "--dataset", "d.jsonl"]).args
    assert (quant.output_dir, quant.max_length) == ("m-awq-int4", 2048)


def test_sample_defaults() -> None:
    args = parse_args("sample", ["--model", "m"]).args
    assert (args.temperature, args.output_dir, args.num_return_sequences, args.api_key) == (1.0, "sample_output", 64, "EMPTY")


def test_misc_conditional_defaults() -> None:
    from swift_args.resolve import build_args

    # seq_cls itself is refused for now (swift_args.refusals); the default it resolves to stays right.
    assert build_args("sft", {"model": "m", "num_labels": 3}).task_type == "seq_cls"
    assert sft("--train_type", "boft", "--boft_block_num", "8").boft_block_size == 0
    assert sft("--llamapro_num_new_blocks", "6").llamapro_num_groups == 6


def test_packing_tokenizes_up_front_even_for_pt() -> None:
    pt = parse_args("pt", ["--model", "m", "--packing", "true"], warn=lambda _: None).args
    assert pt.packing and pt.lazy_tokenize is False
    assert parse_args("pt", ["--model", "m"], warn=lambda _: None).args.lazy_tokenize is True
