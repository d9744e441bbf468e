"""Tool calls read back from a model's answer, in each format a prompt can ask for."""

from __future__ import annotations

import json

from swift_data.templates.tools import parse_tool_calls


def test_native_tool_call_blocks() -> None:
    text = ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
            '<tool_call>\n{"name": "get_time", "parameters": {"zone": "CET"}}\n</tool_call>')
    content, calls = parse_tool_calls(text, None)
    assert content == "Let me check."
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert json.loads(calls[1]["function"]["arguments"]) == {"zone": "CET"}
    assert all(c["type"] == "function" for c in calls)


def test_react_and_qwen_styles() -> None:
    content, calls = parse_tool_calls('Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}',
                                      "react_en")
    assert content == "Thought: I need the weather."
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    _, calls = parse_tool_calls('✿FUNCTION✿: get_weather\n✿ARGS✿: {"city": "Paris"}\n✿RESULT✿', "qwen")
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}


def test_plain_answers_and_broken_json_are_not_calls() -> None:
    assert parse_tool_calls("The capital of France is Paris.", None) == ("The capital of France is Paris.", [])
    assert parse_tool_calls("<tool_call>{not json}</tool_call>", None)[1] == []
    assert parse_tool_calls("No action needed.", "react_en")[1] == []
