"""Every row format --dataset accepts becomes the same Conversation; an unusable row says exactly why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from swift_args import ArgumentError

from swift_data.preprocess.conversation import Conversation
from swift_data.preprocess.formats import rename_columns, to_conversation
from swift_data.skips import EMPTY_RESPONSE, WRONG_TYPES, SkipCounter, SkippedRow

WHERE = "train.jsonl:7"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def convert(row: dict[str, Any], require_response: bool = True) -> Conversation:
    return to_conversation(row, WHERE, require_response)


def skipped(row: dict[str, Any], require_response: bool = True) -> tuple[str, str]:
    """The (reason, detail) a row is skipped with."""
    with pytest.raises(SkippedRow) as info:
        convert(row, require_response)
    return info.value.reason, info.value.detail


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


# -- OpenAI messages ------------------------------------------------------------------------


def test_openai_messages_multi_turn() -> None:
    row = {"messages": [system("Be brief."), user("Hi"), assistant("Hello!"), user("2+2?"), assistant("4")]}
    assert convert(row) == Conversation(
        messages=[system("Be brief."), user("Hi"), assistant("Hello!"), user("2+2?"), assistant("4")]
    )


def test_openai_messages_with_tool_calls_and_tool_results() -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    row = {
        "messages": [
            system("You answer weather questions."),
            user("Weather in Paris?"),
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "name": "get_weather", "content": '{"temp": 21}'},
            assistant("It is 21 degrees in Paris."),
        ],
        "tools": [WEATHER_TOOL],
    }
    assert convert(row) == Conversation(
        messages=[
            system("You answer weather questions."),
            user("Weather in Paris?"),
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": '{"temp": 21}', "name": "get_weather"},
            assistant("It is 21 degrees in Paris."),
        ],
        tools=[{"type": "function", "function": WEATHER_TOOL}],
    )


def test_openai_messages_drop_unknown_message_keys() -> None:
    row = {"messages": [
        {"role": "user", "content": "Hi", "weight": 3},
        {"role": "assistant", "content": "Yo", "id": 9},
    ]}
    assert convert(row).messages == [user("Hi"), assistant("Yo")]


def test_messages_as_json_text_as_a_csv_cell_holds_them() -> None:
    row = {"messages": json.dumps([user("Hi"), assistant("Hello!")])}
    assert convert(row) == Conversation(messages=[user("Hi"), assistant("Hello!")])


# -- ShareGPT -------------------------------------------------------------------------------


def test_sharegpt_human_gpt_system() -> None:
    row = {
        "conversations": [
            {"from": "system", "value": "You are a pirate."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Arr!"},
            {"from": "human", "value": "Where is the treasure?"},
            {"from": "gpt", "value": "Buried."},
        ]
    }
    assert convert(row) == Conversation(
        messages=[system("You are a pirate."), user("Hi"), assistant("Arr!"), user("Where is the treasure?"),
                  assistant("Buried.")]
    )


def test_sharegpt_function_call_and_observation_become_tool_calls_and_tool_turns() -> None:
    row = {
        "conversations": [
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
            {"from": "observation", "value": '{"temp": 21}'},
            {"from": "gpt", "value": "21 degrees."},
        ],
        "tools": json.dumps([WEATHER_TOOL]),
    }
    assert convert(row) == Conversation(
        messages=[
            user("Weather in Paris?"),
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
            ]},
            {"role": "tool", "content": '{"temp": 21}'},
            assistant("21 degrees."),
        ],
        tools=[{"type": "function", "function": WEATHER_TOOL}],
    )


def test_sharegpt_function_call_with_parameters_instead_of_arguments() -> None:
    row = {"conversations": [
        {"from": "human", "value": "Weather?"},
        {"from": "function_call", "value": '{"name": "get_weather", "parameters": {"city": "Rome"}}'},
        {"from": "observation", "value": "sunny"},
        {"from": "gpt", "value": "Sunny."},
    ]}
    assert convert(row).messages[1]["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}
    ]


def test_sharegpt_system_column_becomes_the_system_turn() -> None:
    row = {
        "system": "You are a pirate.",
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Arr!"}],
    }
    assert convert(row) == Conversation(messages=[system("You are a pirate."), user("Hi"), assistant("Arr!")])


# -- Alpaca and query/response --------------------------------------------------------------


def test_alpaca_with_input_joins_instruction_and_input() -> None:
    row = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}
    assert convert(row) == Conversation(
        messages=[user("Translate to French.\nGood morning"), assistant("Bonjour")]
    )


@pytest.mark.parametrize("row_input", [{"input": ""}, {"input": None}, {}], ids=["empty", "null", "absent"])
def test_alpaca_without_input_is_the_instruction_alone(row_input: dict[str, Any]) -> None:
    row = {"instruction": "Name a primary colour.", **row_input, "output": "Red."}
    assert convert(row) == Conversation(messages=[user("Name a primary colour."), assistant("Red.")])


def test_alpaca_with_system() -> None:
    row = {"system": "Answer in one word.", "instruction": "Capital of Italy?", "input": "", "output": "Rome"}
    assert convert(row).messages == [
        system("Answer in one word."), user("Capital of Italy?"), assistant("Rome")
    ]


def test_query_response_with_history_and_system() -> None:
    row = {
        "system": "You are a maths tutor.",
        "history": [["What is 1+1?", "2"], ["And 2+2?", "4"]],
        "query": "And 3+3?",
        "response": "6",
    }
    assert convert(row) == Conversation(
        messages=[system("You are a maths tutor."), user("What is 1+1?"), assistant("2"), user("And 2+2?"),
                  assistant("4"), user("And 3+3?"), assistant("6")]
    )


def test_query_response_history_as_json_text_and_empty_system() -> None:
    row = {"system": "", "history": '[["Hi", "Hello"]]', "query": "Bye", "response": "Goodbye"}
    assert convert(row).messages == [user("Hi"), assistant("Hello"), user("Bye"), assistant("Goodbye")]


@pytest.mark.parametrize(
    ("query_key", "response_key"),
    [("query", "response"), ("prompt", "completion"), ("question", "answer"), ("instruction", "output")],
)
def test_query_and_response_column_aliases(query_key: str, response_key: str) -> None:
    assert convert({query_key: "Q", response_key: "A"}).messages == [user("Q"), assistant("A")]


# -- preference pairs and KTO ---------------------------------------------------------------


def test_preference_strings_with_prompt() -> None:
    row = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}
    assert convert(row) == Conversation(
        messages=[user("Capital of France?"), assistant("Paris.")], rejected_response="Lyon."
    )


def test_preference_strings_with_system_and_history() -> None:
    row = {
        "system": "Be kind.",
        "history": [["Hi", "Hello"]],
        "query": "Rate me",
        "chosen": "10/10",
        "rejected": "1/10",
    }
    assert convert(row) == Conversation(
        messages=[system("Be kind."), user("Hi"), assistant("Hello"), user("Rate me"), assistant("10/10")],
        rejected_response="1/10",
    )


def test_preference_message_lists() -> None:
    row = {
        "chosen": [user("Capital of France?"), assistant("Paris.")],
        "rejected": [user("Capital of France?"), assistant("Lyon.")],
    }
    assert convert(row) == Conversation(
        messages=[user("Capital of France?"), assistant("Paris.")], rejected_response="Lyon."
    )


def test_preference_message_lists_as_json_text() -> None:
    row = {
        "chosen": json.dumps([user("Hi"), assistant("Hello!")]),
        "rejected": json.dumps([user("Hi"), assistant("Go away.")]),
    }
    assert convert(row) == Conversation(
        messages=[user("Hi"), assistant("Hello!")], rejected_response="Go away."
    )


def test_preference_answers_that_look_like_json_stay_text() -> None:
    row = {
        "prompt": "Reply in JSON: capital of France?",
        "chosen": '{"city": "Paris"}',
        "rejected": '{"city": "Lyon"}',
    }
    assert convert(row) == Conversation(
        messages=[user("Reply in JSON: capital of France?"), assistant('{"city": "Paris"}')],
        rejected_response='{"city": "Lyon"}',
    )


def test_messages_with_rejected_response() -> None:
    row = {"messages": [user("2+2?"), assistant("4")], "rejected_response": "5"}
    assert convert(row) == Conversation(messages=[user("2+2?"), assistant("4")], rejected_response="5")


def test_query_response_with_rejected_response() -> None:
    row = {"query": "2+2?", "response": "4", "rejected_response": "22"}
    assert convert(row) == Conversation(messages=[user("2+2?"), assistant("4")], rejected_response="22")


@pytest.mark.parametrize(
    ("label", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("True", True), ("FALSE", False)],
)
def test_kto_label(label: Any, expected: bool) -> None:
    row = {"messages": [user("Hi"), assistant("Hello!")], "label": label}
    assert convert(row) == Conversation(messages=[user("Hi"), assistant("Hello!")], label=expected)


def test_kto_label_with_query_response() -> None:
    assert convert({"query": "Hi", "response": "Go away", "label": False}) == Conversation(
        messages=[user("Hi"), assistant("Go away")], label=False
    )


# -- tools and text -------------------------------------------------------------------------


def test_tools_list_keeps_openai_definitions_and_wraps_bare_ones() -> None:
    openai_tool = {"type": "function", "function": {"name": "search", "parameters": {}}}
    row = {"messages": [user("Hi"), assistant("Hello")], "tools": [openai_tool, WEATHER_TOOL]}
    assert convert(row) == Conversation(
        messages=[user("Hi"), assistant("Hello")],
        tools=[openai_tool, {"type": "function", "function": WEATHER_TOOL}],
    )


def test_tools_as_json_text_as_a_csv_cell_holds_them() -> None:
    row = {"query": "Weather?", "response": "Let me check.", "tools": json.dumps([WEATHER_TOOL])}
    assert convert(row) == Conversation(
        messages=[user("Weather?"), assistant("Let me check.")],
        tools=[{"type": "function", "function": WEATHER_TOOL}],
    )


@pytest.mark.parametrize("tools", ["", None], ids=["empty-csv-cell", "null"])
def test_no_tools(tools: Any) -> None:
    assert convert({"query": "Q", "response": "A", "tools": tools}).tools is None


def test_text_for_pretraining() -> None:
    conversation = convert({"text": "The quick brown fox.\nJumps."})
    assert conversation == Conversation(text="The quick brown fox.\nJumps.")
    assert conversation.is_text


def test_text_with_other_columns_is_still_text() -> None:
    assert convert({"text": "Some prose.", "source": "wiki", "id": 3}) == Conversation(text="Some prose.")


# -- --columns ------------------------------------------------------------------------------


def test_columns_rename_before_conversion() -> None:
    row = {"question_text": "Capital of Spain?", "model_answer": "Madrid", "id": 1}
    renamed = rename_columns(row, {"question_text": "query", "model_answer": "response"})
    assert renamed == {"query": "Capital of Spain?", "response": "Madrid", "id": 1}
    assert convert(renamed) == Conversation(messages=[user("Capital of Spain?"), assistant("Madrid")])


def test_columns_rename_to_messages_and_ignores_absent_columns() -> None:
    row = {"dialog": [user("Hi"), assistant("Hey")]}
    renamed = rename_columns(row, {"dialog": "messages", "not_there": "system"})
    assert renamed == {"messages": [user("Hi"), assistant("Hey")]}
    assert convert(renamed).messages == [user("Hi"), assistant("Hey")]


@pytest.mark.parametrize("columns", [None, {}])
def test_no_columns_leaves_the_row_alone(columns: dict[str, str] | None) -> None:
    row = {"a": 1}
    assert rename_columns(row, columns) == {"a": 1}


# -- unknown shapes: fatal, with the columns found ------------------------------------------


def test_unknown_format_names_where_and_the_columns_found() -> None:
    with pytest.raises(ArgumentError) as info:
        convert({"reply": "b", "prompt_text": "a"})
    assert info.value.problems == [
        "train.jsonl:7: unknown row format, columns found: prompt_text, reply; expected messages, "
        "conversations, instruction/output, query/response, chosen/rejected or text "
        "(rename columns with --columns)"
    ]


def test_unknown_format_of_an_empty_row() -> None:
    with pytest.raises(ArgumentError, match=r"^train\.jsonl:7: unknown row format, columns found: none; "):
        convert({})


def test_query_without_response_is_an_unknown_format_for_training() -> None:
    with pytest.raises(ArgumentError, match=r"columns found: query; expected messages"):
        convert({"query": "Hi"})


def test_query_without_response_is_fine_without_require_response() -> None:
    assert convert({"system": "S", "query": "Hi"}, require_response=False) == Conversation(
        messages=[system("S"), user("Hi")]
    )


# -- unusable rows: skipped, with reason and detail -----------------------------------------


@pytest.mark.parametrize(
    ("row", "detail"),
    [
        ({"messages": "hello"}, "messages must be a list of {role, content} objects"),
        ({"messages": ["hello"]}, "messages must be a list of {role, content} objects"),
        ({"messages": "[{"}, "messages is not valid JSON"),
        ({"messages": []}, "no messages"),
        ({"messages": [{"role": "user", "content": ["a", "b"]}, assistant("x")]},
         "user content must be a string, got list"),
        ({"messages": [user("Hi"), {"role": "assistant", "content": 42}]},
         "assistant content must be a string, got int"),
        ({"conversations": {"from": "human", "value": "Hi"}},
         "conversations must be a list of {from, value} objects"),
        ({"conversations": [{"from": "human", "value": 7}]}, "human value must be a string, got int"),
        ({"query": 5, "response": "A"}, "query must be a string, got int"),
        ({"query": "Q", "response": ["A", "B"]}, "response must be a string, got list"),
        ({"system": 1, "query": "Q", "response": "A"}, "system must be a string, got int"),
        ({"instruction": "I", "input": 3, "output": "O"}, "input must be a string, got int"),
        ({"chosen": "Paris.", "rejected": "Lyon."}, "chosen/rejected strings need a prompt or query column"),
        ({"prompt": "Q", "chosen": "A", "rejected": 3}, "rejected must be a string, got int"),
        ({"messages": [user("Q"), assistant("A")], "rejected_response": ["B"]},
         "rejected_response must be a string, got list"),
        ({"query": "Q", "response": "A", "tools": {"name": "x"}}, "tools must be a list of tool definitions"),
        ({"query": "Q", "response": "A", "tools": "[{"}, "tools is not valid JSON"),
        ({"text": 5}, "text must be a string, got int"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_wrong_types(row: dict[str, Any], detail: str) -> None:
    assert skipped(row) == (WRONG_TYPES, detail)


def test_unknown_role() -> None:
    row = {"messages": [{"role": "bot", "content": "Hi"}]}
    assert skipped(row) == (WRONG_TYPES, "unknown role 'bot'; roles are system, user, assistant, tool")


def test_unknown_sharegpt_speaker() -> None:
    row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "robot", "value": "Hey"}]}
    assert skipped(row) == (WRONG_TYPES, "unknown speaker 'robot' in conversations")


@pytest.mark.parametrize(
    "row",
    [
        {"messages": [user("Hi"), assistant("")]},
        {"messages": [user("Hi"), assistant("   \n")]},
        {"messages": [user("Hi"), {"role": "assistant", "content": None}, user("Again"), assistant("Ok")]},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": ""}]},
        {"query": "Hi", "response": ""},
        {"query": "Hi", "response": None},
        {"instruction": "Hi", "output": " "},
        {"history": [["Hi", ""]], "query": "Again", "response": "Ok"},
    ],
)
def test_empty_assistant_turn(row: dict[str, Any]) -> None:
    assert skipped(row) == (EMPTY_RESPONSE, "an assistant turn is empty")


def test_empty_text() -> None:
    assert skipped({"text": "  \n"}) == (EMPTY_RESPONSE, "text is empty")


@pytest.mark.parametrize(
    "messages",
    [[user("Hi")], [system("S"), user("Hi")], [user("Hi"), assistant("Hey"), user("Bye")],
     [user("Weather?"), {"role": "tool", "content": "sunny"}]],
)
def test_conversation_must_end_with_an_assistant_turn_for_training(messages: list[dict[str, str]]) -> None:
    assert skipped({"messages": messages}) == (
        EMPTY_RESPONSE, "the conversation does not end with an assistant turn"
    )


@pytest.mark.parametrize(
    "messages", [[user("Hi")], [system("S"), user("Hi")], [user("Hi"), assistant("Hey"), user("Bye")]]
)
def test_conversation_may_end_with_a_user_turn_without_require_response(
    messages: list[dict[str, str]],
) -> None:
    assert convert({"messages": messages}, require_response=False) == Conversation(messages=messages)


@pytest.mark.parametrize(
    ("history", "detail"),
    [
        ([["only a query"]], "history must be a list of [query, response] pairs"),
        ([["q", "r", "extra"]], "history must be a list of [query, response] pairs"),
        (["q", "r"], "history must be a list of [query, response] pairs"),
        ({"q": "r"}, "history must be a list of [query, response] pairs"),
        ("not a list", "history must be a list of [query, response] pairs"),
        ('[["q", "r"]', "history is not valid JSON"),
        ([[1, "r"]], "history query must be a string, got int"),
        ([["q", 2]], "history response must be a string, got int"),
    ],
)
def test_malformed_history(history: Any, detail: str) -> None:
    assert skipped({"history": history, "query": "Q", "response": "A"}) == (WRONG_TYPES, detail)


@pytest.mark.parametrize(
    ("label", "shown"), [("yes", "'yes'"), (1, "1"), (0, "0"), ("", "''"), ([True], "[True]")]
)
def test_invalid_label(label: Any, shown: str) -> None:
    row = {"messages": [user("Hi"), assistant("Hello")], "label": label}
    assert skipped(row) == (WRONG_TYPES, f"label must be true or false, got {shown}")


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("get_weather(city='Paris')", "function_call value is not JSON"),
        ('{"name": "get_weather", ', "function_call value is not JSON"),
        ('{"arguments": {"city": "Paris"}}', "function_call value needs a name"),
        ('["get_weather"]', "function_call value needs a name"),
    ],
)
def test_bad_function_call(value: str, detail: str) -> None:
    row = {"conversations": [
        {"from": "human", "value": "Weather?"},
        {"from": "function_call", "value": value},
        {"from": "observation", "value": "sunny"},
        {"from": "gpt", "value": "Sunny."},
    ]}
    assert skipped(row) == (WRONG_TYPES, detail)


# -- counting skipped rows ------------------------------------------------------------------


def convert_all(rows: list[dict[str, Any]], counter: SkipCounter) -> list[Conversation]:
    conversations = []
    for number, row in enumerate(rows, start=1):
        try:
            conversations.append(to_conversation(row, f"data.jsonl:{number}"))
        except SkippedRow as error:
            counter.skip(f"data.jsonl:{number}", error)
    return conversations


MIXED_ROWS = [
    {"query": "Hi", "response": "Hello"},
    {"messages": "hello"},
    {"query": "Hi", "response": ""},
    {"messages": [user("Hi")]},
    {"query": "Q", "response": "A", "label": "maybe"},
]


def test_skipped_rows_are_counted_by_reason_with_the_first_example() -> None:
    counter = SkipCounter()
    conversations = convert_all(MIXED_ROWS, counter)
    assert conversations == [Conversation(messages=[user("Hi"), assistant("Hello")])]
    assert counter.total == 4
    assert dict(counter.counts) == {WRONG_TYPES: 2, EMPTY_RESPONSE: 2}
    assert counter.report() == (
        "preprocessing: skipped 4 rows: "
        "2 wrong types (first: data.jsonl:2: messages must be a list of {role, content} objects); "
        "2 empty assistant turn (first: data.jsonl:3: an assistant turn is empty)"
    )


def test_nothing_skipped_report() -> None:
    counter = SkipCounter()
    convert_all(MIXED_ROWS[:1], counter)
    assert (counter.total, counter.report()) == (0, "preprocessing: no rows skipped")


def test_strict_stops_at_the_first_unusable_row() -> None:
    with pytest.raises(ArgumentError) as info:
        convert_all(MIXED_ROWS, SkipCounter(strict=True))
    assert info.value.problems == [
        "data.jsonl:2: wrong types: messages must be a list of {role, content} objects "
        "(--strict true stops at the first unusable row)"
    ]


def test_counters_from_workers_merge() -> None:
    first, second = SkipCounter(), SkipCounter()
    convert_all(MIXED_ROWS[:3], first)
    convert_all(MIXED_ROWS[3:], second)
    first.merge(second)
    assert dict(first.counts) == {WRONG_TYPES: 2, EMPTY_RESPONSE: 2}
    assert first.examples == {
        WRONG_TYPES: "data.jsonl:2: messages must be a list of {role, content} objects",
        EMPTY_RESPONSE: "data.jsonl:3: an assistant turn is empty",
    }
