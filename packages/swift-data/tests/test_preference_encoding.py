"""Preference samples (`swift rlhf`) are rendered exactly as `swift sft` renders one answer, and as inference
feeds the prompt: both answers share the prompt's ids, and only the answer plus its end-of-turn is trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from swift_args import ArgumentError, parse_args

from swift_data.datasets.readers import RawRow
from swift_data.pipeline import PipelineOptions, encode_row, encode_rows, prepare_datasets
from swift_data.preference import KIND_OF, preference_sample
from swift_data.preprocess.conversation import Conversation
from swift_data.preprocess.formats import to_conversation
from swift_data.skips import NO_KTO_LABEL, NO_REJECTED, SkipCounter
from swift_data.templates.encode import IGNORE, Encoder, EncoderOptions

SYSTEM = "You answer in one short sentence."
QUESTION = "What is the capital of France?"
CHOSEN = "The capital of France is Paris."
REJECTED = "I think it might be Lyon, or maybe Marseille."
FIRST_QUESTION, FIRST_ANSWER = "Name a colour.", "Blue."

# (template option, its end-of-turn text), all with SmolLM2's tokenizer: its own chat template (ChatML with a default
# system prompt); mistral's ([INST] ... [/INST], no role headers, the system prompt inside the first user turn, eos
# ending an answer); llama3's (header tokens, an end-of-turn that SmolLM2's vocabulary does not hold as one token).
SMOLLM2, MISTRAL, LLAMA3 = (None, "<|im_end|>"), ("mistral", "<|im_end|>"), ("llama3", "<|eot_id|>")
TEMPLATES = [SMOLLM2, MISTRAL, LLAMA3]
IDS = ["smollm2", "mistral", "llama3"]


def messages(*, system: bool, two_turns: bool, answer: str = CHOSEN) -> list[dict[str, str]]:
    out = [{"role": "system", "content": SYSTEM}] if system else []
    if two_turns:
        out += [{"role": "user", "content": FIRST_QUESTION}, {"role": "assistant", "content": FIRST_ANSWER}]
    return out + [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": answer}]


def first_trained(labels: np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(labels) != IGNORE)[0])


def trained_text(tokenizer, ids, labels) -> str:
    ids, labels = np.asarray(ids), np.asarray(labels)
    return tokenizer.decode(ids[labels != IGNORE].tolist())


def encoder_for(tokenizer, template: str | None, loss_scale: str = "default", rlhf_type: str | None = None) -> Encoder:
    return Encoder(tokenizer, EncoderOptions(template=template, loss_scale=loss_scale, rlhf_type=rlhf_type))


@pytest.mark.parametrize(("template", "end_of_turn"), TEMPLATES, ids=IDS)
@pytest.mark.parametrize("system", [True, False], ids=["system", "no-system"])
def test_a_pair_is_what_sft_trains_and_its_prompt_is_what_inference_feeds(smollm2_tokenizer, template, end_of_turn,
                                                                          system) -> None:
    encoder = encoder_for(smollm2_tokenizer, template)
    conversation = Conversation(messages(system=system, two_turns=False), rejected_response=REJECTED)
    sample = preference_sample(conversation, encoder, "dpo")
    assert set(sample) == {"chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"}
    assert all(v.dtype == np.int64 for v in sample.values())

    sft_chosen = encoder.encode(Conversation(messages(system=system, two_turns=False)))
    sft_rejected = encoder.encode(Conversation(messages(system=system, two_turns=False, answer=REJECTED)))
    assert sample["chosen_input_ids"].tolist() == sft_chosen["input_ids"]
    assert sample["chosen_labels"].tolist() == sft_chosen["labels"]
    assert sample["rejected_input_ids"].tolist() == sft_rejected["input_ids"]
    assert sample["rejected_labels"].tolist() == sft_rejected["labels"]
    assert sample["chosen_input_ids"].tolist() != sample["rejected_input_ids"].tolist()

    # Both answers follow the same prompt ids, and those are what inference tokenizes and feeds.
    cut_chosen, cut_rejected = first_trained(sample["chosen_labels"]), first_trained(sample["rejected_labels"])
    assert cut_chosen == cut_rejected
    prompt = sample["chosen_input_ids"][:cut_chosen].tolist()
    assert sample["rejected_input_ids"][:cut_rejected].tolist() == prompt
    prompt_text = encoder.prompt_text(Conversation(messages(system=system, two_turns=False)[:-1]))
    assert prompt == smollm2_tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    assert (sample["chosen_labels"][:cut_chosen] == IGNORE).all()

    # Trained: the answer and its end-of-turn, nothing before or after.
    assert trained_text(smollm2_tokenizer, sample["chosen_input_ids"], sample["chosen_labels"]) == CHOSEN + end_of_turn
    assert trained_text(smollm2_tokenizer, sample["rejected_input_ids"], sample["rejected_labels"]) == REJECTED + end_of_turn
    for side in ("chosen", "rejected"):
        labels, ids = sample[f"{side}_labels"], sample[f"{side}_input_ids"]
        trained = labels != IGNORE
        assert (labels[trained] == ids[trained]).all()
        assert np.flatnonzero(trained).tolist() == list(range(cut_chosen, cut_chosen + int(trained.sum())))  # one span


# Not llama3 here: with SmolLM2's tokenizer its "<|eot_id|>" is plain text, so tokenizing the whole prompt merges
# across the end of the first answer, where training (segments, as the model generated it) does not; with llama3's
# own tokenizer it is one special token and no merge crosses it.
@pytest.mark.parametrize(("template", "end_of_turn"), [SMOLLM2, MISTRAL], ids=IDS[:2])
def test_two_turns_with_last_round_trains_only_the_final_answer(smollm2_tokenizer, template, end_of_turn) -> None:
    conversation = Conversation(messages(system=True, two_turns=True), rejected_response=REJECTED)
    for loss_scale in ("default", "last_round"):
        encoder = encoder_for(smollm2_tokenizer, template, loss_scale)
        sample = preference_sample(conversation, encoder, "dpo")
        sft_chosen = encoder.encode(Conversation(messages(system=True, two_turns=True)))
        sft_rejected = encoder.encode(Conversation(messages(system=True, two_turns=True, answer=REJECTED)))
        assert sample["chosen_input_ids"].tolist() == sft_chosen["input_ids"]
        assert sample["chosen_labels"].tolist() == sft_chosen["labels"]
        assert sample["rejected_input_ids"].tolist() == sft_rejected["input_ids"]
        assert sample["rejected_labels"].tolist() == sft_rejected["labels"]

        prompt_text = encoder.prompt_text(Conversation(messages(system=True, two_turns=True)[:-1]))
        prompt = smollm2_tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        for side, answer in (("chosen", CHOSEN), ("rejected", REJECTED)):
            ids, labels = sample[f"{side}_input_ids"], sample[f"{side}_labels"]
            assert ids[: len(prompt)].tolist() == prompt  # the earlier turns, as inference feeds them
            assert smollm2_tokenizer.decode(ids[len(prompt):].tolist()).rstrip() == answer + end_of_turn
            if loss_scale == "last_round":
                assert first_trained(labels) == len(prompt)
                assert trained_text(smollm2_tokenizer, ids, labels) == answer + end_of_turn
            else:  # every assistant turn is trained, the first answer included
                assert first_trained(labels) < len(prompt)
                assert trained_text(smollm2_tokenizer, ids, labels) == FIRST_ANSWER + end_of_turn + answer + end_of_turn
        cut = first_trained(sample["chosen_labels"])
        assert cut == first_trained(sample["rejected_labels"])
        assert sample["chosen_input_ids"][:cut].tolist() == sample["rejected_input_ids"][:cut].tolist()


# -- row formats --------------------------------------------------------------------------------


ROWS = {
    "prompt + chosen/rejected strings": {"system": SYSTEM, "prompt": QUESTION, "chosen": CHOSEN, "rejected": REJECTED},
    "chosen/rejected message lists": {
        "chosen": messages(system=True, two_turns=False),
        "rejected": messages(system=True, two_turns=False, answer=REJECTED),
    },
    "chosen/rejected message lists as JSON text": {
        "chosen": json.dumps(messages(system=True, two_turns=False)),
        "rejected": json.dumps(messages(system=True, two_turns=False, answer=REJECTED)),
    },
    "messages + rejected_response": {"messages": messages(system=True, two_turns=False), "rejected_response": REJECTED},
}


@pytest.mark.parametrize("rlhf_type", ["dpo", "kto", "rm"])
def test_every_row_format_gives_the_same_sample(smollm2_tokenizer, rlhf_type) -> None:
    encoder = encoder_for(smollm2_tokenizer, None, "last_round", rlhf_type)
    samples = {name: encode_row(RawRow(f"rows.jsonl:{i + 1}", row), encoder, None, keep_row=False)
               for i, (name, row) in enumerate(ROWS.items())}
    reference = preference_sample(Conversation(messages(system=True, two_turns=False), rejected_response=REJECTED),
                                  encoder, rlhf_type)
    for name, sample in samples.items():
        assert sample.keys() == reference.keys(), name
        for key in reference:
            assert sample[key].tolist() == reference[key].tolist(), (name, key)


# -- kto and rm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [True, False, "true", "False"])
def test_a_kto_row_with_a_label_is_one_sequence_with_its_flag(smollm2_tokenizer, label) -> None:
    encoder = encoder_for(smollm2_tokenizer, None, "last_round", "kto")
    row = {"messages": messages(system=False, two_turns=True), "label": label}
    sample = encode_row(RawRow("kto.jsonl:1", row), encoder, None, keep_row=False)
    assert set(sample) == {"input_ids", "labels", "desirable"}
    assert sample["desirable"].dtype == np.bool_ and bool(sample["desirable"]) is (str(label).lower() == "true")
    sft = encoder.encode(Conversation(messages(system=False, two_turns=True)))
    assert sample["input_ids"].tolist() == sft["input_ids"] and sample["labels"].tolist() == sft["labels"]
    assert trained_text(smollm2_tokenizer, sample["input_ids"], sample["labels"]) == CHOSEN + "<|im_end|>"


def test_a_paired_row_under_kto_keeps_the_pair_shape(smollm2_tokenizer) -> None:
    conversation = Conversation(messages(system=True, two_turns=False), rejected_response=REJECTED)
    kto = preference_sample(conversation, encoder_for(smollm2_tokenizer, None, "last_round", "kto"), "kto")
    dpo = preference_sample(conversation, encoder_for(smollm2_tokenizer, None, "last_round", "dpo"), "dpo")
    assert set(kto) == {"chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"}
    assert all(kto[k].tolist() == dpo[k].tolist() for k in dpo)


def test_a_reward_model_pair_is_each_whole_conversation_as_classification_ids(smollm2_tokenizer) -> None:
    encoder = encoder_for(smollm2_tokenizer, None, "last_round", "rm")
    conversation = Conversation(messages(system=False, two_turns=True), rejected_response=REJECTED)
    sample = preference_sample(conversation, encoder, "rm")
    assert set(sample) == {"chosen_input_ids", "rejected_input_ids"}
    chosen = encoder.classification_ids(Conversation(messages(system=False, two_turns=True)))
    rejected = encoder.classification_ids(Conversation(messages(system=False, two_turns=True, answer=REJECTED)))
    assert sample["chosen_input_ids"].tolist() == chosen and sample["rejected_input_ids"].tolist() == rejected
    text = smollm2_tokenizer.decode(sample["rejected_input_ids"].tolist())
    assert REJECTED in text and CHOSEN not in text and FIRST_ANSWER in text
    assert smollm2_tokenizer.decode(sample["chosen_input_ids"].tolist()).rstrip().endswith(CHOSEN + "<|im_end|>")


def test_kind_of_every_algorithm() -> None:
    assert KIND_OF == {"dpo": "pair", "orpo": "pair", "simpo": "pair", "cpo": "pair", "rm": "rm", "kto": "kto"}


# -- skipped rows -------------------------------------------------------------------------------


SFT_ROW = {"messages": messages(system=False, two_turns=False)}
PAIR_ROW = {"messages": messages(system=False, two_turns=False), "rejected_response": REJECTED}


def rlhf_args(*argv: str):
    return parse_args("rlhf", ["--model", "SmolLM2-135M-Instruct", "--split_dataset_ratio", "0", *argv],
                      warn=lambda _: None).args


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_an_sft_row_is_counted_as_no_rejected_answer_with_its_line(smollm2_tokenizer, tmp_path) -> None:
    path = write_rows(tmp_path / "pairs.jsonl", [PAIR_ROW, SFT_ROW, PAIR_ROW, SFT_ROW])
    data = prepare_datasets(rlhf_args("--dataset", str(path), "--rlhf_type", "dpo"), smollm2_tokenizer)
    assert dict(data.skips.counts) == {NO_REJECTED: 2}
    assert len(data.train) == 2 and "rejected_input_ids" in data.train[0]
    assert f"{path}:2: dpo needs chosen and rejected answers" in data.skips.report()


def test_a_kto_row_without_label_or_rejected_answer_is_counted(smollm2_tokenizer, tmp_path) -> None:
    rows = [{**SFT_ROW, "label": True}, SFT_ROW, PAIR_ROW, {**SFT_ROW, "label": False}]
    path = write_rows(tmp_path / "kto.jsonl", rows)
    data = prepare_datasets(rlhf_args("--dataset", str(path), "--rlhf_type", "kto"), smollm2_tokenizer)
    assert dict(data.skips.counts) == {NO_KTO_LABEL: 1}
    assert f"{path}:2: kto needs a `label` column" in data.skips.report()
    assert [bool(s["desirable"]) if "desirable" in s else "pair" for s in data.train] == [True, "pair", False]


@pytest.mark.parametrize(("rlhf_type", "reason"), [("dpo", NO_REJECTED), ("orpo", NO_REJECTED), ("rm", NO_REJECTED),
                                                   ("kto", NO_KTO_LABEL)])
def test_encode_rows_counts_each_skip_with_file_and_line(smollm2_tokenizer, rlhf_type, reason) -> None:
    encoder = encoder_for(smollm2_tokenizer, None, "last_round", rlhf_type)
    rows = [RawRow("data.jsonl:1", PAIR_ROW), RawRow("data.jsonl:2", SFT_ROW), RawRow("data.jsonl:3", SFT_ROW)]
    skips = SkipCounter()
    samples = encode_rows(rows, encoder, PipelineOptions(), skips)
    assert len(samples) == 1 and dict(skips.counts) == {reason: 2}
    assert skips.examples[reason].startswith(f"data.jsonl:2: {rlhf_type} needs")


def test_strict_stops_at_the_first_unusable_row_naming_file_and_line(smollm2_tokenizer, tmp_path) -> None:
    path = write_rows(tmp_path / "pairs.jsonl", [PAIR_ROW, PAIR_ROW, SFT_ROW])
    with pytest.raises(ArgumentError) as info:
        prepare_datasets(rlhf_args("--dataset", str(path), "--rlhf_type", "dpo", "--strict", "true"), smollm2_tokenizer)
    assert info.value.problems[0].startswith(f"{path}:3: no rejected answer: dpo needs chosen and rejected answers")

    encoder = encoder_for(smollm2_tokenizer, None, "last_round", "kto")
    with pytest.raises(ArgumentError) as info:
        encode_rows([RawRow("kto.jsonl:7", SFT_ROW)], encoder, PipelineOptions(strict=True), SkipCounter(strict=True))
    assert info.value.problems[0].startswith("kto.jsonl:7: no kto label")


def test_the_rlhf_encoder_options_come_from_the_arguments() -> None:
    args = rlhf_args("--dataset", "x.jsonl", "--rlhf_type", "simpo")
    options = EncoderOptions.from_args(args)
    assert (options.rlhf_type, options.loss_scale) == ("simpo", "last_round")
    sft = parse_args("sft", ["--model", "SmolLM2-135M-Instruct"], warn=lambda _: None).args
    assert EncoderOptions.from_args(sft).rlhf_type is None


def test_a_chosen_rejected_row_becomes_a_conversation_with_its_rejected_answer() -> None:
    conversation = to_conversation({"prompt": QUESTION, "chosen": CHOSEN, "rejected": REJECTED}, "x:1")
    assert conversation.rejected_response == REJECTED
    assert conversation.messages == [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": CHOSEN}]
