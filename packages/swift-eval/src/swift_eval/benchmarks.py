"""The local and built-in evaluation sets as EvalScope benchmarks (registered in the evaluator process).

Multiple choice reuses EvalScope's `general_mcq` reading and answer parsing, with the instruction in the
question's language (EvalScope's default is Chinese for every question). Short answers are scored by
whether the reply contains the reference answer (or one of its `aliases`), normalised: EvalScope's
`general_qa` scores BLEU and ROUGE, whose tokenizer data (NLTK's punkt) an offline machine does not have,
and which reward wordy replies that never give the answer.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import Any

from evalscope.api.benchmark import BenchmarkMeta, DefaultDataAdapter
from evalscope.api.dataset import Sample
from evalscope.api.evaluator import TaskState
from evalscope.api.messages import ChatMessageSystem, ChatMessageUser, dict_to_chat_message
from evalscope.api.metric import Score
from evalscope.api.registry import BENCHMARK_REGISTRY, register_benchmark
from evalscope.benchmarks.general_mcq.general_mcq_adapter import GeneralMCQAdapter
from evalscope.utils.multi_choices import (MultipleChoiceTemplate, parse_answers, parse_answers_zh,
                                           prompt)

from swift_eval.eval_sets import first_of

CHOICES = tuple("ABCDEFGHIJ")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
CJK_NUMERALS = "零〇一二两三四五六七八九十百千万"
# A letter or digit of a Latin-script word: a Chinese character next to "8" does not make it part of a word.
WORD = r"[^\W_\u3400-\u9fff\uf900-\ufaff]"


def register(name: str, kind: str, source: str, files: dict[str, str]) -> None:
    """Register the set `name` (each subset's rows in the file `files[subset]`) as an EvalScope benchmark."""
    if name in BENCHMARK_REGISTRY:
        return
    # A class per set: it carries the set's files, which EvalScope's loader would otherwise look up by name.
    adapter = type(f"{name}Adapter", (MultipleChoice if kind == "mcq" else ShortAnswer,), {"files": dict(files)})
    subsets = list(files)
    meta = BenchmarkMeta(
        name=name, pretty_name=name, dataset_id=source, subset_list=subsets or ["default"], few_shot_num=0,
        train_split=None, eval_split="test", metric_list=["acc"],
        prompt_template=MultipleChoiceTemplate.SINGLE_ANSWER if kind == "mcq" else "{question}",
        description=f"swift eval: {'multiple choice' if kind == 'mcq' else 'short answers'} from {source}",
    )
    register_benchmark(meta)(adapter)


class ExactFiles:
    """Each subset read from its own file: EvalScope's loader would pick `NAME_test.jsonl` over `NAME.jsonl`."""

    files: dict[str, str] = {}
    _reading: str | None = None  # the file of the subset being loaded

    @property
    def dataset_id(self) -> str:
        return self._reading or super().dataset_id

    def load_from_disk(self, **kwargs: Any) -> Any:
        return super().load_from_disk(use_local_loader=True)

    def load_subset(self, subset: str, data_loader: Any) -> Any:
        self._reading = self.files[subset]
        try:
            return super().load_subset(subset, data_loader)
        finally:
            self._reading = None


class ShortAnswer(ExactFiles, DefaultDataAdapter):
    """Rows of question/query + answer/response (+ aliases, system), or messages whose last one is the answer."""

    def record_to_sample(self, record: dict[str, Any]) -> Sample:
        if record.get("messages"):
            messages = record["messages"]
            answers = [messages[-1]["content"]]
            conversation = [dict_to_chat_message(m) for m in messages[:-1]]
        else:
            answers = [str(first_of(record, "answer", "response")), *record.get("aliases", [])]
            conversation = [ChatMessageSystem(content=record["system"])] if record.get("system") else []
            conversation.append(ChatMessageUser(content=str(first_of(record, "question", "query"))))
        return Sample(input=conversation, target=answers[0], metadata={"answers": answers})

    def match_score(self, original_prediction: str, filtered_prediction: str, reference: str,
                    task_state: TaskState) -> Score:
        score = Score(extracted_prediction=filtered_prediction, prediction=original_prediction)
        score.value = {"acc": float(contains_answer(filtered_prediction, task_state.metadata["answers"]))}
        score.main_score_name = "acc"
        return score


class MultipleChoice(ExactFiles, GeneralMCQAdapter):
    """EvalScope's general_mcq, asking in English or Chinese by the question's language (and parsing the reply
    in the format that language's instruction asked for)."""

    def record_to_sample(self, record: dict[str, Any]) -> Sample:
        # Choices and answers as text: a JSON row may give them as numbers ("A": 4).
        record = {key: str(value).strip() if key in CHOICES or key == "answer" else value
                  for key, value in record.items()}
        sample = super().record_to_sample(record)
        sample.metadata["lang"] = "zh" if CJK.search(str(record["question"])) else "en"
        return sample

    def format_prompt_template(self, sample: Sample) -> str:
        template = (MultipleChoiceTemplate.CHINESE_SINGLE_ANSWER_TEMPLATE if sample.metadata.get("lang") == "zh"
                    else MultipleChoiceTemplate.SINGLE_ANSWER)
        return prompt(question=sample.input, choices=sample.choices, template=template)

    def extract_answer(self, prediction: str, task_state: TaskState) -> str:
        parse = parse_answers_zh if task_state.metadata.get("lang") == "zh" else parse_answers
        return "".join(sorted(parse(task_state, multiple_correct=False, completion=prediction)))


def normalize(text: str) -> str:
    """Lowercase, NFKC (full-width to ASCII), punctuation and symbols to spaces, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in text)
    return " ".join(text.split())


# A number as written: a sign, thousands separators, a decimal point or a fraction bar belong to it.
NUMBER = re.compile(r"(?<![\d.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?(?![\d])")


def numbers_in(text: str) -> set[Fraction]:
    """Every number `text` writes, as exact values: "1,000" is 1000, "8.0" is 8, "-8" and "8.5" are not 8."""
    values = set()
    for match in NUMBER.finditer(unicodedata.normalize("NFKC", text)):
        try:
            values.add(Fraction(match.group().replace(",", "")))
        except (ValueError, ZeroDivisionError):
            continue
    return values


def contains_answer(prediction: str, answers: list[str]) -> bool:
    """Whether `prediction` says one of `answers`: a number as a whole number ("8" is not in "18", "8.5" or "-8");
    words as whole words for Latin text ("men" is not in "women"); Chinese as a substring, but digits and numerals
    not inside a longer number (二 is not in 十二, 3个 not in 13个)."""
    said = normalize(prediction)
    said_numbers: set[Fraction] | None = None
    for answer in answers:
        if NUMBER.fullmatch(unicodedata.normalize("NFKC", answer.strip())):
            said_numbers = numbers_in(prediction) if said_numbers is None else said_numbers
            if numbers_in(answer) & said_numbers:
                return True
            continue
        wanted = normalize(answer)
        if wanted and re.search(_pattern(wanted), said if not CJK.search(wanted) else said.replace(" ", "")):
            return True
    return False


def _pattern(wanted: str) -> str:
    if not CJK.search(wanted):
        return rf"(?<!{WORD}){re.escape(wanted)}(?!{WORD})"
    wanted = wanted.replace(" ", "")
    numeral = f"[0-9{CJK_NUMERALS}]"
    before = f"(?<!{numeral})" if re.match(numeral, wanted[0]) else ""
    after = f"(?!{numeral})" if re.match(numeral, wanted[-1]) else ""
    return before + re.escape(wanted) + after
