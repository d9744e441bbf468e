"""`swift rlhf --rlhf_type grpo` on SmolLM2-135M-Instruct (CPU), as a user types it: the built-in rewards raise
the reward of completions to held-out prompts, a plugin file's reward is the one logged, and the checkpoint answers
through `swift infer` and merges.
(Refusals, plugins, the all-equal-rewards warning and resuming run on a tiny model in test_online_rl_cli.py.)

The learning runs hold out 32 of the built-in arithmetic problems and evaluate on them
before the first step (--eval_on_start true) and after the last, one completion per prompt at the training
temperature: eval_reward in logging.jsonl is that mean reward.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _online import THINK_EXAMPLE, Split, arithmetic_problems, evals, split, train_steps
from swift_e2e import read_jsonl, run_swift, write_jsonl

LEARN_STEPS = 6


def grpo(data: Path, output: Path, *extra: str) -> list[str]:
    """A short GRPO run: 2 prompts a step, 8 completions each, every step logged, into `output` itself."""
    return ["rlhf", "--rlhf_type", "grpo", "--model", "SmolLM2-135M-Instruct", "--dataset", str(data),
            "--num_generations", "8", "--per_device_train_batch_size", "16", "--max_completion_length", "20",
            "--temperature", "1.0", "--learning_rate", "1e-3", "--beta", "0", "--logging_steps", "1",
            "--split_dataset_ratio", "0", "--output_dir", str(output), "--add_version", "false", "--report_to", "none",
            "--gradient_checkpointing", "false", "--seed", "1", *extra]


def evaluated(split: Split, steps: int = LEARN_STEPS) -> list[str]:
    """Evaluated on the held-out prompts before the first step and after the last."""
    return ["--val_dataset", str(split.held_out), "--eval_on_start", "true", "--eval_strategy", "steps",
            "--eval_steps", str(steps), "--max_steps", str(steps), "--save_steps", str(steps),
            "--per_device_eval_batch_size", "32"]


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> Split:
    """The built-in arithmetic problems, 32 held out."""
    return split(arithmetic_problems(), 32, tmp_path_factory.mktemp("problems"))


@pytest.fixture(scope="module")
def accuracy_run(problems, tmp_path_factory) -> Path:
    """GRPO with the accuracy reward, run once for the tests that read it or load its checkpoint."""
    output = tmp_path_factory.mktemp("accuracy") / "run"
    result = run_swift(*grpo(problems.train, output, "--reward_funcs", "accuracy", *evaluated(problems)))
    assert result.returncode == 0, result.stderr[-3000:]
    return output


@pytest.mark.slow
@pytest.mark.long
def test_grpo_with_the_accuracy_reward_answers_more_held_out_problems_right(accuracy_run):
    before, after = evals(accuracy_run, "eval_reward")
    print(f"held-out accuracy {before:.2f} -> {after:.2f}")
    assert before < 0.3  # SmolLM2 mostly works the sum out but seldom ends with the tagged answer
    assert after >= before + 0.25
    assert evals(accuracy_run, "eval_rewards/accuracy") == [before, after]
    steps = train_steps(accuracy_run)
    assert [s["global_step"] for s in steps] == list(range(1, LEARN_STEPS + 1))
    assert {"reward", "reward_std", "rewards/accuracy", "frac_reward_zero_std", "completion_length", "kl",
            "clip_ratio"} <= set(steps[0])


@pytest.mark.slow
@pytest.mark.long
def test_grpo_with_the_format_reward_writes_more_well_formed_answers(problems, tmp_path):
    # The same problems after an example of the form `format` rewards: <think>...</think><answer>...</answer>.
    think = split([{**row, "messages": [*THINK_EXAMPLE, row["messages"][-1]]} for row in arithmetic_problems()], 32,
                  tmp_path / "think")
    output = tmp_path / "run"
    result = run_swift(*grpo(think.train, output, "--reward_funcs", "format", *evaluated(think),
                             "--log_completions", "true"))
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = evals(output, "eval_reward")
    print(f"held-out well-formed share {before:.2f} -> {after:.2f}")
    assert after >= before + 0.25
    last = [r for r in read_jsonl(output / "completions.jsonl") if r["step"] == LEARN_STEPS]
    well_formed = [r["completion"] for r in last if r["rewards"]["format"] == 1.0]
    assert well_formed and all(c.startswith("<think>") and c.endswith("</answer>") for c in well_formed)


@pytest.mark.slow
@pytest.mark.long
def test_the_checkpoint_answers_through_swift_infer_and_merges(accuracy_run, problems, smollm2_dir, tmp_path):
    from swift_train.rewards import is_correct

    checkpoint = accuracy_run / f"checkpoint-{LEARN_STEPS}"
    questions = write_jsonl(tmp_path / "questions.jsonl", read_jsonl(problems.held_out)[:12])
    answers = {}
    for name, source in (("base", ["--model", "SmolLM2-135M-Instruct"]), ("trained", ["--adapters", str(checkpoint)])):
        results = tmp_path / f"{name}.jsonl"
        answered = run_swift("infer", *source, "--val_dataset", str(questions), "--result_path", str(results),
                             "--temperature", "0", "--max_new_tokens", "20")
        assert answered.returncode == 0, answered.stderr[-3000:]
        answers[name] = read_jsonl(results)
    solutions = [row["solution"] for row in read_jsonl(questions)]
    right = {name: sum(is_correct(r["response"], s) for r, s in zip(rows, solutions)) for name, rows in answers.items()}
    print(f"greedy answers right with swift infer: {right}")
    assert right["trained"] > right["base"]  # the adapter that was loaded is the trained one

    merged = run_swift("merge-lora", "--adapters", str(checkpoint), "--output_dir", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr[-3000:]
    results = tmp_path / "merged.jsonl"
    answered = run_swift("infer", "--model", str(tmp_path / "merged"), "--val_dataset", str(questions),
                         "--result_path", str(results), "--temperature", "0", "--max_new_tokens", "20")
    assert answered.returncode == 0, answered.stderr[-3000:]
    assert [r["response"] for r in read_jsonl(results)] == [r["response"] for r in answers["trained"]]


# -- a reward function from a plugin file -------------------------------------------------------------------

BREVITY = '''
from swift_train.rewards import reward_funcs


def brevity(completions, **kwargs):
    return [-len(c) / 100 for c in completions]


reward_funcs["brevity"] = brevity
'''


@pytest.mark.slow
@pytest.mark.long
def test_a_plugin_reward_function_from_a_file_scores_the_completions(problems, tmp_path):
    plugin = tmp_path / "my_reward.py"
    plugin.write_text(BREVITY)
    output = tmp_path / "run"
    result = run_swift("rlhf", "--rlhf_type", "grpo", "--model", "SmolLM2-135M-Instruct", "--dataset", str(problems.train),
                       "--external_plugins", str(plugin), "--reward_funcs", "brevity", "--num_generations", "4",
                       "--per_device_train_batch_size", "4", "--max_completion_length", "12", "--max_steps", "2",
                       "--logging_steps", "1", "--log_completions", "true", "--split_dataset_ratio", "0",
                       "--output_dir", str(output), "--add_version", "false", "--report_to", "none",
                       "--gradient_checkpointing", "false", "--seed", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    completions = read_jsonl(output / "completions.jsonl")
    assert [c["step"] for c in completions] == [1] * 4 + [2] * 4
    for c in completions:  # what the plugin returned for the text the policy wrote
        assert c["rewards"] == {"brevity": pytest.approx(-len(c["completion"]) / 100, abs=1e-6)}
    assert len({c["completion"] for c in completions}) > 1
    for step in train_steps(output):
        values = [c["rewards"]["brevity"] for c in completions if c["step"] == step["global_step"]]
        assert step["rewards/brevity"] == pytest.approx(sum(values) / len(values), abs=1e-4)
