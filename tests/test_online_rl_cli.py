"""`swift rlhf --rlhf_type grpo | ppo` as a user types it: refusals before any work, the rewards a run logs,
the all-equal-rewards warning, checkpoints that resume and load, on a tiny random chat model (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from swift_e2e import read_log, run_swift

PROMPTS = [{"messages": [{"role": "user", "content": f"What is {a} + {b}?"}], "solution": str(a + b)}
           for a in range(1, 7) for b in range(1, 7)]


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grpo") / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    return path


def grpo(model: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return ["rlhf", "--rlhf_type", "grpo", "--model", str(model), "--dataset", str(data), "--num_generations", "4",
            "--per_device_train_batch_size", "8", "--max_completion_length", "12", "--logging_steps", "1",
            "--split_dataset_ratio", "0", "--output_dir", str(output), "--add_version", "false", "--report_to", "none",
            "--gradient_checkpointing", "false", "--seed", "1", *extra]


@pytest.mark.parametrize("extra,message", [
    (["--rlhf_type", "grpo"], "--rlhf_type grpo needs rewards: --reward_funcs"),
    (["--rlhf_type", "grpo", "--reward_funcs", "speling", "--per_device_train_batch_size", "8"], "--reward_funcs speling: no such reward function "
     "(registered: accuracy, cosine, format, repetition)"),
    (["--rlhf_type", "grpo", "--reward_funcs", "format", "--per_device_train_batch_size", "8", "--truncation_strategy",
      "right"],
     "--truncation_strategy right: the end of a prompt is what the answer follows"),
    (["--rlhf_type", "grpo", "--reward_funcs", "format", "--per_device_train_batch_size", "3", "--num_generations", "2"],
     "--per_device_train_batch_size 3 is not a multiple of --num_generations 2"),
    (["--rlhf_type", "grpo", "--reward_funcs", "format", "--per_device_train_batch_size", "8", "--async_generate",
      "true"], "--async_generate true: the pt engine samples with the very weights the update is changing"),
    (["--rlhf_type", "ppo"], "--rlhf_type ppo needs --reward_model"),
    (["--rlhf_type", "grpo", "--reward_funcs", "format", "--per_device_train_batch_size", "8", "--rpo_alpha", "0.5"],
     "--rpo_alpha 0.5: configures the offline algorithms (dpo, orpo, simpo, cpo, kto); --rlhf_type grpo does not"),
    (["--rlhf_type", "dpo", "--num_generations", "4"], "--num_generations 4: configures GRPO; add --rlhf_type grpo"),
    (["--rlhf_type", "grpo", "--reward_funcs", "format", "--per_device_train_batch_size", "8", "--kl_coef", "0.1"],
     "--kl_coef 0.1: configures PPO; add --rlhf_type ppo"),
])
def test_bad_online_rl_arguments_are_refused_before_any_work(tiny_chat_model, prompts, tmp_path, extra, message):
    output = tmp_path / "out"
    result = run_swift("rlhf", "--model", str(tiny_chat_model), "--dataset", str(prompts), "--output_dir", str(output),
                       *extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_a_reward_function_needs_its_column(tiny_chat_model, tmp_path):
    data = tmp_path / "no_solution.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "What is 1 + 1?"}]}) + "\n")
    output = tmp_path / "out"
    result = run_swift(*grpo(tiny_chat_model, data, output, "--reward_funcs", "accuracy"))
    assert result.returncode == 2, result.stderr
    assert "--reward_funcs accuracy needs a 'solution' column, which the dataset lacks (its columns: messages)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


LENGTH_PLUGIN = '''
from swift_train.rewards import reward_funcs

def length_over_100(completions, solution, **kwargs):
    assert len(solution) == len(completions)  # the row's columns come along, one value per completion
    return [len(c) / 100 for c in completions]

reward_funcs["length_over_100"] = length_over_100
'''


def test_a_plugin_reward_function_is_used_and_each_completion_is_logged(tiny_chat_model, prompts, tmp_path):
    plugin = tmp_path / "my_reward.py"
    plugin.write_text(LENGTH_PLUGIN)
    output = tmp_path / "run"
    result = run_swift(*grpo(tiny_chat_model, prompts, output, "--external_plugins", str(plugin), "--reward_funcs",
                             "length_over_100", "--max_steps", "2", "--log_completions", "true"))
    assert result.returncode == 0, result.stderr
    steps = [r for r in read_log(output) if "loss" in r]
    completions = [json.loads(line) for line in (output / "completions.jsonl").read_text().splitlines()]
    assert len(completions) == 2 * 8
    for record in completions:
        assert record["rewards"]["length_over_100"] == pytest.approx(len(record["completion"]) / 100, abs=1e-6)
    for step in (1, 2):
        rewards = [r["reward"] for r in completions if r["step"] == step]
        assert steps[step - 1]["rewards/length_over_100"] == pytest.approx(sum(rewards) / len(rewards), abs=1e-5)
        group = [r["advantage"] for r in completions if r["step"] == step][:4]
        assert sum(group) == pytest.approx(0.0, abs=1e-4)  # advantages are relative to the group
    assert steps[0]["rollout_tokens_per_second"] > 0 and "kl" in steps[0] and "clip_ratio" in steps[0]


CONSTANT_PLUGIN = '''
from swift_train.rewards import reward_funcs

reward_funcs["always_one"] = lambda completions, **kwargs: [1.0] * len(completions)
'''


def test_groups_whose_completions_all_score_the_same_are_reported(tiny_chat_model, prompts, tmp_path):
    plugin = tmp_path / "constant.py"
    plugin.write_text(CONSTANT_PLUGIN)
    output = tmp_path / "run"
    result = run_swift(*grpo(tiny_chat_model, prompts, output, "--external_plugins", str(plugin), "--reward_funcs",
                             "always_one", "--max_steps", "1", "--beta", "0"))
    assert result.returncode == 0, result.stderr
    assert "every group since the last log got the same reward for all 4 completions: no gradient" in result.stderr
    step = [r for r in read_log(output) if "loss" in r][0]
    assert step["frac_reward_zero_std"] == 1.0 and step["loss"] == 0.0 and step["reward"] == 1.0


def test_a_resumed_run_with_num_iterations_goes_on_from_the_saved_rollouts(tiny_chat_model, prompts, tmp_path):
    plugin = tmp_path / "my_reward.py"
    plugin.write_text(LENGTH_PLUGIN)
    common = ("--external_plugins", str(plugin), "--reward_funcs", "length_over_100", "--num_iterations", "2",
              "--max_steps", "4", "--save_steps", "1", "--learning_rate", "1e-3")
    whole = run_swift(*grpo(tiny_chat_model, prompts, tmp_path / "whole", *common))
    assert whole.returncode == 0, whole.stderr
    checkpoint = tmp_path / "whole" / "checkpoint-1"
    assert (checkpoint / "rollout_buffer_0.pt").is_file()  # step 2 trains again on step 1's completions
    resumed = run_swift(*grpo(tiny_chat_model, prompts, tmp_path / "resumed", *common, "--resume_from_checkpoint",
                              str(checkpoint)))
    assert resumed.returncode == 0, resumed.stderr
    losses = {r["global_step"]: r["loss"] for r in read_log(tmp_path / "whole") if "loss" in r}
    again = {r["global_step"]: r["loss"] for r in read_log(tmp_path / "resumed") if "loss" in r}
    assert again[2] == pytest.approx(losses[2], rel=1e-4, abs=1e-7)  # the buffered rollouts, not new ones
    # The checkpoint is a plain PEFT adapter: swift infer answers with it.
    answer = run_swift("infer", "--adapters", str(tmp_path / "whole" / "checkpoint-4"), "--max_new_tokens", "4",
                       input="What is 2 + 2?\n")
    assert answer.returncode == 0, answer.stderr


def test_grpo_on_two_processes_gathers_the_rewards_of_both(tiny_chat_model, prompts, tmp_path):
    # Each process samples its own prompts' groups (gloo on CPUs); the logged reward is the mean over both.
    plugin = tmp_path / "my_reward.py"
    plugin.write_text(LENGTH_PLUGIN)
    output = tmp_path / "run"
    result = run_swift(*grpo(tiny_chat_model, prompts, output, "--external_plugins", str(plugin), "--reward_funcs",
                             "length_over_100", "--max_steps", "2", "--log_completions", "true"), NPROC_PER_NODE="2")
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [r for r in read_log(output) if "loss" in r]
    assert [s["global_step"] for s in steps] == [1, 2]
    assert (output / "checkpoint-2" / "adapter_model.safetensors").is_file()
    completions = [json.loads(line) for line in (output / "completions.jsonl").read_text().splitlines()]
    for step in steps:  # both processes' completions are logged and averaged
        rewards = [c["reward"] for c in completions if c["step"] == step["global_step"]]
        assert len(rewards) == 2 * 8
        assert step["reward"] == pytest.approx(sum(rewards) / len(rewards), abs=1e-5)


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_chat_model, tmp_path_factory) -> Path:
    """A reward model on the tiny model, `--rlhf_type rm` for one step (its scores mean little; PPO runs on them)."""
    folder = tmp_path_factory.mktemp("rm")
    pairs = folder / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({**row, "messages": [*row["messages"], {"role": "assistant", "content": row["solution"]}],
                                         "rejected_response": "no idea"}) + "\n" for row in PROMPTS[:8]))
    result = run_swift("rlhf", "--rlhf_type", "rm", "--model", str(tiny_chat_model), "--dataset", str(pairs),
                       "--split_dataset_ratio", "0", "--max_steps", "1", "--per_device_train_batch_size", "4",
                       "--output_dir", str(folder / "run"), "--add_version", "false", "--report_to", "none",
                       "--gradient_checkpointing", "false")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "run" / "checkpoint-1"


def ppo(model: Path, reward_adapter: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return ["rlhf", "--rlhf_type", "ppo", "--model", str(model), "--reward_model", str(model), "--reward_adapters",
            str(reward_adapter), "--dataset", str(data), "--per_device_train_batch_size", "4", "--response_length", "8",
            "--num_ppo_epochs", "2", "--learning_rate", "1e-3", "--logging_steps", "1", "--split_dataset_ratio", "0",
            "--output_dir", str(output), "--add_version", "false", "--report_to", "none", "--gradient_checkpointing",
            "false", "--seed", "1", *extra]


def test_a_resumed_ppo_run_goes_on_exactly_with_its_value_model_and_rollouts(tiny_chat_model, tiny_reward_model,
                                                                            prompts, tmp_path):
    # --num_ppo_epochs 2: step 2 trains again on step 1's rollouts, and the value model trains beside the policy;
    # the checkpoint after step 1 keeps both (rollout_buffer_0.pt, value_model.pt).
    common = ("--max_steps", "4", "--save_steps", "1")
    whole = run_swift(*ppo(tiny_chat_model, tiny_reward_model, prompts, tmp_path / "whole", *common))
    assert whole.returncode == 0, whole.stderr[-3000:]
    checkpoint = tmp_path / "whole" / "checkpoint-1"
    assert (checkpoint / "value_model.pt").is_file() and (checkpoint / "rollout_buffer_0.pt").is_file()
    resumed = run_swift(*ppo(tiny_chat_model, tiny_reward_model, prompts, tmp_path / "resumed", *common,
                             "--resume_from_checkpoint", str(checkpoint)))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = {r["global_step"]: r for r in read_log(tmp_path / "whole") if "loss" in r}
    actual = {r["global_step"]: r for r in read_log(tmp_path / "resumed") if "loss" in r}
    assert sorted(actual) == [2, 3, 4]
    for step, record in actual.items():
        for key in ("loss", "policy_loss", "value_loss", "grad_norm"):
            assert record[key] == pytest.approx(expected[step][key], rel=1e-4, abs=1e-6), (step, key)
    assert "score" in expected[1] and "score" in expected[3] and "score" not in expected[2]  # a rollout every 2 steps
