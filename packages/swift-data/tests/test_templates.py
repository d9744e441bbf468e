"""Training input == inference input: the encoder matches apply_chat_template token for token.

Real chat templates of several families (tests/fixtures/chat_templates, see SOURCES.md) are
used with the SmolLM2 tokenizer; the built-in named templates too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from swift_data.preprocess.conversation import Conversation
from swift_data.templates.builtin import BUILTIN_TEMPLATES
from swift_data.templates.encode import IGNORE, Encoder, EncoderOptions, TemplateError

FIXTURES = Path(__file__).parent / "fixtures" / "chat_templates"
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "")

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
SINGLE = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "2 + 2 = 4."}]
WITH_SYSTEM = [{"role": "system", "content": "You are terse."}, *SINGLE]
MULTI = [*SINGLE, {"role": "user", "content": "And times 3?"}, {"role": "assistant", "content": "12.\nDone."}]
TOOL_CALLS = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "{\"temp\": 21}"},
    {"role": "assistant", "content": "It is 21 degrees in Paris."},
]

# (fixture, conversations it supports): Gemma and the legacy Mistral template refuse system turns.
CASES = [
    ("qwen2_5.jinja", [SINGLE, WITH_SYSTEM, MULTI]),
    ("llama3.jinja", [SINGLE, WITH_SYSTEM, MULTI]),
    ("gemma.jinja", [SINGLE, MULTI]),
    ("mistral.jinja", [SINGLE, WITH_SYSTEM, MULTI]),
    ("mistral_v0_2_legacy.jinja", [SINGLE, MULTI]),
    ("chatml_default_system.jinja", [SINGLE, WITH_SYSTEM, MULTI]),
    ("phi3.jinja", [SINGLE, WITH_SYSTEM, MULTI]),
]
PAIRS = [(name, messages) for name, conversations in CASES for messages in conversations]


@pytest.fixture
def tokenizer_with(smollm2_tokenizer):
    def make(template: str) -> Any:
        tokenizer = copy.copy(smollm2_tokenizer)
        tokenizer.chat_template = template
        return tokenizer

    return make


def trained_runs(sample: dict[str, list], tokenizer: Any) -> list[str]:
    """The decoded text of each run of consecutive trained tokens."""
    runs, current = [], []
    for label in [*sample["labels"], IGNORE]:
        if label == IGNORE:
            if current:
                runs.append(tokenizer.decode(current))
            current = []
        else:
            current.append(label)
    return runs


def assert_answer_then_end_of_turn(run: str, answer: str, tokenizer: Any) -> None:
    """`run` is the answer (a template may put a space before it) and then only end-of-turn tokens."""
    text = run.lstrip()
    assert text.startswith(answer.strip()), run
    rest = "".join(text[len(answer.strip()):].split())
    for marker in (*END_OF_TURN, tokenizer.eos_token):
        rest = rest.replace(marker, "") if marker else rest
    assert rest == "", run


def assert_matches_inference(tokenizer: Any, messages: list[dict], tools: list | None = None) -> dict[str, list]:
    """The three promises of the encoder, for one conversation."""
    sample = Encoder(tokenizer).encode(Conversation(copy.deepcopy(messages), tools=tools))
    ids, labels = sample["input_ids"], sample["labels"]
    # 1. The first answer's prompt is exactly what inference feeds the model, and so is the last
    #    one's when everything before it is prompt.
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = tokenizer.apply_chat_template(messages[:first], tools=tools, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert ids[: len(prompt)] == list(prompt)
    assert labels[len(prompt) - 1] == IGNORE and labels[len(prompt)] != IGNORE
    # 2. Every assistant answer is trained, followed only by its end-of-turn token.
    answers = [m["content"] for m in messages if m["role"] == "assistant" and m["content"]]
    runs = trained_runs(sample, tokenizer)
    assert len(runs) == len(answers)
    for run, answer in zip(runs, answers):
        assert_answer_then_end_of_turn(run, answer, tokenizer)
    # 3. Nothing is lost or added: the ids spell the rendered conversation.
    rendered = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    assert tokenizer.decode(ids) == tokenizer.decode(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return sample


def assert_identical_to_whole_conversation(tokenizer: Any, messages: list[dict], tools: list | None = None) -> None:
    """Where no BPE merge crosses a prompt/answer boundary, the ids are apply_chat_template's own."""
    sample = Encoder(tokenizer).encode(Conversation(copy.deepcopy(messages), tools=tools))
    assert sample["input_ids"] == list(tokenizer.apply_chat_template(messages, tools=tools, tokenize=True, return_dict=False))
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = tokenizer.apply_chat_template(messages[:last], tools=tools, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert sample["input_ids"][: len(prompt)] == list(prompt)


@pytest.mark.parametrize("fixture,messages", PAIRS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(PAIRS)])
def test_real_templates_encode_exactly_like_inference(tokenizer_with, fixture: str, messages: list[dict]) -> None:
    assert_matches_inference(tokenizer_with((FIXTURES / fixture).read_text()), messages)


