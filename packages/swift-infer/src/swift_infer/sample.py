"""`swift sample`: sample many responses per query, score them with reward functions, keep the best.

Run as: swift sample --model M --dataset data.jsonl --num_return_sequences 8 --orm_model contains
        swift sample --model M --dataset data.jsonl --output_file raw.jsonl            (step 1: sample only)
        swift sample --sampler_engine no --cache_files sample_output/raw.jsonl --dataset data.jsonl \
            --orm_model contains --output_file scored.jsonl                           (step 2: score)

Each output line is the query's messages with one sampled answer appended (OpenAI messages, so
`swift sft --dataset out.jsonl` trains on it), `id` (the MD5 of the dataset row: how step 2 finds
step 1's samples, which is why it needs the same --dataset) and the scores. With an ORM, only
responses it judges correct (score > 0) are kept, best first; the worst response that was not kept
is stored as `rejected_response`, so the file also serves DPO.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from swift_args import ArgumentError, Invocation
from swift_args.run_dir import check_writable_dir
from swift_data.datasets.load import DataOptions, load_dataset_rows
from swift_data.preprocess.conversation import Conversation
from swift_data.preprocess.formats import rename_columns, to_conversation
from swift_data.skips import WRONG_TYPES, SkipCounter, SkippedRow
from swift_data.templates.encode import read_system

from swift_infer.rewards import RewardFn, orms, prms

SUPPORTED_ENGINES = ("pt", "no")


@dataclasses.dataclass
class Query:
    id: str  # MD5 of the dataset row as read
    messages: list[dict[str, Any]]  # without the answer
    reference: str | None  # the row's answer, if it has one
    tools: list[dict[str, Any]] | None = None


def check_supported(args: Any) -> None:
    if args.sampler_type != "sample":
        raise ArgumentError(f"--sampler_type {args.sampler_type} is not available yet; supported: sample")
    if args.sampler_engine not in SUPPORTED_ENGINES:
        raise ArgumentError(f"--sampler_engine {args.sampler_engine} is not available yet; supported: pt, "
                            "and no (scores --cache_files from an earlier run)")
    if args.sampler_engine == "pt" and args.model is None:
        raise ArgumentError("--model is required with --sampler_engine pt")
    if not args.dataset:
        raise ArgumentError("--dataset is required: the queries to sample (with --cache_files, the same dataset the "
                            "cache was sampled from; ids are MD5s of its rows)")
    for name in ("num_return_sequences", "num_sampling_per_gpu_batch_size", "n_best_to_keep"):
        if getattr(args, name) < 1:
            raise ArgumentError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.easy_query_threshold is not None and args.orm_model is None:
        raise ArgumentError("--easy_query_threshold needs --orm_model (it counts the ORM-correct share per query)")


def reward_fn(kind: str, name: str | None, registry: dict[str, RewardFn]) -> RewardFn | None:
    if name is None:
        return None
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        by_id = "; loading a process reward model by id is not supported yet" if kind == "prm" else ""
        raise ArgumentError(f"--{kind}_model {name}: no {kind} registered under that name (registered: {known}){by_id}; "
                            f"add one to swift_infer.rewards.{kind}s in a --custom_register_path file")
    return registry[name]


def output_path(args: Any) -> Path:
    """output_dir/output_file, or a timestamp name; an existing file is only replaced when asked."""
    name = args.output_file
    if name is None:
        name = datetime.now().strftime("%Y%m%d-%H%M%S")
        if args.data_range:  # parallel processes over the parts start in the same second
            name += f"-part{args.data_range[0]}of{args.data_range[1]}"
        name += ".jsonl"
    path = Path(args.output_dir) / name
    check_writable_dir(path.parent, "--output_dir")
    if path.exists() and not args.override_exist_file:
        raise ArgumentError(f"{path} exists; pass --override_exist_file true to replace it, or another --output_file")
    return path


def row_id(data: dict[str, Any]) -> str:
    return hashlib.md5(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def partition(rows: list[Any], data_range: list[int]) -> list[Any]:
    """--data_range K N: the K-th (0-based) of N contiguous parts; together the parts cover every row."""
    if not data_range:
        return rows
    index, count = data_range
    return rows[len(rows) * index // count : len(rows) * (index + 1) // count]


def load_queries(args: Any, skips: SkipCounter) -> list[Query]:
    """Every row of --dataset (no validation split is held out), then --data_range's part."""
    options = dataclasses.replace(DataOptions.from_args(args), val_dataset=[], split_dataset_ratio=0.0)
    rows = partition(list(load_dataset_rows(options).train), args.data_range)
    if args.num_sampling_per_gpu_batches is not None:
        rows = rows[: args.num_sampling_per_gpu_batches * args.num_sampling_per_gpu_batch_size]
    system = read_system(args.system)
    queries = []
    for row in rows:
        try:
            if row.error is not None:
                raise row.error
            conversation = to_conversation(rename_columns(row.data, args.columns), row.where, require_response=False)
            if conversation.is_text:
                raise SkippedRow(WRONG_TYPES, "a plain text row has no query to answer")
        except SkippedRow as skipped:
            skips.skip(row.where, skipped)
            continue
        messages, reference = conversation.messages, None
        if messages and messages[-1]["role"] == "assistant":
            messages, reference = messages[:-1], messages[-1]["content"]
        if system and not (messages and messages[0]["role"] == "system"):
            messages = [{"role": "system", "content": system}, *messages]
        queries.append(Query(row_id(row.data), messages, reference, conversation.tools))
    return queries


