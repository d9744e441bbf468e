"""Reward functions for `swift sample`, looked up by the names --orm_model and --prm_model give.

A plugin (a Python file passed with --custom_register_path) adds its own:

    from swift_infer.rewards import orms

    def says_paris(messages, responses, reference):
        return ["paris" in r.lower() for r in responses]

    orms["says_paris"] = says_paris

Both kinds are called once per query as `fn(messages, responses, reference)`: the query's messages
(without the answer), the sampled responses, and the row's reference answer (its last assistant
message, None if it has none). An ORM returns one score per response; a score above 0 means
correct. A PRM returns per response a score, or a list of step scores, of which the lowest counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

RewardFn = Callable[[list[dict[str, Any]], list[str], "str | None"], list[Any]]


def _normalize(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .!")


def exact_match(messages: list[dict[str, Any]], responses: list[str], reference: str | None) -> list[float]:
    """1.0 where the response equals the reference, ignoring case, spacing and a final full stop."""
    if reference is None:
        return [0.0] * len(responses)
    return [float(_normalize(r) == _normalize(reference)) for r in responses]


def contains(messages: list[dict[str, Any]], responses: list[str], reference: str | None) -> list[float]:
    """1.0 where the response contains the reference (best with short references: "Paris", "42")."""
    if reference is None or not _normalize(reference):
        return [0.0] * len(responses)
    return [float(_normalize(reference) in _normalize(r)) for r in responses]


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def last_number(messages: list[dict[str, Any]], responses: list[str], reference: str | None) -> list[float]:
    """1.0 where the last number in the response equals the last in the reference (GSM8K's "#### 42")."""
    expected = _last_number(reference or "")
    if expected is None:
        return [0.0] * len(responses)
    return [float(_last_number(r) == expected) for r in responses]


# name -> function; plugins add to these.
orms: dict[str, RewardFn] = {"exact_match": exact_match, "contains": contains, "last_number": last_number}
prms: dict[str, RewardFn] = {}
