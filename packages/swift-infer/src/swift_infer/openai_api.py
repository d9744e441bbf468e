"""The OpenAI API's request and response shapes, as `swift deploy` accepts and returns them.

Requests are pydantic models so a malformed one is answered with a 400 naming the field; fields
this server cannot honour are refused the same way rather than silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class OpenAIError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


# What the engine can take: torch seeds are 64-bit; top_k indexes a tensor of int64; a penalty
# divides float32 logits, so it must stay far from 0 and infinity.
_INT64 = 2**63
_MAX_STOP_STRINGS = 16
_TEXT_ONLY_PARTS = ("image_url", "input_audio", "video_url", "file", "image", "audio", "video")


def _unicode_problem(value: Any, path: str) -> str | None:
    """The first string in `value` that is not valid Unicode (a lone surrogate from JSON's \\ud800)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"{path or 'body'}: contains a lone surrogate ({value[exc.start]!r}) at character {exc.start}; send valid Unicode text"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        problem = _unicode_problem(item, f"{path}.{key}" if path else str(key))
        if problem:
            return problem
    return None


class _Request(BaseModel):
    # Clients send fields of newer API versions; unknown ones are harmless. JSON's NaN and
    # Infinity (which Python's parser accepts) are refused in every number.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2, description="below 1e-5 is greedy, as 0")
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1, lt=2**31, description="above the vocabulary size means no limit")
    repetition_penalty: float | None = Field(None, ge=0.01, le=100)
    n: int = Field(1, ge=1, le=64)
    stream: bool = False
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-_INT64, lt=_INT64)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        problem = _unicode_problem(data, "")
        if problem:
            raise ValueError(problem)
        return data

    @field_validator("presence_penalty", "frequency_penalty")
    @classmethod
    def _only_zero(cls, value: float) -> float:
        if value:
            raise ValueError("is not supported by this server; use repetition_penalty instead")
        return value

    @field_validator("stop")
    @classmethod
    def _real_stop_strings(cls, value: str | list[str] | None) -> str | list[str] | None:
        words = [value] if isinstance(value, str) else value or []
        if any(word == "" for word in words):
            raise ValueError("an empty stop string would end every answer at once; leave it out")
        if len(words) > _MAX_STOP_STRINGS:
            raise ValueError(f"has {len(words)} stop strings; this server takes at most {_MAX_STOP_STRINGS}")
        return value

    def stop_words(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_only(self) -> ContentPart:
        if self.type in _TEXT_ONLY_PARTS:
            raise ValueError(f"this model takes text only; a '{self.type}' part needs a multimodal model")
        if self.type != "text":
            raise ValueError(f"unknown content part type '{self.type}'; this server takes 'text' parts")
        if self.text is None:
            raise ValueError("a 'text' part needs a 'text' field")
        return self


class FunctionCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: str | dict[str, Any] = "{}"


class ToolCall(BaseModel):
    """An assistant message's earlier call, as the client sends it back."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream_options: StreamOptions | None = None

    @field_validator("tool_choice")
    @classmethod
    def _free_choice_only(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if value not in (None, "none", "auto"):
            raise ValueError("this server takes 'auto' or 'none': it cannot force the model to call a tool "
                             "('required' or a named function)")
        return value

    def tool_dicts(self) -> list[dict[str, Any]] | None:
        return [tool.model_dump(exclude_none=True) for tool in self.tools] if self.tools else None


class CompletionRequest(_Request):
    prompt: str | list[str] = Field(description="one text or a list of texts, none empty")
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for completions
    logprobs: int | None = Field(None, ge=0)
    echo: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        prompts = [value] if isinstance(value, str) else value
        if not prompts:
            raise ValueError("give at least one prompt")
        if any(not text for text in prompts):
            raise ValueError("is empty; a completion continues some text, so give at least one character")
        return value

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, value: bool) -> bool:
        if value:
            raise ValueError("echo is not supported by this server")
        return value


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_logprobs(tokenizer: Any, tokens: list[Any]) -> dict[str, Any]:
    """Chat completions' shape: {"content": [{token, logprob, bytes, top_logprobs}]}."""

    def entry(token: int, logprob: float | None) -> dict[str, Any]:
        text = tokenizer.decode([token])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    return {"content": [{**entry(c.token, c.logprob), "top_logprobs": [entry(t, lp) for t, lp in c.top]}
                        for c in tokens]}


def completion_logprobs(tokenizer: Any, tokens: list[Any], offset: int = 0) -> dict[str, Any]:
    """Legacy completions' shape: parallel lists of tokens, logprobs, top alternatives and offsets."""
    texts = [tokenizer.decode([c.token]) for c in tokens]
    offsets, position = [], offset
    for text in texts:
        offsets.append(position)
        position += len(text)
    return {"tokens": texts, "token_logprobs": [c.logprob for c in tokens],
            "top_logprobs": [{tokenizer.decode([t]): lp for t, lp in c.top} for c in tokens], "text_offset": offsets}