def read_caches(paths: list[str]) -> dict[str, list[str]]:
    """id -> responses, from earlier `swift sample` outputs."""
    caches: dict[str, list[str]] = {}
    for path in paths:
        if not Path(path).is_file():
            raise ArgumentError(f"--cache_files {path}: no such file")
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                messages = record["messages"]
                if messages[-1]["role"] != "assistant":
                    raise ValueError
                caches.setdefault(record["id"], []).append(messages[-1]["content"])
            except (ValueError, KeyError, TypeError, IndexError):
                raise ArgumentError(f"--cache_files {path}:{number}: not a `swift sample` result "
                                    "(needs id and messages ending with the assistant's answer)") from None
    return caches


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def scores_of(kind: str, name: str, fn: RewardFn, query: Query, responses: list[str]) -> list[float]:
    """Call a reward function and check what it returns (plugins are user code)."""
    raw = list(fn(query.messages, responses, query.reference))
    if len(raw) != len(responses):
        raise ArgumentError(f"--{kind}_model {name} returned {len(raw)} scores for {len(responses)} responses")
    try:  # a PRM may score every step; the weakest step counts
        return [float(min(s)) if isinstance(s, (list, tuple)) else float(s) for s in raw]
    except (TypeError, ValueError):
        raise ArgumentError(f"--{kind}_model {name} must return numbers (or lists of step scores), got {raw[:3]}") from None


def select(query: Query, responses: list[str], orm: RewardFn | None, prm: RewardFn | None, args: Any,
           stats: Counter) -> list[dict[str, Any]]:
    """The records kept for one query: all responses when nothing scores them, else the best correct ones."""
    if orm is None and prm is None:
        return [record(query, r) for r in responses]
    orm_scores = scores_of("orm", args.orm_model, orm, query, responses) if orm else None
    prm_scores = scores_of("prm", args.prm_model, prm, query, responses) if prm else None
    easy = args.easy_query_threshold
    if orm_scores is not None and easy is not None and sum(s > 0 for s in orm_scores) / len(responses) > easy:
        stats["easy"] += 1
        return []

    def key(i: int) -> tuple[float, float]:
        return (prm_scores[i] if prm_scores else 0.0, orm_scores[i] if orm_scores else 0.0)

    keep = [i for i in range(len(responses)) if (orm_scores is None or orm_scores[i] > 0)
            and (prm_scores is None or prm_scores[i] >= args.prm_threshold)]
    keep = sorted(keep, key=key, reverse=True)[: args.n_best_to_keep]  # stable: ties keep sampling order
    if not keep:
        stats["none_kept"] += 1
    worst = min(range(len(responses)), key=lambda i: (orm_scores[i] if orm_scores else 0.0, key(i)[0]))
    rejected = responses[worst] if worst not in keep else None
    scored = []
    for i in keep:
        scores = {"orm_score": orm_scores[i]} if orm_scores else {}
        if prm_scores:
            scores["prm_score"] = prm_scores[i]
        scored.append(record(query, responses[i], rejected=rejected, **scores))
    return scored


