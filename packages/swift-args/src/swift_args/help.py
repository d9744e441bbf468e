"""`swift <command> --help`: every argument, grouped as in the reference, from the schema itself."""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

from swift_args.commands import Command
from swift_args.fields import ArgSpec, specs, type_name

GROUP_TITLES = {
    "base": "Base arguments",
    "model": "Model arguments",
    "data": "Data arguments",
    "template": "Template arguments",
    "generation": "Generation arguments",
    "quantization": "Quantization arguments",
    "trainer": "Trainer arguments (Seq2SeqTrainer)",
    "tuner": "Tuner arguments",
    "full": "Full-training arguments",
    "lora": "LoRA arguments",
    "lora_ga": "LoRA-GA arguments",
    "fourierft": "FourierFt arguments",
    "boft": "BOFT arguments",
    "vera": "Vera arguments",
    "galore": "GaLore arguments",
    "lisa": "LISA arguments",
    "llamapro": "LLaMA-Pro arguments",
    "adalora": "AdaLoRA arguments",
    "reft": "ReFT arguments",
    "liger": "Liger arguments",
    "swanlab": "SwanLab arguments",
    "train": "Training arguments",
    "rlhf": "RLHF arguments",
    "reward_model": "Reward model arguments",
    "ppo": "PPO arguments",
    "grpo": "GRPO arguments",
    "merge": "Merge arguments",
    "vllm": "vLLM arguments",
    "lmdeploy": "LMDeploy arguments",
    "infer": "Inference arguments",
    "deploy": "Deployment arguments",
    "web_ui": "Web-UI arguments",
    "app": "App arguments",
    "eval": "Evaluation arguments",
    "export": "Export arguments",
    "sampling": "Sampling arguments",
    "mcts": "MCTS arguments",
}


def grouped_specs(schema: type) -> dict[str, list[ArgSpec]]:
    groups: dict[str, list[ArgSpec]] = {name: [] for name in GROUP_TITLES}
    for spec in specs(schema).values():
        groups.setdefault(spec.group, []).append(spec)
    return {name: members for name, members in groups.items() if members}


def format_default(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value) if value == "" else value
    if value is None:
        return "None"
    if isinstance(value, list):
        return " ".join(map(str, value)) if value else "[]"
    return str(value)


def format_option(spec: ArgSpec, width: int) -> str:
    metavar = spec.metavar or ("true|false" if spec.is_bool else type_name(spec.element_type).upper().replace(" ", "_"))
    if spec.choices:
        metavar = "{" + ",".join(map(str, spec.choices)) + "}"
    if spec.is_list:
        metavar += " ..."
    head = f"  --{spec.name} {metavar}"
    body = f"{spec.help} (default: {format_default(spec.default)})"
    if spec.hot:
        body = "* " + body
    wrapped = textwrap.fill(body, width=width, initial_indent="      ", subsequent_indent="      ")
    return head + "\n" + wrapped


def format_help(command: Command) -> str:
    width = min(shutil.get_terminal_size((110, 24)).columns, 110)
    lines = [
        f"usage: swift {command.name} [--name value ...]",
        "",
        command.summary,
        "Lists take several values (--dataset a.jsonl b.jsonl) or commas (--dataset a,b); dicts are JSON;",
        "booleans are true/false. Arguments marked * are the important ones.",
    ]
    for group, members in grouped_specs(command.schema).items():
        lines += ["", f"{GROUP_TITLES.get(group, group)}:"]
        ordered = sorted(members, key=lambda s: not s.hot)
        lines += [format_option(spec, width) for spec in ordered]
    return "\n".join(lines) + "\n"
