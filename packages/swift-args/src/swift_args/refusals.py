"""Arguments a command accepts from the reference but cannot honour, each with why and what to do instead.

The rule: every argument of every command's schema is either used by that command's code or listed
here. A listed argument that the user sets is refused while parsing, before a run directory, an output
file or a model load exists: one line per argument, exit code 2. Nothing is parsed, stored and ignored.

`tests/test_every_argument.py` enforces it: it reads the code each command runs and fails for a field
that is neither read there nor refused here for that command.

A refusal fires for what the user typed (on the command line or, for `swift web-ui` and tests, in the
values handed to the parser). Values taken over from a saved args.json are what an earlier run used,
not a request to this command, and are never refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swift_args.fields import specs

TRAINING = ("sft", "pt", "rlhf")
INFERENCE = ("infer", "deploy", "sample")
MODEL_COMMANDS = (*TRAINING, *INFERENCE, "merge-lora", "export", "eval", "app")
REFT_FIELDS = ("reft_layers", "reft_rank", "reft_intervention_type", "reft_args")
REFT_EXTRA_ARGS = ("dropout", "act_fn", "add_bias")  # what swift_infer.own_tuners.reft reads from --reft_args
# export: the arguments of each step, refused when that step does not run.
GENERATION_DEFAULTS = ("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "stop_words")
CALIBRATION = ("dataset", "dataset_num_proc", "enable_cache", "columns", "strict",
               "model_name", "model_author", "custom_dataset_info", "download_mode", "data_seed", "quant_n_samples",
               "quant_batch_size", "max_length", "truncation_strategy", "tools_prompt", "use_chat_template")
# What export's model-writing steps read; --push_to_hub alone writes no model.
WRITING = ("output_dir", "exist_ok", "torch_dtype", "attn_impl", "device_map", "max_memory", "max_shard_size")
BNB_FIELDS = ("bnb_4bit_compute_dtype", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_quant_storage")
MULTIMODAL = "multimodal models are not supported yet (they come with the multimodal issue); this model is text-only"


# eval: with --eval_url a server that is already running answers, so what configures the local deployment
# does not apply; what each request carries does.
EVAL_REMOTE = ("model", "api_key", "use_hf", "custom_register_path", "temperature", "top_p", "top_k",
               "max_new_tokens", "repetition_penalty", "seed", "stop_words", "stream")
EVAL_READS_NO_DATA = ("dataset", "val_dataset", "split_dataset_ratio", "data_seed", "streaming", "columns", "strict",
                      "model_name", "model_author", "custom_dataset_info", "result_path", "metric",
                      "val_dataset_sample", "load_data_args", "download_mode", "dataset_num_proc", "enable_cache",
                      "remove_unused_columns")


def _local_deployment_fields() -> tuple[str, ...]:
    from swift_args.schema.serving import DeployArguments

    skip = set(EVAL_REMOTE) | set(EVAL_READS_NO_DATA) | {"sequence_parallel_size", "tuner_backend", "local_repo_path",
                                                        "max_pixels", "norm_bbox", "model_kwargs", "train_type",
                                                        "padding_side", "vision_batch_size", "logprobs",
                                                        "top_logprobs", "num_beams", "safe_serialization"}
    return tuple(name for name in specs(DeployArguments) if name not in skip)


def _app_local_fields() -> tuple[str, ...]:
    """What configures swift app's local deployment; --system stays: it is the page's default system prompt."""
    return (*(name for name in _local_deployment_fields() if name != "system"), "use_hf")


# The online RL algorithms' own arguments: each is refused where its algorithm is not the one chosen.
ONLINE_RL = ("ppo", "grpo")
REWARD_MODEL_FIELDS = ("reward_model", "reward_adapters", "reward_model_type", "reward_model_revision")
SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "repetition_penalty")
PPO_FIELDS = ("num_ppo_epochs", "whiten_rewards", "kl_coef", "cliprange", "vf_coef", "cliprange_value", "gamma", "lam",
              "num_mini_batches", "local_rollout_forward_batch_size", "num_sample_generations", "response_length",
              "missing_eos_penalty")
GRPO_FIELDS = (
    "num_generations", "max_completion_length", "ds3_gather_for_generation", "reward_funcs", "reward_weights",
    "log_completions", "use_vllm", "num_infer_workers", "vllm_device", "vllm_gpu_memory_utilization",
    "vllm_max_model_len", "vllm_max_num_seqs", "vllm_enforce_eager", "vllm_limit_mm_per_prompt",
    "vllm_enable_prefix_caching", "num_iterations", "epsilon", "async_generate", "cosine_min_len_value_wrong",
    "cosine_max_len_value_wrong", "cosine_min_len_value_correct", "cosine_max_len_value_correct", "cosine_max_len",
    "repetition_n_grams", "repetition_max_penalty",
)
ONLINE_RL_FIELDS = (*REWARD_MODEL_FIELDS, *SAMPLING_FIELDS, *PPO_FIELDS, *GRPO_FIELDS)


def _outside(kinds: tuple[str, ...], name: str) -> Callable[[Any, set[str]], bool]:
    """The user set `name`, which only `kinds` read, with another --rlhf_type."""
    differs = _differs(name)
    return lambda args, typed: args.rlhf_type not in kinds and differs(args, typed)


def _online_refusals() -> tuple[Refusal, ...]:
    found = []
    for fields, kinds, why in (
            (REWARD_MODEL_FIELDS, ONLINE_RL, "configures the reward model of online RL; add --rlhf_type grpo or ppo, "
             "or drop it (an rm run trains a reward model: --rlhf_type rm)"),
            (SAMPLING_FIELDS, ONLINE_RL, "configures the rollouts of online RL (--rlhf_type grpo or ppo); drop it"),
            (PPO_FIELDS, ("ppo",), "configures PPO; add --rlhf_type ppo, or drop it"),
            (GRPO_FIELDS, ("grpo",), "configures GRPO; add --rlhf_type grpo, or drop it")):
        found += [Refusal((name,), ("rlhf",), why, when=_outside(kinds, name), complete=False) for name in fields]
    return tuple(found)


def _bad_reft_values(extra: dict | None) -> bool:
    extra = extra or {}
    dropout, act_fn, add_bias = extra.get("dropout", 0.0), extra.get("act_fn"), extra.get("add_bias", False)
    return (not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1
            or not (act_fn is None or isinstance(act_fn, str)) or not isinstance(add_bias, bool))


def _differs(name: str) -> Callable[[Any, set[str]], bool]:
    """The usual trigger: the user typed the argument with a value other than the reference's default."""

    def fires(args: Any, typed: set[str]) -> bool:
        return name in typed and getattr(args, name) != specs(type(args))[name].default

    return fires


