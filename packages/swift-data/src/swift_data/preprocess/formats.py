"""Dataset row -> Conversation, for every row format the reference's AutoPreprocessor accepts.

Recognised, by the columns a row has (after --columns renames):
  messages                      OpenAI: [{"role", "content"}], roles system/user/assistant/tool
  conversations                 ShareGPT: [{"from", "value"}], human/gpt/system/function_call/observation
  instruction [+ input], output Alpaca
  query, response [+ history, system]
  chosen, rejected [+ prompt]   preference pairs (also messages + rejected_response)
  label                         KTO (with any of the above)
  tools                         tool calling (with messages / conversations)
  text                          plain text for pre-training
"""

from __future__ import annotations

import json
from typing import Any

from swift_args import ArgumentError

from swift_data.preprocess.conversation import ROLES, Conversation
from swift_data.skips import EMPTY_RESPONSE, WRONG_TYPES, SkippedRow

_SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
    "function_call": "assistant", "observation": "tool", "tool": "tool", "function": "tool",
}  # fmt: skip
_QUERY_KEYS = ("query", "prompt", "question", "instruction")
_RESPONSE_KEYS = ("response", "answer", "output", "completion")


def rename_columns(row: dict[str, Any], columns: dict[str, str] | None) -> dict[str, Any]:
    if not columns:
        return row
    return {columns.get(k, k): v for k, v in row.items()}


def to_conversation(row: dict[str, Any], where: str, require_response: bool = True) -> Conversation:
    """Convert one row; raises SkippedRow for an unusable row and ArgumentError for an unknown shape."""
    if "messages" in row:
        conversation = Conversation(_messages(row["messages"]))
    elif "conversations" in row:
        conversation = Conversation(_sharegpt(row["conversations"]))
    elif "chosen" in row and "rejected" in row:
        conversation = _preference(row)
    elif "text" in row and not any(k in row for k in _QUERY_KEYS):
        return _text(row)
    elif any(k in row for k in _QUERY_KEYS) and (any(k in row for k in _RESPONSE_KEYS) or not require_response):
        conversation = Conversation(_query_response(row))
    else:
        raise ArgumentError(
            f"{where}: unknown row format, columns found: {', '.join(sorted(row)) or 'none'}; expected messages, "
            "conversations, instruction/output, query/response, chosen/rejected or text (rename columns with --columns)"
        )
    _take_extras(conversation, row)
    _check(conversation, require_response)
    return conversation


