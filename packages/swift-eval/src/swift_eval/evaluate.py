"""`swift eval`: benchmark a checkpoint (through a local `swift deploy`) or any OpenAI-compatible endpoint.

Run as:
    swift eval --adapters output/.../checkpoint-30 --eval_dataset basic-qa basic-mcq
    swift eval --model Qwen/Qwen2.5-7B-Instruct --eval_dataset gsm8k --eval_limit 100
    swift eval --eval_url http://127.0.0.1:8000/v1 --eval_dataset my_questions.jsonl

Everything that needs no server is checked first (the backend's extra, every dataset entry and its rows,
the deployment's arguments, the endpoint), so bad input costs nothing and writes nothing. Then, in a new
`<eval_output_dir>/<time>/`: the local deployment starts (unless --eval_url), EvalScope's evaluator runs
as a child process, a progress bar counts the answered items, and at the end a table of scores is
printed and, for a checkpoint, appended to its eval_result.jsonl.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, Invocation, RunStopped

from swift_eval import backends, children
from swift_eval.deployment import LocalDeployment, port_free
from swift_eval.eval_sets import EvalSet
from swift_eval.progress import PredictionCounter
from swift_eval.results import append_to_checkpoint, read_scores, score_table
from swift_eval.target import Target, local_target, remote_target

EVALUATOR_GRACE = 5  # seconds the evaluator gets to stop before it is killed
PLAN_FILE = "swift_eval_plan.json"  # what the evaluator process runs, in the run's configs/


@dataclass
class Plan:
    """What the checks settled: the sets to run and what answers them."""

    sets: list[EvalSet]
    target: Target


def run_eval(invocation: Invocation) -> int:
    args = invocation.args
    plan = check_eval(invocation)
    work_dir = make_work_dir(args)
    print(f"swift: evaluating {plan.target.description} on {', '.join(s.name for s in plan.sets) or 'nothing'}; "
          f"results in {work_dir}", file=sys.stderr)
    if args.eval_use_cache:
        _continue_on_the_same_port(plan.target, work_dir, "port" in invocation.passed)
    with _terminate_as_interrupt():
        _evaluate(args, plan, work_dir)
    scores = read_scores(work_dir, plan.target.model_id)
    print(score_table(scores))
    checkpoint = append_to_checkpoint(args, plan.target, work_dir, scores)
    where = f"; scores appended to {checkpoint}" if checkpoint else ""
    print(f"swift: done. reports in {work_dir / 'reports'}{where}", file=sys.stderr)
    return 0


def check_eval(invocation: Invocation) -> Plan:
    """Every check that needs no server and writes nothing; one line per problem."""
    args = invocation.args
    backends.check_installed(args.eval_backend)
    sets = backends.resolve_sets(args)
    target = remote_target(args) if args.eval_url else local_target(invocation)
    return Plan(sets, target)


def make_work_dir(args: Any) -> Path:
    """`<eval_output_dir>/<YYYYMMDD_HHMMSS>`, new (a suffix when two evaluations start in one second); with
    --eval_use_cache the newest earlier one, whose answers EvalScope reuses."""
    root = Path(args.eval_output_dir).expanduser()
    if args.eval_use_cache:
        earlier = sorted((p for p in root.glob("*") if (p / "configs").is_dir()), key=lambda p: p.stat().st_mtime)
        if earlier:
            return earlier[-1]
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    for n in range(1, 100):
        work_dir = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            work_dir.mkdir(parents=True)
            return work_dir
        except FileExistsError:
            continue
    raise RunStopped(f"--eval_output_dir {root}: cannot create a new run directory for {stamp}")


def _continue_on_the_same_port(target: Target, work_dir: Path, port_typed: bool) -> None:
    """EvalScope reuses a run's answers only for the same endpoint URL: a continued run's local deployment
    listens on the port the earlier one had."""
    plan_file = work_dir / "configs" / PLAN_FILE
    if target.local is None or port_typed or not plan_file.is_file():
        return
    url = json.loads(plan_file.read_text(encoding="utf-8"))["task"].get("api_url") or ""
    port = int(url.rsplit(":", 1)[-1].split("/")[0]) if url.count(":") == 2 else None
    if port is None:
        return
    if not port_free(target.local.host, port):
        raise ArgumentError(f"--eval_use_cache: {work_dir} was evaluated through port {port}, which is in use now; "
                            "its answers are reused only for the same address: free the port, or pass --port with "
                            "another one to start over")
    target.local.port = port


def _evaluate(args: Any, plan: Plan, work_dir: Path) -> None:
    """Start what answers (the local deployment), run the evaluator, watch both; stop both whatever happens."""
    logs = work_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    deployment: LocalDeployment | None = plan.target.deployment(logs / "deploy.log")
    evaluator = None
    try:
        if deployment is not None:
            print(f"swift: starting swift deploy for {plan.target.description} on {deployment.url} (log: "
                  f"{deployment.log})", file=sys.stderr)
            started = time.monotonic()
            deployment.start(args.deploy_timeout)
            print(f"swift: the deployment answers ({time.monotonic() - started:.0f}s)", file=sys.stderr)
        plan_file = work_dir / "configs" / PLAN_FILE
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        task = backends.task_config(args, plan.sets, plan.target, work_dir)
        plan_file.write_text(json.dumps({"task": task, "sets": [s.as_json() for s in plan.sets]}, indent=2,
                                        ensure_ascii=False), encoding="utf-8")
        evaluator_log = logs / "evaluator.log"
        command = [sys.executable, "-m", "swift_eval.evaluator", str(plan_file.resolve())]
        evaluator = children.start(command, evaluator_log, env={"PYTHONUNBUFFERED": "1",
                                                                 "TOKENIZERS_PARALLELISM": "false"})
        _watch(evaluator, evaluator_log, deployment, PredictionCounter(work_dir, _planned(plan.sets, args)))
    finally:
        children.stop(evaluator, EVALUATOR_GRACE)
        if deployment is not None:
            deployment.stop()


def _planned(sets: list[EvalSet], args: Any) -> int | None:
    counts = [s.planned(args.eval_limit) for s in sets]
    return None if None in counts else sum(counts)


def _watch(evaluator: Any, log: Path, deployment: LocalDeployment | None, counter: PredictionCounter) -> None:
    """Until the evaluator exits: the progress bar, and a dead deployment stops everything at once (EvalScope
    would retry each request for minutes)."""
    with counter:
        while evaluator.poll() is None:
            if deployment is not None:
                deployment.check(f"after {counter.done} answered items")
            counter.update()
            time.sleep(0.5)
        counter.update()
    if evaluator.returncode != 0:
        tail = "".join(f"\n    {line}" for line in children.last_lines(log))
        raise RunStopped(f"the evaluator (EvalScope) failed with exit code {evaluator.returncode}; its last lines "
                         f"({log}):{tail}")


@contextmanager
def _terminate_as_interrupt() -> Any:
    """A SIGTERM (kill, a scheduler's timeout) stops the evaluation like Ctrl-C: the children are stopped first."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