@dataclass(frozen=True)
class Refusal:
    """`fields` are refused in `commands` when `when(args, typed)` holds; `why` is the message's tail (or
    makes it from the arguments).

    `complete` says the refusal covers every value but the default, so the field needs no reader in
    the command's code; a partial one (say, only `--tuner_backend unsloth`) leaves the field's other
    values to code that reads them, and the coverage test still demands that code.
    """

    fields: tuple[str, ...]
    commands: tuple[str, ...]
    why: str | Callable[[Any], str] = ""
    when: Callable[[Any, set[str]], bool] | None = None
    complete: bool = True
    values: tuple[Any, ...] = field(default=())

    def fires(self, name: str, args: Any, typed: set[str]) -> bool:
        if self.when is not None:
            return self.when(args, typed)
        if self.values:
            value = getattr(args, name)
            return name in typed and (value.lower() if isinstance(value, str) else value) in self.values
        return _differs(name)(args, typed)


def problems(command: str, args: Any, typed: set[str]) -> list[str]:
    """One line per refused argument the user set for `command`."""
    found, named = [], set()
    for refusal in REFUSALS:
        if command not in refusal.commands:
            continue
        # The field to name: the first one the user typed, else the first (an environment variable set it).
        names = sorted(refusal.fields, key=lambda name: name not in typed)
        for name in names:
            if name not in named and hasattr(args, name) and refusal.fires(name, args, typed):
                why = refusal.why(args) if callable(refusal.why) else refusal.why
                found.append(f"--{name} {_shown(getattr(args, name))}: {why}")
                named.add(name)  # one line per argument: the first reason is enough
                break  # one line per entry: its fields share one reason
    return found


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value)
    return str(value)


