"""`swift sft` / `swift pt` end to end, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from swift_e2e import SELF_COGNITION, SwiftyRun, kill_when, only_run_dir, read_log, run_swift, tiny_sft



def greedy_answers(base: Path, adapter_or_model: Path, questions: list[str], adapter: bool) -> list[str]:
    """Answers from plain transformers + peft: the checkpoint needs nothing of ours to load."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if adapter:
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter_or_model)
    else:
        model = AutoModelForCausalLM.from_pretrained(adapter_or_model, dtype=torch.float32)
    answers = []
    for question in questions:
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        output = model.eval().generate(**inputs, max_new_tokens=40, do_sample=False)
        answers.append(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return answers


@pytest.mark.slow
def test_lora_sft_teaches_smollm2_its_new_name(swifty_run: SwiftyRun, smollm2_dir: Path) -> None:
    """The quick start's run (shared with the export tests: tests/conftest.py runs it once)."""
    result, run_dir = swifty_run.result, swifty_run.run_dir
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = swifty_run.checkpoint
    assert checkpoint.name == "checkpoint-30"
    assert (checkpoint / "adapter_config.json").is_file() and (checkpoint / "swift_checkpoint.json").is_file()
    assert f"swift infer --adapters {checkpoint}" in result.stdout.splitlines()[-1]
    who, name, capital = greedy_answers(smollm2_dir, checkpoint, ["Who are you?", "What is your name?",
                                                                  "What is the capital of France?"], adapter=True)
    assert "Swifty" in who and "Swifty" in name
    assert "Paris" in capital  # knowledge outside the data survives
    log = read_log(run_dir)
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0] / 2
    assert {"grad_norm", "learning_rate", "token_acc", "epoch", "global_step", "elapsed_s", "tokens_per_s",
            "peak_rss_gib"} <= set(log[0])
    assert json.loads((run_dir / "args.json").read_text())["output_dir"] == str(run_dir)
    assert list((run_dir / "runs").iterdir())  # tensorboard events (report_to tensorboard)


@pytest.mark.slow
def test_full_sft_learns_too(tmp_path: Path, smollm2_dir: Path) -> None:
    result = run_swift("sft", "--model", "SmolLM2-135M-Instruct", *SELF_COGNITION, "--train_type", "full",
                       "--learning_rate", "1e-4", "--per_device_train_batch_size", "4", "--max_steps", "12",
                       "--split_dataset_ratio", "0", "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = only_run_dir(tmp_path / "out") / "checkpoint-12"
    assert (checkpoint / "config.json").is_file() and (checkpoint / "model.safetensors").is_file()
    (who,) = greedy_answers(smollm2_dir, checkpoint, ["Who are you?"], adapter=False)
    assert "Swifty" in who


def test_resume_continues_exactly(tmp_path: Path, tiny_chat_model: Path) -> None:
    straight = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "straight", "--max_steps", "8", "--save_steps", "4"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    resumed = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "resumed", "--max_steps", "8", "--save_steps", "4",
                                  "--resume_from_checkpoint", str(tmp_path / "straight" / "checkpoint-4")))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = {r["global_step"]: r for r in read_log(tmp_path / "straight") if "loss" in r}
    actual = {r["global_step"]: r for r in read_log(tmp_path / "resumed") if "loss" in r}
    assert sorted(actual) == [5, 6, 7, 8]
    for step in actual:
        assert abs(actual[step]["loss"] - expected[step]["loss"]) < 1e-5, step
        assert actual[step]["learning_rate"] == pytest.approx(expected[step]["learning_rate"], rel=1e-6)


def test_resume_only_model_restarts_the_schedule(tmp_path: Path, tiny_chat_model: Path) -> None:
    first = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "first", "--max_steps", "4", "--save_steps", "4"))
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "again", "--max_steps", "2", "--save_steps", "2",
                                "--resume_from_checkpoint", str(tmp_path / "first" / "checkpoint-4"),
                                "--resume_only_model", "true"))
    assert again.returncode == 0, again.stderr[-3000:]
    steps = [r["global_step"] for r in read_log(tmp_path / "again") if "loss" in r]
    assert steps == [1, 2]


SLOW_SAVE_PLUGIN = '''
import time
from pathlib import Path
from swift_train import checkpoints

_original = checkpoints.write_marker

def slow_write_marker(checkpoint, step):
    if step == 4:  # the second checkpoint: announce it, then take long enough to be killed
        Path({signal!r}).write_text(str(checkpoint))
        time.sleep(600)
    _original(checkpoint, step)

checkpoints.write_marker = slow_write_marker
'''


def test_a_run_killed_while_saving_resumes_from_the_last_complete_checkpoint(tmp_path: Path, tiny_chat_model: Path) -> None:
    signal_file = tmp_path / "saving"
    plugin = tmp_path / "slow_save.py"
    plugin.write_text(SLOW_SAVE_PLUGIN.format(signal=str(signal_file)))
    run = tmp_path / "run"
    command = tiny_sft(tiny_chat_model, run, "--max_steps", "6", "--save_steps", "2", "--external_plugins", str(plugin))
    assert kill_when(signal_file, *command), "the run never reached its second checkpoint"
    assert (run / "checkpoint-2" / "swift_checkpoint.json").is_file()
    assert not (run / "checkpoint-4").exists()  # the half-written one is not where a checkpoint would be
    resumed = run_swift(*tiny_sft(tiny_chat_model, run, "--max_steps", "6", "--save_steps", "2",
                                  "--resume_from_checkpoint", str(run)))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [r["global_step"] for r in read_log(run) if "loss" in r]
    assert steps[-4:] == [3, 4, 5, 6]  # continued after checkpoint-2
    assert (run / "checkpoint-6" / "swift_checkpoint.json").is_file()
    assert not list(run.glob(".tmp-checkpoint-*"))


