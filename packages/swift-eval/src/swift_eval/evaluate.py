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
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, Invocation, RunStopped
from swift_args.run_dir import check_writable_dir
from swift_infer import children
from swift_infer.local_deployment import LocalDeployment, port_free

from swift_eval import backends
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
    work_dir, earlier = choose_work_dir(args)
    if earlier is None:
        task = backends.task_config(args, plan.sets, plan.target, work_dir)
    else:
        task = _continue(args, plan, work_dir, earlier, "port" in invocation.passed)
    work_dir.mkdir(parents=True, exist_ok=True)
    print(f"swift: evaluating {plan.target.description} on {', '.join(s.name for s in plan.sets)}; results in "
          f"{work_dir}", file=sys.stderr)
    with _terminate_as_interrupt():
        _evaluate(args, plan, work_dir, task)
    if args.eval_backend != "Native":  # its own reports, in its own layout
        print(f"swift: done. {args.eval_backend} wrote its reports under {work_dir}", file=sys.stderr)
        return 0
    scores = read_scores(work_dir, plan.target.model_id, [s.name for s in plan.sets])
    print(score_table(scores))
    checkpoint = append_to_checkpoint(args, plan.target, work_dir, scores)
    where = f"; scores appended to {checkpoint}" if checkpoint else ""
    print(f"swift: done. reports in {work_dir / 'reports'}{where}", file=sys.stderr)
    return 0


def check_eval(invocation: Invocation) -> Plan:
    """Every check that needs no server and writes nothing; one line per problem."""
    args = invocation.args
    backends.check_installed(args.eval_backend)
    check_writable_dir(Path(args.eval_output_dir).expanduser(), "--eval_output_dir")
    sets = backends.resolve_sets(args)
    target = remote_target(args) if args.eval_url else local_target(invocation)
    return Plan(sets, target)


def choose_work_dir(args: Any) -> tuple[Path, dict[str, Any] | None]:
    """The run directory (not created yet) and, when --eval_use_cache continues one, its plan.

    `<eval_output_dir>/<--name>` (2.x), else `<eval_output_dir>/<YYYYMMDD_HHMMSS>` (with a suffix when two
    evaluations start in one second); --eval_use_cache continues --name's, or the newest one."""
    root = Path(args.eval_output_dir).expanduser()
    if args.name:
        work_dir = root / args.name
        earlier = _plan_of(work_dir)
        if earlier is not None and args.eval_use_cache:
            return work_dir, earlier
        if work_dir.exists() and any(work_dir.iterdir()):
            raise ArgumentError(f"--name {args.name}: {work_dir} holds an earlier evaluation; pass --eval_use_cache "
                                "true to continue it, or another --name")
        return work_dir, None
    if args.eval_use_cache:
        runs = [(p.stat().st_mtime, p, plan) for p in root.glob("*") if (plan := _plan_of(p)) is not None]
        if runs:
            _, newest, plan = max(runs, key=lambda run: run[0])
            return newest, plan
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    work_dir, n = root / stamp, 2
    while work_dir.exists():
        work_dir, n = root / f"{stamp}-{n}", n + 1
    return work_dir, None


def _plan_of(work_dir: Path) -> dict[str, Any] | None:
    plan_file = work_dir / "configs" / PLAN_FILE
    try:
        return json.loads(plan_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# What makes two evaluations the same one (the endpoint's address aside): EvalScope reuses answers only then.
SAME_EVALUATION = ("model", "model_id", "datasets", "dataset_args", "limit", "generation_config", "eval_type", "seed",
                   "eval_backend")


def _continue(args: Any, plan: Plan, work_dir: Path, earlier: dict[str, Any], port_typed: bool) -> dict[str, Any]:
    """--eval_use_cache: the same evaluation as the earlier run's, through the same address (its local deployment
    on the port the earlier one had), or one line saying what differs, before anything starts."""
    target = plan.target
    url = earlier["task"].get("api_url") or ""
    port = None
    if target.local is not None and not port_typed and url.count(":") == 2:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        target.local.port = port
        target.url = target.local.url
    task = backends.task_config(args, plan.sets, target, work_dir)
    differs = [key for key in (*SAME_EVALUATION, "api_url") if task.get(key) != earlier["task"].get(key)]
    if differs:
        verb = "differs" if len(differs) == 1 else "differ"
        raise ArgumentError(f"--eval_use_cache: {work_dir} is another evaluation (its {', '.join(differs)} {verb}); "
                            "continue it with the arguments it ran with, or drop --eval_use_cache to start a new one")
    if port is not None and not port_free(target.local.host, port):
        raise ArgumentError(f"--eval_use_cache: {work_dir} was evaluated through port {port}, which is in use now; "
                            "its answers are reused only for the same address: free the port, or start over without "
                            "--eval_use_cache")
    return task


def _evaluate(args: Any, plan: Plan, work_dir: Path, task: dict[str, Any]) -> None:
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
        plan_file.write_text(json.dumps({"task": task, "sets": [s.as_json() for s in plan.sets]}, indent=2,
                                        ensure_ascii=False), encoding="utf-8")
        evaluator_log = logs / "evaluator.log"
        command = [sys.executable, "-m", "swift_eval.evaluator", str(plan_file.resolve())]
        evaluator = children.start(command, evaluator_log, env={"PYTHONUNBUFFERED": "1",
                                                                 "TOKENIZERS_PARALLELISM": "false"})
        counter = PredictionCounter(work_dir, _planned(plan.sets, args)) if args.eval_backend == "Native" else None
        _watch(evaluator, evaluator_log, deployment, counter)
    finally:
        children.stop(evaluator, EVALUATOR_GRACE)
        if deployment is not None:
            deployment.stop()


def _planned(sets: list[EvalSet], args: Any) -> int | None:
    counts = [s.planned(args.eval_limit) for s in sets]
    return None if None in counts else sum(counts)


def _watch(evaluator: Any, log: Path, deployment: LocalDeployment | None, counter: PredictionCounter | None) -> None:
    """Until the evaluator exits: the progress bar (for EvalScope's own evaluator; the other backends log their
    progress in the evaluator's log), and a dead deployment stops everything at once (EvalScope would retry each
    request for minutes)."""
    with counter or nullcontext():
        while evaluator.poll() is None:
            if deployment is not None:
                deployment.check(f"after {counter.done if counter else 'some'} answered items")
            if counter:
                counter.update()
            time.sleep(0.5)
        if counter:
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
