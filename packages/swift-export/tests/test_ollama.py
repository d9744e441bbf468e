"""swift_export.ollama: the Modelfile's Go TEMPLATE, run on conversations, must write what the model's Jinja
chat template writes for them.

No Go or Ollama exists here, so this file carries a small evaluator for the Go text/template subset the
exporter emits (range over .Messages with $i, variables, if / else if / else / end, eq, ne, and, not,
len, slice, index, field access, `{{-` trimming), written from Go's text/template rules; and it models
what Ollama does around the template (the Modelfile's SYSTEM given as a system message when a
conversation has none; the bos token added by the runtime when the GGUF says so).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from swift_args import ArgumentError
from swift_data.templates.builtin import BUILTIN_TEMPLATES

from swift_export.ollama import modelfile_text, write_modelfile

# -- a Go text/template evaluator, for the subset the exporter writes ----------------------------------


def go_execute(template: str, data: dict[str, Any]) -> str:
    nodes, rest = _parse(_lex(template), 0, ())
    assert rest == len(_lex(template)), "unbalanced {{ end }}"
    return "".join(_run(nodes, data, data, {}))


def _lex(template: str) -> list[tuple[str, str]]:
    """[("text", ...) | ("action", ...)], with `{{-` / `-}}` already applied to the neighbouring text."""
    items: list[tuple[str, str]] = []
    position, trim_next = 0, False
    for match in re.finditer(r"\{\{(- )?(.*?)( -)?\}\}", template, re.DOTALL):
        text = template[position:match.start()]
        text = text.lstrip(" \t\r\n") if trim_next else text
        items.append(("text", text.rstrip(" \t\r\n") if match.group(1) else text))
        items.append(("action", match.group(2).strip()))
        position, trim_next = match.end(), bool(match.group(3))
    tail = template[position:]
    items.append(("text", tail.lstrip(" \t\r\n") if trim_next else tail))
    return items


def _parse(items: list[tuple[str, str]], i: int, stops: tuple[str, ...]) -> tuple[list, int]:
    """Nodes up to one of `stops` (an action starting with it), and the index of that action."""
    nodes: list = []
    while i < len(items):
        kind, text = items[i]
        if kind == "text":
            nodes.append(("text", text))
            i += 1
        elif text.split()[0] in stops or text in stops:
            return nodes, i
        elif text.startswith("range "):
            variables, _, pipeline = text[len("range "):].partition(":=")
            body, i = _parse(items, i + 1, ("end",))
            nodes.append(("range", [v.strip() for v in variables.split(",")], pipeline.strip(), body))
            i += 1
        elif text.startswith("if "):
            branches, i = _parse_if(items, text[3:], i)
            nodes.append(("if", branches))
        elif re.match(r"\$\w+ :=", text):
            name, _, pipeline = text.partition(":=")
            nodes.append(("set", name.strip(), pipeline.strip()))
            i += 1
        else:
            nodes.append(("print", text))
            i += 1
    return nodes, i


def _parse_if(items: list[tuple[str, str]], condition: str | None, i: int) -> tuple[list, int]:
    branches = []
    while True:
        body, i = _parse(items, i + 1, ("end", "else"))
        branches.append((condition, body))
        action = items[i][1]
        if action == "end":
            return branches, i + 1
        condition = action[len("else if "):] if action.startswith("else if ") else None


def _run(nodes: list, dot: Any, root: dict, variables: dict) -> list[str]:
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "print":
            out.append(str(_evaluate(node[1], dot, root, variables)))
        elif node[0] == "set":
            variables[node[1]] = _evaluate(node[2], dot, root, variables)
        elif node[0] == "if":
            for condition, body in node[1]:
                if condition is None or _truth(_evaluate(condition, dot, root, variables)):
                    out += _run(body, dot, root, dict(variables))
                    break
        elif node[0] == "range":
            index_name, value_name = node[1]
            for index, item in enumerate(_evaluate(node[2], dot, root, variables)):
                out += _run(node[3], item, root, {**variables, index_name: index, value_name: item})
    return out


def _truth(value: Any) -> bool:
    return bool(value)  # Go's: false, 0, "", empty slices and nil are false


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "and": lambda *args: next((a for a in args if not _truth(a)), args[-1]),
    "not": lambda a: not _truth(a),
    "len": len,
    "slice": lambda items, start: items[start:],
    "index": lambda items, i: items[i],
}


def _evaluate(pipeline: str, dot: Any, root: dict, variables: dict) -> Any:
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\(|\)|\.[A-Za-z_]\w*|\$\.?[A-Za-z_]*\w*|[A-Za-z_]\w*|-?\d+', pipeline)
    value, end = _command(tokens, 0, dot, root, variables)
    assert end == len(tokens), pipeline
    return value


def _command(tokens: list[str], i: int, dot: Any, root: dict, variables: dict) -> tuple[Any, int]:
    """A function call `f arg...`, or one operand, up to a closing parenthesis."""
    if tokens[i] in _FUNCTIONS:
        function, args, i = _FUNCTIONS[tokens[i]], [], i + 1
        while i < len(tokens) and tokens[i] != ")":
            value, i = _operand(tokens, i, dot, root, variables)
            args.append(value)
        return function(*args), i
    return _operand(tokens, i, dot, root, variables)


def _operand(tokens: list[str], i: int, dot: Any, root: dict, variables: dict) -> tuple[Any, int]:
    token = tokens[i]
    if token == "(":
        value, i = _command(tokens, i + 1, dot, root, variables)
        assert tokens[i] == ")"
        i += 1
    elif token.startswith('"'):
        return json.loads(token), i + 1
    elif re.fullmatch(r"-?\d+", token):
        return int(token), i + 1
    elif token.startswith("$."):
        value, i = root[token[2:]], i + 1
    elif token.startswith("$"):
        value, i = variables[token], i + 1
    else:  # .Field on the dot
        value, i = dot[token[1:]], i + 1
    while i < len(tokens) and tokens[i].startswith("."):  # (index $.Messages 0).Role
        value, i = value[tokens[i][1:]], i + 1
    return value, i


def test_go_evaluator_follows_go_rules() -> None:
    """The evaluator itself, on Go semantics the exporter relies on: trimming, scoping, last-element test."""
    template = ('A  {{- range $i, $_ := .Messages }}\n{{- $last := eq (len (slice $.Messages $i)) 1 }}'
                '[{{ $i }}:{{ .Role }}{{ if $last }}!{{ else if eq .Role "user" }}?{{ else }}.{{ end }}]'
                '{{ if and (eq $i 1) (eq (index $.Messages 0).Role "system") }}'
                '<{{ (index $.Messages 0).Content }}>{{ end }} {{- end }}  Z')
    messages = [{"Role": "system", "Content": "s"}, {"Role": "user", "Content": "u"},
                {"Role": "assistant", "Content": "a"}]
    assert go_execute(template, {"Messages": messages}) == "A[0:system.][1:user?]<s>[2:assistant!]  Z"


# -- the exporter's templates against Jinja ----------------------------------------------------------

CONVERSATIONS = [
    [("user", "What is the capital of France?")],
    [("system", "You answer in one word."), ("user", "What is the capital of France?")],
    [("user", "Hi!"), ("assistant", "Hello. How can I help?"),
     ("user", "Write {x} and \"quotes\"\nover two lines.")],
    [("system", "Be brief."), ("user", "1 + 1?"), ("assistant", "2"), ("user", "2 + 2?"), ("assistant", "4"),
     ("user", "3 + 3?")],
    [("user", "Start a story."), ("assistant", "Once upon a time")],  # continue the assistant's message
    [("system", "You write poems."), ("user", "A haiku, please."), ("assistant", "Autumn moonlight -")],
]


def parse_modelfile(text: str) -> dict[str, Any]:
    """The commands of a Modelfile, values unquoted as Ollama's parser does (a triple-quoted value verbatim)."""
    commands: dict[str, Any] = {"PARAMETER": []}
    for match in re.finditer(r'^(\w+) (?:"""(.*?)"""|(.*?))$', text, re.MULTILINE | re.DOTALL):
        name, value = match.group(1), match.group(2) if match.group(2) is not None else match.group(3)
        if name == "PARAMETER":
            key, _, argument = value.partition(" ")
            commands["PARAMETER"].append((key, argument[1:-1] if argument.startswith('"') else argument))
        else:
            commands[name] = value
    return commands


