"""--loss_scale: which tokens are trained, and how much each weighs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from swift_args import ArgumentError

from swift_data.preprocess.conversation import Conversation
from swift_data.templates.encode import IGNORE, Encoder, EncoderOptions
from swift_data.templates.loss_scale import load_loss_scale

MULTI = [
    {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye!"},
]
REACT = "Thought: I need the weather.\nAction: get_weather\nAction Input: {\"city\": \"Paris\"}\nObservation: 21C\nFinal Answer: It is 21C."


def trained_text(tokenizer, sample: dict) -> str:
    return tokenizer.decode([t for t in sample["labels"] if t != IGNORE])


def weights_by_piece(tokenizer, sample: dict) -> list[tuple[str, float]]:
    """(decoded token, weight) for every trained token."""
    return [(tokenizer.decode([t]), w) for t, w in zip(sample["input_ids"], sample["loss_scale"]) if w > 0]


def encode(tokenizer, messages: list[dict], loss_scale: str) -> dict:
    return Encoder(tokenizer, EncoderOptions(loss_scale=loss_scale)).encode(Conversation(copy.deepcopy(messages)))


def test_default_trains_every_answer(smollm2_tokenizer) -> None:
    assert trained_text(smollm2_tokenizer, encode(smollm2_tokenizer, MULTI, "default")) == "Hello!<|im_end|>Goodbye!<|im_end|>"


def test_last_round_trains_only_the_last_answer(smollm2_tokenizer) -> None:
    assert trained_text(smollm2_tokenizer, encode(smollm2_tokenizer, MULTI, "last_round")) == "Goodbye!<|im_end|>"


def test_all_trains_every_token(smollm2_tokenizer) -> None:
    sample = encode(smollm2_tokenizer, MULTI, "all")
    assert sample["labels"] == sample["input_ids"]


def test_react_weights_actions_and_silences_observations(smollm2_tokenizer) -> None:
    sample = encode(smollm2_tokenizer, [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": REACT}], "react")
    pieces = weights_by_piece(smollm2_tokenizer, sample)
    text_by_weight: dict[float, str] = {}
    for piece, weight in pieces:
        text_by_weight[weight] = text_by_weight.get(weight, "") + piece
    assert "get_weather" in text_by_weight[2.0] and "Paris" in text_by_weight[2.0] and "Observation:" in text_by_weight[2.0]
    assert "I need the weather." in text_by_weight[1.0] and "It is 21C." in text_by_weight[1.0]
    assert "21C\n" not in text_by_weight[1.0].split("Final Answer:")[0]  # the observation's content weighs 0
    assert all(w in (1.0, 2.0) for _, w in pieces)


def test_custom_json_config(smollm2_tokenizer, tmp_path: Path) -> None:
    config = tmp_path / "scale.json"
    config.write_text(json.dumps({"response": {"Final Answer:": [3.0, 3.0]}}))
    sample = encode(smollm2_tokenizer, [{"role": "user", "content": "Q"}, {"role": "assistant", "content": REACT}], str(config))
    heavy = "".join(p for p, w in weights_by_piece(smollm2_tokenizer, sample) if w == 3.0)
    assert heavy.startswith("Final Answer: It is 21C.")


def test_query_rule_weights_the_whole_answer(tmp_path: Path, smollm2_tokenizer) -> None:
    config = tmp_path / "scale.json"
    config.write_text(json.dumps({"response": {}, "query": {"Bye": [0.5]}}))
    sample = encode(smollm2_tokenizer, MULTI, str(config))
    assert sorted({w for w in sample["loss_scale"] if w > 0}) == [0.5, 1.0]


def test_bad_loss_scale_values() -> None:
    with pytest.raises(ArgumentError, match="--loss_scale nope: not one of default, last_round, all, react, qwen, agentflan, alpha_umi and no such JSON file"):
        load_loss_scale("nope")


def test_bad_loss_scale_file(tmp_path: Path) -> None:
    config = tmp_path / "scale.json"
    config.write_text(json.dumps({"response": {"Action:": [2.0]}}))
    with pytest.raises(ArgumentError) as info:
        load_loss_scale(str(config))
    assert info.value.problems == [f"{config}: response rule 'Action:' must be [keyword weight, content weight]"]
