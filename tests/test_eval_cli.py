"""`swift eval` as a user runs it: a local model (through a `swift deploy` it starts and stops itself), a
running endpoint (--eval_url), the quick start's adapter; a server that dies mid-evaluation, Ctrl-C and a
killed `swift eval` leave no process behind; bad input is one line before anything starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from swift_e2e import SWIFT, SwiftyRun, free_port, run_swift

# Short answers keep a CPU evaluation to about a minute; the built-in questions need only a few words.
FAST = ["--max_new_tokens", "48", "--eval_num_proc", "8"]


def only_work_dir(output: Path) -> Path:
    (work_dir,) = [p for p in output.iterdir() if p.is_dir()]
    return work_dir


def reviews(work_dir: Path) -> dict[str, list[dict]]:
    """EvalScope's scored answers, per `<dataset>_<subset>` file."""
    return {file.stem: [json.loads(line) for line in file.read_text().splitlines()]
            for file in sorted(work_dir.glob("reviews/*/*.jsonl"))}


def table(stdout: str) -> dict[tuple[str, str], tuple[float, int]]:
    """The printed table: (dataset, subset) -> (score, n)."""
    rows = {}
    for line in stdout.splitlines()[2:]:
        dataset, subset, _metric, score, n = line.split()
        rows[(dataset, subset)] = (float(score), int(n))
    return rows


