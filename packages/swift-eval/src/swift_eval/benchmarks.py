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

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
CJK_NUMERALS = "零〇一二两三四五六七八九十百千万"
# A letter or digit of a Latin-script word: a Chinese character next to "8" does not make it part of a word.
WORD = r"[^\W_\u3400-\u9fff\uf900-\ufaff]"


def register(name: str, kind: str, source: str, subsets: list[str]) -> None:
    """Register the set `name` (its rows in the file or folder `source`) as an EvalScope benchmark."""
    if name in BENCHMARK_REGISTRY:
        return
    adapter = MultipleChoice if kind == "mcq" else ShortAnswer
    meta = BenchmarkMeta(
        name=name, pretty_name=name, dataset_id=source, subset_list=subsets or ["default"], few_shot_num=0,
        train_split=None, eval_split="test", metric_list=["acc"],
        prompt_template=MultipleChoiceTemplate.SINGLE_ANSWER if kind == "mcq" else "{question}",
        description=f"swift eval: {'multiple choice' if kind == 'mcq' else 'short answers'} from {source}",
    )
    register_benchmark(meta)(adapter)


class ShortAnswer(DefaultDataAdapter):
    """Rows of question/query + answer/response (+ aliases, system), or messages whose last one is the answer."""

    def load_from_disk(self, **kwargs: Any) -> Any:
        return super().load_from_disk(use_local_loader=True)

    def record_to_sample(self, record: dict[str, Any]) -> Sample:
        if record.get("messages"):
            messages = record["messages"]
            answers = [messages[-1]["content"]]
            conversation = [dict_to_chat_message(m) for m in messages[:-1]]
        else:
            answers = [str(record.get("answer") or record.get("response")), *record.get("aliases", [])]
            conversation = [ChatMessageSystem(content=record["system"])] if record.get("system") else []
            conversation.append(ChatMessageUser(content=str(record.get("question") or record.get("query"))))
        return Sample(input=conversation, target=answers[0], metadata={"answers": answers})

    def match_score(self, original_prediction: str, filtered_prediction: str, reference: str,
                    task_state: TaskState) -> Score:
        score = Score(extracted_prediction=filtered_prediction, prediction=original_prediction)
        score.value = {"acc": float(contains_answer(filtered_prediction, task_state.metadata["answers"]))}
        score.main_score_name = "acc"
        return score


class MultipleChoice(GeneralMCQAdapter):
    """EvalScope's general_mcq, asking in English or Chinese by the question's language (and parsing the reply
    in the format that language's instruction asked for)."""

    def record_to_sample(self, record: dict[str, Any]) -> Sample:
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
    """Lowercase, NFKC (full-width to ASCII), thousands separators and punctuation dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in text)
    return " ".join(text.split())


def contains_answer(prediction: str, answers: list[str]) -> bool:
    """Whether `prediction` says one of `answers`: as whole words for Latin text ("8" is not in "18", "men"
    not in "women"), as a substring for Chinese (numerals not inside a longer number: 二 is not in 十二)."""
    said = normalize(prediction)
    for answer in answers:
        wanted = normalize(answer)
        if not wanted:
            continue
        if CJK.search(wanted):
            if all(c in CJK_NUMERALS for c in wanted.replace(" ", "")):
                pattern = f"(?<![{CJK_NUMERALS}]){re.escape(wanted)}(?![{CJK_NUMERALS}])"
                if re.search(pattern, said):
                    return True
            elif wanted.replace(" ", "") in said.replace(" ", ""):
                return True
        elif re.search(rf"(?<!{WORD}){re.escape(wanted)}(?!{WORD})", said):
            return True
    return False
