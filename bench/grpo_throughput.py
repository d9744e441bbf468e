"""GRPO rollouts and steps: `swift rlhf --rlhf_type grpo` against TRL's `GRPOTrainer` (non-vLLM), side by side.

Run as: python bench/grpo_throughput.py --shape qwen2.5-0.5b --tokenizer <dir with SmolLM2's tokenizer files>
        python bench/grpo_throughput.py --shape tiny --tokenizer <dir> --steps 3 --completion 16   (CPU smoke run)

Both sides train the same random-weight model (a real model's shape, saved in bf16) with LoRA r8 / alpha 32 /
dropout 0.05 on all linear layers, gradient checkpointing, beta 0.04, temperature 0.9, top_k 50, top_p 0.9,
the same prompts (the built-in arithmetic questions, rendered by the same chat template), the same number of
completions per step and the same rule reward (distinct words per completion). A random model almost never
writes its end-of-sequence token, so both sides sample --completion tokens for every completion.
  baseline  TRL's GRPOTrainer with its default transformers `generate` (use_vllm False, loss_type grpo)
  swift     swift rlhf --rlhf_type grpo at its defaults (on CUDA, rollouts through swift-infer's static-batch
            engine with CUDA-graph decode steps)
Reported, over the steps after the first two: rollout tokens per second (completion tokens / time spent
sampling), seconds per step, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import save_model  # noqa: E402

WARM = 2
REWARD = '''
from swift_train.rewards import reward_funcs

def distinct_words(completions, **kwargs):
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [len(set(t.split())) / 50 for t in texts]

reward_funcs["distinct_words"] = distinct_words
'''


def distinct_words(completions: list, **kwargs: object) -> list[float]:
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [len(set(t.split())) / 50 for t in texts]


def write_prompts(path: Path, rows: int) -> None:
    from swift_data.datasets.builtin import BUILTIN_DATASETS

    lines = BUILTIN_DATASETS["arithmetic"].path().read_text().splitlines()[:rows]
    path.write_text("\n".join(lines) + "\n")


def run_swift(model_dir: Path, data: Path, args: argparse.Namespace, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    plugin = out.parent / "reward.py"
    plugin.write_text(REWARD)
    command = [sys.executable, "-m", "swift_args.cli", "rlhf", "--rlhf_type", "grpo", "--model", str(model_dir),
               "--dataset", str(data), "--external_plugins", str(plugin), "--reward_funcs", "distinct_words",
               "--num_generations", str(args.generations), "--per_device_train_batch_size", str(args.batch),
               "--max_completion_length", str(args.completion), "--max_steps", str(args.steps), "--logging_steps", "1",
               "--save_strategy", "no", "--split_dataset_ratio", "0",
               "--output_dir", str(out), "--add_version", "false"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"swift failed:\n{result.stderr[-4000:]}")
    records = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r and "global_step" in r]
    timed = steps[WARM:]
    tokens = sum(r["completion_length"] * args.batch for r in timed)
    rollout_seconds = sum(r["completion_length"] * args.batch / r["rollout_tokens_per_second"] for r in timed)
    step_seconds = (timed[-1]["elapsed_s"] - steps[WARM - 1]["elapsed_s"]) / len(timed)
    return {"rollout_tokens_per_s": tokens / rollout_seconds, "step_s": step_seconds,
            "completion_length": sum(r["completion_length"] for r in timed) / len(timed),
            "peak_gib": max((r.get("memory_gib", 0) for r in steps), default=None)}


def run_trl(model_dir: Path, data: Path, args: argparse.Namespace, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rows = [json.loads(line) for line in data.read_text().splitlines()]
    dataset = Dataset.from_list([{"prompt": r["messages"]} for r in rows])
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    timings: list[tuple[float, int]] = []
    steps: list[float] = []

    class Timed(GRPOTrainer):
        def _generate_single_turn(self, *a, **k):  # noqa: ANN002, ANN003, ANN202
            sync()
            start = time.perf_counter()
            completion_ids, logprobs = super()._generate_single_turn(*a, **k)
            sync()
            timings.append((time.perf_counter() - start, sum(len(c) for c in completion_ids)))
            return completion_ids, logprobs

    class StepClock(TrainerCallback):
        def on_step_end(self, *a, **k):  # noqa: ANN002, ANN003, ANN202
            sync()
            steps.append(time.perf_counter())

    config = GRPOConfig(output_dir=str(out), per_device_train_batch_size=args.batch, num_generations=args.generations,
                        max_completion_length=args.completion, max_steps=args.steps, temperature=0.9, top_k=50,
                        top_p=0.9, beta=0.04, loss_type="grpo", learning_rate=1e-4, gradient_checkpointing=True,
                        bf16=torch.cuda.is_available(), logging_steps=1, save_strategy="no", report_to="none", use_vllm=False)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    peft = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = Timed(model=model, reward_funcs=distinct_words, args=config, train_dataset=dataset,
                    processing_class=tokenizer, peft_config=peft, callbacks=[StepClock()])
    trainer.train()
    timed = timings[WARM:]
    return {"rollout_tokens_per_s": sum(t for _, t in timed) / sum(s for s, _ in timed),
            "step_s": (steps[-1] - steps[WARM - 1]) / (len(steps) - WARM),
            "completion_length": sum(t for _, t in timed) / len(timed) / args.batch,
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="qwen2.5-0.5b")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=64, help="completions per step")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--completion", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--skip_baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = root / "model"
        save_model(args.shape, model_dir, args.tokenizer, "bfloat16")
        data = root / "prompts.jsonl"
        write_prompts(data, 2000)
        results = {"swift": run_swift(model_dir, data, args, root / "swift")}
        print(json.dumps({"swift": results["swift"]}), flush=True)
        if not args.skip_baseline:
            results["trl"] = run_trl(model_dir, data, args, root / "trl")
            results["rollout_speedup"] = results["swift"]["rollout_tokens_per_s"] / results["trl"]["rollout_tokens_per_s"]
            results["step_speedup"] = results["trl"]["step_s"] / results["swift"]["step_s"]
        print(json.dumps({"shape": args.shape, "batch": args.batch, "generations": args.generations,
                          "completion": args.completion, "steps": args.steps, **results}, indent=1))


if __name__ == "__main__":
    main()
