"""The Ollama Modelfile of a GGUF export: the chat template as an Ollama (Go) template, the stop
strings, the generation defaults, and the default system prompt.

Ollama does not run Jinja: its TEMPLATE is a Go text/template over `.Messages` (each with `.Role`
and `.Content`). The model's Jinja template is translated by rendering it on sentinel
conversations and reading off what it writes around each message: a prefix and a suffix per role,
what comes before the first message, and the generation prompt. The Go template writes the same
pieces around Ollama's messages. The pieces are then checked by re-assembling other conversations
(with and without a system message, several turns, ending on a user turn or on an assistant turn
to continue) and comparing with the Jinja rendering; a template that does not decompose this way
is refused with one line.

Only the tool-free path of a template is translated: tool messages and tool calls have no branch
in the Go template.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

MODELFILE = "Modelfile"

# generation_config.json -> Ollama PARAMETER names
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
             "repetition_penalty": "repeat_penalty"}

_BOS, _EOS, _SYSTEM = "[[swift-bos]]", "[[swift-eos]]", "[[swift-system]]"
_USER_1, _USER_2, _ASSISTANT_1 = "[[swift-user-1]]", "[[swift-user-2]]", "[[swift-assistant-1]]"

_Render = Callable[[list[dict[str, str]], bool, bool], str]  # (messages, add_generation_prompt, continue_final)


class _Undecomposable(Exception):
    """The template's turns are not per-role prefixes and suffixes; the message says where."""


@dataclass(frozen=True)
class _Turns:
    """What a chat template writes around each message (the bos and eos as the _BOS/_EOS sentinels)."""

    start: str  # before everything (the bos, when the template writes it)
    no_system: str  # after `start` when the first message is not a system one (a default system prompt)
    system: tuple[str, str] | None  # prefix, suffix of a system message rendered as its own turn
    folded_system: tuple[str, str] | None  # prefix, separator of a system message put into the first user turn
    user: tuple[str, str]
    assistant: tuple[str, str, str]  # prefix in the history, prefix of a last message (continued), suffix
    generation: str  # after a last user message

    def assemble(self, messages: list[dict[str, str]]) -> str:
        """The conversation as the Go template writes it: Ollama ends on a user turn (then the generation
        prompt follows) or on an assistant turn, which the model continues."""
        out = [self.start]
        for i, message in enumerate(messages):
            role, content, last = message["role"], message["content"], i == len(messages) - 1
            if i == 0 and role != "system":
                out.append(self.no_system)
            if role == "system" and self.system is not None:
                out += [self.system[0], content, self.system[1]]
            elif role == "user":
                out.append(self.user[0])
                if self.folded_system is not None and i == 1 and messages[0]["role"] == "system":
                    out += [self.folded_system[0], messages[0]["content"], self.folded_system[1]]
                out += [content, self.user[1], self.generation if last else ""]
            elif role == "assistant":
                history_prefix, last_prefix, suffix = self.assistant
                out += [last_prefix if last else history_prefix, content, "" if last else suffix]
        return "".join(out)

    def default_system(self) -> str | None:
        """The system prompt the template writes when a conversation has none, if it writes one."""
        if self.system is None:
            return None
        (prefix, suffix), text = self.system, self.no_system
        if text.startswith(prefix) and text.endswith(suffix) and len(text) > len(prefix) + len(suffix):
            return text[len(prefix):len(text) - len(suffix)]
        return None


