"""Loss weights per trained character: --loss_scale default | last_round | all | agent presets | JSON file.

An agent config (the reference's format) maps a keyword in the response to [weight of the
keyword, weight of what follows it up to the next keyword]; `query` rules weight a whole
response by a keyword found in the user turn before it. Text before the first keyword weighs 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from swift_args import ArgumentError

_REACT = {"Action:": [2.0, 2.0], "Action Input:": [2.0, 2.0], "Thought:": [1.0, 1.0],
          "Final Answer:": [1.0, 1.0], "Observation:": [2.0, 0.0]}  # fmt: skip
PRESETS: dict[str, dict] = {
    "react": {"response": _REACT},
    "qwen": {"response": {"✿FUNCTION✿:": [2.0, 2.0], "✿ARGS✿:": [2.0, 2.0], "✿RESULT✿:": [1.0, 0.0],
                          "✿RETURN✿:": [1.0, 1.0]}},
    "agentflan": {"response": _REACT, "query": {"Begin!": [1.0], "You have access to the following": [1.0]}},
    "alpha_umi": {"response": {"Action:": [2.0, 2.0], "Action Input:": [2.0, 2.0], "Observation:": [2.0, 0.0],
                               "Next:": [2.0, 2.0], "Final Answer:": [1.0, 1.0]}},
}
MODES = ("default", "last_round", "all")


@dataclass(frozen=True)
class LossScale:
    """How much each part of a conversation counts in the loss."""

    mode: str = "default"  # which turns are trained: default (all responses), last_round, all (every token)
    response: dict[str, list[float]] = field(default_factory=dict)
    query: dict[str, list[float]] = field(default_factory=dict)

    @property
    def weighted(self) -> bool:
        return bool(self.response or self.query)

    def response_weight(self, query: str) -> float:
        for key, (weight, *_) in self.query.items():
            if key in query:
                return weight
        return 1.0

    def char_weights(self, text: str) -> list[float]:
        """Weight of every character of a response."""
        weights = [1.0] * len(text)
        marks = sorted((start, k) for k in self.response for start in _all_starts(text, k))
        for index, (start, key) in enumerate(marks):
            key_weight, after_weight = self.response[key]
            end_key = start + len(key)
            end_after = marks[index + 1][0] if index + 1 < len(marks) else len(text)
            weights[start:end_key] = [key_weight] * (end_key - start)
            weights[end_key:end_after] = [after_weight] * (end_after - end_key)
        return weights


def _all_starts(text: str, key: str) -> list[int]:
    starts, position = [], text.find(key)
    while position != -1:
        starts.append(position)
        position = text.find(key, position + len(key))
    return starts


def load_loss_scale(value: str) -> LossScale:
    """--loss_scale: a mode, a preset name, or a JSON file in the preset format."""
    if value in MODES:
        return LossScale(mode=value)
    if value in PRESETS:
        return LossScale(response=PRESETS[value].get("response", {}), query=PRESETS[value].get("query", {}))
    path = Path(value)
    if not path.is_file():
        raise ArgumentError(
            f"--loss_scale {value}: not one of {', '.join(MODES + tuple(PRESETS))} and no such JSON file"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict) or not all(isinstance(config.get(k, {}), dict) for k in ("response", "query")):
        raise ArgumentError(f"{path}: expected a JSON object of rules: {{\"response\": {{...}}, \"query\": {{...}}}}")
    response = config.get("response", {} if "query" in config else config)
    query = config.get("query", {})
    for key, weights in response.items():
        if not (isinstance(weights, list) and len(weights) == 2 and all(isinstance(w, (int, float)) for w in weights)):
            raise ArgumentError(f"{path}: response rule {key!r} must be [keyword weight, content weight]")
    for key, weights in query.items():
        if not (isinstance(weights, list) and len(weights) >= 1 and isinstance(weights[0], (int, float))):
            raise ArgumentError(f"{path}: query rule {key!r} must be [response weight]")
    return LossScale(response={k: [float(w) for w in v] for k, v in response.items()},
                     query={k: [float(v[0])] for k, v in query.items()})
