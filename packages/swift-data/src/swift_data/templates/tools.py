"""Tool calling for templates that have no tool support of their own (--tools_prompt).

The tool list becomes a system prompt in one of the reference's styles; assistant tool calls become
`Action:` / `Action Input:` text and tool results become `Observation:` user turns, so the whole
exchange is plain chat the template can render.
"""

from __future__ import annotations

import json
import re
from typing import Any

REACT_EN = """Answer the following questions as best you can. You have access to the following tools:

{tool_list}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{tool_names}]
Action Input: the input to the action, as a JSON object
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can be repeated zero or more times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!"""

REACT_ZH = """尽你所能回答以下问题。你可以使用以下工具：

{tool_list}

请使用以下格式：

Question: 需要回答的问题
Thought: 思考下一步该做什么
Action: 要调用的工具，必须是 [{tool_names}] 之一
Action Input: 工具的输入，JSON 对象
Observation: 工具返回的结果
...（Thought/Action/Action Input/Observation 可以重复多次）
Thought: 我现在知道最终答案了
Final Answer: 对原问题的最终回答

开始！"""

GLM4 = """你是一个名为 ChatGLM 的人工智能助手。你可以使用以下工具来回答用户的问题。

# 可用工具
{tool_blocks}"""

TOOLBENCH = """You can use many tools (functions) to do the following task.
At each step, give your thought, then call a function with Action and Action Input.
After the call you will get the result as Observation; repeat until you can answer.
When you are done, call the function Finish with the final answer.
Available tools:
{tool_json}"""

QWEN = """# Tools

## You have access to the following tools:

{tool_list}

## When you need to call a tool, please insert the following command in your reply, which can be called zero or multiple times according to your needs:

✿FUNCTION✿: The tool to use, should be one of [{tool_names}]
✿ARGS✿: The input of the tool
✿RESULT✿: Tool results
✿RETURN✿: Reply based on tool results"""


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool)


def _describe(fn: dict[str, Any]) -> str:
    parameters = json.dumps(fn.get("parameters", {}), ensure_ascii=False)
    return f"{fn['name']}: {fn.get('description', '')} Parameters: {parameters}"


def tools_system_prompt(tools: list[dict[str, Any]], style: str) -> str:
    functions = [_function(t) for t in tools]
    names = ", ".join(fn["name"] for fn in functions)
    tool_list = "\n\n".join(_describe(fn) for fn in functions)
    if style == "react_zh":
        return REACT_ZH.format(tool_list=tool_list, tool_names=names)
    if style == "glm4":
        blocks = "\n\n".join(f"## {fn['name']}\n\n{json.dumps(fn, ensure_ascii=False, indent=4)}" for fn in functions)
        return GLM4.format(tool_blocks=blocks)
    if style == "toolbench":
        return TOOLBENCH.format(tool_json=json.dumps(functions, ensure_ascii=False))
    if style == "qwen":
        return QWEN.format(tool_list=tool_list, tool_names=names)
    return REACT_EN.format(tool_list=tool_list, tool_names=names)


def _call_text(call: dict[str, Any], style: str) -> str:
    fn = _function(call)
    arguments = fn.get("arguments", {})
    arguments = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    if style == "qwen":
        return f"✿FUNCTION✿: {fn['name']}\n✿ARGS✿: {arguments}"
    return f"Action: {fn['name']}\nAction Input: {arguments}"


def inline_tools(messages: list[dict[str, Any]], tools: list[dict[str, Any]], style: str) -> list[dict[str, Any]]:
    """Messages with the tools folded into the system prompt and calls/results as text."""
    prompt = tools_system_prompt(tools, style)
    out: list[dict[str, Any]] = []
    if messages and messages[0]["role"] == "system":
        out.append({"role": "system", "content": messages[0]["content"] + "\n\n" + prompt})
        messages = messages[1:]
    else:
        out.append({"role": "system", "content": prompt})
    result_prefix = "✿RESULT✿: " if style == "qwen" else "Observation: "
    for message in messages:
        if message["role"] == "tool":
            out.append({"role": "user", "content": result_prefix + message["content"]})
        elif message.get("tool_calls"):
            calls = "\n".join(_call_text(c, style) for c in message["tool_calls"])
            content = (message["content"] + "\n" if message["content"] else "") + calls
            out.append({"role": "assistant", "content": content})
        else:
            out.append(dict(message))
    return out


_NATIVE_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)
_REACT_CALL = re.compile(r"Action:\s*(?P<name>[^\n]+?)\s*\nAction Input:\s*(?P<args>.*?)(?=\nObservation:|\nThought:|\nAction:|\Z)", re.S)
_QWEN_CALL = re.compile(r"✿FUNCTION✿:\s*(?P<name>[^\n]+?)\s*\n✿ARGS✿:\s*(?P<args>.*?)(?=\n✿RESULT✿|\n✿FUNCTION✿|\n✿RETURN✿|\Z)", re.S)


def _as_call(name: str, arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"type": "function", "function": {"name": name.strip(), "arguments": arguments.strip()}}


def parse_tool_calls(text: str, style: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Tool calls in a model's answer, in OpenAI's shape, and the text before the first of them.

    `style` None: the template's own format (`<tool_call>{json}</tool_call>`, as Qwen2.5 and
    Hermes-style templates write it); otherwise the --tools_prompt style the prompt asked for.
    """
    calls: list[dict[str, Any]] = []
    if style is None:
        for match in _NATIVE_CALL.finditer(text):
            try:
                call = json.loads(match.group(1))
            except json.JSONDecodeError:
                continue
            if isinstance(call, dict) and "name" in call:
                calls.append(_as_call(call["name"], call.get("arguments", call.get("parameters", {}))))
        first = _NATIVE_CALL.search(text)
    else:
        pattern = _QWEN_CALL if style == "qwen" else _REACT_CALL
        for match in pattern.finditer(text):
            calls.append(_as_call(match.group("name"), match.group("args")))
        first = pattern.search(text)
    if not calls:
        return text, []
    return text[: first.start()].strip(), calls