def modelfile_text(model_dir: Path, gguf_name: str, *, template: str | None = None,
                   parameters: dict[str, Any] | None = None, system: str | None = None) -> str:
    """The Modelfile for `gguf_name` (a file beside it) of the model in `model_dir`.

    `template` names a built-in template (--template); by default the model's own chat template is
    translated, else the built-in "default" one, as training and inference pick it. `parameters`
    (Ollama names; "stop" a list) override generation_config.json's; `system` replaces the
    template's default system prompt.
    """
    from swift_data.models import load_tokenizer
    from swift_data.templates.builtin import BUILTIN_TEMPLATES

    from swift_export.gguf_file import special_tokens_added

    if template is not None and template not in BUILTIN_TEMPLATES:
        raise ArgumentError(f"--template: unknown template '{template}'; valid templates are: "
                            f"{', '.join(BUILTIN_TEMPLATES)}")
    tokenizer = load_tokenizer(model_dir)
    chat_template = BUILTIN_TEMPLATES[template or "default"]
    if template is None and tokenizer.chat_template:
        chat_template = tokenizer.chat_template
    tokens = {_BOS: tokenizer.bos_token or "", _EOS: tokenizer.eos_token or ""}
    try:
        turns = _decompose(_renderer(tokenizer, chat_template))
        # llama.cpp and Ollama put the bos token before every prompt themselves when the GGUF says so.
        start = "" if special_tokens_added(tokenizer)[0] and turns.start == _BOS else turns.start
        go_template = _go_template(turns, start, tokens)
    except _Undecomposable as exc:
        why = f"{model_dir}: cannot translate the chat template to an Ollama template: {exc}"
        raise ArgumentError(why) from None
    lines = [f"FROM ./{gguf_name}", f"TEMPLATE {_quoted(go_template, model_dir)}"]
    if system is not None and turns.system is None and turns.folded_system is None:
        raise ArgumentError("--system: this chat template has no place for a system prompt (it drops system "
                            "messages); drop --system, or pick a --template that has one")
    if system is None and (default_system := turns.default_system()) is not None:
        system = _with_tokens(default_system, tokens)
    if system is not None:  # Ollama sends it as the first message of a conversation that has no system one
        lines.append(f"SYSTEM {_quoted(system, model_dir)}")
    parameters = dict(parameters or {})
    stops = _stops(turns, tokenizer, model_dir, tokens) + list(parameters.pop("stop", []))
    lines += [f'PARAMETER stop "{stop}"' for i, stop in enumerate(stops) if stop and stop not in stops[:i]]
    lines += [f"PARAMETER {name} {value}" for name, value in {**_sampling(model_dir), **parameters}.items()]
    return "\n".join(lines) + "\n"


def write_modelfile(model_dir: Path, out_dir: Path, gguf_name: str, *, template: str | None = None,
                    parameters: dict[str, Any] | None = None, system: str | None = None) -> Path:
    """Write `out_dir`/Modelfile (see modelfile_text) for `gguf_name` in `out_dir`; returns its path."""
    text = modelfile_text(model_dir, gguf_name, template=template, parameters=parameters, system=system)
    path = out_dir / MODELFILE
    path.write_text(text, encoding="utf-8")
    return path


# -- reading a Jinja template's turns ----------------------------------------------------------


def _renderer(tokenizer: Any, chat_template: str) -> _Render:
    from jinja2 import TemplateError

    def render(messages: list[dict[str, str]], generation: bool, continued: bool) -> str:
        # The bos/eos are bound to sentinels, so text the template writes through `bos_token` can be
        # told apart from the same text written literally (SmolLM2's bos is its `<|im_start|>`).
        try:
            return tokenizer.apply_chat_template(
                messages, chat_template=chat_template, tokenize=False, add_generation_prompt=generation,
                continue_final_message=continued, bos_token=_BOS, eos_token=_EOS)
        except (TemplateError, ValueError) as exc:  # raise_exception(), or a continued message it rewrites
            roles = "/".join(message["role"] for message in messages)
            why = f"rendering a {roles} conversation fails ({type(exc).__name__}: {exc})"
            raise _Undecomposable(why) from None

    return render