@pytest.mark.parametrize("fixture", ["qwen2_5.jinja", "chatml_default_system.jinja"])
def test_chatml_templates_are_identical_to_the_whole_conversation(tokenizer_with, fixture: str) -> None:
    tokenizer = tokenizer_with((FIXTURES / fixture).read_text())
    for messages in (SINGLE, WITH_SYSTEM, MULTI):
        assert_identical_to_whole_conversation(tokenizer, messages)


def test_segments_avoid_a_merge_inference_never_sees(tokenizer_with) -> None:
    # With this tokenizer, "\n\n" before an answer is one token at the end of a prompt but two
    # tokens inside a longer text: training must show the model the prompt as inference does.
    tokenizer = tokenizer_with((FIXTURES / "llama3.jinja").read_text())
    sample = assert_matches_inference(tokenizer, SINGLE)
    whole = tokenizer.apply_chat_template(SINGLE, tokenize=True, return_dict=False)
    assert sample["input_ids"] != list(whole)
    assert tokenizer.decode(sample["input_ids"]) == tokenizer.decode(whole)


def test_the_models_own_template_is_the_default(smollm2_tokenizer) -> None:
    assert_identical_to_whole_conversation(smollm2_tokenizer, MULTI)
    sample = assert_matches_inference(smollm2_tokenizer, MULTI)
    text = smollm2_tokenizer.decode(sample["input_ids"])
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")  # its default system


def test_tools_with_a_template_that_supports_them(tokenizer_with) -> None:
    tokenizer = tokenizer_with((FIXTURES / "qwen2_5.jinja").read_text())
    assert_identical_to_whole_conversation(tokenizer, TOOL_CALLS, TOOLS)
    sample = Encoder(tokenizer).encode(Conversation(copy.deepcopy(TOOL_CALLS), tools=TOOLS))
    runs = trained_runs(sample, tokenizer)
    assert runs[0].startswith('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>')
    assert runs[1] == "It is 21 degrees in Paris.<|im_end|>"
    assert "<tool_response>" in tokenizer.decode(sample["input_ids"]) and all("21}" not in r for r in runs)


@pytest.mark.parametrize("style,marker", [("react_en", "Action: get_weather\nAction Input: {\"city\": \"Paris\"}"),
                                          ("react_zh", "Action: get_weather"), ("qwen", "✿FUNCTION✿: get_weather"),
                                          ("toolbench", "Action: get_weather"), ("glm4", "Action: get_weather")])
def test_tools_prompt_for_templates_without_tool_support(smollm2_tokenizer, style: str, marker: str) -> None:
    encoder = Encoder(smollm2_tokenizer, EncoderOptions(tools_prompt=style))
    sample = encoder.encode(Conversation(copy.deepcopy(TOOL_CALLS), tools=TOOLS))
    text = smollm2_tokenizer.decode(sample["input_ids"])
    assert "get_weather" in text.split("<|im_end|>")[0]  # the tool list is in the system prompt
    runs = trained_runs(sample, smollm2_tokenizer)
    assert runs[0].startswith(marker)
    assert "21}" not in "".join(runs)  # the tool's result is input, not trained


