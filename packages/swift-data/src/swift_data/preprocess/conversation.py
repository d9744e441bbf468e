"""The one shape every dataset format is turned into before encoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Conversation:
    """OpenAI-style messages plus what preference and agent training need.

    `text` is set instead of messages for pre-training rows (`swift pt`).
    """

    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None
    rejected_response: str | None = None  # DPO and friends: the worse final answer
    label: bool | None = None  # KTO: whether the final answer is desirable
    text: str | None = None

    @property
    def is_text(self) -> bool:
        return self.text is not None