def _decompose(render: _Render) -> _Turns:
    """Read the per-role pieces off renderings of sentinel conversations, then check them on others."""
    user, user_assistant = [_msg("user", _USER_1)], [_msg("user", _USER_1), _msg("assistant", _ASSISTANT_1)]
    user_only = render(user, False, False)
    before_user, user_suffix = _split(user_only, _USER_1)
    generation = _after(render(user, True, False), user_only)
    assistant_suffix = _split(render(user_assistant, False, False), _ASSISTANT_1)[1]
    continued = _split(_split(render(user_assistant, False, True), _USER_1)[1], _ASSISTANT_1)[0]
    history = render([*user_assistant, _msg("user", _USER_2)], False, False)
    between, rest = _split(_split(history, _USER_1)[1], _ASSISTANT_1)
    user_prefix = _after(_split(rest, _USER_2)[0], assistant_suffix)
    if not before_user.endswith(user_prefix):
        raise _Undecomposable("the first user turn does not start like the others")
    head = before_user[:len(before_user) - len(user_prefix)]
    start = _BOS if head.startswith(_BOS) else ""
    turns = _Turns(start=start, no_system=head[len(start):], system=None, folded_system=None,
                   user=(user_prefix, user_suffix),
                   assistant=(_after(between, user_suffix), _after(continued, user_suffix), assistant_suffix),
                   generation=generation)
    turns = _with_system(turns, render)
    _check(turns, render)
    return turns


def _with_system(turns: _Turns, render: _Render) -> _Turns:
    """Where a system message goes: a turn of its own, or into the first user turn (Gemma, Mistral)."""
    try:
        text = render([_msg("system", _SYSTEM), _msg("user", _USER_1)], False, False)
    except _Undecomposable:
        return turns  # a template that refuses system messages (Gemma's own): the Go template drops them too
    if _SYSTEM not in text:
        return turns
    before, after = _split(text, _SYSTEM)
    between = _split(after, _USER_1)[0]
    user_prefix = turns.user[0]
    if user_prefix and before.startswith(turns.start + user_prefix):
        return replace(turns, folded_system=(before[len(turns.start + user_prefix):], between))
    if not before.startswith(turns.start) or not between.endswith(user_prefix):
        raise _Undecomposable("a system message is neither a turn of its own nor part of the first user turn")
    return replace(turns, system=(before[len(turns.start):], between[:len(between) - len(user_prefix)]))


def _check(turns: _Turns, render: _Render) -> None:
    """The pieces must rebuild, exactly, conversations they were not read from."""
    u1, a1, u2, a2 = ("[[swift-check-user-1]]", "[[swift-check-assistant-1]]", "[[swift-check-user-2]]",
                      "[[swift-check-assistant-2]]")
    turns_in_order = [_msg("user", u1), _msg("assistant", a1), _msg("user", u2), _msg("assistant", a2)]
    conversations = [turns_in_order[:length] for length in (1, 2, 3, 4)]
    if turns.system is not None or turns.folded_system is not None:
        conversations += [[_msg("system", "[[swift-check-system]]"), *messages] for messages in conversations]
    for messages in conversations:
        continued = messages[-1]["role"] == "assistant"
        if turns.assemble(messages) != render(messages, not continued, continued):
            roles = "/".join(message["role"] for message in messages)
            raise _Undecomposable(f"its {roles} conversation is not the per-role prefixes and suffixes of "
                                  "the others")


def _msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _split(text: str, sentinel: str) -> tuple[str, str]:
    if text.count(sentinel) != 1:
        raise _Undecomposable("a message's text does not appear exactly once in its rendering")
    before, after = text.split(sentinel)
    return before, after


def _after(text: str, prefix: str) -> str:
    if not text.startswith(prefix):
        raise _Undecomposable("a turn is rendered differently depending on what follows it")
    return text[len(prefix):]


# -- writing the Modelfile ---------------------------------------------------------------------