def processes_with(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (the process table, as `ps` reads it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(cmdline)
    return found


def wait_until_gone(marker: str, seconds: float = 30) -> list[str]:
    deadline = time.time() + seconds
    while (left := processes_with(marker)) and time.time() < deadline:
        time.sleep(0.5)
    return left


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """SmolLM2 on the built-in sets, 12 questions per subset, through a local deployment."""
    home = tmp_path_factory.mktemp("eval-local")
    result = run_swift("eval", "--model", "SmolLM2-135M-Instruct", "--eval_dataset", "basic-qa", "basic-mcq",
                       "--eval_limit", "12", *FAST, cwd=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, only_work_dir(home / "eval_output")


@pytest.fixture(scope="module")
def server() -> tuple[str, str]:
    """`swift deploy` of SmolLM2, started by the test as a user would (its own port and key)."""
    port, key = free_port(), "test-key"
    process = subprocess.Popen([SWIFT, "deploy", "--model", "SmolLM2-135M-Instruct", "--port", str(port),
                                "--host", "127.0.0.1", "--api_key", key, "--max_batch_size", "8", "--verbose", "false"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    import urllib.request

    deadline = time.time() + 300
    while True:
        try:
            urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=2)
            break
        except OSError:
            assert process.poll() is None and time.time() < deadline, "swift deploy did not start"
            time.sleep(1)
    yield url, key
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)


@pytest.mark.slow
def test_smollm2_scores_the_built_in_sets(local_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, work_dir = local_run
    scores = table(result.stdout)
    assert set(scores) == {("basic-qa", "en"), ("basic-qa", "zh"), ("basic-mcq", "en"), ("basic-mcq", "zh")}
    assert all(n == 12 for _, n in scores.values())
    # Easy factual questions: SmolLM2-135M answers a fair share in English (measured: about half).
    assert scores[("basic-qa", "en")][0] >= 0.25
    # Letter choices: at or below chance for this model, so the score is checked against a recount of the saved
    # answers instead: the letter EvalScope read from each reply against the right one.
    for subset in ("en", "zh"):
        answers = reviews(work_dir)[f"basic-mcq_{subset}"]
        right = sum(a["sample_score"]["score"]["extracted_prediction"] == a["target"][0] for a in answers)
        assert scores[("basic-mcq", subset)][0] == pytest.approx(right / len(answers), abs=1e-4)
    # Its processes stopped with it, and EvalScope's reports are where the last line says.
    assert processes_with(str(work_dir)) == []
    assert (work_dir / "reports" / "SmolLM2-135M-Instruct" / "basic-qa.json").is_file()
    assert f"reports in {work_dir.relative_to(work_dir.parent.parent)}/reports" in result.stderr


@pytest.mark.slow
def test_eval_url_scores_a_running_server_the_same(local_run: tuple[subprocess.CompletedProcess[str], Path],
                                                   server: tuple[str, str], tmp_path: Path) -> None:
    url, key = server
    result = run_swift("eval", "--eval_url", url, "--api_key", key, "--eval_dataset", "basic-qa", "basic-mcq",
                       "--eval_limit", "12", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert table(result.stdout) == table(local_run[0].stdout)
    answers = {name: [r["messages"][-1]["content"] for r in rows] for name, rows in
               reviews(only_work_dir(tmp_path / "eval_output")).items()}
    local = {name: [r["messages"][-1]["content"] for r in rows] for name, rows in reviews(local_run[1]).items()}
    assert {k: sorted(v) for k, v in answers.items()} == {k: sorted(v) for k, v in local.items()}  # greedy, same


@pytest.mark.slow
def test_local_files_in_evalscopes_formats(server: tuple[str, str], tmp_path: Path) -> None:
    url, key = server
    (tmp_path / "capitals.jsonl").write_text(
        '{"query": "What is the capital of France?", "response": "Paris"}\n'
        '{"messages": [{"role": "system", "content": "Answer in one word."}, '
        '{"role": "user", "content": "What is the capital of Japan?"}, {"role": "assistant", "content": "Tokyo"}]}\n')
    (tmp_path / "quiz.csv").write_text("question,A,B,C,D,answer\nWhich animal barks?,cat,dog,cow,fish,B\n")
    (tmp_path / "sums.jsonl").write_text('{"question": "What is 2 + 2?", "A": 3, "B": 4, "answer": "B"}\n')
    result = run_swift("eval", "--eval_url", url, "--api_key", key, "--eval_dataset", "capitals.jsonl",
                       "quiz.csv", "sums.jsonl", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = table(result.stdout)
    assert scores[("capitals", "default")] == (1.0, 2) and scores[("quiz", "default")][1] == 1
    assert scores[("sums", "default")][1] == 1  # choices written as numbers are choices all the same


@pytest.mark.slow
def test_a_local_copy_of_an_evalscope_benchmark(server: tuple[str, str], tmp_path: Path) -> None:
    """gsm8k=DIR: EvalScope's own gsm8k (its prompt, few-shot examples from the train split, answer extraction)
    on a copy laid out as the hub's dataset repository, with no hub in reach."""
    url, key = server
    copy = tmp_path / "gsm8k"
    (copy / "main").mkdir(parents=True)
    (copy / "README.md").write_text("---\nconfigs:\n- config_name: main\n  data_files:\n  - split: train\n    path: "
                                    "main/train.jsonl\n  - split: test\n    path: main/test.jsonl\n---\n")
    def rows(pairs: tuple[tuple[int, int], ...]) -> str:
        return "".join(json.dumps({"question": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
                                   "answer": f"He has {a} + {b} = {a + b} apples.\n#### {a + b}"}) + "\n"
                       for a, b in pairs)

    (copy / "main" / "train.jsonl").write_text(rows(((2, 3), (4, 4), (5, 1), (6, 2))))  # 4 few-shot examples
    (copy / "main" / "test.jsonl").write_text(rows(((7, 3), (8, 1), (9, 9))))
    # datasets caches a local folder's split by its name and layout, not its content: a cache of its own.
    result = run_swift("eval", "--eval_url", url, "--api_key", key, "--eval_dataset", f"gsm8k={copy}",
                       "--eval_limit", "2", *FAST, cwd=tmp_path, HF_DATASETS_CACHE=str(tmp_path / "hf-cache"))
    assert result.returncode == 0, result.stderr[-3000:]
    ((subset, (_, n)),) = [((s, v)) for (d, s), v in table(result.stdout).items() if d == "gsm8k"]
    assert (subset, n) == ("main", 2)


@pytest.mark.slow
def test_the_quick_start_adapter_is_evaluated_and_its_run_keeps_the_scores(swifty_run: SwiftyRun,
                                                                           tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(swifty_run.run_dir, run)  # eval writes into the checkpoint: its own copy
    checkpoint = run / swifty_run.checkpoint.name
    result = run_swift("eval", "--adapters", str(checkpoint), "--eval_dataset", "basic-qa:en", "--eval_limit", "6",
                       *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = (checkpoint / "eval_result.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["adapters"] == [str(checkpoint)] and record["eval_dataset"] == ["basic-qa:en"]
    assert [(s["dataset"], s["subset"], s["n"]) for s in record["scores"]] == [("basic-qa", "en", 6)]
    assert (Path(record["eval_output"]) / "reports" / "SmolLM2-135M-Instruct-checkpoint-30").is_dir()
    assert f"scores appended to {checkpoint / 'eval_result.jsonl'}" in result.stderr
    # The checkpoint still loads: the scores file is beside its weights, not in their manifest.
    answered = run_swift("infer", "--adapters", str(checkpoint), "--max_new_tokens", "8", "--temperature", "0",
                         input="Who are you?\n")
    assert answered.returncode == 0, answered.stderr[-2000:]


# --- the processes: none outlives swift eval ------------------------------------------------------------


def start_eval(model: Path, home: Path, marker: str, limit: int = 40, tokens: int = 400) -> subprocess.Popen:
    """A slow evaluation of the tiny random model (long answers, one at a time), its deployment named `marker`."""
    return subprocess.Popen([SWIFT, "eval", "--model", str(model), "--served_model_name", marker, "--eval_dataset",
                             "basic-qa:en", "--eval_limit", str(limit), "--max_new_tokens", str(tokens),
                             "--eval_num_proc", "1"],
                            cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})


def wait_for_answers(home: Path, process: subprocess.Popen, count: int = 1) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        files = list(home.glob("eval_output/*/predictions/*/*.jsonl"))
        if sum(f.read_text().count("\n") for f in files) >= count:
            return
        time.sleep(0.3)
    raise AssertionError(f"no answers came: {process.poll()}")


def test_a_deployment_that_dies_mid_eval_ends_it_with_its_last_lines(tiny_chat_model: Path, tmp_path: Path) -> None:
    marker = f"dies-{uuid.uuid4().hex[:8]}"
    process = start_eval(tiny_chat_model, tmp_path, marker)
    wait_for_answers(tmp_path, process)
    (deploy,) = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_deploy(p, marker)]
    os.kill(deploy, signal.SIGKILL)
    killed = time.time()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and time.time() - killed < 30, stderr[-3000:]
    assert "swift eval: error: the local deployment exited (code -9) after" in stderr and "Traceback" not in stderr
    assert "deploy.log" in stderr and "serving" in stderr  # its last lines, ending with what it last said
    assert wait_until_gone(marker) == [] and wait_until_gone(str(tmp_path / "eval_output")) == []


def _is_deploy(proc: Path, marker: str) -> bool:
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline and " deploy " in cmdline


@pytest.mark.parametrize("how", ["interrupt", "kill"])
def test_ctrl_c_or_a_killed_eval_leaves_no_process(how: str, tiny_chat_model: Path, tmp_path: Path) -> None:
    """Ctrl-C stops the evaluator and the deployment and exits 130; SIGKILL leaves swift eval no last word, and
    its children end with it all the same."""
    marker = f"{how}-{uuid.uuid4().hex[:8]}"
    process = start_eval(tiny_chat_model, tmp_path, marker)
    wait_for_answers(tmp_path, process)
    running = processes_with(marker)
    assert sum(" deploy " in p for p in running) == 1 and processes_with(str(tmp_path / "eval_output"))  # evaluator
    process.send_signal(signal.SIGINT if how == "interrupt" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == (130 if how == "interrupt" else -9), stderr[-3000:]
    assert wait_until_gone(marker) == [] and wait_until_gone(str(tmp_path / "eval_output")) == []


def test_eval_use_cache_continues_an_interrupted_evaluation(tiny_chat_model: Path, tmp_path: Path) -> None:
    """2.x --eval_use_cache: the newest run in --eval_output_dir goes on, its answers reused, not asked again."""
    marker = f"cache-{uuid.uuid4().hex[:8]}"
    process = start_eval(tiny_chat_model, tmp_path, marker, limit=6, tokens=120)
    wait_for_answers(tmp_path, process, count=2)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    work_dir = only_work_dir(tmp_path / "eval_output")
    kept = {json.loads(line)["index"]: line for line in next(work_dir.glob("predictions/*/*.jsonl")).read_text()
            .splitlines()}
    result = run_swift("eval", "--model", str(tiny_chat_model), "--served_model_name", marker, "--eval_dataset",
                       "basic-qa:en", "--eval_limit", "6", "--max_new_tokens", "120", "--eval_num_proc", "1",
                       "--eval_use_cache", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert only_work_dir(tmp_path / "eval_output") == work_dir and table(result.stdout)[("basic-qa", "en")][1] == 6
    answers = {json.loads(line)["index"]: line for line in next(work_dir.glob("predictions/*/*.jsonl")).read_text()
               .splitlines()}
    assert len(answers) == 6 and all(answers[index] == line for index, line in kept.items())
    # Another evaluation cannot continue it: one line, before anything starts.
    other = run_swift("eval", "--model", str(tiny_chat_model), "--served_model_name", marker, "--eval_dataset",
                      "basic-qa:en", "--eval_limit", "3", "--max_new_tokens", "120", "--eval_use_cache", "true",
                      cwd=tmp_path)
    assert other.returncode == 2 and "is another evaluation (its limit differs)" in other.stderr
    assert "starting swift deploy" not in other.stderr


def test_a_named_run_directory(tiny_chat_model: Path, tmp_path: Path) -> None:
    """2.x --name: the run directory under --eval_output_dir; the same name again needs --eval_use_cache."""
    argv = ["eval", "--model", str(tiny_chat_model), "--eval_dataset", "basic-mcq:zh", "--eval_limit", "2",
            "--max_new_tokens", "8", "--name", "nightly", "--eval_output_dir", "scores"]
    result = run_swift(*argv, cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "scores" / "nightly" / "reports").is_dir(), result.stderr[-2000:]
    again = run_swift(*argv, cwd=tmp_path)
    assert again.returncode == 2 and "--name nightly: scores/nightly holds an earlier evaluation" in again.stderr
    resumed = run_swift(*argv, "--eval_use_cache", "true", cwd=tmp_path)
    assert resumed.returncode == 0 and table(resumed.stdout) == table(result.stdout), resumed.stderr[-2000:]


# --- bad input: one line, exit 2, nothing started, nothing written -----------------------------------------

CASES = [
    ("missing backend extra", ["--model", "M", "--eval_backend", "OpenCompass", "--eval_dataset", "ceval"],
     ["--eval_backend OpenCompass needs the opencompass package", "pip install 'swift-eval[opencompass]'"]),
    ("unknown dataset name", ["--model", "M", "--eval_dataset", "gsm8kk"], ["--eval_dataset gsm8kk", "did you mean gsm8k"]),
    ("benchmark offline", ["--model", "M", "--eval_dataset", "gsm8k"],
     ["from ModelScope, which cannot be reached", "--eval_dataset gsm8k=DIR"]),
    ("no dataset", ["--model", "M"], ["--eval_dataset is required"]),
    ("unreachable endpoint", ["--eval_url", "http://127.0.0.1:9/v1", "--eval_dataset", "basic-qa"],
     ["--eval_url http://127.0.0.1:9/v1: cannot reach it"]),
    ("local options with a remote endpoint", ["--eval_url", "http://127.0.0.1:9/v1", "--eval_dataset", "basic-qa",
                                              "--torch_dtype", "float16"], ["--torch_dtype float16", "already running"]),
    ("training data", ["--model", "M", "--eval_dataset", "basic-qa", "--dataset", "x.jsonl"],
     ["--dataset x.jsonl", "reads its questions from --eval_dataset"]),
    ("an adapter of another base", ["--adapters", "{adapter}", "--model", "{wide}", "--eval_dataset", "basic-qa"],
     ["does not fit"]),
    ("a bad row", ["--model", "M", "--eval_dataset", "{bad}"], ["bad.jsonl:2:", "answer must be one of"]),
    ("a deployment timeout with a remote endpoint", ["--eval_url", "http://127.0.0.1:9/v1", "--eval_dataset",
                                                     "basic-qa", "--deploy_timeout", "5"], ["--deploy_timeout 5"]),
    ("another engine for the deployment", ["--model", "M", "--eval_dataset", "basic-qa", "--infer_backend", "vllm"],
     ["--infer_backend vllm", "pt engine"]),
    ("a port in use", ["--model", "M", "--eval_dataset", "basic-qa", "--port", "{busy_port}"], ["cannot listen there"]),
    ("an output directory that is a file", ["--model", "M", "--eval_dataset", "basic-qa", "--eval_output_dir",
                                            "{bad}"], ["--eval_output_dir", "is a file"]),
    ("sampling options the bridge cannot carry", ["--model", "M", "--eval_backend", "VLMEvalKit", "--eval_dataset",
                                                  "MMBench", "--top_p", "0.5"], ["--top_p 0.5", "VLMEvalKit bridge"]),
    ("another backend's missing extra", ["--model", "M", "--eval_backend", "VLMEvalKit", "--eval_dataset", "basic-qa"],
     ["needs the vlmeval package"]),
]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory, tiny_chat_model: Path) -> Iterator[dict[str, Any]]:
    from swift_e2e import tiny_sft
    from transformers import AutoConfig, AutoModelForCausalLM

    home = tmp_path_factory.mktemp("eval-bad")
    trained = run_swift(*tiny_sft(tiny_chat_model, home / "run", "--max_steps", "1", "--save_steps", "1"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    wide = home / "wide"
    shutil.copytree(tiny_chat_model, wide)
    config = json.loads((wide / "config.json").read_text())
    config.update(hidden_size=128, intermediate_size=256)
    for file in wide.glob("*.safetensors"):
        file.unlink()
    AutoModelForCausalLM.from_config(AutoConfig.for_model(**config)).save_pretrained(wide)
    bad = home / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "A": "2", "B": "3", "answer": "A"}\n'
                   '{"question": "2+2?", "A": "4", "B": "5", "answer": "C"}\n')
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    yield {"adapter": home / "run" / "checkpoint-1", "wide": wide, "bad": bad, "model": tiny_chat_model,
           "busy_port": busy.getsockname()[1]}
    busy.close()


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_eval_input_is_one_line_before_anything_starts(argv: list[str], words: list[str],
                                                          bad_inputs: dict[str, Any], tmp_path: Path) -> None:
    argv = [a.format(**bad_inputs) if "{" in a else (str(bad_inputs["model"]) if a == "M" else a) for a in argv]
    result = run_swift("eval", *argv, cwd=tmp_path, timeout=300)
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "starting swift deploy" not in result.stderr
    assert len(errors) == 1 and all(word in errors[0] for word in words), errors or result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []
