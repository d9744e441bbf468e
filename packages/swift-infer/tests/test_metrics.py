from __future__ import annotations

import pytest

from swift_infer.metrics import bleu4, rouge_l, score, words


def test_words_split_cjk_characters() -> None:
    assert words("I am 小黄, hello") == ["i", "am", "小", "黄", ",", "hello"]


def test_rouge_l() -> None:
    assert rouge_l(words("the cat sat"), words("the cat sat")) == 1.0
    assert rouge_l(words("the cat"), words("the cat sat on")) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert rouge_l(words("dog"), words("cat")) == 0.0


def test_bleu4() -> None:
    assert bleu4(words("the cat sat on the mat"), words("the cat sat on the mat")) == pytest.approx(1.0)
    assert 0 < bleu4(words("the cat sat on a mat"), words("the cat sat on the mat")) < 1
    assert bleu4([], words("x")) == 0.0


def test_score() -> None:
    assert score("acc", ["Paris.", "Rome"], [" Paris.", "Berlin"]) == {"acc": 0.5}
    nlg = score("nlg", ["the cat sat"], ["the cat sat"])
    assert nlg == {"rouge-l": 1.0, "bleu-4": pytest.approx(1.0)}