def ollama_prompt(modelfile: dict[str, Any], conversation: list[tuple[str, str]], bos: str) -> str:
    """What Ollama feeds the model: the TEMPLATE run on the messages, the Modelfile's SYSTEM first when the
    conversation has no system message, and the bos in front when the runtime adds it (`bos` is then its text)."""
    messages = [{"Role": role, "Content": content} for role, content in conversation]
    if "SYSTEM" in modelfile and messages[0]["Role"] != "system":
        messages.insert(0, {"Role": "system", "Content": modelfile["SYSTEM"]})
    system = "\n\n".join(m["Content"] for m in messages if m["Role"] == "system")
    return bos + go_execute(modelfile["TEMPLATE"], {"Messages": messages, "System": system})


def jinja_prompt(tokenizer: Any, chat_template: str, conversation: list[tuple[str, str]]) -> str:
    """transformers' rendering: with the generation prompt after a user turn, continuing a last assistant turn."""
    messages = [{"role": role, "content": content} for role, content in conversation]
    continued = conversation[-1][0] == "assistant"
    return tokenizer.apply_chat_template(messages, chat_template=chat_template, tokenize=False,
                                         add_generation_prompt=not continued, continue_final_message=continued)


def assert_same_prompts(model_dir: Path, template: str | None, chat_template: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    modelfile = parse_modelfile(modelfile_text(model_dir, "model.gguf", template=template))
    adds_bos = tokenizer("a")["input_ids"][0] == tokenizer.bos_token_id
    for conversation in CONVERSATIONS:
        expected = jinja_prompt(tokenizer, chat_template, conversation)
        bos = tokenizer.bos_token if adds_bos else ""
        assert ollama_prompt(modelfile, conversation, bos) == expected
        # With the SYSTEM cleared (`/set system`), the template writes the model's default system prompt itself.
        without_system = {key: value for key, value in modelfile.items() if key != "SYSTEM"}
        assert ollama_prompt(without_system, conversation, bos) == expected
    return modelfile


def test_smollm2_modelfile(smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    chat_template = AutoTokenizer.from_pretrained(smollm2_dir).chat_template
    modelfile = assert_same_prompts(smollm2_dir, None, chat_template)
    text = modelfile_text(smollm2_dir, "model.gguf")
    assert text.startswith("FROM ./model.gguf\n")
    assert modelfile["SYSTEM"] == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert ("stop", "<|im_end|>") in modelfile["PARAMETER"]
    assert [key for key, _ in modelfile["PARAMETER"] if key != "stop"] == []  # no sampling in generation_config


@pytest.mark.parametrize(("name", "end_of_turn", "default_system"), [
    ("chatml", "<|im_end|>", None),
    ("qwen2_5", "<|im_end|>", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    ("llama3", "<|eot_id|>", None),
    ("gemma", "<end_of_turn>", None),
    ("mistral", "<|im_end|>", None),  # its turns end with the eos token, SmolLM2's here
    ("default", "<|im_end|>", None),
])
def test_builtin_template_modelfiles(smollm2_dir: Path, name: str, end_of_turn: str,
                                     default_system: str | None) -> None:
    modelfile = assert_same_prompts(smollm2_dir, name, BUILTIN_TEMPLATES[name])
    assert ("stop", end_of_turn) in modelfile["PARAMETER"]
    assert modelfile.get("SYSTEM") == default_system


@pytest.fixture
def model_copy(tmp_path: Path, tiny_model: Callable[[str], Path]) -> Path:
    """The tiny llama's tokenizer and generation config, to edit (a Modelfile needs no weights)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for path in tiny_model("llama").iterdir():
        if path.suffix in (".json", ".jinja"):
            shutil.copy(path, model_dir / path.name)
    return model_dir


def test_bos_left_to_the_runtime_when_the_tokenizer_adds_it(model_copy: Path,
                                                            prepend_bos: Callable[[Path], None]) -> None:
    """Llama 3 writes `{{ bos_token }}` in its template and its tokenizer adds the bos too; Ollama adds it from
    the GGUF's flag, so the Go template must not write it again."""
    prepend_bos(model_copy)
    modelfile = assert_same_prompts(model_copy, "llama3", BUILTIN_TEMPLATES["llama3"])
    assert not modelfile["TEMPLATE"].startswith("<|im_start|>")


def test_last_assistant_turn_prefix_of_its_own(model_copy: Path) -> None:
    """Qwen3's way: the turn being answered (or continued) opens with an empty think block, earlier ones not."""
    template = ("{% for m in messages %}{% if m['role'] == 'assistant' and loop.last %}"
                "{{ '<|im_start|>assistant\n<think>\n\n</think>\n\n' + m['content'] + '<|im_end|>\n' }}{% else %}"
                "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endif %}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n\n</think>\n\n' }}{% endif %}")
    (model_copy / "chat_template.jinja").write_text(template)
    modelfile = assert_same_prompts(model_copy, None, template)
    assert "{{ if $last }}" in modelfile["TEMPLATE"]


def test_generation_defaults(model_copy: Path) -> None:
    config = json.loads((model_copy / "generation_config.json").read_text())
    settings = {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05,
                "eos_token_id": [2, 0]}
    (model_copy / "generation_config.json").write_text(json.dumps({**config, **settings}))
    parameters = parse_modelfile(modelfile_text(model_copy, "model.gguf"))["PARAMETER"]
    assert [p for p in parameters if p[0] != "stop"] == [("temperature", "0.7"), ("top_p", "0.8"),
                                                          ("top_k", "20"), ("repeat_penalty", "1.05")]
    assert {("stop", "<|im_end|>"), ("stop", "<|endoftext|>")} <= set(parameters)  # eos ids 2 and 0
    (model_copy / "generation_config.json").write_text(json.dumps({**config, **settings, "do_sample": False}))
    parameters = parse_modelfile(modelfile_text(model_copy, "model.gguf"))["PARAMETER"]
    assert [p for p in parameters if p[0] != "stop"] == [("temperature", "0")]  # greedy, as transformers runs it


def test_template_that_does_not_decompose(model_copy: Path, tmp_path: Path) -> None:
    """Turns numbered by position are no per-role prefix and suffix: refused in one line, nothing written."""
    (model_copy / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ loop.index|string + '. ' + m['role'] + ': ' + m['content'] + '\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(ArgumentError) as error:
        write_modelfile(model_copy, out_dir, "model.gguf")
    assert "\n" not in str(error.value) and "Ollama template" in str(error.value)
    assert not list(out_dir.iterdir())


def test_write_modelfile(model_copy: Path, tmp_path: Path) -> None:
    path = write_modelfile(model_copy, tmp_path, "model.gguf")
    assert path == tmp_path / "Modelfile"
    assert path.read_text() == modelfile_text(model_copy, "model.gguf")


def test_command_line_settings_override_the_models(model_copy: Path) -> None:
    """--temperature and the like override generation_config.json, --stop_words add to the template's stops,
    and --system replaces the default system prompt: Ollama then sends it as the first message."""
    from transformers import AutoTokenizer

    config = json.loads((model_copy / "generation_config.json").read_text())
    settings = {"do_sample": True, "temperature": 0.7}
    (model_copy / "generation_config.json").write_text(json.dumps({**config, **settings}))
    text = modelfile_text(model_copy, "model.gguf", system="Answer in French.",
                          parameters={"temperature": 0.2, "num_predict": 64, "stop": ["END", "<|im_end|>"]})
    modelfile = parse_modelfile(text)
    assert [p for p in modelfile["PARAMETER"] if p[0] != "stop"] == [("temperature", "0.2"),
                                                                     ("num_predict", "64")]
    stops = [value for key, value in modelfile["PARAMETER"] if key == "stop"]
    assert "END" in stops and stops.count("<|im_end|>") == 1
    tokenizer = AutoTokenizer.from_pretrained(model_copy)
    assert ollama_prompt(modelfile, [("user", "Hi")], "") == jinja_prompt(
        tokenizer, tokenizer.chat_template, [("system", "Answer in French."), ("user", "Hi")])


def test_system_prompt_on_a_template_that_drops_system_messages_is_refused(model_copy: Path) -> None:
    """A template with no place for a system prompt would leave a SYSTEM line that Ollama sends and the
    template then drops: the user's --system would do nothing."""
    (model_copy / "chat_template.jinja").write_text(
        "{% for m in messages %}{% if m['role'] != 'system' %}"
        "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    assert "SYSTEM" not in modelfile_text(model_copy, "model.gguf")
    with pytest.raises(ArgumentError, match="no place for a system prompt"):
        modelfile_text(model_copy, "model.gguf", system="Be brief.")


def test_quotes_in_values_survive_ollamas_parser(model_copy: Path) -> None:
    """Ollama's parser takes a quoted value verbatim up to the closing quote at the end of the line: quotes
    inside a system prompt or a stop string need no escaping."""
    text = modelfile_text(model_copy, "model.gguf", system='Be "nice"', parameters={"stop": ['say "x"']})
    modelfile = parse_modelfile(text)
    assert modelfile["SYSTEM"] == 'Be "nice"'
    assert ("stop", 'say "x"') in modelfile["PARAMETER"]
