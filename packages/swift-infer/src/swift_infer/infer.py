"""`swift infer`: chat with a model in the terminal, or run it over a dataset into a jsonl file.

Run as: swift infer --adapters output/<model>/vN-.../checkpoint-N     (interactive)
        swift infer --model M --val_dataset data.jsonl --result_path out.jsonl --metric rouge
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, Invocation
from swift_args.adapters import adapter_path, split_adapter
from swift_args.run_dir import check_writable_dir
from swift_data.datasets.load import DataOptions, load_dataset_rows
from swift_data.preprocess.conversation import Conversation
from swift_data.preprocess.formats import rename_columns, to_conversation
from swift_data.skips import SkipCounter, SkippedRow
from swift_data.templates.encode import Encoder, EncoderOptions

from swift_infer.distributed import (
    merge_parts,
    part_path,
    rank_and_world,
    relaunch_under_torchrun,
    wait_for_all,
)
from swift_infer.engines import GenerationSettings, PtEngine

HELP = "commands: /clear forgets the conversation, /system TEXT sets the system prompt (/system alone resets it), /quit"


def load_engine(args: Any, serve: bool = False) -> PtEngine:
    """The model with its adapters behind the pt engine.

    `swift infer` answers with the first adapter. A server (`serve`) answers its default model with
    the unnamed adapters only; each `name=path` adapter is a model of its own.
    """
    from swift_infer.engines.batcher import BASE_MODEL, mixes_adapters
    from swift_infer.loading import load_model

    pairs = adapter_names(args.adapters)
    if args.infer_backend != "pt":
        if serve:
            raise ArgumentError(f"swift deploy serves with the pt engine in this release; drop --infer_backend {args.infer_backend}")
        return load_other_engine(args, pairs)
    loaded = load_model(args)
    model = load_adapters(loaded.model, pairs)
    default = pairs[0][0] if pairs else None
    if pairs and not mixes_adapters(model) and (len(pairs) > 1 or (serve and pairs[0][2])):
        # Requests choose an adapter per row (or the base model); peft does that for LoRA only. One
        # unnamed adapter of another kind is simply the served model.
        raise ArgumentError("--adapters: AdaLoRA, VeRA, BOFT, FourierFT, adapter and ReFT tuners cannot be chosen "
                            "per request beside the base model or other adapters; pass one unnamed --adapters, or "
                            "(peft tuners) add --merge_lora true to serve the merged model")
    if serve and pairs and mixes_adapters(model):
        default = next((name for name, _, named in pairs if not named), BASE_MODEL)
    return PtEngine(model, loaded.tokenizer, Encoder(loaded.tokenizer, EncoderOptions.from_args(args)),
                    max_batch_size=args.max_batch_size, default_adapter=default)


def load_other_engine(args: Any, pairs: list[tuple[str, str, bool]]) -> Any:
    """vLLM or LMDeploy: they load the weights themselves; we bring the tokenizer and the template."""
    from swift_data.models import load_tokenizer, model_for_args

    from swift_infer.engines.lmdeploy import LmdeployEngine, import_lmdeploy
    from swift_infer.engines.vllm import VllmEngine, import_vllm
    from swift_infer.loading import choose_dtype

    (import_vllm if args.infer_backend == "vllm" else import_lmdeploy)()  # the one-line error before any work
    from swift_infer import own_tuners

    for _, path, _ in pairs:
        if own_tuners.is_own_tuner(path):
            raise ArgumentError(f"--adapters {path}: {args.infer_backend} loads LoRA adapters only, and this is a "
                                f"{own_tuners.kind_of(path)} tuner; use --infer_backend pt")
    model_dir, info = model_for_args(args)
    tokenizer = load_tokenizer(model_dir)
    encoder = Encoder(tokenizer, EncoderOptions.from_args(args))
    if args.infer_backend == "lmdeploy":
        return LmdeployEngine.load(args, tokenizer, encoder, str(model_dir))
    dtype = str(choose_dtype(args.torch_dtype, info, "cuda")).replace("torch.", "")
    return VllmEngine.load(args, tokenizer, encoder, str(model_dir), dtype, pairs)


def adapter_names(adapters: list[str]) -> list[tuple[str, str, bool]]:
    """(name, path, named) per `name=path` or bare path (named adapter_<i>), in command-line order."""
    pairs = []
    for index, adapter in enumerate(adapters):
        name, path = split_adapter(adapter)
        pairs.append((name or f"adapter_{index}", path, name is not None))
    return pairs


def load_adapters(model: Any, pairs: list[tuple[str, str, bool]]) -> Any:
    """Attach every adapter to one PeftModel; requests pick theirs by name."""
    from swift_infer.loading import attach_adapter

    for name, path, _ in pairs:
        model = attach_adapter(model, path, adapter_name=name)
    return model


def default_result_path(args: Any) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    anchor = adapter_path(args.adapters[0]) if args.adapters else args.model
    if anchor and Path(anchor).is_dir() and ((Path(anchor) / "args.json").is_file() or (Path(anchor).parent / "args.json").is_file()):
        return Path(anchor) / "infer_result" / f"{stamp}.jsonl"
    return Path("result") / f"{stamp}.jsonl"


def dataset_rows(args: Any) -> list[Any]:
    """--val_dataset, or with load_data_args the training run's own validation split."""
    if args.val_dataset:
        options = DataOptions.from_args(args)
        options = DataOptions(**{**options.__dict__, "dataset": [], "val_dataset": args.val_dataset})
        return load_dataset_rows(options).val
    return load_dataset_rows(DataOptions.from_args(args)).val


