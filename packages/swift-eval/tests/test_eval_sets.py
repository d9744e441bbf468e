"""--eval_dataset entries: built-in sets, local files in EvalScope's formats, EvalScope benchmarks; each bad one is
one line naming the entry (and the file and line), before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from swift_args import ArgumentError

from swift_eval.benchmarks import contains_answer
from swift_eval.eval_sets import BUILTIN_DIR, read_rows, resolve_eval_sets


def resolve(*entries: str, use_hf: bool = False):
    return resolve_eval_sets(list(entries), use_hf)


def refusal(*entries: str) -> str:
    with pytest.raises(ArgumentError) as error:
        resolve(*entries)
    assert len(error.value.problems) == 1, error.value.problems
    return error.value.problems[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


MCQ = {"question": "2 + 2?", "A": "3", "B": "4", "C": "5", "answer": "B"}
QA = {"query": "Capital of France?", "response": "Paris"}


def test_built_in_sets_ship_both_languages() -> None:
    qa, mcq = resolve("basic-qa", "basic-mcq")
    assert (qa.kind, qa.subsets, qa.rows) == ("qa", ["en", "zh"], {"en": 200, "zh": 100})
    assert (mcq.kind, mcq.subsets, mcq.rows) == ("mcq", ["en", "zh"], {"en": 200, "zh": 100})
    assert qa.planned(limit=10) == 20 and mcq.planned(limit=None) == 300
    (english,) = resolve("basic-qa:en")
    assert english.subsets == ["en"] and english.name == "basic-qa"


def test_built_in_multiple_choice_answers_are_balanced() -> None:
    for language, each in (("en", 50), ("zh", 25)):
        answers = [row["answer"] for _, row in read_rows(BUILTIN_DIR / "basic-mcq" / f"{language}.jsonl")]
        assert {letter: answers.count(letter) for letter in "ABCD"} == dict.fromkeys("ABCD", each)


def test_local_files_are_detected_by_their_columns(tmp_path: Path) -> None:
    mcq = write_jsonl(tmp_path / "quiz.jsonl", [MCQ, {**MCQ, "answer": "C"}])
    (tmp_path / "facts.csv").write_text("question,answer\nCapital of Japan?,Tokyo\n", encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    write_jsonl(folder / "easy.jsonl", [QA])
    write_jsonl(folder / "chat.jsonl", [{"messages": [{"role": "user", "content": "Hi"},
                                                      {"role": "assistant", "content": "Hello"}]}])
    quiz, facts, both = resolve(str(mcq), str(tmp_path / "facts.csv"), str(folder))
    assert (quiz.name, quiz.kind, quiz.rows) == ("quiz", "mcq", {"default": 2})
    assert (facts.name, facts.kind, facts.rows) == ("facts", "qa", {"default": 1})
    assert (both.name, both.kind, both.subsets) == ("folder", "qa", ["chat", "easy"])
    (one,) = resolve(f"{folder}:easy")
    assert one.subsets == ["easy"]


def test_folders_follow_evalscopes_split_names(tmp_path: Path) -> None:
    """NAME_val / NAME_test are subset NAME, NAME_dev / NAME_train few-shot files, and each subset is read from
    exactly its file (EvalScope's loader alone would take NAME_test.jsonl for NAME)."""
    (quiz := tmp_path / "quiz").mkdir()
    (quiz / "example_dev.csv").write_text("question,A,B,answer\n1+1?,2,3,A\n", encoding="utf-8")
    (quiz / "example_val.csv").write_text("question,A,B,answer\n2+2?,4,5,A\n3+3?,5,6,B\n", encoding="utf-8")
    (one,) = resolve(str(quiz))
    assert (one.subsets, one.rows, one.files) == (["example"], {"example": 2}, {"example": str(quiz / "example_val.csv")})
    (clash := tmp_path / "clash").mkdir()
    write_jsonl(clash / "example.jsonl", [QA])
    write_jsonl(clash / "example_test.jsonl", [QA])
    assert "example.jsonl and example_test.jsonl are both subset 'example'" in refusal(str(clash))


def test_numbers_and_zero_are_answers(tmp_path: Path) -> None:
    (quiz,) = resolve(str(write_jsonl(tmp_path / "n.jsonl", [{"question": "2+2?", "A": 4, "B": 5, "answer": "A"}])))
    (qa,) = resolve(str(write_jsonl(tmp_path / "z.jsonl", [{"question": "2-2?", "answer": 0}])))
    assert (quiz.kind, qa.kind) == ("mcq", "qa")


def test_a_file_named_like_a_benchmark_reports_under_another_name(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "gsm8k.jsonl", [QA])
    (other := tmp_path / "x").mkdir()
    write_jsonl(other / "gsm8k.jsonl", [QA])
    first, second = resolve(str(tmp_path / "gsm8k.jsonl"), str(other / "gsm8k.jsonl"))
    assert (first.name, second.name) == ("gsm8k-2", "gsm8k-3")


@pytest.mark.parametrize(("rows", "words"), [
    ([MCQ, {**MCQ, "answer": "D"}], [":2:", "answer must be one of the choice letters A, B, C, got 'D'"]),
    ([MCQ, {**MCQ, "B": ""}], [":2:", "the choices are columns A, B, C, ... in order"]),
    ([QA, {"query": "Where?"}], [":2:", "needs a non-empty answer"]),
    ([{"prompt": "x"}], [":1:", "needs question (or query) and answer (or response), or messages"]),
    ([{"messages": [{"role": "user", "content": "Hi"}]}], [":1:", "the last message is the reference answer"]),
    ([{**QA, "aliases": "Paris, France"}], [":1:", "aliases must be a list"]),
])
def test_a_bad_row_names_its_file_and_line(tmp_path: Path, rows: list[dict], words: list[str]) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    message = refusal(str(path))
    assert message.startswith(str(path)) and all(word in message for word in words), message


def test_broken_files_and_names_are_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"query": "a", "response": "b"}\n{"query": \n', encoding="utf-8")
    assert "bad.jsonl:2: not valid JSON" in refusal(str(tmp_path / "bad.jsonl"))
    (tmp_path / "latin1.jsonl").write_bytes('{"query": "café", "response": "x"}\n'.encode("latin-1"))
    assert "not UTF-8" in refusal(str(tmp_path / "latin1.jsonl"))
    (tmp_path / "rows.txt").write_text("x", encoding="utf-8")
    assert "a .txt file; evaluation rows are read from .jsonl, .csv, .tsv files" in refusal(str(tmp_path / "rows.txt"))
    (mixed := tmp_path / "mixed").mkdir()
    write_jsonl(mixed / "a.jsonl", [MCQ])
    write_jsonl(mixed / "b.jsonl", [QA])
    assert "mixes multiple-choice and short-answer files" in refusal(str(mixed))
    assert "no subset fr; it has en, zh" in refusal("basic-qa:fr")
    assert "did you mean gsm8k" in refusal("gsm8kk")
    assert "an EvalScope benchmark" in refusal("no-such-set")
    assert "the local copy /no/such/dir does not exist" in refusal("gsm8k=/no/such/dir")
    assert "gsm8k has no subset nope; its subsets are main" in refusal("gsm8k:nope=/tmp")
    assert "lists gsm8k twice" in refusal("gsm8k=/tmp", "gsm8k:main=/tmp")
    with pytest.raises(ArgumentError, match="--eval_dataset is required"):
        resolve()


def test_a_benchmark_that_must_be_downloaded_offline_says_how_to_pass_a_copy() -> None:
    """This machine reaches no hub: EvalScope would try to download at its first request, minutes later."""
    message = refusal("gsm8k")
    assert "downloads this benchmark (AI-ModelScope/gsm8k) from ModelScope, which cannot be reached" in message
    assert "--eval_dataset gsm8k=DIR" in message
    assert "the Hugging Face hub" in resolve_refusal_hf("arc:ARC-Easy")


def resolve_refusal_hf(entry: str) -> str:
    with pytest.raises(ArgumentError) as error:
        resolve(entry, use_hf=True)
    return error.value.problems[0]


def test_a_local_copy_of_a_benchmark_needs_no_hub(tmp_path: Path) -> None:
    (copy,) = resolve(f"gsm8k={tmp_path}")
    assert (copy.name, copy.kind, copy.source, copy.rows["main"]) == ("gsm8k", "benchmark", str(tmp_path), 1319)


@pytest.mark.parametrize(("reply", "answers", "right"), [
    ("The capital of France is Paris.", ["Paris"], True),
    ("PARIS!", ["Paris"], True),
    ("It has 18 legs.", ["8", "eight"], False),  # a number inside another is not it
    ("8.5", ["8"], False),
    ("-8", ["8"], False),
    ("1/2", ["1"], False),
    ("56 divided by 8 is 7.", ["7", "seven"], True),
    ("The answer is 0.", ["0"], True),
    ("有13个", ["3个"], False),
    ("有3个", ["3个"], True),
    ("A spider has eight legs.", ["8", "eight"], True),
    ("women", ["men"], False),
    ("About 1,000 meters.", ["1000"], True),
    ("答案是8。", ["8", "八"], True),  # a Chinese character next to a digit does not join it into a word
    ("蜘蛛有八条腿", ["8", "八"], True),
    ("十二", ["2", "二"], False),  # nor is a Chinese numeral inside a longer number
    ("法国的首都是巴黎。", ["巴黎"], True),
    ("Ｐａｒｉｓ", ["Paris"], True),  # full-width letters
    ("I am not sure.", ["Paris"], False),
])
def test_short_answers_are_found_in_the_reply(reply: str, answers: list[str], right: bool) -> None:
    assert contains_answer(reply, answers) is right
