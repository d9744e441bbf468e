"""Conversation -> training tensors, rendered by the same chat template inference uses.

The conversation is rendered with the chat template (the model's own Jinja template, or a
built-in one) through transformers' apply_chat_template. The trained spans come from rendering
prefixes: the text between "everything before assistant turn k, plus the generation prompt" and
"everything up to and including turn k" is turn k's response (its end-of-turn token included,
trailing whitespace not).

The text is tokenized in segments split at those span boundaries, as the model meets it: at
inference the prompt is tokenized on its own and the answer is generated token by token after
it, so a BPE merge across the prompt/answer boundary (e.g. "\n\n" + "2" vs "\n\n2") never
happens there and must not happen in training either. Where no merge crosses a boundary (the
usual case: boundaries sit next to special tokens), the result equals tokenizing the whole
rendered conversation at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import ArgumentError
from swift_args.fields import pick_fields

from swift_data.preprocess.conversation import Conversation
from swift_data.skips import NO_TRAINED_TOKENS, TOO_LONG, SkippedRow
from swift_data.templates.builtin import BUILTIN_TEMPLATES
from swift_data.templates.loss_scale import LossScale, load_loss_scale
from swift_data.templates.tools import inline_tools

IGNORE = -100


class TemplateError(ArgumentError):
    """The chat template cannot be used for training as it is."""


@dataclass
class EncoderOptions:
    """The template arguments the encoder needs (see TemplateArguments in swift-args)."""

    template: str | None = None  # None: the tokenizer's own chat template ("default" if it has none)
    system: str | None = None
    max_length: int | None = None
    truncation_strategy: str = "delete"
    loss_scale: str = "default"
    tools_prompt: str = "react_en"
    use_chat_template: bool = True
    template_backend: str = "swift"  # jinja: the model's own template, messages and tools as they are (inference)
    task_type: str = "causal_lm"  # seq_cls: one class label per sample, read from its last token
    num_labels: int | None = None
    rlhf_type: str | None = None  # swift rlhf: samples are chosen/rejected pairs or KTO rows (swift_data.preference)

    @classmethod
    def from_args(cls, args: Any) -> EncoderOptions:
        return cls(**pick_fields(cls, args))


def read_system(value: str | None) -> str | None:
    """--system takes the prompt itself or a .txt file holding it."""
    if value is not None and value.endswith(".txt") and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8").strip()
    return value


class Encoder:
    """Encodes conversations for one tokenizer and template; picklable, for worker processes."""

    def __init__(self, tokenizer: Any, options: EncoderOptions | None = None):
        self.tokenizer = tokenizer
        self.options = options or EncoderOptions()
        self.jinja = self.options.template_backend == "jinja"
        self.chat_template = self._pick_template()
        self.system = read_system(self.options.system)
        self.loss_scale: LossScale = load_loss_scale(self.options.loss_scale)
        self.template_has_tools = "tools" in self.chat_template
        self.added_tokens = sorted(tokenizer.get_added_vocab(), key=len, reverse=True)

    def _pick_template(self) -> str:
        if self.jinja:
            if not self.tokenizer.chat_template:
                raise ArgumentError("--template_backend jinja renders with the model's own chat template, and this "
                                    "model has none; drop it (or pass --template)")
            return self.tokenizer.chat_template
        name = self.options.template
        if not self.options.use_chat_template:
            name = "default"
        if name is None:
            return self.tokenizer.chat_template or BUILTIN_TEMPLATES["default"]
        if name not in BUILTIN_TEMPLATES:
            raise ArgumentError(f"--template: unknown template '{name}'; valid templates are: {', '.join(BUILTIN_TEMPLATES)}")
        return BUILTIN_TEMPLATES[name]

    # -- rendering ---------------------------------------------------------------------------

    def prepare_messages(self, conversation: Conversation) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """Apply --system and fold tools into text when the template cannot render them."""
        messages = [dict(m) for m in conversation.messages]
        if self.system is not None and not (messages and messages[0]["role"] == "system"):
            messages.insert(0, {"role": "system", "content": self.system})
        tools = conversation.tools
        if tools and not self.template_has_tools and not self.jinja:  # jinja: the template decides, as in transformers
            return inline_tools(messages, tools, self.options.tools_prompt), None
        return messages, tools

    def prompt_text(self, conversation: Conversation) -> str:
        """The conversation rendered up to the assistant's turn, as inference engines feed it."""
        messages, tools = self.prepare_messages(conversation)
        return self.render(messages, tools, add_generation_prompt=True)

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
               add_generation_prompt: bool = False) -> str:
        from jinja2 import TemplateError as JinjaError

        try:
            return self.tokenizer.apply_chat_template(
                messages, tools=tools, chat_template=self.chat_template, tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
        except JinjaError as exc:  # a broken template in the model's files, or one that raises on purpose
            raise TemplateError(f"the model's chat template fails ({type(exc).__name__}: {exc}); fix it or pass "
                                f"--template with one of: {', '.join(BUILTIN_TEMPLATES)}") from None

    def trained_spans(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                      full_text: str) -> list[tuple[int, int, int]]:
        """(start, end, message index) character spans of the assistant turns in `full_text`."""
        spans = []
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self.render(messages[:index], tools, add_generation_prompt=True)
            through = self.render(messages[: index + 1], tools)
            # A template may end a conversation differently from a turn in the middle (an extra eos):
            # the answer is what turn k adds that the whole conversation keeps.
            if full_text.startswith(through):
                end = len(through.rstrip())
            else:
                end = self._whole_token_end(through, len(os.path.commonprefix([through, full_text])))
            if not full_text.startswith(before) or end <= len(before):
                raise TemplateError(
                    f"the chat template does not render assistant turn {index} as a continuation of the turns "
                    f"before it, so its training mask cannot be derived; pass --template with one of: "
                    f"{', '.join(BUILTIN_TEMPLATES)}"
                )
            spans.append((len(before), end, index))
        return spans

    def _whole_token_end(self, text: str, end: int) -> int:
        """`end`, moved back so it cuts through neither trailing whitespace nor a special token."""
        for token in self.added_tokens:
            for position in range(max(0, end - len(token) + 1), end):
                if text.startswith(token, position) and position + len(token) > end:
                    end = position
        return len(text[:end].rstrip())

    # -- encoding ----------------------------------------------------------------------------

    @property
    def classifies(self) -> bool:
        return self.options.task_type == "seq_cls"

    def classification_ids(self, conversation: Conversation) -> list[int]:
        """Sequence classification: the conversation as the template renders it (no generation prompt), cut
        to max_length by truncation_strategy; the model classifies from its last token."""
        messages, tools = self.prepare_messages(conversation)
        ids = list(self.tokenizer(self.render(messages, tools), add_special_tokens=False)["input_ids"])
        limit = self.options.max_length
        if limit is not None and len(ids) > limit:
            if self.options.truncation_strategy == "delete":
                raise SkippedRow(TOO_LONG, f"{len(ids)} tokens > max_length {limit}")
            ids = ids[-limit:] if self.options.truncation_strategy == "left" else ids[:limit]
        return ids

    def encode(self, conversation: Conversation) -> dict[str, list]:
        if conversation.is_text:
            return self._encode_text(conversation.text or "")
        messages, tools = self.prepare_messages(conversation)
        text = self.render(messages, tools)
        spans = self.trained_spans(messages, tools, text)
        char_weight = self._char_weights(messages, text, spans)
        input_ids: list[int] = []
        weights: list[float] = []
        segments = _segments(len(text), spans)
        for (start, _), (ids, offsets) in zip(segments, self._tokenize([text[a:b] for a, b in segments])):
            input_ids += ids
            weights += [_token_weight(char_weight, start + a, start + b) for a, b in offsets]
        return self._finish(input_ids, weights)

    def _tokenize(self, pieces: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """(ids, offsets) per piece, exactly as `tokenizer(piece, add_special_tokens=False)` gives them."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:  # one call into the Rust tokenizer for all pieces
            return [(e.ids, e.offsets) for e in backend.encode_batch(pieces, add_special_tokens=False)]
        out = []
        for piece in pieces:
            encoding = self.tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
            out.append((encoding["input_ids"], encoding["offset_mapping"]))
        return out

    def _char_weights(self, messages: list[dict[str, Any]], text: str, spans: list[tuple[int, int, int]]) -> list[float]:
        if self.loss_scale.mode == "all":
            return [1.0] * len(text)
        char_weight = [0.0] * len(text)
        if self.loss_scale.mode == "last_round":
            spans = spans[-1:]
        for start, end, index in spans:
            query = next((m["content"] for m in reversed(messages[:index]) if m["role"] == "user"), "")
            scale = self.loss_scale.response_weight(query)
            if self.loss_scale.response:
                span_weights = self.loss_scale.char_weights(text[start:end])
                char_weight[start:end] = [w * scale for w in span_weights]
            else:
                char_weight[start:end] = [scale] * (end - start)
        return char_weight

    def _encode_text(self, text: str) -> dict[str, list]:
        input_ids = list(self.tokenizer(text)["input_ids"])
        eos = self.tokenizer.eos_token_id
        if eos is not None and (not input_ids or input_ids[-1] != eos):
            input_ids.append(eos)
        return self._finish(input_ids, [1.0] * len(input_ids))

    def _finish(self, input_ids: list[int], weights: list[float]) -> dict[str, list]:
        max_length = self.options.max_length
        if max_length is not None and len(input_ids) > max_length:
            strategy = self.options.truncation_strategy
            if strategy == "delete":
                raise SkippedRow(TOO_LONG, f"{len(input_ids)} tokens > {max_length}")
            keep = slice(-max_length, None) if strategy == "left" else slice(0, max_length)
            input_ids, weights = input_ids[keep], weights[keep]
        if not any(w > 0 for w in weights):
            raise SkippedRow(NO_TRAINED_TOKENS)
        sample: dict[str, list] = {
            "input_ids": list(input_ids),
            "labels": [t if w > 0 else IGNORE for t, w in zip(input_ids, weights)],
        }
        if any(w not in (0.0, 1.0) for w in weights):
            sample["loss_scale"] = weights
        return sample


def _segments(length: int, spans: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Split [0, length) at every span boundary: prompt, answer, prompt, answer, ..."""
    cuts = sorted({0, length, *(p for start, end, _ in spans for p in (start, end))})
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _token_weight(char_weight: list[float], start: int, end: int) -> float:
    """A token's weight: that of its first character (weights are constant within a keyword span)."""
    if end <= start:
        return 0.0
    return char_weight[start]
