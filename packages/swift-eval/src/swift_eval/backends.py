"""--eval_backend: EvalScope's own evaluator (Native), or its bridges to OpenCompass and VLMEvalKit.

Each backend is an optional package, imported only by the evaluator process; without it, one line names
what to install. This module turns the arguments into EvalScope's TaskConfig (as a plain dict, written to
the plan file the evaluator reads).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

from swift_eval.eval_sets import BUILTIN, EvalSet, resolve_eval_sets
from swift_eval.target import Target

# backend -> (the module it imports, what installs it)
PACKAGES = {
    "Native": ("evalscope", "pip install 'swift-eval[evalscope]'"),
    "OpenCompass": ("opencompass", "pip install 'swift-eval[opencompass]' (ms-opencompass pins numpy<2, so in an "
                                   "environment without swift-export[quant])"),
    "VLMEvalKit": ("vlmeval", "pip install 'swift-eval[vlmeval]'"),
}


def check_installed(backend: str) -> None:
    for module in ("evalscope", PACKAGES[backend][0]):
        if importlib.util.find_spec(module) is None:
            package, install = PACKAGES["Native" if module == "evalscope" else backend]
            raise ArgumentError(f"--eval_backend {backend} needs the {package} package: {install}")


def resolve_sets(args: Any) -> list[EvalSet]:
    """Native: every entry resolved and its rows checked. The other backends take their own dataset names."""
    if args.eval_backend == "Native":
        return resolve_eval_sets(args.eval_dataset, args.use_hf)
    if not args.eval_dataset:
        raise ArgumentError(f"--eval_dataset is required: the {args.eval_backend} dataset names to run")
    local = [e for e in args.eval_dataset if e.partition(":")[0] in BUILTIN or Path(e).expanduser().exists()]
    if local:
        raise ArgumentError(f"--eval_dataset {local[0]}: built-in sets and local files run on --eval_backend Native "
                            f"(the default); {args.eval_backend} takes its own dataset names")
    return [EvalSet(name, "benchmark", None) for name in args.eval_dataset]


def task_config(args: Any, sets: list[EvalSet], target: Target, work_dir: Path) -> dict[str, Any]:
    """EvalScope's TaskConfig for this evaluation, as keyword arguments."""
    task: dict[str, Any] = {
        "model": target.served_name, "model_id": target.model_id, "api_url": target.url,
        "api_key": target.api_key, "eval_type": "openai_api", "work_dir": str(work_dir), "no_timestamp": True,
        "eval_batch_size": args.eval_num_proc, "limit": args.eval_limit, "generation_config": generation_config(args),
        "dataset_hub": "huggingface" if args.use_hf else "modelscope",
    }
    if args.eval_use_cache and (work_dir / "configs" / "task_config.yaml").is_file():
        task["use_cache"] = str(work_dir)
    if args.seed is not None:
        task["seed"] = args.seed
    if args.eval_backend == "Native":
        task["datasets"] = [s.name for s in sets]
        arguments = {s.name: _dataset_args(s) for s in sets if s.kind == "benchmark"}
        task["dataset_args"] = {name: given for name, given in arguments.items() if given}
        return task
    task["eval_backend"] = args.eval_backend
    task["eval_config"] = (_opencompass(args, sets, target, work_dir) if args.eval_backend == "OpenCompass"
                           else _vlmevalkit(args, sets, target, work_dir))
    return task


def generation_config(args: Any) -> dict[str, Any]:
    """The generation arguments, sent with every request (a remote server gets them too)."""
    config: dict[str, Any] = {"temperature": args.temperature if args.temperature is not None else 0.0}
    named = {"max_tokens": args.max_new_tokens, "top_p": args.top_p, "top_k": args.top_k,
             "repetition_penalty": args.repetition_penalty, "seed": args.seed, "stream": args.stream or None}
    config.update({key: value for key, value in named.items() if value is not None})
    if args.stop_words:
        config["stop_seqs"] = list(args.stop_words)
    return config


def _dataset_args(eval_set: EvalSet) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    if eval_set.subsets:
        arguments["subset_list"] = eval_set.subsets
    if eval_set.source:
        arguments["dataset_id"] = eval_set.source  # a local copy of the benchmark
    return arguments


def _opencompass(args: Any, sets: list[EvalSet], target: Target, work_dir: Path) -> dict[str, Any]:
    """EvalScope's OpenCompass bridge: OpenCompass's dataset names against the chat endpoint."""
    model = {"path": target.served_name, "openai_api_base": f"{target.url}/chat/completions",
             "key": target.api_key, "is_chat": True, "batch_size": args.eval_num_proc,
             "temperature": args.temperature or 0.0}
    if args.max_new_tokens:
        model["max_out_len"] = args.max_new_tokens
    config: dict[str, Any] = {"datasets": [s.name for s in sets], "models": [model], "work_dir": str(work_dir)}
    if args.eval_limit:
        config["limit"] = args.eval_limit
    return config


def _vlmevalkit(args: Any, sets: list[EvalSet], target: Target, work_dir: Path) -> dict[str, Any]:
    """EvalScope's VLMEvalKit bridge: VLMEvalKit's dataset names against the chat endpoint."""
    model = {"type": target.served_name, "name": "CustomAPIModel", "api_base": f"{target.url}/chat/completions",
             "key": target.api_key, "temperature": args.temperature or 0.0, "img_size": -1}
    if args.max_new_tokens:
        model["max_tokens"] = args.max_new_tokens
    config: dict[str, Any] = {"data": [s.name for s in sets], "model": [model], "nproc": args.eval_num_proc,
                              "work_dir": str(work_dir)}
    if args.eval_limit:
        config["limit"] = args.eval_limit
    return config