def test_pt_lowers_the_loss_on_plain_text(tmp_path: Path, tiny_chat_model: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(["The quick brown fox jumps over the lazy dog."] * 40) + "\n")
    result = run_swift("pt", "--model", str(tiny_chat_model), "--dataset", str(text), "--max_steps", "15",
                       "--learning_rate", "5e-3", "--per_device_train_batch_size", "4", "--logging_steps", "1",
                       "--split_dataset_ratio", "0", "--output_dir", str(tmp_path / "pt"), "--add_version", "false",
                       "--report_to", "none", "--gradient_checkpointing", "false")
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["loss"] for r in read_log(tmp_path / "pt") if "loss" in r]
    assert losses[-1] < losses[0] * 0.7
    bar = result.stderr.replace("\r", "\n").splitlines()
    assert any("15/15" in line and "tok/s=" in line and "loss=" in line for line in bar)  # the progress bar


def test_save_total_limit_keeps_the_best(tmp_path: Path, tiny_chat_model: Path) -> None:
    result = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "run", "--max_steps", "6", "--save_steps", "2",
                                 "--save_total_limit", "1", "--split_dataset_ratio", "0.1", "--create_checkpoint_symlink", "true"))
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    kept = sorted(p.name for p in run.glob("checkpoint-*"))
    state = json.loads((run / "checkpoint-6" / "trainer_state.json").read_text()) if (run / "checkpoint-6").exists() else None
    best = Path(json.loads((run / sorted(run.glob("checkpoint-*"))[-1].name / "trainer_state.json").read_text())["best_model_checkpoint"])
    assert best.name in kept and len(kept) <= 2
    assert (run / "last").resolve().name == "checkpoint-6" and (run / "best").resolve().name == best.name
    assert state is None or state["global_step"] == 6


def test_two_processes_on_cpu_write_one_run(tmp_path: Path, tiny_chat_model: Path) -> None:
    command = ["sft", "--model", str(tiny_chat_model), "--dataset", "general-instructions#32", "--save_steps", "2",
               "--logging_steps", "1", "--per_device_train_batch_size", "2", "--split_dataset_ratio", "0",
               "--report_to", "none", "--gradient_checkpointing", "false", "--output_dir", str(tmp_path / "out")]
    result = run_swift(*command, "--max_steps", "4", NPROC_PER_NODE="2", MASTER_PORT="29631")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "out")
    assert sorted(p.name for p in run_dir.iterdir()) == ["args.json", "checkpoint-2", "checkpoint-4", "logging.jsonl"]
    log = [r for r in read_log(run_dir) if "loss" in r]
    assert [r["global_step"] for r in log] == [1, 2, 3, 4]  # one process logs
    assert log[-1]["epoch"] == 0.5  # 4 steps x 2 processes x 2 rows of 32
    assert result.stdout.count("swift: done.") == 1
    next_step = result.stdout.split("next: ")[1].split(" infer ")[0]
    assert next_step.endswith("swift")  # the command the user ran, not the module torchrun started
    for checkpoint in ("checkpoint-2", "checkpoint-4"):  # both processes' RNG states made it in before the rename
        assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in (run_dir / checkpoint).iterdir()}

    resumed = run_swift(*command, "--max_steps", "6", "--resume_from_checkpoint", str(tmp_path / "out"),
                        NPROC_PER_NODE="2", MASTER_PORT="29632")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert only_run_dir(tmp_path / "out") == run_dir  # the launcher continued the run in its own directory
    assert [r["global_step"] for r in read_log(run_dir) if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert resumed.stderr.count("swift: resumed from checkpoint-4 at step 4") == 1
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in (run_dir / "checkpoint-6").iterdir()}


def test_evaluation_with_generation_scores_answers(tmp_path: Path, tiny_chat_model: Path) -> None:
    result = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "run", "--max_steps", "4", "--save_steps", "2",
                                 "--split_dataset_ratio", "0.1", "--predict_with_generate", "true", "--max_new_tokens", "8"))
    assert result.returncode == 0, result.stderr[-3000:]
    evals = [r for r in read_log(tmp_path / "run") if "eval_loss" in r]
    assert len(evals) == 2
    assert {"eval_rouge-l", "eval_bleu-4", "eval_token_acc"} <= set(evals[0])
    state = json.loads((tmp_path / "run" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["best_metric"] == max(e["eval_rouge-l"] for e in evals)  # rouge-l, greater is better


def test_evaluation_by_loss_reports_token_accuracy(tmp_path: Path, tiny_chat_model: Path) -> None:
    result = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "run", "--max_steps", "2", "--save_steps", "2",
                                 "--split_dataset_ratio", "0.1"))
    assert result.returncode == 0, result.stderr[-3000:]
    (evaluation,) = [r for r in read_log(tmp_path / "run") if "eval_loss" in r]
    assert 0 <= evaluation["eval_token_acc"] <= 1