def record(query: Query, response: str, rejected: str | None = None, **scores: float) -> dict[str, Any]:
    out: dict[str, Any] = {"id": query.id, "messages": [*query.messages, {"role": "assistant", "content": response}]}
    if query.tools:
        out["tools"] = query.tools
    if rejected is not None:
        out["rejected_response"] = rejected
    return {**out, **scores}


def load_sampler(args: Any) -> Any:
    """The pt engine over --model/--adapters, seeded so a run can be repeated."""
    from transformers import set_seed

    from swift_infer.infer import load_engine

    if args.engine_kwargs:
        print(f"swift: --engine_kwargs {json.dumps(args.engine_kwargs)} is ignored by the pt engine", file=sys.stderr)
    set_seed(args.seed)
    # One generate call holds a batch of queries times num_return_sequences answers; all run together.
    concurrent = args.num_sampling_per_gpu_batch_size * args.num_return_sequences
    return load_engine(SimpleNamespace(**vars(args), infer_backend="pt", max_batch_size=concurrent))


def run_sample(invocation: Invocation) -> int:
    from swift_infer.engines import GenerationSettings

    args = invocation.args
    check_supported(args)
    orm, prm = reward_fn("orm", args.orm_model, orms), reward_fn("prm", args.prm_model, prms)
    path = output_path(args)
    caches = read_caches(args.cache_files)
    skips = SkipCounter(strict=args.strict)
    queries = load_queries(args, skips)
    n = args.num_return_sequences
    if args.sampler_engine == "no":
        missing = [q for q in queries if q.id not in caches]
        if queries and len(missing) == len(queries):
            raise ArgumentError(f"none of the {len(queries)} rows of --dataset is in --cache_files; pass the "
                                "--dataset (and --data_range, --columns) the cache was sampled with")
        queries = [q for q in queries if q.id in caches]
        engine = None
    else:
        missing = []
        engine = load_sampler(args)
    settings = GenerationSettings.from_args(args)
    stats: Counter = Counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(staging, "w", encoding="utf-8") as out:
            for number, batch in enumerate(batches(queries, args.num_sampling_per_gpu_batch_size), 1):
                sampled = {}  # with the pt engine, a query cached with enough answers is not sampled again
                fresh = [q for q in batch if engine is not None and len(caches.get(q.id, [])) < n]
                if fresh:
                    conversations = [Conversation(q.messages, tools=q.tools) for q in fresh for _ in range(n)]
                    responses = engine.generate(conversations, settings)
                    sampled = {q.id: responses[k * n : (k + 1) * n] for k, q in enumerate(fresh)}
                for q in batch:
                    responses = sampled[q.id] if q.id in sampled else caches[q.id][: n if engine else None]
                    stats["responses"] += len(responses)
                    for line in select(q, responses, orm, prm, args, stats):
                        out.write(json.dumps(line, ensure_ascii=False) + "\n")
                        stats["records"] += 1
                print(f"swift: sample: {min(number * args.num_sampling_per_gpu_batch_size, len(queries))}"
                      f"/{len(queries)} queries", file=sys.stderr)
        os.replace(staging, path)  # complete, or not there at all
    finally:
        staging.unlink(missing_ok=True)
    if skips.total:
        skips.print_report()
    notes = [f"dropped as too easy (--easy_query_threshold): {stats['easy']}" if stats["easy"] else "",
             f"queries with no response kept: {stats['none_kept']}" if stats["none_kept"] else "",
             f"rows of --dataset not in --cache_files: {len(missing)}" if missing else ""]
    notes = "; ".join(x for x in notes if x)
    print(f"swift: sample: {stats['records']} records from {stats['responses']} responses to {len(queries)} queries "
          f"in {path}" + (f" ({notes})" if notes else ""))
    return 0
