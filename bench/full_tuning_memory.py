"""Full training three ways, side by side: plain AdamW, GaLore, and LISA (memory and tokens/s).

Run as: python bench/full_tuning_memory.py --shape qwen2.5-0.5b --seq 1024 --batch 4 --tokenizer <dir>

All three are `swift pt --train_type full` on the same random-weight model of SHAPE (saved once), the
same text rows truncated to exactly SEQ tokens, the same batch, steps (12, 3 warm-up), learning rate
and gradient checkpointing, one after another in this one process run:
  full    plain full training (AdamW: two float32 moments for every weight)
  galore  --use_galore true (rank 128, attention and MLP projected; transformers' galore_adamw)
  lisa    --lisa_activated_layers 2 --lisa_step_interval 4 (2 random decoder layers train at a time)
Tokens/s are over the 9 steps after warm-up; memory is the run's peak `torch.cuda.max_memory_allocated`
(logging.jsonl's memory_gib).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import STEPS, WARM, run_logged, save_model, write_text_rows  # noqa: E402

VARIANTS = {
    "full": [],
    "galore": ["--use_galore", "true", "--galore_rank", "128"],
    "lisa": ["--lisa_activated_layers", "2", "--lisa_step_interval", "4"],
}


def run(model_dir: Path, data: Path, seq: int, batch: int, out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "swift_args.cli", "pt", "--model", str(model_dir), "--train_type", "full",
               "--dataset", str(data), "--max_length", str(seq), "--truncation_strategy", "right",
               "--per_device_train_batch_size", str(batch), "--max_steps", str(STEPS), "--logging_steps", "1",
               "--learning_rate", "1e-5", "--save_strategy", "no", "--report_to", "none", "--split_dataset_ratio", "0",
               "--output_dir", str(out), "--add_version", "false", "--disable_tqdm", "true",
               "--dataloader_num_workers", "2", "--gradient_checkpointing", "true", *extra]
    ran = run_logged(command, out)
    if isinstance(ran, dict):
        return ran
    steps, log = ran
    seconds = steps[STEPS]["elapsed_s"] - steps[WARM]["elapsed_s"]
    return {"tok_s": round((STEPS - WARM) * batch * seq / seconds), "peak_gib": max(r.get("memory_gib", 0) for r in log),
            "loss_first": steps[1]["loss"], "loss_last": steps[STEPS]["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="qwen2.5-0.5b")
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokenizer", required=True, help="a directory with tokenizer.json etc. (SmolLM2's)")
    options = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        model_dir = Path(tmp) / options.shape
        save_model(options.shape, model_dir, Path(options.tokenizer), "bfloat16")
        data = Path(tmp) / "text.jsonl"
        write_text_rows(data, options.batch * STEPS * 2, options.seq)
        for name, extra in VARIANTS.items():
            rows[name] = run(model_dir, data, options.seq, options.batch, Path(tmp) / name, extra)
            print(json.dumps({"variant": name, **rows[name]}), flush=True)
    full = rows["full"]
    print(f"{options.shape} full training, seq {options.seq}, batch {options.batch}")
    print(f"{'variant':<8} {'tok/s':>8} {'vs full':>8} {'peak GiB':>9} {'vs full':>8}")
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:<8} error: {row['error'].splitlines()[-1] if row['error'] else ''}")
            continue
        speed = f"{row['tok_s'] / full['tok_s']:.2f}" if "tok_s" in full else "-"
        memory = f"{row['peak_gib'] / full['peak_gib']:.2f}" if full.get("peak_gib") else "-"
        print(f"{name:<8} {row['tok_s']:>8} {speed:>8} {row['peak_gib']:>9} {memory:>8}")


if __name__ == "__main__":
    main()
