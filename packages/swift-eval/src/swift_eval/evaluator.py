"""The evaluator process: EvalScope's `run_task` on a plan that `swift eval` wrote.

Run as: python -m swift_eval.evaluator PLAN.json
`swift eval` starts it as a child, its output going to the run's logs/evaluator.log, and watches it: the
evaluator can be stopped at once (a dead server, Ctrl-C) without waiting for EvalScope's request retries,
and whatever it does, it cannot leave the server behind.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def main(plan_file: str) -> int:
    plan = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    from evalscope.config import TaskConfig
    from evalscope.run import run_task

    from swift_eval.benchmarks import register

    for eval_set in plan["sets"]:
        if eval_set["kind"] != "benchmark":
            register(eval_set["name"], eval_set["kind"], eval_set["source"], eval_set["files"])
    task = TaskConfig(**plan["task"])
    _quiet_request_logs()
    run_task(task)
    return 0


def _quiet_request_logs() -> None:
    """The OpenAI client logs every request at INFO: thousands of lines that bury the evaluation's own."""
    for name in ("httpx", "httpx2", "openai", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