def _splits(args: Any, typed: set[str]) -> bool:
    """The user asked for sequence parallelism (--sequence_parallel_size above 1)."""
    return "sequence_parallel_size" in typed and args.sequence_parallel_size > 1


def _processes() -> int | None:
    """The processes a training command runs on: torchrun's WORLD_SIZE in a worker, else NPROC_PER_NODE x NNODES;
    None when those variables are malformed (the launch refuses them itself, naming the variable)."""
    import os

    from swift_args.errors import ArgumentError
    from swift_args.launch import DistributedLaunch

    world = os.environ.get("WORLD_SIZE", "").strip()
    if world.isdigit():
        return int(world)
    try:
        return DistributedLaunch.from_env().world_size
    except ArgumentError:
        return None


def _too_few_processes(args: Any, typed: set[str]) -> bool:
    processes = _processes()
    return _splits(args, typed) and processes is not None and processes % args.sequence_parallel_size != 0


def _launch_hint(args: Any) -> str:
    size, processes = args.sequence_parallel_size, _processes()
    return (f"each sequence is split over {size} processes, but this run has {processes}: launch with "
            f"NPROC_PER_NODE={size} (or a multiple of {size})")


def refused_fields(command: str) -> set[str]:
    """The fields `command` refuses whatever value but the default: they need no reader in its code."""
    return {name for refusal in REFUSALS if command in refusal.commands and refusal.complete for name in refusal.fields}


