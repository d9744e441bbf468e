"""The pt engine: transformers `generate`, batched with left padding, or streamed token by token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from swift_args.fields import pick_fields
from swift_data.preprocess.conversation import Conversation
from swift_data.templates.encode import Encoder


@dataclass
class GenerationSettings:
    """The reference's generation arguments; None means "as generation_config.json says"."""

    max_new_tokens: int | None = None
    temperature: float | None = None  # 0 means greedy
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    num_beams: int = 1
    stop_words: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Any) -> GenerationSettings:
        return cls(**pick_fields(cls, args))

    def generate_kwargs(self, model: Any) -> dict[str, Any]:
        config = model.generation_config
        temperature = self.temperature if self.temperature is not None else getattr(config, "temperature", None)
        greedy = not temperature  # 0 or None: greedy, as the reference says
        kwargs: dict[str, Any] = {"num_beams": self.num_beams, "do_sample": not greedy}
        if not greedy:
            kwargs.update(temperature=temperature, top_k=self.top_k, top_p=self.top_p)
        else:
            kwargs.update(temperature=None, top_k=None, top_p=None)
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = self.repetition_penalty
        # None: until eos, bounded by the model's length.
        kwargs["max_new_tokens"] = self.max_new_tokens or 2048
        return kwargs


class PtEngine:
    def __init__(self, model: Any, tokenizer: Any, encoder: Encoder):
        self.model, self.tokenizer, self.encoder = model.eval(), tokenizer, encoder

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The prompt exactly as the chat template renders it for generation."""
        messages, tools = self.encoder.prepare_messages(conversation)
        text = self.encoder.render(messages, tools, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _cut_at_stop_words(self, text: str, stop_words: list[str]) -> str:
        """Stop words are kept in the output (the reference), the text after them is not."""
        ends = [text.find(w) + len(w) for w in stop_words if w and w in text]
        return text[: min(ends)] if ends else text

    @torch.no_grad()
    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        prompts = [self.prompt_ids(c) for c in conversations]
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        device = self.model.device
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        output = self.model.generate(input_ids=input_ids, attention_mask=attention, pad_token_id=pad,
                                     stop_strings=settings.stop_words or None, tokenizer=self.tokenizer,
                                     **settings.generate_kwargs(self.model))
        texts = self.tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
        return [self._cut_at_stop_words(t, settings.stop_words) for t in texts]

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        input_ids = torch.tensor([self.prompt_ids(conversation)], device=self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                      stop_strings=settings.stop_words or None, tokenizer=self.tokenizer,
                      pad_token_id=self.tokenizer.pad_token_id, **settings.generate_kwargs(self.model))
        thread = threading.Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
