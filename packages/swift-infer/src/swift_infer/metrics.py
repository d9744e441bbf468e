"""Evaluation metrics for generated answers: `acc` (exact match) and `nlg` (ROUGE-L, BLEU-4).

Text is split into words, and every CJK character counts as a word of its own, so Chinese answers
are scored as finely as English ones.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_WORDS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def rouge_l(prediction: list[str], reference: list[str]) -> float:
    """ROUGE-L F1 from the longest common subsequence."""
    if not prediction or not reference:
        return float(prediction == reference)
    previous = [0] * (len(reference) + 1)
    for p in prediction:
        current = [0]
        for j, r in enumerate(reference, start=1):
            current.append(previous[j - 1] + 1 if p == r else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(prediction), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


def bleu4(prediction: list[str], reference: list[str]) -> float:
    """Sentence BLEU-4 with add-one smoothing of the higher n-gram precisions."""
    if not prediction:
        return 0.0
    log_precision = 0.0
    for n in range(1, 5):
        predicted = Counter(tuple(prediction[i : i + n]) for i in range(len(prediction) - n + 1))
        referenced = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
        overlap = sum(min(count, referenced[gram]) for gram, count in predicted.items())
        total = max(sum(predicted.values()), 0)
        smooth = 0 if n == 1 else 1
        if total + smooth == 0 or overlap + smooth == 0:
            return 0.0
        log_precision += math.log((overlap + smooth) / (total + smooth)) / 4
    brevity = 1.0 if len(prediction) > len(reference) else math.exp(1 - len(reference) / len(prediction))
    return brevity * math.exp(log_precision)


def score(metric: str, predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean scores over the pairs: {"acc"} or {"rouge-l", "bleu-4"}."""
    if not predictions:
        return {}
    if metric == "acc":
        return {"acc": sum(p.strip() == r.strip() for p, r in zip(predictions, references)) / len(predictions)}
    pairs = [(words(p), words(r)) for p, r in zip(predictions, references)]
    return {
        "rouge-l": sum(rouge_l(p, r) for p, r in pairs) / len(pairs),
        "bleu-4": sum(bleu4(p, r) for p, r in pairs) / len(pairs),
    }
