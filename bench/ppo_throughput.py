"""PPO on a GPU: `swift rlhf --rlhf_type rm` for a reward model, then `swift rlhf --rlhf_type ppo` against it.

Run as: python bench/ppo_throughput.py --shape qwen2.5-0.5b --tokenizer <dir with SmolLM2's tokenizer files>
        python bench/ppo_throughput.py --shape tiny --tokenizer <dir> --steps 8 --response 16   (CPU smoke run)

TRL no longer ships a PPO trainer, so there is no baseline to run beside it: this reports what a PPO step costs
next to a GRPO step on the same model (bench/grpo_throughput.py). A random model (a real model's shape, saved in
bf16) is both the policy and the reward model's base; the reward model is LoRA-trained for 2 steps on pairs
from the built-in arithmetic questions (its scores mean nothing; the work is the same). PPO runs at its
defaults (LoRA r8, num_ppo_epochs 4: a rollout every 4 optimizer steps, value model from the reward model)
with per_device_train_batch_size prompts and --response tokens a completion. Reported: rollout tokens per
second, seconds per optimizer step (over the steps after the first rollout's), peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import save_model  # noqa: E402


def swift(*args: str) -> None:
    command = [sys.executable, "-m", "swift_args.cli", "rlhf", "--add_version", "false", "--report_to", "none",
               "--save_strategy", "no", "--split_dataset_ratio", "0", "--logging_steps", "1", *args]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        raise SystemExit(f"swift failed:\n{result.stderr[-4000:]}")


def write_data(folder: Path) -> tuple[Path, Path]:
    from swift_data.datasets.builtin import BUILTIN_DATASETS

    rows = [json.loads(line) for line in BUILTIN_DATASETS["arithmetic"].path().read_text().splitlines()]
    prompts, pairs = folder / "prompts.jsonl", folder / "pairs.jsonl"
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    pairs.write_text("".join(json.dumps({"messages": [*row["messages"], {"role": "assistant", "content": row["solution"]}],
                                         "rejected_response": "I do not know."}) + "\n" for row in rows[:64]))
    return prompts, pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="qwen2.5-0.5b")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=32, help="prompts per optimizer step")
    parser.add_argument("--response", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "model"
        save_model(args.shape, model, args.tokenizer, "bfloat16")
        prompts, pairs = write_data(root)
        swift("--rlhf_type", "rm", "--model", str(model), "--dataset", str(pairs), "--max_steps", "2",
              "--per_device_train_batch_size", "8", "--output_dir", str(root / "rm"), "--save_strategy", "steps",
              "--save_steps", "2")
        out = root / "ppo"
        swift("--rlhf_type", "ppo", "--model", str(model), "--reward_model", str(model), "--reward_adapters",
              str(root / "rm" / "checkpoint-2"), "--dataset", str(prompts), "--per_device_train_batch_size",
              str(args.batch), "--response_length", str(args.response), "--max_steps", str(args.steps),
              "--output_dir", str(out))
        records = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
        steps = [r for r in records if "loss" in r and "global_step" in r]
        rollouts = [r for r in steps if "rollout_tokens_per_second" in r]
        first = next(i for i, r in enumerate(steps) if r["global_step"] == 4)  # the first rollout's steps
        timed = steps[first:]
        print(json.dumps({
            "shape": args.shape, "batch": args.batch, "response": args.response, "steps": args.steps,
            "rollout_tokens_per_s": [round(r["rollout_tokens_per_second"], 1) for r in rollouts],
            "completion_length": [r["completion_length"] for r in rollouts],
            "step_s": round((timed[-1]["elapsed_s"] - timed[0]["elapsed_s"]) / (len(timed) - 1), 3),
            "peak_gib": max(r.get("memory_gib", 0) for r in steps)}, indent=1))


if __name__ == "__main__":
    main()
