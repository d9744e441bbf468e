"""Bad input, typed as a user would: exit 2, one clear line, no traceback, nothing left on disk.

Every case runs the real `swift` command on a tiny random model. The checks that make them fail
fast are the same ones that keep their output directories from ever being created.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from swift_e2e import run_swift

ROW = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per kind of bad data, beside a good one."""
    folder = tmp_path_factory.mktemp("data")
    lines = lambda rows: "".join(json.dumps(r) + "\n" for r in rows)  # noqa: E731
    (folder / "good.jsonl").write_text(lines([ROW] * 8))
    (folder / "empty.jsonl").write_text("")
    (folder / "empty_answers.jsonl").write_text(
        lines([{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}] * 4))
    (folder / "messages_string.jsonl").write_text(lines([{"messages": "hello"}] * 4))
    (folder / "roles_out_of_order.jsonl").write_text(
        lines([{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}] * 4))
    (folder / "huge.jsonl").write_text(
        lines([{"messages": [{"role": "user", "content": "word " * 1_000_000}, {"role": "assistant", "content": "a"}]}]))
    (folder / "binary.jsonl").write_bytes(bytes(range(256)) * 10)
    (folder / "text.parquet").write_text("this is not parquet\n")
    (folder / "no_columns.csv").write_text("foo,bar\n1,2\n3,4\n")
    (folder / "bad_tools.jsonl").write_text(lines([{**ROW, "tools": [1, "x", None]}] * 2))
    (folder / "a_file").write_text("x")
    (folder / "not_an_adapter").mkdir()
    return folder


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, tiny_chat_model: Path) -> Path:
    """Model directories missing a part or holding a broken one, a plugin that raises, and an adapter of
    another model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("broken")
    for name, drop in (("no_tokenizer", ("tokenizer.json", "tokenizer_config.json")), ("no_weights", ("model.safetensors",)),
                       ("bad_weights", ()), ("bad_template", ())):
        shutil.copytree(tiny_chat_model, folder / name)
        for file in drop:
            (folder / name / file).unlink()
    (folder / "bad_weights" / "model.safetensors").write_bytes(b"\xff" * 4096)
    (folder / "bad_template" / "chat_template.jinja").write_text("{% for %}}")
    (folder / "raises.py").write_text("import os\nraise RuntimeError('boom from plugin')\n")
    (folder / "loss_scale.json").write_text("[1, 2]")
    torch.manual_seed(0)
    other = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2, vocab_size=49152))
    get_peft_model(other, LoraConfig(target_modules=["q_proj", "v_proj"])).save_pretrained(folder / "other_adapter")
    shutil.copytree(folder / "other_adapter", folder / "lora_checkpoint")
    (folder / "lora_checkpoint" / "swift_checkpoint.json").write_text('{"global_step": 2}')
    return folder


def sft(model: Path, dataset: str, *extra: str) -> list[str]:
    return ["sft", "--model", str(model), "--dataset", dataset, "--max_steps", "2", "--report_to", "none",
            "--per_device_train_batch_size", "2", "--split_dataset_ratio", "0", "--gradient_checkpointing", "false",
            *extra]


# (case, command, words the one error line must hold); {data}, {model} and {broken} are filled in per test.
CASES = [
    ("missing dataset", sft("{model}", "{data}/nope.jsonl"), ["--dataset", "nope.jsonl", "no such file"]),
    ("#abc", sft("{model}", "{data}/good.jsonl#abc"), ["#N suffix must be a positive integer", "'abc'"]),
    ("#-3", sft("{model}", "{data}/good.jsonl#-3"), ["#N suffix must be a positive integer", "'-3'"]),
    ("self-cognition without names", sft("{model}", "self-cognition#10"), ["--model_name", "--model_author"]),
    ("csv without usable columns", sft("{model}", "{data}/no_columns.csv"), ["no_columns.csv:2", "columns found: bar, foo"]),
    ("target_modules matching nothing", sft("{model}", "{data}/good.jsonl", "--target_modules", "nosuchmod"),
     ["nosuchmod", "--target_modules"]),
    ("missing model", sft("{data}/nomodel", "{data}/good.jsonl"), ["--model", "nomodel", "no such file"]),
    ("empty file", sft("{model}", "{data}/empty.jsonl"), ["empty.jsonl", "no rows"]),
    ("only empty answers", sft("{model}", "{data}/empty_answers.jsonl"),
     ["no usable rows", "4 empty assistant turn", "empty_answers.jsonl:1"]),
    ("messages as a string", sft("{model}", "{data}/messages_string.jsonl"), ["no usable rows", "4 wrong types"]),
    ("roles out of order", sft("{model}", "{data}/roles_out_of_order.jsonl"), ["no usable rows", "roles_out_of_order.jsonl:1"]),
    ("one row over max_length", sft("{model}", "{data}/huge.jsonl", "--max_length", "256"),
     ["no usable rows", "longer than max_length"]),
    ("binary file named .jsonl", sft("{model}", "{data}/binary.jsonl"), ["binary.jsonl:1", "binary file", "UTF-8"]),
    ("text file named .parquet", sft("{model}", "{data}/text.parquet"), ["text.parquet", "not a valid Parquet file"]),
    ("unwritable output_dir", sft("{model}", "{data}/good.jsonl", "--output_dir", "/proc/swift-out"),
     ["--output_dir /proc/swift-out", "cannot create directories"]),
    ("output_dir is a file", sft("{model}", "{data}/good.jsonl", "--output_dir", "{data}/a_file"),
     ["--output_dir", "a_file is a file"]),
    ("subset of a file", sft("{model}", "{data}/good.jsonl:nosuchsubset"), ["no subset nosuchsubset", "available: default"]),
    ("subset of a built-in", sft("{model}", "self-cognition:nosuchsubset#10", "--model_name", "a", "b",
                                 "--model_author", "c", "d"), ["self-cognition", "no subset nosuchsubset", "available: default"]),
    ("negative epochs", ["sft", "--model", "{model}", "--dataset", "{data}/good.jsonl", "--num_train_epochs", "-1"],
     ["--num_train_epochs must be positive", "-1"]),
    ("zero max_steps", sft("{model}", "{data}/good.jsonl", "--max_steps", "0"), ["--max_steps must be at least 1"]),
    ("initialisation not implemented", sft("{model}", "{data}/good.jsonl", "--init_weights", "loftq"),
     ["--init_weights loftq", "not supported yet"]),
    ("quantization package missing", sft("{model}", "{data}/good.jsonl", "--quant_method", "hqq", "--quant_bits", "4"),
     ["needs hqq", "pip install 'swift-infer[hqq]'"]),
    ("adalora's warm-up longer than the run", sft("{model}", "{data}/good.jsonl", "--train_type", "adalora",
                                                  "--adalora_tinit", "50"), ["--adalora_tinit 50", "lower them"]),
    ("adalora's warm-up longer than the epochs (fails after the run directory exists)",
     sft("{model}", "{data}/good.jsonl", "--train_type", "adalora", "--adalora_tinit", "50", "--max_steps", "-1"),
     ["--adalora_tinit 50", "lower them"]),
    ("infer: adapter directory without adapter_config.json", ["infer", "--model", "{model}", "--adapters", "{data}/not_an_adapter"],
     ["no adapter in", "not_an_adapter", "adapter_config.json", "checkpoint directory"]),
    ("infer: --adapters /tmp", ["infer", "--adapters", "{data}"], ["no adapter in", "adapter_config.json"]),
    ("infer: a full model as an adapter", ["infer", "--adapters", "{model}"], ["is a full model", "--model"]),
    ("infer: missing --val_dataset", ["infer", "--model", "{model}", "--val_dataset", "{data}/nope.jsonl"],
     ["nope.jsonl", "no such file"]),
    ("infer: unwritable --result_path", ["infer", "--model", "{model}", "--val_dataset", "{data}/good.jsonl",
                                         "--result_path", "/proc/swift/result.jsonl"], ["--result_path", "cannot create"]),
    ("sample: unwritable --output_dir", ["sample", "--model", "{model}", "--dataset", "{data}/good.jsonl",
                                         "--output_dir", "/proc/swift"], ["--output_dir", "cannot create"]),
    ("merge-lora: not an adapter", ["merge-lora", "--adapters", "{data}/not_an_adapter"], ["no adapter in"]),
    ("model without tokenizer files", sft("{broken}/no_tokenizer", "{data}/good.jsonl"),
     ["no_tokenizer", "cannot load the tokenizer"]),
    ("model without weights", sft("{broken}/no_weights", "{data}/good.jsonl"), ["cannot load the weights", "no_weights"]),
    ("model with corrupt weights", sft("{broken}/bad_weights", "{data}/good.jsonl"), ["cannot load the weights", "bad_weights"]),
    ("model with a broken chat template", sft("{broken}/bad_template", "{data}/good.jsonl"), ["chat template fails", "--template"]),
    ("plugin that raises", sft("{model}", "{data}/good.jsonl", "--external_plugins", "{broken}/raises.py"),
     ["raises.py:2", "RuntimeError: boom from plugin"]),
    ("loss_scale JSON of the wrong shape", sft("{model}", "{data}/good.jsonl", "--loss_scale", "{broken}/loss_scale.json"),
     ["loss_scale.json", "expected a JSON object"]),
    ("invalid target_regex", sft("{model}", "{data}/good.jsonl", "--target_regex", "[a"), ["--target_regex", "not a valid regular"]),
    ("fsdp in one process", sft("{model}", "{data}/good.jsonl", "--fsdp", "full_shard"), ["--fsdp", "NPROC_PER_NODE"]),
    ("attention implementation not installed", sft("{model}", "{data}/good.jsonl", "--attn_impl", "flash_attn"),
     ["--attn_impl flash_attn"]),
    ("adapter of another model", sft("{model}", "{data}/good.jsonl", "--adapters", "{broken}/other_adapter"),
     ["other_adapter does not fit this model", "size mismatch"]),
    ("infer: adapter of another model", ["infer", "--model", "{model}", "--adapters", "{broken}/other_adapter"],
     ["does not fit this model"]),
    ("resuming a LoRA checkpoint as full training", sft("{model}", "{data}/good.jsonl", "--train_type", "full",
                                                        "--resume_from_checkpoint", "{broken}/lora_checkpoint"),
     ["lora_checkpoint holds a lora tuner", "--train_type lora"]),
    ("infer: negative top_k", ["infer", "--model", "{model}", "--top_k", "-5"], ["--top_k must be at least 0"]),
    ("infer: zero max_new_tokens", ["infer", "--model", "{model}", "--max_new_tokens", "0"], ["--max_new_tokens must be at least 1"]),
    ("infer: seed outside torch's range", ["infer", "--model", "{model}", "--seed", "-1"], ["--seed must be in [0, 4294967295]"]),
    ("infer: --result_path is a directory", ["infer", "--model", "{model}", "--val_dataset", "{data}/good.jsonl",
                                              "--result_path", "{data}"], ["--result_path", "is a directory"]),
    ("merge-lora: --output_dir is a file", ["merge-lora", "--adapters", "{broken}/other_adapter", "--output_dir",
                                            "{data}/a_file"], ["--output_dir", "a_file is a file"]),
    ("unwritable --logging_dir", sft("{model}", "{data}/good.jsonl", "--logging_dir", "/proc/swift-logs"),
     ["--logging_dir /proc/swift-logs", "cannot create"]),
    ("lr_scheduler_kwargs the schedule does not take", sft("{model}", "{data}/good.jsonl", "--lr_scheduler_kwargs",
                                                           '{{"nosuch": 1}}'), ["--lr_scheduler_kwargs", "nosuch", "num_cycles"]),
    ("epochs not a number", sft("{model}", "{data}/good.jsonl", "--max_steps", "-1", "--num_train_epochs", "nan"),
     ["--num_train_epochs must be positive"]),
    ("lora_alpha 0", sft("{model}", "{data}/good.jsonl", "--lora_alpha", "0"), ["--lora_alpha must be positive"]),
    ("tools that are not objects", sft("{model}", "{data}/bad_tools.jsonl"), ["no usable rows", "tools must be a list"]),
]


@pytest.mark.parametrize(("command", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_fast_and_clean(command: list[str], words: list[str], data: Path, broken: Path,
                                        tiny_chat_model: Path, tmp_path: Path) -> None:
    argv = [a.format(data=data, model=tiny_chat_model, broken=broken) for a in command]
    result = run_swift(*argv, cwd=tmp_path, timeout=300)
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert errors and all(word in errors[0] for word in words), errors or result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # no output/<model>/vN-... left behind, not even an empty parent


def test_an_existing_output_dir_keeps_what_it_held(data: Path, tiny_chat_model: Path, tmp_path: Path) -> None:
    """A run that fails in an --add_version false directory that existed before removes nothing of it."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = run_swift(*sft(tiny_chat_model, str(data / "good.jsonl"), "--train_type", "adalora", "--adalora_tinit", "50",
                            "--max_steps", "-1", "--output_dir", str(tmp_path / "mine"), "--add_version", "false"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_utf16_dataset_trains_like_its_utf8_twin(data: Path, tiny_chat_model: Path, tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes((data / "good.jsonl").read_text().encode("utf-16"))
    losses = []
    for name, dataset in (("utf8", data / "good.jsonl"), ("utf16", utf16)):
        result = run_swift(*sft(tiny_chat_model, str(dataset), "--output_dir", str(tmp_path / name),
                                "--add_version", "false", "--logging_steps", "1"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        log = (tmp_path / name / "logging.jsonl").read_text().splitlines()
        losses.append([json.loads(line)["loss"] for line in log if '"loss"' in line])
    assert losses[0] == losses[1]


def test_run_files_are_group_readable_and_the_adapter_names_its_base_portably(
    data: Path, tiny_chat_model: Path, tmp_path: Path
) -> None:
    relative_model = os.path.relpath(tiny_chat_model, tmp_path)
    result = run_swift(*sft(Path(relative_model), str(data / "good.jsonl"), "--output_dir", "out",
                            "--add_version", "false"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    umask = os.umask(0o022)
    os.umask(umask)
    for file in (tmp_path / "out").rglob("*"):
        if file.is_file():
            assert file.stat().st_mode & 0o777 == 0o666 & ~umask, file
    adapter = json.loads((tmp_path / "out" / "checkpoint-2" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_chat_model.resolve())  # absolute: loads from anywhere
    assert json.loads((tmp_path / "out" / "args.json").read_text())["model_dir"] == str(tiny_chat_model.resolve())


@pytest.mark.slow
def test_the_printed_next_step_runs_as_printed(data: Path, tiny_chat_model: Path, tmp_path: Path) -> None:
    """The README trains through `python3 -m uv run`; the printed `next:` command must work from that shell."""
    project = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(project)))
    python3 = shutil.which("python3", path=env["PATH"])  # the user's python3 (CI installs uv into it)
    train = subprocess.run(
        [python3, "-m", "uv", "run", "--project", str(project), "--locked", "--all-packages", "swift",
         *sft(tiny_chat_model, str(data / "good.jsonl"))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    next_step = train.stdout.strip().splitlines()[-1].split("next: ", 1)[1]
    assert " -m uv run --project " in next_step and " swift infer --adapters output/" in next_step
    chat = subprocess.run(
        ["bash", "-c", next_step + " --max_new_tokens 4"], cwd=tmp_path, env=env, input="hello\n/quit\n",
        capture_output=True, text=True, timeout=600)
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert "<<< >>> " in chat.stdout  # it answered the question, then quit


@pytest.mark.slow
def test_an_adapter_of_the_builtin_model_loads_where_the_cache_lives_elsewhere(data: Path, tmp_path: Path) -> None:
    """adapter_config.json names the alias, not this machine's cache path; a fresh cache still serves it."""
    result = run_swift("sft", "--model", "SmolLM2-135M-Instruct", "--dataset", str(data / "good.jsonl"),
                       "--max_steps", "1", "--report_to", "none", "--split_dataset_ratio", "0",
                       "--output_dir", "out", "--add_version", "false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = tmp_path / "out" / "checkpoint-1"
    config_text = (checkpoint / "adapter_config.json").read_text()
    assert json.loads(config_text)["base_model_name_or_path"] == "SmolLM2-135M-Instruct"
    assert "swift-suite" not in config_text and ".cache" not in config_text
    elsewhere = tmp_path / "another-machine-cache"
    chat = run_swift("infer", "--adapters", str(checkpoint), "--max_new_tokens", "4", cwd=tmp_path,
                     SWIFT_CACHE=str(elsewhere), input="hello\n/quit\n")
    assert chat.returncode == 0, chat.stderr[-3000:]
    assert "<<< >>> " in chat.stdout
    assert any(elsewhere.rglob("config.json"))  # the base was resolved afresh there, not from the old path


def test_deploy_refuses_a_port_in_use_before_loading(tiny_chat_model: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_swift("deploy", "--model", str(tiny_chat_model), "--host", "127.0.0.1", "--port", str(port),
                           cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"--port {port}: cannot listen there" in result.stderr and "Traceback" not in result.stderr
