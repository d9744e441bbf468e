"""`swift rlhf --rlhf_type ppo` on SmolLM2-135M-Instruct (CPU), as a user types it: a reward model trained with
`--rlhf_type rm` on pairs that prefer the tagged answer form, then PPO against it, raises that model's mean score
of completions to held-out prompts (eval_score in logging.jsonl, before the first step and after the last).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _online import arithmetic_problems, evals, split, train_steps
from swift_e2e import read_jsonl, run_swift, write_jsonl

RM_STEPS = 8
PPO_STEPS = 6

# What SmolLM2 writes instead of the tagged answer, in a few of its own phrasings.
PROSE = ["The answer is {c}.", "{a} {op} {b} equals {c}.", "{a} {op} {b} = {c}", "So {a} {op} {b} is {c}."]


def preference_pair(row: dict, index: int) -> dict:
    """The problem (after the set's worked example); chosen: the tagged form; rejected: the same answer in prose."""
    a, operator, b = re.search(r"(\d+) (\S) (\d+)", row["messages"][-1]["content"]).groups()
    c = row["solution"]
    return {"messages": [*row["messages"], {"role": "assistant", "content": f"{a} {operator} {b} = {c}, so <answer>{c}</answer>"}],
            "rejected_response": PROSE[index % len(PROSE)].format(a=a, op=operator, b=b, c=c)}


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory) -> Path:
    """A LoRA reward model on SmolLM2, trained on pairs of the built-in arithmetic problems."""
    folder = tmp_path_factory.mktemp("rm")
    pairs = write_jsonl(folder / "pairs.jsonl", [preference_pair(row, i) for i, row in enumerate(arithmetic_problems())])
    output = folder / "run"
    trained = run_swift("rlhf", "--rlhf_type", "rm", "--model", "SmolLM2-135M-Instruct", "--dataset", str(pairs),
                        "--split_dataset_ratio", "0", "--max_steps", str(RM_STEPS), "--per_device_train_batch_size",
                        "8", "--learning_rate", "1e-3", "--output_dir", str(output), "--add_version", "false",
                        "--report_to", "none", "--seed", "1", "--gradient_checkpointing", "false")
    assert trained.returncode == 0, trained.stderr[-3000:]
    return output / f"checkpoint-{RM_STEPS}"


@pytest.mark.slow
@pytest.mark.long
def test_ppo_raises_the_reward_models_score_of_held_out_completions(reward_model, tmp_path):
    problems = split(arithmetic_problems(), 32, tmp_path / "problems")
    output = tmp_path / "run"
    result = run_swift(
        "rlhf", "--rlhf_type", "ppo", "--model", "SmolLM2-135M-Instruct", "--reward_model", "SmolLM2-135M-Instruct",
        "--reward_adapters", str(reward_model), "--dataset", str(problems.train), "--val_dataset",
        str(problems.held_out), "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32",
        "--response_length", "20", "--temperature", "1.0", "--learning_rate", "1e-3", "--max_steps", str(PPO_STEPS),
        "--eval_on_start", "true", "--eval_strategy", "steps", "--eval_steps", str(PPO_STEPS), "--save_steps",
        str(PPO_STEPS), "--logging_steps", "1", "--split_dataset_ratio", "0", "--output_dir", str(output),
        "--add_version", "false", "--report_to", "none", "--gradient_checkpointing", "false", "--seed", "1",
        "--num_sample_generations", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    before, trained = evals(output, "eval_score")
    print(f"held-out reward model score {before:.2f} -> {trained:.2f}")
    assert trained > before + 1.0
    steps = train_steps(output)
    assert [s["global_step"] for s in steps] == list(range(1, PPO_STEPS + 1))
    assert {"score", "policy_loss", "value_loss", "clip_ratio", "approx_kl"} <= set(steps[0])
    completions = read_jsonl(output / "completions.jsonl")
    assert {"step", "prompt", "completion", "score"} <= set(completions[0])
    assert (output / f"checkpoint-{PPO_STEPS}" / "value_model.pt").is_file()
