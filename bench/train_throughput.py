"""Training throughput: the same LoRA run through `swift pt` and through plain transformers + peft.

Run as: python bench/train_throughput.py --specs qwen2.5-7b:4096:2 qwen2.5-7b:2048:4 [--baseline PATH]
        python bench/train_throughput.py --specs smollm2:512:4      (CPU: the built-in SmolLM2-135M)

For each spec SHAPE:SEQ:BATCH, one process run measures, side by side:
  baseline  a plain transformers Trainer + peft script on random-token rows of SEQ tokens (by
            default ../shared/bench/gpu_baseline.py's `run`, the reference baseline; on a CPU, the
            same recipe in float32 inlined below)
  swift     `swift pt --train_type lora` on a random-weight model of the same shape saved to disk,
            with text rows truncated to exactly SEQ tokens, LoRA r8 on all linear layers, the same
            batch size, steps, learning rate and gradient checkpointing
Both report tokens/s after warm-up steps and peak memory; a table is printed last.

A spec SHAPE:packed:SEQ:BATCH compares packing on real-length data (GPU only):
  baseline  ../shared/bench/gpu_baseline_padded.py: rows of log-normal lengths (median ~350 tokens,
            long tail to 4096), batches of 8 padded to their longest, all tokens trained
  swift     `swift pt --packing true` on text rows with exactly those token lengths, packed into
            BATCH rows of SEQ tokens per step, each sample attending only to itself
Both report real (non-padding) tokens/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES = {
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True),
}
STEPS, WARM = 12, 3


def save_model(shape: str, directory: Path, tokenizer_dir: Path, dtype: str) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=32768, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(directory)
    del model
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(tokenizer_dir / name, directory / name)


def write_text_rows(path: Path, rows: int, seq: int) -> None:
    rng = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()
    with open(path, "w") as f:
        for _ in range(rows):
            f.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(seq + seq // 2))}) + "\n")


def write_length_rows(path: Path, lengths: list[int], tokenizer_dir: Path) -> None:
    """Text rows that tokenize to exactly the given lengths: words that are one token each."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    candidates = "the of and to in is was for on are with as be at by this had not but from or have an they which one".split()
    words = [w for w in candidates if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1]
    rng = random.Random(0)
    with open(path, "w") as f:
        for length in lengths:
            # pt appends the eos token: one token fewer of text.
            f.write(json.dumps({"text": "".join(" " + rng.choice(words) for _ in range(max(int(length) - 1, 1)))}) + "\n")


def run_swift_packed(model_dir: Path, data: Path, seq: int, batch: int, out: Path) -> dict:
    command = [sys.executable, "-m", "swift_args.cli", "pt", "--model", str(model_dir), "--train_type", "lora",
               "--lora_rank", "8", "--lora_alpha", "32", "--lora_dropout", "0.0", "--dataset", str(data),
               "--max_length", str(seq), "--packing", "true", "--per_device_train_batch_size", str(batch),
               "--max_steps", str(STEPS), "--logging_steps", "1", "--learning_rate", "1e-4", "--save_strategy", "no",
               "--report_to", "none", "--split_dataset_ratio", "0", "--output_dir", str(out), "--add_version", "false",
               "--disable_tqdm", "true", "--dataloader_num_workers", "2", "--gradient_checkpointing", "true",
               *os.environ.get("SWIFT_BENCH_EXTRA", "").split()]
    ran = run_logged(command, out)
    if isinstance(ran, dict):
        return ran
    steps, log = ran
    timed = [(steps[s]["elapsed_s"] - steps[s - 1]["elapsed_s"], steps[s]["tokens_per_s"]) for s in range(WARM + 1, STEPS + 1)]
    seconds = sum(t for t, _ in timed)
    tokens = sum(t * rate for t, rate in timed)
    return {"real_tok_s": round(tokens / seconds), "peak_gib": max(r.get("memory_gib", 0) for r in log),
            "step_s": round(seconds / len(timed), 3)}


def run_logged(command: list[str], out: Path) -> tuple[dict, list] | dict:
    """Run one `swift` command; (its per-step records by global_step, the whole log), or {"error": stderr tail}."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr[-1500:]}
    log = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    return {r["global_step"]: r for r in log if "loss" in r}, log


def run_swift(model_dir: Path, data: Path, seq: int, batch: int, out: Path, gpu: bool) -> dict:
    command = [sys.executable, "-m", "swift_args.cli", "pt", "--model", str(model_dir), "--train_type", "lora",
               "--lora_rank", "8", "--lora_alpha", "32", "--dataset", str(data), "--max_length", str(seq),
               "--truncation_strategy", "right", "--per_device_train_batch_size", str(batch), "--max_steps", str(STEPS),
               "--logging_steps", "1", "--learning_rate", "1e-4", "--save_strategy", "no", "--report_to", "none",
               "--split_dataset_ratio", "0", "--output_dir", str(out), "--add_version", "false", "--disable_tqdm", "true",
               "--dataloader_num_workers", "2", "--gradient_checkpointing", "true",
               *os.environ.get("SWIFT_BENCH_EXTRA", "").split()]
    if not gpu:
        command += ["--torch_dtype", "float32"]
    ran = run_logged(command, out)
    if isinstance(ran, dict):
        return ran
    steps, log = ran
    seconds = steps[STEPS]["elapsed_s"] - steps[WARM]["elapsed_s"]
    memory = max((r.get("memory_gib", 0) for r in log), default=0) if gpu else _rss_gib(resource.RUSAGE_CHILDREN)
    return {"tok_s": round((STEPS - WARM) * batch * seq / seconds), "peak_gib": memory, "step_s": round(seconds / (STEPS - WARM), 3)}


def run_cpu_baseline(model_dir: Path, seq: int, batch: int) -> dict:
    """transformers Trainer + peft, as a user would write it, on the CPU (float32)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: dict[int, float] = {}

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.times[state.global_step] = time.perf_counter()

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return batch * STEPS

        def __getitem__(self, i: int) -> dict:
            ids = torch.randint(0, 49152, (seq,), generator=torch.Generator().manual_seed(i))
            return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))
    timer = Timer()
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, max_steps=STEPS,
                             gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False},
                             learning_rate=1e-4, save_strategy="no", report_to=[], disable_tqdm=True, logging_steps=1000)
    Trainer(model=model, args=args, train_dataset=Rows(), callbacks=[timer]).train()
    seconds = timer.times[STEPS] - timer.times[WARM]
    return {"tok_s": round((STEPS - WARM) * batch * seq / seconds), "peak_gib": _rss_gib(resource.RUSAGE_SELF),
            "step_s": round(seconds / (STEPS - WARM), 3)}


