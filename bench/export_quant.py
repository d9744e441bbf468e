"""`swift export --quant_method gptq|awq`: time, output size, and what quantization costs in quality.

    python bench/export_quant.py --tokenizer DIR [--model DIR | --shape llama-7b] --methods gptq awq

For each method the script runs the real command (`swift export --model M --quant_method METHOD
--quant_bits 4 --dataset calib.jsonl`), then compares the quantized model with the one it came from
on rows held back from calibration: the mean token loss of each, and the mean KL divergence of the
quantized model's next-token distribution from the original's (which is meaningful for random
weights too). Calibration and held-back rows are the built-in general-instructions (303 rows): all but
the last 47 calibrate, the last 47 are held back. Prints one JSON line per method and a table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

HELD_BACK = 47
SHAPES = {  # Llama-2-7B's layer shapes, with the tokenizer's vocabulary
    "llama-7b": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "num_key_value_heads": 32},
}


def build_random_model(shape: str, tokenizer_dir: Path, out: Path) -> Path:
    """A random-weight bf16 Llama of `shape` with the given tokenizer (no hub needed)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (out / "config.json").is_file():
        return out
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(**SHAPES[shape], vocab_size=len(tokenizer), max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False, dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return out


def split_rows(work: Path) -> tuple[Path, list[dict]]:
    from importlib.resources import files

    rows = [json.loads(line) for line in
            files("swift_data.datasets").joinpath("builtin/general_instructions.jsonl").read_text().splitlines()]
    calib = work / "calib.jsonl"
    calib.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:-HELD_BACK]))
    return calib, rows[-HELD_BACK:]


def run_export(model: Path, method: str, calib: Path, n_samples: int, group_size: int, output: Path) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    argv = [sys.executable, "-m", "swift_args.cli", "export", "--model", str(model), "--quant_method", method,
            "--quant_bits", "4", "--dataset", str(calib), "--quant_n_samples", str(n_samples),
            "--max_length", "2048", "--truncation_strategy", "right", "--group_size", str(group_size),
            "--output_dir", str(output)]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr[-4000:]}")
    size = sum(f.stat().st_size for f in output.glob("*.safetensors"))
    return {"method": method, "export_s": round(seconds, 1), "size_gib": round(size / 2**30, 3)}


def held_back_ids(model_dir: Path, rows: list[dict]) -> list[torch.Tensor]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = [tokenizer.apply_chat_template(_messages(r), tokenize=False) for r in rows]
    return [tokenizer(t, return_tensors="pt").input_ids[:, :2048] for t in texts]


def _messages(row: dict) -> list[dict]:
    """An alpaca row (instruction, input, output) as a conversation."""
    prompt = row["instruction"] + (f"\n{row['input']}" if row.get("input") else "")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]


@torch.no_grad()
def compare(reference: torch.nn.Module, quantized: torch.nn.Module, batches: list[torch.Tensor], device: str) -> dict:
    """Mean token loss of both models and mean KL(reference || quantized) per predicted token."""
    totals = {"loss_ref": 0.0, "loss_quant": 0.0, "kl": 0.0}
    tokens = 0
    for ids in batches:
        ids = ids.to(device)
        ref = torch.log_softmax(reference(ids).logits[0, :-1].float(), -1)
        quant = torch.log_softmax(quantized(ids).logits[0, :-1].float(), -1)
        target = ids[0, 1:]
        totals["loss_ref"] -= ref.gather(-1, target[:, None]).sum().item()
        totals["loss_quant"] -= quant.gather(-1, target[:, None]).sum().item()
        totals["kl"] += torch.nn.functional.kl_div(quant, ref, log_target=True, reduction="sum").item()
        tokens += target.numel()
    return {name: round(value / tokens, 5) for name, value in totals.items()} | {"held_back_tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="a real model directory (bf16); else --shape")
    parser.add_argument("--shape", default="llama-7b", choices=sorted(SHAPES))
    parser.add_argument("--methods", nargs="+", default=["gptq", "awq"])
    parser.add_argument("--n_samples", type=int, default=256)
    parser.add_argument("--group_size", type=int, default=128)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", type=Path, default=Path("/tmp/export-bench"))
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM

    args.work.mkdir(parents=True, exist_ok=True)
    model = args.model or build_random_model(args.shape, args.tokenizer, args.work / args.shape)
    calib, held_back = split_rows(args.work)
    batches = held_back_ids(model, held_back)
    base_size = sum(f.stat().st_size for f in model.glob("*.safetensors")) / 2**30
    results = []
    for method in args.methods:
        result = run_export(model, method, calib, args.n_samples, args.group_size, args.work / f"out-{method}")
        reference = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16, device_map=args.device).eval()
        quantized = AutoModelForCausalLM.from_pretrained(args.work / f"out-{method}", device_map=args.device).eval()
        result |= compare(reference, quantized, batches, args.device) | {"model": str(args.model or args.shape),
                                                           "bf16_size_gib": round(base_size, 3),
                                                           "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}
        del reference, quantized
        torch.cuda.empty_cache()
        print(json.dumps(result), flush=True)
        results.append(result)
    print("| model | method | export s | size GiB (bf16) | loss bf16 | loss 4-bit | KL per token |")
    for r in results:
        print(f"| {r['model']} | {r['method']} | {r['export_s']} | {r['size_gib']} ({r['bf16_size_gib']}) | "
              f"{r['loss_ref']} | {r['loss_quant']} | {r['kl']} |")


if __name__ == "__main__":
    main()
