"""The table of `swift` commands: name, schema, the package that implements it."""

from __future__ import annotations

from dataclasses import dataclass

from swift_args.schema import (
    AppArguments,
    DeployArguments,
    EvalArguments,
    ExportArguments,
    InferArguments,
    MergeLoraArguments,
    PtArguments,
    RlhfArguments,
    SampleArguments,
    TrainArguments,
    WebUIArguments,
)

ENTRY_POINT_GROUP = "swift.commands"


@dataclass(frozen=True)
class Command:
    """One `swift` command: its name, argument schema, the package that implements it, and a summary."""

    name: str
    schema: type
    package: str
    summary: str

    @property
    def is_training(self) -> bool:
        return issubclass(self.schema, TrainArguments)


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("sft", TrainArguments, "swift-train", "Supervised fine-tuning (LoRA, full and other tuners)."),
        Command("pt", PtArguments, "swift-train", "Continued pre-training on plain text."),
        Command(
            "rlhf",
            RlhfArguments,
            "swift-train",
            "Preference training: DPO, ORPO, SimPO, CPO, KTO and reward models (PPO and GRPO not yet).",
        ),
        Command("infer", InferArguments, "swift-infer", "Chat with a model, or run it over a dataset."),
        Command("deploy", DeployArguments, "swift-infer", "Serve a model through an OpenAI-compatible API."),
        Command("sample", SampleArguments, "swift-infer", "Sample many responses per prompt, scored by reward models."),
        Command("merge-lora", MergeLoraArguments, "swift-infer", "Merge LoRA adapters into the base weights."),
        Command(
            "export",
            ExportArguments,
            "swift-export",
            "Merge, quantize, convert to Ollama/GGUF, push to the hub.",
        ),
        Command(
            "eval",
            EvalArguments,
            "swift-eval",
            "Evaluate a local model or an OpenAI-compatible URL.",
        ),
        Command(
            "app",
            AppArguments,
            "swift-app",
            "A chat page (gradio) over a local or remote deployment.",
        ),
        Command(
            "web-ui", WebUIArguments, "swift-app", "A console (gradio) that starts, follows and stops every command."
        ),
    )
}
