"""The web UI's forms come from the argument dataclasses, and the commands they build are the CLI's own."""

from __future__ import annotations

import pytest
from swift_app.forms import CommandForm, build_form
from swift_app.web_ui import TABS, check_command, command_argv
from swift_args import parse_args
from swift_args.commands import COMMANDS
from swift_args.fields import specs
from swift_args.refusals import refused_fields

REQUIRED = {"export": ["--adapters", "a", "--merge_lora", "true"], "eval": ["--model", "m"],
            "sample": ["--model", "m", "--dataset", "d.jsonl"]}


def form_of(command: str, lang: str = "en") -> CommandForm:
    import gradio as gr

    with gr.Blocks():
        return build_form(command, lang)


def values(form: CommandForm, **changed: object) -> list:
    by_name = {widget.spec.name: widget.initial for widget in form.widgets}
    assert set(changed) <= set(by_name), set(changed) - set(by_name)
    return [changed.get(name, initial) for name, initial in by_name.items()]


@pytest.mark.parametrize("command", TABS)
def test_each_form_is_its_schema_less_what_the_command_refuses(command: str) -> None:
    form = form_of(command)
    expected = [name for name in specs(COMMANDS[command].schema) if name not in refused_fields(command)]
    assert sorted(w.spec.name for w in form.widgets) == sorted(expected)
    assert form.argv([w.initial for w in form.widgets]) == []  # untouched: nothing to pass


def test_a_changed_form_is_a_command_the_cli_runs_as_meant() -> None:
    form = form_of("sft")
    argv = form.argv(values(form, model="SmolLM2-135M-Instruct", dataset="a.jsonl 'b c.jsonl'", lora_rank="16",
                            train_type="lora", use_dora=True, target_modules="q_proj v_proj", torch_dtype="bfloat16",
                            max_steps="3"))
    args = parse_args("sft", argv).args
    assert (args.lora_rank, args.use_dora, args.target_modules, args.torch_dtype, args.max_steps) == (
        16, True, ["q_proj", "v_proj"], "bfloat16", 3)
    assert args.dataset == ["a.jsonl", "b c.jsonl"]
    assert "--train_type" not in argv  # left at its default: not passed


def test_the_training_tabs_write_below_the_web_uis_output_dir() -> None:
    form = form_of("sft")
    argv = command_argv(form, values(form, model="org/My-Model"), "runs")
    assert argv[-2:] == ["--output_dir", "runs/My-Model"]
    argv = command_argv(form, values(form, model="org/My-Model", output_dir="elsewhere"), "runs")
    assert argv.count("--output_dir") == 1 and argv[argv.index("--output_dir") + 1] == "elsewhere"


def test_a_runs_arguments_fill_the_form_and_come_back_the_same() -> None:
    """Resume: a run's args.json in the form gives the command that run had."""
    form = form_of("sft")
    saved = {"model": "m", "dataset": ["x.jsonl"], "lora_rank": 4, "target_modules": ["q_proj", "v_proj"],
             "use_dora": True, "learning_rate": 3e-4, "max_length": None, "torch_dtype": "float32",
             "gradient_checkpointing": False, "not_a_field": 1}
    args = parse_args("sft", form.argv(form.filled(saved))).args
    for name, value in saved.items():
        if name != "not_a_field":
            assert getattr(args, name) == value, name


def test_the_check_is_the_clis_own() -> None:
    form = form_of("sft")
    problems = check_command("sft", form.argv(values(form, model="m", lora_rank="x")))
    assert problems == ["--lora_rank: expected an integer, got 'x'"]
    assert check_command("sft", form.argv(values(form, model="m", dataset="d.jsonl"))) == []
    assert "chats at a terminal" in check_command("infer", ["--model", "m"])[0]


@pytest.mark.parametrize("command", TABS)
def test_each_form_at_its_defaults_is_a_valid_command(command: str) -> None:
    form = form_of(command)
    parse_args(command, [*form.argv([w.initial for w in form.widgets]), *REQUIRED.get(command, ["--model", "m"])])


def test_resuming_a_run_fills_its_tab_with_the_runs_own_command(tmp_path) -> None:
    import gradio as gr
    from swift_app.web_ui import TRAINING, _resumer
    from swift_args.run_dir import start_run

    typed = ["--model", "SmolLM2-135M-Instruct", "--dataset", "self-cognition#20", "--lora_rank", "4",
             "--learning_rate", "3e-4", "--max_steps", "5", "--output_dir", str(tmp_path / "out")]
    run = start_run(parse_args("sft", typed).args, "sft")  # as swift sft writes it: into out/vN-<time>/
    (run / "checkpoint-5").mkdir()
    (run / "checkpoint-5" / "adapter_config.json").write_text("{}")
    with gr.Blocks():
        forms = {command: build_form(command, "en") for command in TRAINING}
    updates = _resumer(forms)(str(run), str(run / "checkpoint-5"))
    sft = forms["sft"]
    args = parse_args("sft", sft.argv(updates[:len(sft.widgets)])).args
    assert (args.model, args.dataset, args.lora_rank, args.learning_rate, args.max_steps) == (
        "SmolLM2-135M-Instruct", ["self-cognition#20"], 4, 3e-4, 5)
    assert args.resume_from_checkpoint == str(run / "checkpoint-5") and args.output_dir == str(tmp_path / "out")
    assert updates[-1].selected == "sft"


def test_a_cleared_optional_field_is_unset_and_a_cleared_list_is_empty() -> None:
    form = form_of("eval")
    args = parse_args("eval", ["--model", "m", *form.argv(values(form, temperature="", max_new_tokens=""))]).args
    assert (args.temperature, args.max_new_tokens) == (None, None)
    form = form_of("pt")
    args = parse_args("pt", ["--model", "m", *form.argv(values(form, lazy_tokenize=""))]).args
    assert args.lazy_tokenize is None
    form = form_of("sft")
    assert form.argv(values(form, target_modules="")) == ["--target_modules"]
    assert parse_args("sft", ["--model", "m", "--target_modules"]).args.target_modules == []