REFUSALS: tuple[Refusal, ...] = (
    # --- model loading -------------------------------------------------------------------------------
    Refusal(("tuner_backend",), MODEL_COMMANDS, values=("unsloth",),  # complete: peft is the only other value
            why="unsloth cannot be installed beside this release: its newest version (2026.10) requires "
            "transformers<=5.17 and torch<2.15, older than ours; drop it (peft is the default)"),
    Refusal(("local_repo_path",), MODEL_COMMANDS, "no model family supported here needs a GitHub clone; drop it"),
    Refusal(("max_pixels", "norm_bbox"), MODEL_COMMANDS, MULTIMODAL),
    Refusal(("model_kwargs",), MODEL_COMMANDS, when=lambda args, typed: bool(args.model_kwargs),
            why="(or the environment variables MAX_PIXELS, FPS_MAX_FRAMES, ...): these are read by multimodal "
            "models, which are not supported yet; unset them"),
    Refusal(("task_type", "num_labels"), ("deploy", "sample", "rlhf"),
            when=lambda args, typed: args.task_type != "causal_lm" and getattr(args, "rlhf_type", None) != "rm",
            why=lambda args: f"--rlhf_type {args.rlhf_type} trains a language model (a reward model is --rlhf_type rm); "
            "drop it" if hasattr(args, "rlhf_type") else "sequence classification trains with swift sft and answers "
            "through swift infer; this command generates text"),
    Refusal(("infer_backend",), ("deploy", "eval"), values=("vllm", "lmdeploy"), complete=False,
            why="swift deploy (also as swift eval's local deployment) serves with the pt engine in this release; "
            "drop it"),
    Refusal(("sequence_parallel_size",), (*INFERENCE, "merge-lora", "export", "eval", "app"),
            "applies to training (swift sft and swift pt); drop it"),
    Refusal(("sequence_parallel_size",), ("rlhf",), "sequence parallelism trains with swift sft and swift pt; "
            "swift rlhf does not split sequences yet; drop it"),
    # --- data ----------------------------------------------------------------------------------------
    Refusal(("template_backend",), TRAINING, "the reference trains with the swift template only (jinja is for "
            "inference); drop it"),
    Refusal(("template_backend",), ("merge-lora",), "merge-lora renders no prompt; drop it"),
    # --- inference -----------------------------------------------------------------------------------
    Refusal(("vision_batch_size",), ("infer", "deploy"), MULTIMODAL),
    Refusal(("train_type",), (*INFERENCE, "merge-lora"),
            "inference takes the tuner from --adapters (or none: --model alone); drop it"),
    Refusal(("padding_side",), (*INFERENCE, "merge-lora"),
            "applies to training batches; inference pads on the left itself"),
    Refusal(("dataset_num_proc", "enable_cache", "remove_unused_columns"), INFERENCE,
            "applies to training's preprocessing; inference reads each row as it is"),
    Refusal(("dataset", "val_dataset", "split_dataset_ratio", "data_seed", "streaming", "columns", "strict",
             "model_name", "model_author", "custom_dataset_info", "result_path", "metric", "val_dataset_sample",
             "load_data_args", "download_mode"), ("deploy",),
            "swift deploy answers requests and reads no dataset; run swift infer --val_dataset for a dataset"),
    Refusal(("rollout_depth", "rollout_start_depth", "max_iterations", "process_reward_rate", "exploration_rate"),
            ("sample",), "these are MCTS options, and --sampler_type mcts is not supported yet"),
    Refusal(("api_key", "base_url"), ("sample",),
            "sampling through a remote API is not supported yet; sample with a local --model"),
    # --- eval ------------------------------------------------------------------------------------------
    Refusal(EVAL_READS_NO_DATA, ("eval",), "swift eval reads its questions from --eval_dataset; drop it"),
    Refusal(("logprobs", "top_logprobs", "num_beams"), ("eval",),
            "the evaluator asks for one answer per question and scores its text (EvalScope sends no logprobs or "
            "beams); drop it"),
    Refusal(("train_type",), ("eval",), "eval takes the tuner from --adapters (or none: --model alone); drop it"),
    Refusal(("padding_side",), ("eval",), "applies to training batches; the deployment pads on the left itself"),
    Refusal(("vision_batch_size",), ("eval",), MULTIMODAL),
    Refusal(("local_dataset",), ("eval",),
            "downloading OpenCompass's extra data packages is not available (it needs their download site); "
            "OpenCompass reads ./data, so unpack them there and drop this"),
    Refusal((*_local_deployment_fields(), "deploy_timeout"), ("eval",), complete=False,
            when=lambda args, typed: args.eval_url is not None and bool(
                typed & {*_local_deployment_fields(), "deploy_timeout"}),
            why="configures the local deployment, and --eval_url evaluates a server that is already running; drop "
            "it (or drop --eval_url to deploy --model locally)"),
    Refusal(("top_p", "top_k", "repetition_penalty", "seed", "stop_words", "stream", "eval_use_cache", "use_hf"),
            ("eval",), complete=False,
            when=lambda args, typed: args.eval_backend != "Native" and bool(typed & {
                "top_p", "top_k", "repetition_penalty", "seed", "stop_words", "stream", "eval_use_cache", "use_hf"}),
            why=lambda args: f"the {args.eval_backend} bridge takes the model's temperature and --max_new_tokens only "
            "(and keeps its own datasets and caches); drop it, or use --eval_backend Native"),
    # --- app: a chat page over a local `swift deploy` child, or over --base_url ------------------------
    Refusal(("task_type", "num_labels"), ("app",), when=lambda args, typed: args.task_type != "causal_lm",
            why="the chat page shows generated text; a sequence classifier answers through swift infer; drop it"),
    Refusal(("infer_backend",), ("app",), values=("vllm", "lmdeploy"), complete=False,
            why="swift app's local deployment serves with the pt engine in this release (or chat with any server "
            "through --base_url); drop it"),
    Refusal(("vision_batch_size",), ("app",), MULTIMODAL),
    Refusal(("train_type",), ("app",), "the app takes the tuner from --adapters (or none: --model alone); drop it"),
    Refusal(("padding_side",), ("app",), "applies to training batches; the deployment pads on the left itself"),
    Refusal((*EVAL_READS_NO_DATA,), ("app",), "the chat page reads no dataset; run swift infer --val_dataset for a "
            "dataset"),
    Refusal(("logprobs", "top_logprobs", "num_beams"), ("app",),
            "the chat page streams one sampled answer as text (no logprobs or beams); drop it, or ask swift deploy "
            "for them with each request"),
    Refusal(_app_local_fields(), ("app",), complete=False,
            when=lambda args, typed: args.base_url is not None and bool(typed & set(_app_local_fields())),
            why="configures the local deployment, and --base_url chats with a server that is already running; drop "
            "it (or drop --base_url to deploy --model locally)"),
    # --- merge-lora: it loads, merges and saves; it neither generates nor reads data -------------------
    Refusal(("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "num_beams", "stream",
             "stop_words", "logprobs", "top_logprobs", "system", "truncation_strategy", "tools_prompt", "loss_scale",
             "use_chat_template", "seed"), ("merge-lora",),
            "merge-lora does not generate; pass it to swift infer or swift deploy instead"),
    Refusal(("dataset", "val_dataset", "split_dataset_ratio", "data_seed", "dataset_num_proc", "streaming",
             "enable_cache", "columns", "strict", "remove_unused_columns", "model_name", "model_author",
             "custom_dataset_info", "download_mode"),
            ("merge-lora",), "merge-lora reads no data; drop it"),
    Refusal(("quant_method", "quant_bits", "hqq_axis", "bnb_4bit_compute_dtype", "bnb_4bit_quant_type",
             "bnb_4bit_use_double_quant", "bnb_4bit_quant_storage", "quant_n_samples", "quant_batch_size",
             "group_size", "to_ollama", "gguf_type", "push_to_hub", "hub_model_id", "hub_private_repo",
             "commit_message", "to_peft_format"), ("merge-lora",),
            "merge-lora only merges; to quantize, write GGUF or push in the same run use swift export "
            "--merge_lora true with this argument"),
    Refusal(("merge_lora",), ("merge-lora",), "merge-lora always merges; drop it"),
    Refusal(("attn_impl",), ("merge-lora",), "merging adds weights and runs no forward pass; drop it"),
    Refusal(("max_length",), ("merge-lora",), "merging reads no data (the context a run trained with comes from its "
            "args.json); drop it"),
    Refusal(("rope_scaling",), ("merge-lora", "export"),
            "the RoPE scaling a run trained with comes from its args.json (with its --max_length); exporting does not "
            "rescale a model: pass --rope_scaling to swift sft or swift infer instead; drop it"),
    Refusal(("safe_serialization",), ("infer", "deploy", "merge-lora", "export", "eval", "app"),
            "merged weights are always safetensors (transformers 5 writes no other format); drop it"),
    Refusal(("max_shard_size",), ("infer", "deploy", "eval", "app"), complete=False,
            when=lambda args, typed: "max_shard_size" in typed and not args.merge_lora,
            why="sizes the files of --merge_lora true's merged model; add it, or drop this"),
    # --- export: each argument belongs to one of its steps, and is refused when that step does not run ---
    Refusal(WRITING, ("export",), complete=False,
            when=lambda args, typed: bool(typed & set(WRITING)) and not (
                args.merge_lora or args.quant_method or args.to_ollama),
            why="--push_to_hub alone uploads the --model / --adapters directory as it is, and this configures a "
            "model the export writes; add --merge_lora true, --quant_method or --to_ollama true, or drop it"),
    Refusal(("attn_impl",), ("export",), complete=False,
            when=lambda args, typed: "attn_impl" in typed and args.quant_method not in ("gptq", "awq"),
            why="only gptq and awq run the model (over the calibration rows); merging, bnb, fp8 and GGUF run no "
            "forward pass; drop it"),
    Refusal(("device_map", "max_memory"), ("export",), complete=False,
            when=lambda args, typed: bool(typed & {"device_map", "max_memory"}) and args.to_ollama and not args.adapters,
            why="the GGUF writer reads the weights from disk without loading a model; drop it"),
    Refusal(("max_shard_size",), ("export",), complete=False,
            when=lambda args, typed: "max_shard_size" in typed and args.to_ollama and not args.merge_lora,
            why="sizes safetensors files (merged or quantized models), and --to_ollama writes one GGUF file; drop "
            "it"),
    Refusal(("remove_unused_columns",), ("export",), "calibration keeps only the encoded token ids; drop it"),
    Refusal(GENERATION_DEFAULTS, ("export",), when=lambda args, typed: not args.to_ollama and bool(typed & set(GENERATION_DEFAULTS)),
            complete=False, why="export writes generation defaults only into an Ollama Modelfile; add --to_ollama "
            "true, or pass it to swift infer / swift deploy"),
    Refusal(("num_beams", "stream", "logprobs", "top_logprobs", "seed"), ("export",),
            "export does not generate (calibration and conversion are deterministic), and the Modelfile takes no such "
            "default; pass it to swift infer or with each Ollama request instead"),
    Refusal(CALIBRATION, ("export",), when=lambda args, typed: args.quant_method not in ("gptq", "awq") and bool(typed & set(
                CALIBRATION)), complete=False,
            why="configures the calibration data of --quant_method gptq or awq; drop it"),
    Refusal(("template", "system"), ("export",), when=lambda args, typed: bool(typed & {"template", "system"})
            and not (args.to_ollama or args.quant_method in ("gptq", "awq")), complete=False,
            why="export renders prompts only for calibration (gptq, awq) and the Ollama Modelfile (--to_ollama); "
            "drop it"),
    Refusal(("group_size",), ("export",), when=lambda args, typed: "group_size" in typed
            and args.quant_method not in ("gptq", "awq"), complete=False,
            why="configures --quant_method gptq or awq (bnb and fp8 have fixed blocks); drop it"),
    Refusal(("val_dataset", "split_dataset_ratio", "streaming"), ("export",),
            "calibration reads the first --quant_n_samples rows of --dataset; drop it (append #N to a --dataset "
            "entry to read fewer rows)"),
    Refusal(("loss_scale", "padding_side", "template_backend"), ("export",),
            "applies to training or chatting; calibration encodes each row with the template as it is; drop it"),
    Refusal(("hqq_axis",), ("export",), "configures loading with --quant_method hqq (swift infer / sft); export "
            "writes gptq, awq, bnb or fp8 checkpoints; drop it"),
    Refusal(BNB_FIELDS, ("export",), when=lambda args, typed: bool(typed & set(BNB_FIELDS)) and not (
                args.quant_method == "bnb" and args.quant_bits == 4), complete=False,
            why="configures --quant_method bnb --quant_bits 4; drop it"),
    Refusal(("gguf_type",), ("export",), when=lambda args, typed: "gguf_type" in typed and not args.to_ollama,
            complete=False, why="the GGUF weight type of --to_ollama true; add it, or drop this"),
    Refusal(("hub_model_id", "hub_private_repo", "commit_message"), ("export",),
            when=lambda args, typed: not args.push_to_hub and bool(typed & {"hub_model_id", "hub_private_repo",
                                                                            "commit_message"}),
            complete=False, why="configures --push_to_hub true; add it, or drop this"),
    Refusal(("train_type",), ("export",), "export takes the tuner from --adapters (or none: --model alone); drop it"),
    Refusal(("task_type", "num_labels"), ("export",), when=lambda args, typed: args.task_type != "causal_lm"
            and bool(args.quant_method or args.to_ollama), complete=False,
            why="quantization and GGUF export write causal language models; a classifier exports with "
            "--merge_lora true (and --push_to_hub)"),
    # --- training ------------------------------------------------------------------------------------
    Refusal(("sequence_parallel_size",), ("sft", "pt"), when=lambda args, typed: args.sequence_parallel_size < 1,
            complete=False, why="must be at least 1 (1: sequences are not split)"),
    Refusal(("sequence_parallel_size",), ("sft", "pt"), when=_too_few_processes, complete=False, why=_launch_hint),
    Refusal(("task_type", "num_labels"), ("sft", "pt"),
            when=lambda args, typed: _splits(args, typed) and args.task_type == "seq_cls", complete=False,
            why="sequence classification reads each row's last token, which --sequence_parallel_size leaves to one "
            "rank; drop one of them"),
    Refusal(("streaming",), ("sft", "pt"), when=lambda args, typed: _splits(args, typed) and args.streaming,
            complete=False, why="streamed batches are dealt out one per process, and --sequence_parallel_size needs "
            "one batch per group of processes; drop --streaming (--lazy_tokenize true also keeps memory low)"),
    Refusal(("loss_type",), ("sft", "pt"), when=lambda args, typed: _splits(args, typed) and bool(args.loss_type),
            complete=False, why="a loss plugin would get one rank's shard of the logits; with "
            "--sequence_parallel_size the loss is the built-in token cross-entropy; drop one of them"),
    Refusal(("attn_impl",), ("sft", "pt"),
            when=lambda args, typed: _splits(args, typed) and args.attn_impl not in (None, "sdpa"), complete=False,
            why="--sequence_parallel_size runs its own attention (an all-to-all around sdpa or varlen); drop --attn_impl"),
    Refusal(("deepspeed", "fsdp"), ("sft", "pt"),
            when=lambda args, typed: _splits(args, typed) and bool(args.deepspeed or args.fsdp), complete=False,
            why="--sequence_parallel_size works with plain data parallelism (DDP) so far; drop one of them"),
    Refusal(("train_type",), ("sft", "pt"),
            when=lambda args, typed: _splits(args, typed) and args.train_type == "longlora", complete=False,
            why="longlora's shifted groups and --sequence_parallel_size's split are two attention schemes for long "
            "sequences; use one of them (lora with --sequence_parallel_size, or longlora alone)"),
    Refusal(("neftune_noise_alpha",), ("sft", "pt"),
            when=lambda args, typed: _splits(args, typed) and bool(args.neftune_noise_alpha), complete=False,
            why="NEFTune scales its noise by the sequence length, and each rank sees 1/N of it under "
            "--sequence_parallel_size; drop one of them"),
    Refusal(("swanlab_token", "swanlab_project", "swanlab_workspace", "swanlab_exp_name", "swanlab_mode"), TRAINING,
            when=lambda args, typed: not {"swanlab", "all"} & set(args.report_to)
            and any(n.startswith("swanlab_") for n in typed),
            complete=False, why="takes effect with --report_to swanlab; add it (with --swanlab_mode local offline)"),
    Refusal(("top_k", "top_p", "repetition_penalty", "num_beams", "stream", "stop_words", "logprobs", "top_logprobs"),
            TRAINING, "training's --predict_with_generate decodes greedily with --max_new_tokens and --temperature "
            "only; use swift infer on the checkpoint for other generation options"),
    Refusal(("overwrite_output_dir",), TRAINING, "runs never overwrite: each writes a new vN-* directory (or, with "
            "--add_version false, into --output_dir as it is); drop it"),
    Refusal(("save_safetensors",), TRAINING, "checkpoints are always safetensors (transformers 5 dropped the "
            "pickle format); drop it"),
    Refusal(("packing",), TRAINING, complete=False,
            when=lambda args, typed: args.train_type == "longlora" and args.packing,
            why="longlora's shifted groups would mix the samples of a packed row; drop it"),
    Refusal(("attn_impl",), TRAINING, complete=False,
            when=lambda args, typed: args.train_type == "longlora" and args.attn_impl not in (None, "sdpa"),
            why="longlora trains with its own shifted sparse attention (built on sdpa); drop it"),
    Refusal(("reft_layers", "reft_rank", "reft_intervention_type", "reft_args"), TRAINING, complete=False,
            when=lambda args, typed: args.train_type != "reft" and bool(typed & set(REFT_FIELDS)),
            why="these configure --train_type reft; add it, or drop them"),
    Refusal(("reft_args",), TRAINING, complete=False,
            when=lambda args, typed: bool(set(args.reft_args or {}) - set(REFT_EXTRA_ARGS)),
            why=f"the interventions take {', '.join(REFT_EXTRA_ARGS)}; drop the other keys"),
    Refusal(("reft_layers",), TRAINING, complete=False,
            when=lambda args, typed: len(set(args.reft_layers or ())) != len(args.reft_layers or ()),
            why="a layer is listed twice (it would get two interventions); list each once"),
    Refusal(("reft_args",), TRAINING, complete=False, when=lambda args, typed: _bad_reft_values(args.reft_args),
            why="dropout is a number in [0, 1), act_fn an activation name such as relu or gelu, add_bias true or "
            "false"),
    Refusal(("reft_layers", "reft_rank", "reft_intervention_type", "reft_args"), TRAINING, complete=False,
            when=lambda args, typed: args.train_type == "reft" and bool(args.adapters) and bool(typed & set(REFT_FIELDS)),
            why="training on from --adapters keeps the saved tuner's settings; drop them"),
    Refusal(("adapters",), TRAINING, complete=False, when=lambda args, typed: len(args.adapters) > 1,
            why="training goes on from one adapter; pass one (merge the others first: swift merge-lora)"),
    Refusal(("deepspeed", "fsdp"), TRAINING, complete=False,
            when=lambda args, typed: args.train_type in ("adapter", "reft") and bool(args.deepspeed or args.fsdp),
            why="adapter and reft checkpoints are saved from the unsharded model; train them with plain data "
            "parallelism (NPROC_PER_NODE alone), or use --train_type lora"),
    Refusal(("galore_with_embedding",), TRAINING, complete=False,
            when=lambda args, typed: args.galore_with_embedding and not args.use_galore,
            why="configures GaLore; add --use_galore true, or drop it"),
    Refusal(("quant_method", "quant_bits"), TRAINING, complete=False,
            when=lambda args, typed: args.train_type in ("adapter", "reft") and args.quant_method is not None,
            why="a quantized base trains with the peft tuners (lora, adalora, ...), not adapter or reft; "
            "drop the quantization or use --train_type lora"),
    Refusal(("remove_unused_columns",), TRAINING,
            "training always keeps only the encoded columns (the collator needs nothing else), and grpo's reward "
            "functions always get every column of the row; drop it"),
    Refusal(("init_weights",), TRAINING, values=("loftq", "corda", "eva", "bat"), complete=False,
            why="this initialisation is not supported yet; use true, gaussian, pissa, pissa_niter_N, olora or lora-ga"),
    Refusal(("galore_with_embedding",), TRAINING, complete=False,
            when=lambda args, typed: args.galore_with_embedding and args.galore_optim_per_parameter,
            why="the per-parameter GaLore optimizer projects linear layers only; drop one of the two"),
    # --- rlhf ----------------------------------------------------------------------------------------
    *_online_refusals(),
    Refusal(("num_infer_workers",), ("rlhf",), complete=True,
            when=lambda args, typed: args.rlhf_type == "grpo" and args.num_infer_workers != 1,
            why="vLLM runs colocated, one engine in each training process (NPROC_PER_NODE sets how many); drop it"),
    Refusal(("vllm_device",), ("rlhf",), complete=True,
            when=lambda args, typed: args.rlhf_type == "grpo" and args.vllm_device not in ([], ["auto"]),
            why="vLLM runs colocated on each training process's own GPU; vLLM on other GPUs is not supported; drop it"),
    Refusal(("vllm_limit_mm_per_prompt",), ("rlhf",), complete=True,
            when=lambda args, typed: args.rlhf_type == "grpo" and args.vllm_limit_mm_per_prompt is not None,
            why="configures images per prompt, and multimodal models are not supported yet; drop it"),
    Refusal(("ds3_gather_for_generation",), ("rlhf",), complete=False,
            when=lambda args, typed: args.use_vllm and not args.ds3_gather_for_generation,
            why="vLLM needs the whole weights to load them; keep it true with --use_vllm true"),
    Refusal(("packing",), ("rlhf",), "chosen and rejected answers are scored as whole sequences, not packed rows; on "
            "GPUs swift rlhf already lays each batch out without padding (varlen attention); drop it"),
    Refusal(("predict_with_generate", "max_new_tokens", "metric", "acc_strategy"), ("rlhf",),
            "preference training evaluates with its loss and reward metrics (rewards/accuracies, rewards/margins); "
            "generate from the checkpoint with swift infer instead; drop it"),
    Refusal(("galore_quantization", "galore_proj_quant", "galore_proj_bits", "galore_proj_group_size",
             "galore_cos_threshold", "galore_gamma_proj", "galore_queue_size"), TRAINING,
            "these configure Q-GaLore, which is not supported yet (q-galore-torch is not integrated); "
            "plain --use_galore works"),
)