def _go_template(turns: _Turns, start: str, tokens: dict[str, str]) -> str:
    """The Go template writing `turns` around `.Messages`; `start` replaces `turns.start` (empty when the
    runtime adds the bos itself), `tokens` maps the bos/eos sentinels to the tokens' text."""
    def text(piece: str) -> str:
        piece = _with_tokens(piece, tokens)
        if "{{" in piece:  # it would start an action
            raise _Undecomposable(f"it writes '{{{{' as text ({piece!r}), which an Ollama template cannot hold")
        return piece

    roles = ['{{ if eq .Role "user" }}']
    if turns.system is not None:
        roles = ['{{ if eq .Role "system" }}', text(turns.system[0]), "{{ .Content }}", text(turns.system[1]),
                 '{{ else if eq .Role "user" }}']
    folded = []
    if turns.folded_system is not None:
        prefix, separator = turns.folded_system
        folded = ['{{ if and (eq $i 1) (eq (index $.Messages 0).Role "system") }}', text(prefix),
                  "{{ (index $.Messages 0).Content }}", text(separator), "{{ end }}"]
    history_prefix, last_prefix, assistant_suffix = (text(piece) for piece in turns.assistant)
    assistant_prefix = [history_prefix]
    if history_prefix != last_prefix:  # e.g. Qwen3's empty think block, written only in the turn being answered
        assistant_prefix = ["{{ if $last }}", last_prefix, "{{ else }}", history_prefix, "{{ end }}"]
    no_system = ['{{ if and (eq $i 0) (ne .Role "system") }}', text(turns.no_system), "{{ end }}"]
    return _join_go([
        text(start), "{{ range $i, $_ := .Messages }}", "{{ $last := eq (len (slice $.Messages $i)) 1 }}",
        *(no_system if turns.no_system else []),
        *roles, text(turns.user[0]), *folded, "{{ .Content }}", text(turns.user[1]),
        *(["{{ if $last }}", text(turns.generation), "{{ end }}"] if turns.generation else []),
        '{{ else if eq .Role "assistant" }}', *assistant_prefix, "{{ .Content }}",
        *(["{{ if not $last }}", assistant_suffix, "{{ end }}"] if assistant_suffix else []),
        "{{ end }}", "{{ end }}",
    ])


def _join_go(parts: list[str]) -> str:
    """Actions ("{{ ... }}") and literal text as one template. An action that follows another starts a
    new line, which its `{{-` trims; one that follows text stays on the text's line, since a `{{-`
    there would trim the text's own trailing whitespace."""
    out, after_action = [], False
    for part in parts:
        if not part:
            continue
        is_action = part.startswith("{{")  # text holding "{{" was refused
        out.append("\n{{-" + part[2:] if is_action and after_action else part)
        after_action = is_action
    return "".join(out)


def _with_tokens(text: str, tokens: dict[str, str]) -> str:
    for sentinel, token in tokens.items():
        text = text.replace(sentinel, token)
    return text


def _quoted(text: str, model_dir: Path) -> str:
    # Ollama's parser takes a triple-quoted value verbatim, newlines included, up to the next `"""`.
    if '"""' in text:
        raise ArgumentError(f"{model_dir}: the Modelfile's template or system prompt would contain '\"\"\"', "
                            "which a Modelfile cannot quote")
    return f'"""{text}"""'


def _stops(turns: _Turns, tokenizer: Any, model_dir: Path, tokens: dict[str, str]) -> list[str]:
    """The end of an assistant turn (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`), the eos tokens, and
    the start of a user turn (a model that runs on writes the next question); repeats and blanks included."""
    eos_ids = _read_json(model_dir / "generation_config.json").get("eos_token_id")
    eos_ids = eos_ids if isinstance(eos_ids, list) else [eos_ids] if eos_ids is not None else []
    return [_with_tokens(turns.assistant[2], tokens).strip(), tokenizer.eos_token or "",
            *(tokenizer.convert_ids_to_tokens(token_id) or "" for token_id in eos_ids),
            _with_tokens(turns.user[0], tokens).strip()]


def _sampling(model_dir: Path) -> dict[str, Any]:
    """generation_config.json's sampling settings; an explicit greedy (do_sample false) is temperature 0."""
    config = _read_json(model_dir / "generation_config.json")
    if config.get("do_sample") is False:
        return {"temperature": 0}
    return {name: config[key] for key, name in _SAMPLING.items() if config.get(key) is not None}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
