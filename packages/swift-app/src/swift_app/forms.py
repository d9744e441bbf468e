"""A command's form, generated from its argument dataclass: the same names, groups, defaults, choices and help.

Nothing here lists options by hand: `swift_args.fields.specs(schema)` gives every field, and each
becomes the widget its type asks for. The reference's important (🔥) arguments of the command's main
groups are shown; the rest sit in closed groups as `--help` groups them. Arguments the command refuses
whatever their value are left out: a form should not offer what cannot run.

The command a form stands for is only what the user changed: a widget left at its default adds nothing,
so the previewed `swift ...` line reads like one a person would type.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from swift_args.commands import COMMANDS
from swift_args.fields import ArgSpec
from swift_args.help import GROUP_TITLES, format_default, grouped_specs
from swift_args.refusals import refused_fields

# Groups whose important arguments are shown open; those of a specific tuner or engine wait in its group.
MAIN_GROUPS = {"base", "model", "data", "template", "generation", "tuner", "lora", "trainer", "train", "rlhf",
               "infer", "deploy", "export", "eval", "sampling", "merge"}
# Always in the open part, important or not: what almost every run names.
ALWAYS_MAIN = ("model", "adapters", "dataset", "output_dir", "max_steps", "logging_steps", "eval_dataset",
               "eval_limit", "val_dataset", "result_path", "quant_method", "to_ollama", "max_new_tokens",
               "temperature")
NONE = ""  # how a form shows "not set" (None)


@dataclass
class Widget:
    spec: ArgSpec
    component: Any
    initial: Any  # the value the widget starts with: the field's default as shown

    def tokens(self, value: Any) -> list[str] | None:
        """The command-line values for `value`, or None when it is the default (nothing to pass)."""
        if _same(value, self.initial):
            return None
        if isinstance(value, bool):
            return [str(value).lower()]
        if isinstance(value, list):  # a multi-choice list
            return [str(v) for v in value]
        text = "" if value is None else str(value).strip()
        if self.spec.is_list and not self.spec.choices:
            return shlex.split(text)  # cleared: no values, an empty list
        if not text and _optional(self.spec):
            return ["None"]  # cleared: unset, the parser's spelling of None
        return [text]

    def shown(self, value: Any) -> Any:
        """`value` (from an args.json) as this widget shows it."""
        return _display(self.spec, value)


@dataclass
class CommandForm:
    command: str
    widgets: list[Widget] = field(default_factory=list)

    @property
    def components(self) -> list[Any]:
        return [widget.component for widget in self.widgets]

    def widget(self, name: str) -> Widget:
        return next(widget for widget in self.widgets if widget.spec.name == name)

    def argv(self, values: list[Any]) -> list[str]:
        """The arguments the widgets' current values stand for."""
        argv: list[str] = []
        for widget, value in zip(self.widgets, values):
            tokens = widget.tokens(value)
            if tokens is not None:
                argv += [f"--{widget.spec.name}", *tokens]
        return argv

    def filled(self, arguments: dict[str, Any]) -> list[Any]:
        """Each widget's value for a set of arguments (a run's args.json): the widget's default where absent."""
        return [widget.shown(arguments[widget.spec.name]) if widget.spec.name in arguments else widget.initial
                for widget in self.widgets]


def build_form(command: str, lang: str) -> CommandForm:
    """Lay out `command`'s form in the current gradio context."""
    import gradio as gr

    form = CommandForm(command)
    refused = refused_fields(command)
    groups = {name: [spec for spec in members if spec.name not in refused]
              for name, members in grouped_specs(COMMANDS[command].schema).items()}
    main = [spec for members in groups.values() for spec in members if is_main(spec)]
    main.sort(key=lambda spec: ALWAYS_MAIN.index(spec.name) if spec.name in ALWAYS_MAIN else len(ALWAYS_MAIN))
    with gr.Group(), gr.Row(equal_height=False):
        for spec in main:
            form.widgets.append(_widget(command, spec))
    for name, members in groups.items():
        rest = [spec for spec in members if not is_main(spec)]
        if not rest:
            continue
        with gr.Accordion(_group_title(name, lang), open=False, elem_id=f"{command}-group-{name}"):
            with gr.Row(equal_height=False):
                for spec in rest:
                    form.widgets.append(_widget(command, spec))
    return form


def is_main(spec: ArgSpec) -> bool:
    return spec.name in ALWAYS_MAIN or (spec.hot and spec.group in MAIN_GROUPS)


def _group_title(name: str, lang: str) -> str:
    from swift_app.labels import GROUP_TITLES_ZH

    if lang == "zh":
        return GROUP_TITLES_ZH.get(name, GROUP_TITLES.get(name, name))
    return GROUP_TITLES.get(name, name)


def _widget(command: str, spec: ArgSpec) -> Widget:
    import gradio as gr

    initial = _display(spec, spec.default)
    common = {"label": f"--{spec.name}", "info": f"{spec.help} (default: {format_default(spec.default)})",
              "elem_id": f"{command}-{spec.name}", "min_width": 260}
    choices = _choices(spec)
    if spec.is_bool and not _optional(spec):
        component = gr.Checkbox(value=initial, **common)
    elif choices is not None and spec.is_list:
        component = gr.Dropdown(choices=choices, value=initial, multiselect=True, **common)
    elif choices is not None:
        component = gr.Dropdown(choices=([NONE] if _optional(spec) else []) + choices, value=initial, **common)
    else:
        component = gr.Textbox(value=initial, max_lines=1, **common)
    return Widget(spec, component, initial)


def _choices(spec: ArgSpec) -> list[str] | None:
    if spec.choices:
        return [str(choice) for choice in spec.choices]
    if spec.is_bool:  # an optional boolean: unset, true or false
        return ["true", "false"]
    return None


def _optional(spec: ArgSpec) -> bool:
    kind = spec.type
    return get_origin(kind) is not None and type(None) in get_args(kind) or spec.default is None


def _display(spec: ArgSpec, value: Any) -> Any:
    """How a widget of `spec` shows `value`."""
    choices = _choices(spec)
    if spec.is_bool and choices is not None and not _optional(spec) and isinstance(value, bool):
        return value  # a checkbox
    if value is None:
        return [] if spec.is_list and choices is not None else NONE
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        if choices is not None:
            return [str(v) for v in value]
        return shlex.join(str(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _same(value: Any, initial: Any) -> bool:
    if isinstance(initial, list) or isinstance(value, list):
        return list(value or []) == list(initial or [])
    if isinstance(initial, bool) or isinstance(value, bool):
        return value == initial
    return str(value if value is not None else NONE).strip() == str(initial).strip()