@pytest.mark.parametrize("name", list(BUILTIN_TEMPLATES))
def test_builtin_templates_match_inference_too(tokenizer_with, name: str) -> None:
    for messages in (SINGLE, WITH_SYSTEM, MULTI):
        assert_matches_inference(tokenizer_with(BUILTIN_TEMPLATES[name]), messages)


def test_template_argument_picks_a_builtin(smollm2_tokenizer) -> None:
    sample = Encoder(smollm2_tokenizer, EncoderOptions(template="llama3")).encode(Conversation(copy.deepcopy(SINGLE)))
    assert "<|start_header_id|>assistant<|end_header_id|>" in smollm2_tokenizer.decode(sample["input_ids"])


def test_system_argument_replaces_the_default_but_not_the_rows_own(smollm2_tokenizer, tmp_path: Path) -> None:
    encoder = Encoder(smollm2_tokenizer, EncoderOptions(system="You are Swifty."))
    text = smollm2_tokenizer.decode(encoder.encode(Conversation(copy.deepcopy(SINGLE)))["input_ids"])
    assert text.startswith("<|im_start|>system\nYou are Swifty.<|im_end|>")
    text = smollm2_tokenizer.decode(encoder.encode(Conversation(copy.deepcopy(WITH_SYSTEM)))["input_ids"])
    assert text.startswith("<|im_start|>system\nYou are terse.<|im_end|>")
    prompt_file = tmp_path / "system.txt"
    prompt_file.write_text("From a file.\n")
    encoder = Encoder(smollm2_tokenizer, EncoderOptions(system=str(prompt_file)))
    assert encoder.system == "From a file."


def test_generation_template_for_pretraining(smollm2_tokenizer) -> None:
    encoder = Encoder(smollm2_tokenizer, EncoderOptions(use_chat_template=False))
    sample = encoder.encode(Conversation(text="Plain text to continue."))
    assert smollm2_tokenizer.decode(sample["input_ids"]) == "Plain text to continue.<|im_end|>"
    assert sample["labels"] == sample["input_ids"]


def test_a_template_that_rewrites_history_is_refused_with_the_fix(tokenizer_with) -> None:
    # Like templates that drop earlier reasoning: the last answer renders differently from history.
    template = ("{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}{{ 'A: ...\n' }}"
                "{% else %}{{ m['role'][0] | upper + ': ' + m['content'] + '\n' }}{% endif %}{% endfor %}"
                "{% if add_generation_prompt %}A: {% endif %}")
    with pytest.raises(TemplateError) as info:
        Encoder(tokenizer_with(template)).encode(Conversation(copy.deepcopy(MULTI)))
    assert "does not render assistant turn 1 as a continuation" in info.value.problems[0]
    assert "pass --template with one of: chatml, qwen2_5, llama3, gemma, mistral, default" in info.value.problems[0]


def test_jinja_backend_renders_with_the_models_template_and_leaves_tools_to_it(smollm2_tokenizer) -> None:
    """--template_backend jinja (inference): transformers' apply_chat_template verbatim; the swift backend
    folds tools the template cannot render into the system prompt (--tools_prompt)."""
    from swift_data.templates.encode import EncoderOptions

    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                               "parameters": {"type": "object", "properties": {}}}}]
    conversation = Conversation(copy.deepcopy(messages), tools=tools)
    jinja = Encoder(smollm2_tokenizer, EncoderOptions(template_backend="jinja")).prompt_text(conversation)
    swift = Encoder(smollm2_tokenizer, EncoderOptions()).prompt_text(conversation)
    assert jinja == smollm2_tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert "get_weather" in swift and "get_weather" not in jinja  # SmolLM2's template has no tools section
