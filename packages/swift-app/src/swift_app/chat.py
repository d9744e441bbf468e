"""The chat panel: a gradio chatbot that streams answers from an OpenAI-compatible server.

`swift app` shows it over its own local deployment or --base_url; `swift web-ui`'s infer tab shows it
over a deployment of the checkpoint it was sent. The page keeps the conversation (gradio's messages
format) and sends all of it with each request, so the server needs no session of its own.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_app.labels import labels


@dataclass
class Endpoint:
    """Where answers come from: a base URL ending in /v1, its key and the model name to request."""

    url: str
    api_key: str
    model: str

    def client(self) -> Any:
        import openai

        # No retries: a refused request (a bad image, too long a prompt) is shown at once, not three times later.
        return openai.OpenAI(base_url=self.url, api_key=self.api_key, max_retries=0, timeout=None)


@dataclass
class GenerationDefaults:
    """The controls' starting values: the command's generation arguments (the reference's defaults)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_new_tokens: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None  # sent only when the user asked for one: else "regenerate" would repeat itself
    stop_words: list[str] = field(default_factory=list)
    stream: bool = True

    @classmethod
    def from_args(cls, args: Any, typed: set[str]) -> GenerationDefaults:
        return cls(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                   max_new_tokens=args.max_new_tokens, repetition_penalty=args.repetition_penalty,
                   seed=args.seed if "seed" in typed else None, stop_words=list(args.stop_words or []),
                   stream=args.stream if "stream" in typed else True)


def openai_messages(system: str, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """gradio's messages (content: a list of text and file parts) as OpenAI chat messages; images become
    image_url parts with the file inlined as a data URL, so a remote server needs no access to our disk."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system.strip() else []
    for message in history:
        if (message.get("metadata") or {}).get("title"):
            continue  # the page's own notice (an error), not something the model said
        parts = message["content"] if isinstance(message["content"], list) else [message["content"]]
        texts, images = [], []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            elif part.get("type") == "text":
                texts.append(part["text"])
            elif part.get("type") == "file":
                images.append(_data_url(part["file"]["path"]))
        text = "".join(texts)
        if images:
            content: Any = [*({"type": "image_url", "image_url": {"url": url}} for url in images),
                            *([{"type": "text", "text": text}] if text else [])]
        else:
            content = text
        messages.append({"role": message["role"], "content": content})
    return messages


def _notice(title: str, detail: str) -> dict[str, Any]:
    """A message from the page itself, shown in the chat and never sent back to the model."""
    return {"role": "assistant", "content": detail, "metadata": {"title": title, "status": "done"}}


def _data_url(path: str) -> str:
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def request_options(defaults: GenerationDefaults, temperature: str, top_p: str, top_k: str, max_new_tokens: str,
                    repetition_penalty: str) -> dict[str, Any]:
    """The request's generation settings from the page's controls (an empty control: the server's default).
    top_k and repetition_penalty are not OpenAI fields, so they travel in the body's extras (swift deploy and vLLM
    read them there)."""
    options: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value, kind, target in (("temperature", temperature, float, options), ("top_p", top_p, float, options),
                                      ("max_tokens", max_new_tokens, int, options), ("top_k", top_k, int, extra),
                                      ("repetition_penalty", repetition_penalty, float, extra)):
        number = _number(name, value, kind)
        if number is not None:
            target[name] = number
    if extra:
        options["extra_body"] = extra
    if defaults.seed is not None:
        options["seed"] = defaults.seed
    if defaults.stop_words:
        options["stop"] = defaults.stop_words
    return options


def _number(name: str, value: Any, kind: type) -> Any:
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        shown = "max_new_tokens" if name == "max_tokens" else name
        raise ValueError(f"{shown} must be {'a whole number' if kind is int else 'a number'} (or empty for the "
                         f"model's default), got {text!r}") from None


def _number_box(value: Any, label: str, elem_id: str) -> Any:
    import gradio as gr

    return gr.Textbox("" if value is None else str(value), label=label, elem_id=elem_id, max_lines=1)


def stream_answer(endpoint: Endpoint, messages: list[dict[str, Any]], options: dict[str, Any],
                  stream: bool = True) -> Iterator[str]:
    """The answer so far, after each token the server sends (or once, whole, without streaming)."""
    client = endpoint.client()
    if not stream:
        reply = client.chat.completions.create(model=endpoint.model, messages=messages, stream=False, **options)
        yield reply.choices[0].message.content or ""
        return
    answer = ""
    chunks = client.chat.completions.create(model=endpoint.model, messages=messages, stream=True, **options)
    try:
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                answer += chunk.choices[0].delta.content
                yield answer
    finally:
        chunks.close()  # on Stop: the server sees the client go and cancels the request


def error_text(exc: Exception) -> str:
    """A server's refusal as the page shows it: its own message, not the client's traceback."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        message = (body.get("error") or body).get("message") if isinstance(body.get("error", body), dict) else None
        return f"{exc.status_code}: {message or exc.message}"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the server ({exc.__cause__ or exc})"
    return str(exc)


@dataclass
class ChatPanel:
    """The components of one chat panel, for callers that wire more events to them."""

    chatbot: Any
    system: Any
    message: Any


def chat_panel(get_endpoint: Callable[[], Endpoint | None], defaults: GenerationDefaults, system: str | None,
               lang: str, multimodal: bool = False) -> ChatPanel:
    """Lay out the chat panel inside the current gradio Blocks and wire its events."""
    import gradio as gr

    text = labels(lang)
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label=text["chat"], height=460, elem_id="chatbot", buttons=["copy"])
            if multimodal:
                gr.Markdown(text["multimodal_note"], elem_id="multimodal-note")
                message = gr.MultimodalTextbox(label=text["message"], placeholder=text["message_placeholder"],
                                               file_types=["image"], elem_id="message")
            else:
                message = gr.Textbox(label=text["message"], placeholder=text["message_placeholder"],
                                     elem_id="message", lines=1)
            with gr.Row():
                send = gr.Button(text["send"], variant="primary", elem_id="send")
                stop = gr.Button(text["stop"], elem_id="stop")
                regenerate = gr.Button(text["regenerate"], elem_id="regenerate")
                clear = gr.Button(text["clear"], elem_id="clear")
        with gr.Column(scale=1):
            system_box = gr.Textbox(system or "", label=text["system"], placeholder=text["system_placeholder"],
                                    lines=4, elem_id="system")
            with gr.Accordion(text["generation"], open=True):
                # Empty means the model's own default (its generation_config.json), as on the command line;
                # text boxes, since gradio's number box cannot be empty.
                temperature = _number_box(defaults.temperature, text["temperature"], "temperature")
                top_p = _number_box(defaults.top_p, text["top_p"], "top_p")
                top_k = _number_box(defaults.top_k, text["top_k"], "top_k")
                max_new_tokens = _number_box(defaults.max_new_tokens, text["max_new_tokens"], "max_new_tokens")
                repetition_penalty = _number_box(defaults.repetition_penalty, text["repetition_penalty"],
                                                 "repetition_penalty")
    controls = [temperature, top_p, top_k, max_new_tokens, repetition_penalty]

    def add_message(history: list, value: Any) -> tuple[list, Any]:
        if multimodal:
            files = [{"type": "file", "file": {"path": path}} for path in (value or {}).get("files", [])]
            content = [*files, *([{"type": "text", "text": value["text"]}] if (value or {}).get("text") else [])]
            if not content:
                return history, value
            return [*history, {"role": "user", "content": content}], None
        if not (value or "").strip():
            return history, value
        return [*history, {"role": "user", "content": value}], ""

    def answer(history: list, system_prompt: str, *control_values: Any) -> Iterator[list]:
        if not history or history[-1]["role"] != "user":
            yield history
            return
        endpoint = get_endpoint()
        if endpoint is None:
            yield [*history, _notice(text["error"], text["chat_not_loaded"])]
            return
        try:
            options = request_options(defaults, *control_values)
            for partial in stream_answer(endpoint, openai_messages(system_prompt, history), options, defaults.stream):
                yield [*history, {"role": "assistant", "content": partial}]
        except Exception as exc:  # shown in the chat, where the user looks; the page itself keeps working
            yield [*history, _notice(text["error"], error_text(exc))]

    def drop_last_answer(history: list) -> list:
        while history and history[-1]["role"] == "assistant":
            history = history[:-1]
        return history

    submitted = message.submit(add_message, [chatbot, message], [chatbot, message], queue=False).then(
        answer, [chatbot, system_box, *controls], chatbot)
    sent = send.click(add_message, [chatbot, message], [chatbot, message], queue=False).then(
        answer, [chatbot, system_box, *controls], chatbot)
    regenerated = regenerate.click(drop_last_answer, chatbot, chatbot, queue=False).then(
        answer, [chatbot, system_box, *controls], chatbot)
    stop.click(None, cancels=[submitted, sent, regenerated])
    clear.click(lambda: ([], None if multimodal else ""), None, [chatbot, message], cancels=[submitted, sent, regenerated],
                queue=False)
    return ChatPanel(chatbot, system_box, message)
