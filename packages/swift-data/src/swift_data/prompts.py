"""Prompt samples for online RL (`swift rlhf --rlhf_type grpo | ppo`): what the policy answers, not an answer.

A row's conversation is rendered up to the assistant's turn, exactly as `swift infer` feeds it to
an engine; a final assistant message, if the row has one, is not part of the prompt (reward
functions still see it, as the row's own columns). Prompts longer than --max_length are dropped
(truncation_strategy delete) or cut from the left (left): the end of a prompt is what the answer
follows, so it is never cut.

Sample: prompt_ids (numpy int64), messages (the prompt's messages), row (the row's columns, renamed
by --columns, for the reward functions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swift_data.preprocess.conversation import Conversation
from swift_data.skips import TOO_LONG, SkippedRow
from swift_data.templates.encode import Encoder

ONLINE_RL = ("grpo", "ppo")


def prompt_sample(conversation: Conversation, encoder: Encoder, row: dict[str, Any]) -> dict[str, Any]:
    prompt = without_final_answer(conversation)
    text = encoder.prompt_text(prompt)
    ids = encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
    limit = encoder.options.max_length
    if limit is not None and len(ids) > limit:
        if encoder.options.truncation_strategy != "left":
            raise SkippedRow(TOO_LONG, f"the prompt has {len(ids)} tokens > max_length {limit}")
        ids = ids[-limit:]
    return {"prompt_ids": np.asarray(ids, dtype=np.int64), "messages": prompt.messages, "row": row}


def without_final_answer(conversation: Conversation) -> Conversation:
    messages = conversation.messages
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return Conversation([dict(m) for m in messages], tools=conversation.tools)
