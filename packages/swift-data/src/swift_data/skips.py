"""Counting rows that cannot be used, by reason; nothing is dropped without being counted."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

from swift_args import ArgumentError

# The reasons a row is skipped, in the order they are reported.
MALFORMED_JSON = "malformed JSON"
WRONG_TYPES = "wrong types"
EMPTY_RESPONSE = "empty assistant turn"
TOO_LONG = "longer than max_length (truncation_strategy delete)"
NO_TRAINED_TOKENS = "no trained tokens left after truncation"
NO_REJECTED = "no rejected answer"
NO_KTO_LABEL = "no kto label"


class SkippedRow(Exception):
    """Raised inside preprocessing for one row; `reason` is one of the constants above."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class SkipCounter:
    """Per-reason counts, plus the first example of each so the report says where to look."""

    strict: bool = False
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, where: str, error: SkippedRow) -> None:
        if self.strict:
            raise ArgumentError(f"{where}: {error} (--strict true stops at the first unusable row)")
        self.counts[error.reason] += 1
        self.examples.setdefault(error.reason, f"{where}: {error.detail}" if error.detail else where)

    def merge(self, other: SkipCounter) -> None:
        self.counts.update(other.counts)
        for reason, example in other.examples.items():
            self.examples.setdefault(reason, example)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self) -> str:
        if not self.total:
            return "preprocessing: no rows skipped"
        parts = [f"{count} {reason} (first: {self.examples[reason]})" for reason, count in self.counts.most_common()]
        return f"preprocessing: skipped {self.total} rows: " + "; ".join(parts)

    def print_report(self) -> None:
        print(self.report(), file=sys.stderr)
