"""The scores of a finished evaluation: read from EvalScope's report files, printed as a table, and appended
to the evaluated checkpoint's eval_result.jsonl, so a run directory carries its scores."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass
class Score:
    dataset: str
    subset: str
    metric: str
    score: float
    n: int


def read_scores(work_dir: Path, model_id: str, datasets: list[str]) -> list[Score]:
    """One score per dataset, subset and metric, from `reports/<model_id>/<dataset>.json` of this evaluation's
    datasets (a continued run's directory may hold reports of others)."""
    scores = []
    for report_file in sorted((work_dir / "reports" / model_id).glob("*.json")):
        if report_file.stem not in datasets:
            continue
        report = json.loads(report_file.read_text(encoding="utf-8"))
        for metric in report.get("metrics", []):
            name = _metric_name(metric)
            for category in metric.get("categories", []):
                for subset in category.get("subsets", []):
                    if subset.get("is_aggregate"):
                        continue
                    scores.append(Score(report.get("dataset_name", report_file.stem), subset["name"], name,
                                        float(subset["score"]), int(subset["num"])))
    return scores


def _metric_name(metric: dict[str, Any]) -> str:
    identity = metric.get("identity") or {}
    name = identity.get("name") or metric.get("name") or "score"
    dimensions = identity.get("dimensions") or {}
    return name + "".join(f" {key}={value}" for key, value in sorted(dimensions.items()))


def score_table(scores: list[Score]) -> str:
    """A plain table: dataset, subset, metric, score, n (the score as a fraction, four decimals)."""
    header = ("dataset", "subset", "metric", "score", "n")
    rows = [(s.dataset, s.subset, s.metric, f"{s.score:.4f}", str(s.n)) for s in scores]
    if not rows:
        return "no scores were reported"
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {3, 4}
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in
                       enumerate(zip(row, widths))).rstrip() for row in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def append_to_checkpoint(args: Any, target: Any, work_dir: Path, scores: list[Score]) -> Path | None:
    """One line in `<checkpoint>/eval_result.jsonl` (one write, so concurrent evaluations do not interleave)."""
    if target.checkpoint is None or not scores:
        return None
    record = {"time": datetime.now().isoformat(timespec="seconds"), "eval_dataset": list(args.eval_dataset),
              "eval_limit": args.eval_limit, "model": str(args.model), "adapters": list(args.adapters),
              "eval_output": str(work_dir.resolve()), "scores": [asdict(s) for s in scores]}
    path = target.checkpoint / "eval_result.jsonl"
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
