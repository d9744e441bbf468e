"""No argument is parsed, stored and ignored: each is read by its command's code or refused before any work.

The check reads source, not behaviour: for each command it follows the imports of the
modules that run it (within our packages), and collects every attribute read (`args.lora_rank`,
`options.streaming`) and every `getattr(x, "name")`. A schema field is accounted for when it is read
there, when transformers' Seq2SeqTrainingArguments takes it by name (the trainer arguments are passed
through), or when swift_args.refusals refuses it for that command. The schema's own modules and the
refusal table do not count as readers: a field read only by its own validation is not used.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
from swift_args import refusals
from swift_args.commands import COMMANDS
from swift_args.fields import specs
from swift_args.resolve import parse_args

# The modules each command's entry point hands its arguments to.
RUNS = {
    "sft": ("swift_train.cli", "swift_train.sft"),
    "pt": ("swift_train.cli", "swift_train.sft"),
    "rlhf": ("swift_train.cli", "swift_train.sft"),
    "infer": ("swift_infer.infer",),
    "deploy": ("swift_infer.deploy",),
    "sample": ("swift_infer.sample",),
    "merge-lora": ("swift_infer.merge",),
    "export": ("swift_export.export", "swift_export.quantize", "swift_export.calibration", "swift_export.hub",
               "swift_export.ollama_export"),
    # eval hands the deployment's arguments to a `swift deploy` child, whose code reads them.
    "eval": ("swift_eval.evaluate", "swift_infer.deploy"),
    # app hands the deployment's arguments to a `swift deploy` child too (without --base_url).
    "app": ("swift_app.app", "swift_infer.deploy"),
    "web-ui": ("swift_app.web_ui",),
}
REQUIRED = {"merge-lora": ["--adapters", "some-adapter"], "export": ["--model", "m", "--merge_lora", "false",
                                                                     "--push_to_hub", "true", "--hub_model_id", "a/b"], "sample": ["--model", "some-model", "--dataset", "d.jsonl"]}
NOT_READERS = ("swift_args.schema", "swift_args.fields", "swift_args.refusals", "swift_args.docs",
               "swift_args.json_schema", "swift_args.help", "swift_args.aliases")


def _source(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _imported(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):  # function-level imports too: commands import heavy code lazily
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("swift_")}


def code_of(entries: tuple[str, ...]) -> dict[str, ast.AST]:
    """The parsed modules a command runs: its entry modules and everything of ours they import."""
    trees: dict[str, ast.AST] = {}
    todo = [*entries, "swift_args.cli"]  # every command is parsed and prepared there first
    while todo:
        module = todo.pop()
        if module in trees or module.startswith(NOT_READERS):
            continue
        path = _source(module)
        if path is None:
            continue
        trees[module] = ast.parse(path.read_text(), str(path))
        todo += sorted(_imported(trees[module]))
    return trees


def names_read(trees: dict[str, ast.AST]) -> set[str]:
    return _read_on_options(trees) | _read_through_option_classes(trees)


def _read_through_option_classes(trees: dict[str, ast.AST]) -> set[str]:
    """Fields copied into an options dataclass by `pick_fields(cls, args)` and read on some object there.

    (DataOptions, PipelineOptions, the engine's settings: `self.strict`, `pipeline.enable_cache`.)
    """
    copied, attributes = set(), set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                attributes.add(node.attr)
            if isinstance(node, ast.ClassDef) and any(
                isinstance(call, ast.Call) and getattr(call.func, "id", None) == "pick_fields" for call in ast.walk(node)
            ):
                copied |= {item.target.id for item in node.body
                           if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)}
    return copied & attributes


def _read_on_options(trees: dict[str, ast.AST]) -> set[str]:
    read = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and _holds_options(node.value):
                read.add(node.attr)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                  and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
                read.add(node.args[1].value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                read.add(node.args[0].value)  # values.get("load_args"): the parser's own reads
    return read


def _holds_options(node: ast.AST) -> bool:
    """`args`, `self.swift_args`, `options`, `data_options`...: the objects our code keeps arguments in.

    Reads of other objects do not count, so `trainer.optimizer` is no use of `--optimizer`.
    """
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.endswith(("args", "options"))


def passed_through(command: str) -> set[str]:
    """Trainer arguments that reach transformers by name (swift_train.training_args)."""
    if not COMMANDS[command].is_training:
        return set()
    from swift_args.schema.trainer import TrainerArguments
    from transformers import Seq2SeqTrainingArguments

    known = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    return set(specs(TrainerArguments)) & known


def test_every_implemented_command_is_audited():
    assert set(RUNS) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(RUNS))
def test_each_argument_is_used_or_refused(command):
    read = names_read(code_of(RUNS[command])) | passed_through(command) | refusals.refused_fields(command)
    ignored = [name for name in specs(COMMANDS[command].schema) if name not in read]
    assert not ignored, (f"swift {command} parses these arguments but no code of it reads them: {ignored}; "
                         "use each, or add it to swift_args.refusals with the reason and what to do instead")


def test_refusal_table_names_real_fields_and_commands():
    for refusal in refusals.REFUSALS:
        assert refusal.why and refusal.commands
        for command in refusal.commands:
            schema = specs(COMMANDS[command].schema)
            missing = [name for name in refusal.fields if name not in schema]
            assert not missing, f"refusal of {refusal.fields} for swift {command}: no such argument {missing}"


@pytest.mark.parametrize("command", sorted(RUNS))
def test_every_complete_refusal_fires_on_a_typed_value(command):
    """Each fully refused field, typed with some non-default value, is refused at parse time."""
    for name in sorted(refusals.refused_fields(command)):
        spec = specs(COMMANDS[command].schema)[name]
        argv = [*REQUIRED.get(command, ["--model", "some-model"]), f"--{name}", *_some_other_value(spec)]
        with pytest.raises(Exception) as caught:
            parse_args(command, argv)
        assert f"--{name}" in str(caught.value), (name, str(caught.value))


def _some_other_value(spec) -> list[str]:
    if spec.choices:
        return [str(next(c for c in spec.choices if c != spec.default))]
    if spec.is_bool:
        return [str(not spec.default).lower()]
    element = spec.element_type
    if spec.is_list:
        return ["7"] if element in (int, float) else ["something.json"]
    if element is int or (spec.default is not None and isinstance(spec.default, int)):
        return [str((spec.default or 0) + 2)]
    if element is float:
        return [str((spec.default or 0.0) + 0.5)]
    if element is dict or isinstance(spec.default, dict):
        return ['{"key": 1}']
    return ["something"]