def _as_str(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SkippedRow(WRONG_TYPES, f"{what} must be a string, got {type(value).__name__}")
    return value


def _maybe_json(value: Any, what: str) -> Any:
    """CSV and parquet cells hold lists as JSON text."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SkippedRow(WRONG_TYPES, f"{what} is not valid JSON") from None
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    value = _maybe_json(value, "messages")
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise SkippedRow(WRONG_TYPES, "messages must be a list of {role, content} objects")
    messages = []
    for message in value:
        role = message.get("role")
        if role not in ROLES:
            raise SkippedRow(WRONG_TYPES, f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        clean = {"role": role, "content": _as_str(message.get("content"), f"{role} content")}
        if message.get("tool_calls"):
            clean["tool_calls"] = message["tool_calls"]
        if role == "tool" and message.get("name"):
            clean["name"] = message["name"]
        messages.append(clean)
    return messages


def _sharegpt(value: Any) -> list[dict[str, Any]]:
    value = _maybe_json(value, "conversations")
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise SkippedRow(WRONG_TYPES, "conversations must be a list of {from, value} objects")
    messages = []
    for turn in value:
        speaker = turn.get("from", turn.get("role"))
        role = _SHAREGPT_ROLES.get(str(speaker))
        if role is None:
            raise SkippedRow(WRONG_TYPES, f"unknown speaker {speaker!r} in conversations")
        content = _as_str(turn.get("value", turn.get("content")), f"{speaker} value")
        if speaker == "function_call":
            messages.append({"role": "assistant", "content": "", "tool_calls": [_tool_call(content)]})
        else:
            messages.append({"role": role, "content": content})
    return messages


def _tool_call(content: str) -> dict[str, Any]:
    """A ShareGPT function_call value (JSON with name and arguments) as an OpenAI tool call."""
    try:
        call = json.loads(content)
    except json.JSONDecodeError:
        raise SkippedRow(WRONG_TYPES, "function_call value is not JSON") from None
    if not isinstance(call, dict) or "name" not in call:
        raise SkippedRow(WRONG_TYPES, "function_call value needs a name")
    arguments = call.get("arguments", call.get("parameters", {}))
    return {"type": "function", "function": {"name": call["name"], "arguments": arguments}}


def _query_response(row: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if row.get("system"):
        messages.append({"role": "system", "content": _as_str(row["system"], "system")})
    history = _maybe_json(row.get("history") or [], "history")
    if not isinstance(history, list):
        raise SkippedRow(WRONG_TYPES, "history must be a list of [query, response] pairs")
    for pair in history:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise SkippedRow(WRONG_TYPES, "history must be a list of [query, response] pairs")
        messages += [{"role": "user", "content": _as_str(pair[0], "history query")},
                     {"role": "assistant", "content": _as_str(pair[1], "history response")}]
    query_key = next(k for k in _QUERY_KEYS if k in row)
    query = _as_str(row[query_key], query_key)
    if query_key == "instruction" and row.get("input"):
        query = f"{query}\n{_as_str(row['input'], 'input')}"
    messages.append({"role": "user", "content": query})
    response_key = next((k for k in _RESPONSE_KEYS if k in row), None)
    if response_key is not None:
        messages.append({"role": "assistant", "content": _as_str(row[response_key], response_key)})
    return messages


def _message_list_or_text(value: Any) -> Any:
    """A chosen/rejected value: a message list (possibly as JSON text), else the answer text as is."""
    if isinstance(value, str) and value.strip()[:1] == "[":
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed):
            return parsed
    return value


def _preference(row: dict[str, Any]) -> Conversation:
    chosen, rejected = _message_list_or_text(row["chosen"]), _message_list_or_text(row["rejected"])
    if isinstance(chosen, list):
        messages = _messages(chosen)
        rejected_messages = _messages(rejected) if isinstance(rejected, list) else None
        rejected_text = rejected_messages[-1]["content"] if rejected_messages else _as_str(rejected, "rejected")
        return Conversation(messages, rejected_response=rejected_text)
    prompt_row = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
    prompt_row["response"] = _as_str(chosen, "chosen")
    if not any(k in prompt_row for k in _QUERY_KEYS):
        raise SkippedRow(WRONG_TYPES, "chosen/rejected strings need a prompt or query column")
    return Conversation(_query_response(prompt_row), rejected_response=_as_str(rejected, "rejected"))


def _text(row: dict[str, Any]) -> Conversation:
    text = _as_str(row["text"], "text")
    if not text.strip():
        raise SkippedRow(EMPTY_RESPONSE, "text is empty")
    return Conversation(text=text)


def _take_extras(conversation: Conversation, row: dict[str, Any]) -> None:
    system = row.get("system")
    has_system = conversation.messages and conversation.messages[0]["role"] == "system"
    if isinstance(system, str) and system and not has_system:
        conversation.messages.insert(0, {"role": "system", "content": system})
    if row.get("rejected_response") is not None and conversation.rejected_response is None:
        conversation.rejected_response = _as_str(row["rejected_response"], "rejected_response")
    if row.get("label") is not None:
        label = row["label"]
        if isinstance(label, str) and label.lower() in ("true", "false"):
            label = label.lower() == "true"
        if not isinstance(label, bool):
            raise SkippedRow(WRONG_TYPES, f"label must be true or false, got {label!r}")
        conversation.label = label
    if row.get("tools"):
        tools = _maybe_json(row["tools"], "tools")
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise SkippedRow(WRONG_TYPES, "tools must be a list of tool definitions")
        conversation.tools = [t if "type" in t else {"type": "function", "function": t} for t in tools]


def _check(conversation: Conversation, require_response: bool) -> None:
    messages = conversation.messages
    if not messages:
        raise SkippedRow(WRONG_TYPES, "no messages")
    if not require_response:
        return
    last = messages[-1]
    if last["role"] != "assistant":
        raise SkippedRow(EMPTY_RESPONSE, "the conversation does not end with an assistant turn")
    for message in messages:
        if message["role"] == "assistant" and not message["content"].strip() and not message.get("tool_calls"):
            raise SkippedRow(EMPTY_RESPONSE, "an assistant turn is empty")
