"""`swift infer` for a sequence-classification model (--task_type seq_cls, usually from the run's args.json).

Interactive: each line typed is classified and answered with the predicted class and every class's
probability. Over a dataset (--val_dataset): one JSON line per row with `predicted`, `probabilities`
and, where the row has one, its `label`; the accuracy over labelled rows is printed and stored beside
the results as <name>.metric.json.

A reward model (--num_labels 1, what `swift rlhf --rlhf_type rm` trains) answers with a `score` for
the whole conversation, its last answer included; a preference row (chosen/rejected) gets `score` and
`rejected_score`, and the share of rows whose chosen answer scores higher is the printed accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from swift_data.preprocess.conversation import Conversation
from swift_data.preprocess.formats import rename_columns, to_conversation
from swift_data.skips import WRONG_TYPES, SkipCounter, SkippedRow
from swift_data.templates.encode import Encoder, EncoderOptions


class Classifier:
    def __init__(self, args: Any):
        from swift_infer.infer import adapter_names, load_adapters
        from swift_infer.loading import load_model

        loaded = load_model(args)
        self.model = load_adapters(loaded.model, adapter_names(args.adapters)).eval()
        self.tokenizer = loaded.tokenizer
        self.encoder = Encoder(loaded.tokenizer, EncoderOptions.from_args(args))
        self.device = next(self.model.parameters()).device

    @property
    def scores(self) -> bool:
        """A reward model: one output, a score rather than class probabilities."""
        return self.model.config.num_labels == 1

    @torch.no_grad()
    def logits(self, conversation: Conversation) -> list[float]:
        ids = torch.tensor([self.encoder.classification_ids(conversation)], device=self.device)
        return self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float().tolist()

    def answer(self, conversation: Conversation) -> dict[str, Any]:
        logits = self.logits(conversation)
        if self.scores:
            result = {"score": round(logits[0], 6)}
            if conversation.rejected_response is not None:
                from swift_data.preference import with_final_answer

                rejected = with_final_answer(conversation, conversation.rejected_response)
                result["rejected_score"] = round(self.logits(rejected)[0], 6)
            return result
        return answer(torch.softmax(torch.tensor(logits), -1).tolist())


def answer(probabilities: list[float]) -> dict[str, Any]:
    predicted = max(range(len(probabilities)), key=probabilities.__getitem__)
    return {"predicted": predicted, "probabilities": [round(p, 6) for p in probabilities]}


def run_classification(args: Any, rows: list[Any] | None) -> int:
    classifier = Classifier(args)
    if rows is None:
        return _interactive(classifier)
    return _over_dataset(classifier, args, rows)


def _interactive(classifier: Classifier) -> int:
    print("each line is classified; /quit ends")
    while True:
        try:
            text = input("<<< ")
        except EOFError:
            print()
            return 0
        if text.strip() in ("/quit", "/exit"):
            return 0
        result = classifier.answer(Conversation([{"role": "user", "content": text}]))
        if "score" in result:
            print(f">>> score {result['score']}", flush=True)
        else:
            print(f">>> label {result['predicted']}  probabilities {result['probabilities']}", flush=True)


def _over_dataset(classifier: Classifier, args: Any, rows: list[Any]) -> int:
    path = Path(args.result_path)
    skips = SkipCounter(strict=args.strict)
    right = labelled = 0
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            try:
                if row.error is not None:
                    raise row.error
                data = rename_columns(row.data, args.columns)
                label = None if classifier.scores else data.get("label")  # a score has no class to compare with
                if label is not None and not str(label).strip().lstrip("-").isdigit():
                    raise SkippedRow(WRONG_TYPES, f"label must be a class index, got {label!r}")
                conversation = to_conversation({k: v for k, v in data.items() if k != "label"}, row.where,
                                               require_response=False)
                result = classifier.answer(conversation)
            except SkippedRow as skipped:
                skips.skip(row.where, skipped)
                continue
            record = {"messages": conversation.messages, **result}
            if "rejected_score" in result:  # a preference pair: right when the chosen answer scores higher
                record["rejected_response"] = conversation.rejected_response
                labelled += 1
                right += result["score"] > result["rejected_score"]
            elif label is not None and "predicted" in result:
                record["label"] = int(label)
                labelled += 1
                right += int(label) == result["predicted"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if skips.total:
        skips.print_report()
    print(f"swift: {len(rows) - skips.total} results in {path}")
    if labelled:
        scores = {"acc": right / labelled, "count": labelled}
        path.with_suffix(".metric.json").write_text(json.dumps(scores, indent=2) + "\n")
        print(f"swift: acc: {json.dumps(scores)}")
    return 0
