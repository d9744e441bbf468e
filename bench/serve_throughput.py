"""Serving throughput: `swift deploy`'s app (pt engine, continuous batching) against a naive server
that answers one request at a time with transformers' `generate`.

Run as: python bench/serve_throughput.py --model smollm2                       (CPU: SmolLM2-135M-Instruct)
        python bench/serve_throughput.py --model qwen2.5-7b --tokenizer DIR     (GPU: random weights)

Both sides get the same workload in one process run: CLIENTS concurrent clients over loopback,
each sending its next request as soon as the previous one is answered (a closed loop), REQUESTS
requests in all, greedy, at most NEW tokens each. Reported per side: requests/s, generated tokens/s
and p50/p99 latency (from sending a request to its last token). On a GPU the memory-bandwidth bound
for decoding is printed too: every decode step reads all weights once, so one stream cannot exceed
bandwidth / weight bytes tokens/s, and a batch of B streams B times that (KV-cache reads ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

QUESTIONS = ["What is the capital of France?", "Give me three tips for staying healthy.", "What is 17 times 3?",
             "Describe the water cycle.", "Write a haiku about autumn.", "Who wrote Hamlet?",
             "Explain photosynthesis in one sentence.", "Name the largest planet.", "What is a prime number?",
             "Translate 'good morning' into French."]


def load(model: str, tokenizer_dir: str | None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from swift_data.models import load_tokenizer, resolve_model_dir

    if model == "smollm2":
        directory = resolve_model_dir("SmolLM2-135M-Instruct")
        return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32), load_tokenizer(directory)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    shapes = _shapes(Path(__file__).with_name("train_throughput.py"))
    # The tokenizer is SmolLM2's (the only one here offline), so the vocabulary is its size; the rest is the shape.
    config = Qwen2Config(**{**shapes[model], "vocab_size": 49152}, max_position_embeddings=32768,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    with torch.device("cuda"):
        network = Qwen2ForCausalLM(config).to(torch.bfloat16)
    network.generation_config.eos_token_id = 2
    return network, load_tokenizer(Path(tokenizer_dir))


def _shapes(path: Path) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SHAPES


def summarise(name: str, latencies: list[float], tokens: int, seconds: float) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {"server": name, "requests": len(latencies), "requests_s": round(len(latencies) / seconds, 2),
            "generated_tok_s": round(tokens / seconds, 1), "p50_s": round(statistics.median(latencies), 2),
            "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2), "seconds": round(seconds, 1)}


async def closed_loop(clients: int, requests: int, send: Any) -> tuple[list[float], int, float]:
    """`clients` workers share `requests` requests; each sends its next one when the last returns."""
    pending = list(range(requests))
    latencies, tokens = [], 0

    async def client() -> None:
        nonlocal tokens
        while pending:
            index = pending.pop()
            start = time.perf_counter()
            generated = await send(QUESTIONS[index % len(QUESTIONS)])  # not `tokens += await ...`: that reads
            tokens += generated  # `tokens` before the await and loses the other clients' counts
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, tokens, time.perf_counter() - start


def bench_swift(model: Any, tokenizer: Any, args: argparse.Namespace) -> dict[str, Any]:
    try:
        import httpx2 as httpx  # what this workspace's lock installs
    except ImportError:
        import httpx
    import uvicorn
    from swift_args.schema.serving import DeployArguments
    from swift_data.templates.encode import Encoder, EncoderOptions

    from swift_infer.deploy import ServedModel, build_app
    from swift_infer.engines import PtEngine

    engine = PtEngine(model, tokenizer, Encoder(tokenizer, EncoderOptions()), max_batch_size=args.max_batch_size)
    options = DeployArguments(model="bench", verbose=False, log_interval=-1, max_batch_size=args.max_batch_size)
    app = build_app(engine, options, [ServedModel("bench", None)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)

    async def run() -> tuple[list[float], int, float]:
        limits = httpx.Limits(max_connections=args.clients + 4)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{args.port}/v1", timeout=None, limits=limits) as http:
            async def send(question: str) -> int:
                body = {"model": "bench", "messages": [{"role": "user", "content": question}],
                        "max_tokens": args.new_tokens, "temperature": 0}
                response = await http.post("/chat/completions", json=body)
                response.raise_for_status()
                return response.json()["usage"]["completion_tokens"]

            await send(QUESTIONS[0])  # warm-up
            return await closed_loop(args.clients, args.requests, send)

    result = summarise(f"swift deploy (max_batch_size {args.max_batch_size})", *asyncio.run(run()))
    server.should_exit = True
    return result


def bench_naive(model: Any, tokenizer: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One request at a time, in arrival order: what a plain `generate` loop behind a queue gives."""
    import torch

    lock = threading.Lock()

    def generate(question: str) -> int:
        text = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
        with lock, torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
        generated = out[0, ids.shape[1]:].tolist()
        eos = model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        return next((i for i, t in enumerate(generated) if t in eos), len(generated))

    async def run() -> tuple[list[float], int, float]:
        send = lambda question: asyncio.to_thread(generate, question)  # noqa: E731
        await send(QUESTIONS[0])
        return await closed_loop(args.clients, args.naive_requests or args.requests, send)

    return summarise("naive generate loop (one at a time)", *asyncio.run(run()))


def bandwidth_bound(model: Any, batch: int) -> dict[str, Any]:
    """Measured device-to-device copy bandwidth and the decode ceiling it implies."""
    import torch

    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    block = torch.empty(2 * 1024**3, dtype=torch.uint8, device="cuda")
    target = torch.empty_like(block)
    target.copy_(block)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        target.copy_(block)
    torch.cuda.synchronize()
    bandwidth = 10 * 2 * block.numel() / (time.perf_counter() - start)  # each copy reads and writes
    del block, target
    return {"gpu": torch.cuda.get_device_name(), "weight_gib": round(weight_bytes / 2**30, 2),
            "measured_bandwidth_tb_s": round(bandwidth / 1e12, 2),
            "bound_tok_s_one_stream": round(bandwidth / weight_bytes, 1),
            f"bound_tok_s_batch_{batch}": round(batch * bandwidth / weight_bytes, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="smollm2 (CPU) or a shape of train_throughput.py (GPU)")
    parser.add_argument("--tokenizer", help="tokenizer directory for a random-weight shape")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--naive_requests", type=int, help="fewer requests for the slow side (rates stay comparable)")
    parser.add_argument("--new_tokens", type=int, default=64)
    parser.add_argument("--max_batch_size", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    model, tokenizer = load(args.model, args.tokenizer)
    model.eval()
    results = [bench_swift(model, tokenizer, args), bench_naive(model, tokenizer, args)]
    for result in results:
        print(json.dumps(result), flush=True)
    if model.device.type == "cuda":
        print(json.dumps(bandwidth_bound(model, args.max_batch_size)), flush=True)
    print(f"\n{args.model}: {args.clients} clients, {args.requests} requests, up to {args.new_tokens} new tokens, greedy")
    print("| server | requests/s | generated tok/s | p50 s | p99 s |\n| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['server']} | {r['requests_s']} | {r['generated_tok_s']} | {r['p50_s']} | {r['p99_s']} |")


if __name__ == "__main__":
    main()