def _rss_gib(who: int) -> float:
    """Peak resident memory (CPU runs): this process for the baseline, the `swift` child for ours."""
    return round(resource.getrusage(who).ru_maxrss / 2**20, 2)


def load_baseline(path: str | None):  # noqa: ANN201
    candidates = [path] if path else [str(Path(__file__).resolve().parents[2] / "shared" / "bench" / "gpu_baseline.py")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            spec = importlib.util.spec_from_file_location("gpu_baseline", candidate)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


def run_packed(spec: str, tmp: Path, options: argparse.Namespace, baseline) -> tuple:  # noqa: ANN001
    """Packing vs the reference's padded batches on the same long-tailed lengths."""
    shape, _, seq, batch = spec.split(":")
    seq, batch = int(seq), int(batch)
    padded = load_baseline(str(Path(baseline.__file__).with_name("gpu_baseline_padded.py")))
    import contextlib
    import io

    model_dir = tmp / shape
    if not model_dir.exists():
        save_model(shape, model_dir, Path(options.tokenizer), "bfloat16")
    data = tmp / "lengths.jsonl"
    write_length_rows(data, list(padded.lengths(20000)), Path(options.tokenizer))
    ours = run_swift_packed(model_dir, data, seq, batch, tmp / f"out-{spec.replace(':', '-')}")
    # The reference script keeps its model on the GPU when done: it runs after ours, not before.
    printed = io.StringIO()
    if not options.skip_baseline:
        with contextlib.redirect_stdout(printed):  # the reference script prints its result as one JSON line
            padded.run(shape, 8)
    base = json.loads(printed.getvalue().strip().splitlines()[-1]) if printed.getvalue().strip() else {}
    print(json.dumps({"spec": spec, "baseline": base, "swift": ours}), flush=True)
    return spec, base, ours


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", nargs="+", default=["tiny:512:4"])
    parser.add_argument("--baseline", help="path of the reference gpu_baseline.py (GPU runs)")
    parser.add_argument("--skip_baseline", action="store_true", help="only swift (a variant of a run already compared)")
    parser.add_argument("--tokenizer", required=True, help="a directory with tokenizer.json etc. (SmolLM2's)")
    options = parser.parse_args()

    import torch

    gpu = torch.cuda.is_available()
    baseline = load_baseline(options.baseline) if gpu else None
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for spec in options.specs:
            if ":packed:" in spec:
                rows.append(run_packed(spec, Path(tmp), options, baseline))
                continue
            shape, seq, batch = spec.split(":")
            seq, batch = int(seq), int(batch)
            model_dir = Path(tmp) / shape
            if shape == "smollm2":  # the real built-in model (CPU runs)
                from swift_data.models import resolve_model_dir

                model_dir = resolve_model_dir("SmolLM2-135M-Instruct")
            elif not model_dir.exists():
                save_model(shape, model_dir, Path(options.tokenizer), "bfloat16" if gpu else "float32")
            data = Path(tmp) / f"text-{seq}.jsonl"
            write_text_rows(data, batch * STEPS * 2, seq)
            if options.skip_baseline:
                base = {}
            elif gpu and baseline is not None:
                base = baseline.run(shape, "lora", seq, batch, steps=STEPS, warm=WARM)
                base = {k: base[k] for k in ("tok_s", "peak_gib", "step_s")}
            else:
                base = run_cpu_baseline(model_dir, seq, batch)
            ours = run_swift(model_dir, data, seq, batch, Path(tmp) / f"out-{spec.replace(':', '-')}", gpu)
            rows.append((spec, base, ours))
            print(json.dumps({"spec": spec, "baseline": base, "swift": ours}), flush=True)
    print("(packed specs: real tokens/s, the baseline padded per batch of 8)")
    print(f"{'spec':<24} {'baseline tok/s':>14} {'swift tok/s':>12} {'ratio':>6} {'baseline GiB':>12} {'swift GiB':>10}")
    for spec, base, ours in rows:
        if "real_tok_s" in ours:
            ours = {**ours, "tok_s": ours["real_tok_s"]}
        if "real_tok_s" in base:
            base = {**base, "tok_s": base["real_tok_s"]}
        ratio = f"{ours['tok_s'] / base['tok_s']:.2f}" if "tok_s" in ours and base.get("tok_s") else "-"
        print(f"{spec:<24} {base.get('tok_s', '-'):>14} {ours.get('tok_s', 'error'):>12} {ratio:>6} "
              f"{str(base.get('peak_gib', '-')):>12} {str(ours.get('peak_gib', '-')):>10}")


if __name__ == "__main__":
    main()