def split_label(conversation: Conversation) -> tuple[Conversation, str | None]:
    messages = conversation.messages
    if messages and messages[-1]["role"] == "assistant":
        return Conversation(messages[:-1], tools=conversation.tools), messages[-1]["content"]
    return conversation, None


def run_dataset(engine: PtEngine, args: Any, rows: list[Any]) -> int:
    if args.val_dataset_sample is not None:
        rows = rows[: args.val_dataset_sample]
    path = Path(args.result_path)  # run_infer fixed it, so every process writes to the same place
    path.parent.mkdir(parents=True, exist_ok=True)
    done = sum(1 for _ in open(path, encoding="utf-8")) if path.is_file() else 0  # continue an interrupted run
    skips = SkipCounter(strict=args.strict)
    work: list[tuple[Conversation, str | None]] = []
    for row in rows[done:]:
        try:
            if row.error is not None:
                raise row.error
            work.append(split_label(to_conversation(rename_columns(row.data, args.columns), row.where, require_response=False)))
        except SkippedRow as skipped:
            skips.skip(row.where, skipped)
    settings = GenerationSettings.from_args(args)
    rank, world = rank_and_world()
    # Several processes (NPROC_PER_NODE): each answers every world-th row into its own part file.
    target = path if world == 1 else part_path(path, rank)
    work = work[rank::world]
    with open(target, "a" if world == 1 else "w", encoding="utf-8") as out:
        # Everything is queued at once; the engine keeps max_batch_size requests in flight and
        # results are written in dataset order, each as soon as it and those before it are done.
        step = len(work) if settings.num_beams == 1 else args.max_batch_size
        for start in range(0, len(work), max(step, 1)):
            batch = work[start : start + step]
            for (conversation, label), done_ in zip(batch, engine.complete_iter([c for c, _ in batch], settings)):
                record = {"messages": conversation.messages, "response": done_.text, "labels": label}
                if settings.logprobs or settings.top_logprobs:
                    record["logprobs"] = logprobs_record(engine.tokenizer, done_)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
    if world > 1:
        wait_for_all(args)
        if rank != 0:
            return 0
        merge_parts(path, world)
    if skips.total:
        skips.print_report()
    print(f"swift: {len(rows)} results in {path}" + (f" ({done} from an earlier run)" if done else ""))
    if args.metric:
        print(f"swift: {args.metric}: {json.dumps(score_results(path, args.metric))}")
    return 0


def logprobs_record(tokenizer: Any, completion: Any) -> list[dict[str, Any]]:
    """OpenAI's shape: one entry per generated token with its logprob and the top alternatives."""
    return [{"token": tokenizer.decode([c.token]), "logprob": c.logprob,
             "top_logprobs": [{"token": tokenizer.decode([t]), "logprob": lp} for t, lp in c.top]}
            for c in completion.tokens]


def score_results(path: Path, metric: str) -> dict[str, float]:
    """Score every result that has a label; stored beside the results as <name>.metric.json."""
    from swift_infer.metrics import score

    records = [json.loads(line) for line in open(path, encoding="utf-8")]
    pairs = [(r["response"], r["labels"]) for r in records if r.get("labels") is not None]
    scores = score("acc" if metric == "acc" else "nlg", [p for p, _ in pairs], [r for _, r in pairs])
    scores["count"] = len(pairs)
    path.with_suffix(".metric.json").write_text(json.dumps(scores, indent=2) + "\n")
    return scores


def run_interactive(engine: PtEngine, args: Any) -> int:
    settings = GenerationSettings.from_args(args)
    system = engine.encoder.system
    messages: list[dict[str, str]] = []
    print(HELP)
    while True:
        try:
            query = input("<<< ")
        except EOFError:
            print()
            return 0
        if query.strip() in ("/quit", "/exit"):
            return 0
        if query.strip() == "/clear":
            messages = []
            continue
        if query.startswith("/system"):
            system = query[len("/system"):].strip() or engine.encoder.system
            messages = []
            continue
        conversation = Conversation(([{"role": "system", "content": system}] if system else []) + messages
                                    + [{"role": "user", "content": query}])
        print(">>> ", end="", flush=True)
        if args.stream:
            response = ""
            for piece in engine.stream(conversation, settings):
                print(piece, end="", flush=True)
                response += piece
            print()
        else:
            response = engine.generate([conversation], settings)[0]
            print(response)
        messages += [{"role": "user", "content": query}, {"role": "assistant", "content": response}]


def run_infer(invocation: Invocation) -> int:
    from swift_infer.merge import merge_for_inference

    args = invocation.args
    dataset_mode = bool(args.val_dataset or (args.load_data_args and args.dataset))
    if dataset_mode and not args.result_path:
        args.result_path = str(default_result_path(args))
    if dataset_mode:  # the data and where its answers go are checked before any weights load
        check_writable_dir(Path(args.result_path).parent, "--result_path")
        rows = dataset_rows(args)
    if args.task_type == "seq_cls" and int(os.environ.get("NPROC_PER_NODE", "1")) > 1:
        raise ArgumentError("--task_type seq_cls: classification runs in one process; unset NPROC_PER_NODE")
    merge_for_inference(args)  # once, before any torchrun workers start
    launched = relaunch_under_torchrun(invocation, Path(args.result_path or "."), dataset_mode)
    if launched is not None:
        return launched
    if args.task_type == "seq_cls":
        from swift_infer.classify import run_classification

        return run_classification(args, rows if dataset_mode else None)
    engine = load_engine(args)
    if dataset_mode:
        return run_dataset(engine, args, rows)
    return run_interactive(engine, args)
