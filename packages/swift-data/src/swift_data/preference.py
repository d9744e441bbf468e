"""Preference samples for `swift rlhf`: chosen and rejected answers rendered exactly as `swift sft` renders one.

Each answer goes through the same Encoder as supervised training: the conversation with its final
assistant message replaced by the answer, rendered by the model's chat template and tokenized in
segments split at the answer's boundaries. So both answers share the prompt's token ids, and the
trained tokens (labels != -100) are the answer plus its end-of-turn, nothing else.

Sample shapes (numpy int64 arrays):
  pair (dpo, orpo, simpo, cpo)  chosen_input_ids, chosen_labels, rejected_input_ids, rejected_labels
  rm                            chosen_input_ids, rejected_input_ids (whole conversations, scored at the last token)
  kto                           input_ids, labels, desirable (a row with `label`), or the pair shape (a paired
                                row: its chosen answer is desirable, its rejected one undesirable)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swift_data.preprocess.conversation import Conversation
from swift_data.skips import NO_KTO_LABEL, NO_REJECTED, SkippedRow
from swift_data.templates.encode import Encoder

PAIRED = ("dpo", "orpo", "simpo", "cpo", "rm")
KIND_OF = {**{name: "pair" for name in PAIRED}, "rm": "rm", "kto": "kto"}


def preference_sample(conversation: Conversation, encoder: Encoder, rlhf_type: str) -> dict[str, Any]:
    """The encoded sample `rlhf_type` trains on; raises SkippedRow for a row that lacks what it needs."""
    kind = KIND_OF[rlhf_type]
    if kind == "kto" and conversation.label is not None:
        sample = _ids(encoder.encode(conversation))
        sample["desirable"] = np.asarray(conversation.label, dtype=np.bool_)
        return sample
    if conversation.rejected_response is None:
        if kind == "kto":
            raise SkippedRow(NO_KTO_LABEL, "kto needs a `label` column (true/false) or a rejected answer")
        raise SkippedRow(NO_REJECTED, f"{rlhf_type} needs chosen and rejected answers (rejected_response, or "
                                      "chosen/rejected columns)")
    chosen, rejected = conversation, with_final_answer(conversation, conversation.rejected_response)
    if kind == "rm":
        return {"chosen_input_ids": np.asarray(encoder.classification_ids(chosen), dtype=np.int64),
                "rejected_input_ids": np.asarray(encoder.classification_ids(rejected), dtype=np.int64)}
    return {**_ids(encoder.encode(chosen), "chosen_"), **_ids(encoder.encode(rejected), "rejected_")}


def with_final_answer(conversation: Conversation, answer: str) -> Conversation:
    """The conversation with its last assistant message replaced by `answer`."""
    messages = [dict(m) for m in conversation.messages]
    if not messages or messages[-1]["role"] != "assistant":
        raise SkippedRow(NO_REJECTED, "the conversation does not end with an assistant answer to compare against")
    messages[-1]["content"] = answer
    return Conversation(messages, tools=conversation.tools)


def _ids(encoded: dict[str, list], prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + "input_ids": np.asarray(encoded["input_ids"], dtype=np.int64),
            prefix + "labels": np.asarray(encoded["labels"], dtype=np.int64)}


def sample_length(sample: dict[str, Any]) -> int:
    """Tokens a sample puts through the model (both answers of a pair)."""
    if "input_ids" in sample:
        return len(sample["input_ids"])
    if "prompt_ids" in sample:  # online RL: the answer is not known yet
        return len(sample["prompt_ids"])
    return len(sample["chosen_input_ids"]) + len(sample["rejected_input_ids"])
