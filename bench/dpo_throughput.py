"""DPO throughput: `swift rlhf --rlhf_type dpo` against plain TRL `DPOTrainer` + peft, side by side in one run.

Run as: python bench/dpo_throughput.py --shape qwen2.5-7b --batch 2 --tokenizer <dir with SmolLM2's tokenizer files>
        python bench/dpo_throughput.py --shape tiny --batch 2 --tokenizer <dir> --steps 6   (CPU smoke run)

Both sides train the same random-weight model (a real model's shape, saved to disk in bf16) with LoRA r8 /
alpha 32 / dropout 0.05 on all linear layers, gradient checkpointing, lr 1e-4, the same number of pairs
per step, on the same preference rows rendered by the same chat template:
  baseline  TRL's DPOTrainer (loss_type sigmoid + sft, weights 1 and 1: the DPO loss plus the chosen answers'
            NLL, which is what swift's default rpo_alpha 1 adds), dropout left on, nothing precomputed
  swift     `swift rlhf --rlhf_type dpo` at its defaults (the same beta 0.1 and rpo_alpha 1)
The rows are conversations of single-token words with long-tailed prompt and answer lengths (prompt median
~300 tokens, answers median ~200, chosen and rejected of different lengths), so padding matters as it does on
real preference data. Reported: real (non-padding) tokens of policy forward passes per second after warm-up
(each pair counts its prompt twice, once with each answer), and peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import save_model  # noqa: E402

WARM = 3


def word_pool(tokenizer_dir: Path) -> list[str]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    candidates = ("the of and to in is was for on are with as be at by this had not but from or have an they which "
                  "one you were all we her she there been his when their said each time will way about many then "
                  "them would like so these long make thing see him two has look more day could go come did my no "
                  "most who over know than call first may down side now find any new work part take get place made "
                  "live where after back little only round man year came show every good me give our under name very "
                  "through just form much great think say help low line before turn cause same mean differ move right "
                  "boy old too does tell sentence set three want air well also play small end put home read hand port").split()
    return [w for w in candidates if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1]


def write_pairs(path: Path, rows: int, tokenizer_dir: Path, max_tokens: int) -> None:
    words = word_pool(tokenizer_dir)
    rng = random.Random(0)

    def text(median: int) -> str:
        n = min(max(int(rng.lognormvariate(0, 0.6) * median), 8), max_tokens)
        return "".join(" " + rng.choice(words) for _ in range(n)).strip()

    with open(path, "w") as f:
        for _ in range(rows):
            f.write(json.dumps({"prompt": text(300), "chosen": text(200), "rejected": text(200)}) + "\n")


def run_swift(model_dir: Path, data: Path, batch: int, steps: int, out: Path) -> dict:
    command = [sys.executable, "-m", "swift_args.cli", "rlhf", "--rlhf_type", "dpo", "--model", str(model_dir),
               "--dataset", str(data), "--train_type", "lora", "--lora_rank", "8", "--lora_alpha", "32",
               "--lora_dropout", "0.05", "--per_device_train_batch_size", str(batch), "--max_steps", str(steps),
               "--logging_steps", "1", "--learning_rate", "1e-4", "--save_strategy", "no", "--report_to", "none",
               "--split_dataset_ratio", "0", "--output_dir", str(out), "--add_version", "false", "--disable_tqdm",
               "true", "--dataloader_num_workers", "2", "--gradient_checkpointing", "true", "--max_length", "8192",
               *os.environ.get("SWIFT_BENCH_EXTRA", "").split()]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr[-1500:]}
    log = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    by_step = {r["global_step"]: r for r in log if "loss" in r}
    timed = [(by_step[s]["elapsed_s"] - by_step[s - 1]["elapsed_s"], by_step[s]["tokens_per_s"])
             for s in range(WARM + 1, steps + 1)]
    seconds = sum(t for t, _ in timed)
    tokens = sum(t * rate for t, rate in timed)
    return {"tok_s": round(tokens / seconds), "step_s": round(seconds / len(timed), 3),
            "peak_gib": max(r.get("memory_gib", 0) for r in log), "loss_first": by_step[1]["loss"],
            "loss_last": by_step[steps]["loss"]}


def run_trl(model_dir: Path, data: Path, batch: int, steps: int) -> dict:
    """TRL as its documentation shows it: DPOConfig + DPOTrainer with a peft LoraConfig, conversational rows."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    gpu = torch.cuda.is_available()
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                                  "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                  "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if gpu else torch.float32,
                                                 device_map="cuda" if gpu else None)

    class Counting(DPOTrainer):
        tokens = 0

        def training_step(self, model, inputs, num_items_in_batch=None):  # noqa: ANN001
            self.tokens += int(inputs["attention_mask"].sum())
            return super().training_step(model, inputs, num_items_in_batch)

    marks: dict[int, tuple[float, int]] = {}

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if gpu:
                torch.cuda.synchronize()
            marks[state.global_step] = (time.perf_counter(), trainer.tokens)

    config = DPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, max_steps=steps,
                       learning_rate=1e-4, bf16=gpu, gradient_checkpointing=True,
                       gradient_checkpointing_kwargs={"use_reentrant": False}, logging_steps=1000, save_strategy="no",
                       report_to=[], disable_tqdm=True, dataloader_num_workers=2, max_length=8192, beta=0.1,
                       loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0], disable_dropout=False)
    lora = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer = Counting(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=lora,
                       callbacks=[Timer()])
    trainer.train()
    (t0, n0), (t1, n1) = marks[WARM], marks[steps]
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if gpu else None
    return {"tok_s": round((n1 - n0) / (t1 - t0)), "step_s": round((t1 - t0) / (steps - WARM), 3), "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="qwen2.5-7b")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--tokenizer", required=True, help="a directory with tokenizer.json, tokenizer_config.json and "
                        "chat_template.jinja (SmolLM2's)")
    parser.add_argument("--skip_baseline", action="store_true")
    options = parser.parse_args()
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="dpo-bench-"))
    model_dir = tmp / options.shape
    save_model(options.shape, model_dir, Path(options.tokenizer), "bfloat16" if torch.cuda.is_available() else "float32")
    data = tmp / "pairs.jsonl"
    write_pairs(data, options.batch * (options.steps + 2), Path(options.tokenizer), max_tokens=1500)
    results = {"swift": run_swift(model_dir, data, options.batch, options.steps, tmp / "swift-out")}
    print(json.dumps({"swift": results["swift"]}), flush=True)
    if not options.skip_baseline:  # after ours: the baseline keeps its model on the GPU until the process ends
        results["trl"] = run_trl(model_dir, data, options.batch, options.steps)
        print(json.dumps({"trl": results["trl"]}), flush=True)
    print("\n| shape | pairs/step | trl tok/s | swift tok/s | ratio | trl GiB | swift GiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    trl, ours = results.get("trl", {}), results["swift"]
    ratio = f"{ours['tok_s'] / trl['tok_s']:.2f}x" if "tok_s" in trl and "tok_s" in ours else "-"
    print(f"| {options.shape} | {options.batch} | {trl.get('tok_s', '-')} | {ours.get('tok_s', '-')} | {ratio} | "
          f"{trl.get('peak_gib', '-')} | {ours.get('peak_gib', '-')} |")


if __name__ == "__main__":
    main()
