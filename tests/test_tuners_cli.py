"""The tuners and training options from the command line: refused ones stop before any work, the rest
train, and what they save is what the next command loads.

Each `swift` process spends most of its seconds importing torch and transformers, on one core. So the
commands that the tests below read (trainings, and the infers of what they saved) start ahead of them, side
by side, once the first of those tests runs (`runs`), and each test asserts on what its commands left.
Runs whose options do not interact are shared: one full-training run (LISA's), one LoRA run (merging,
SwanLab, and the plain baseline of the plugins test) and one infer (--rope_scaling linear with
--custom_register_path)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from swift_e2e import read_log, run_swift, tiny_sft

# Each is refused while parsing: before the model is even looked up (it does not exist here).
REFUSED = [
    (["--tuner_backend", "unsloth"], "--tuner_backend unsloth"),
    (["--init_weights", "loftq"], "--init_weights loftq"),
    (["--sequence_parallel_size", "2"], "--sequence_parallel_size 2"),
    (["--reft_rank", "8"], "--reft_rank 8: these configure --train_type reft"),
    (["--swanlab_project", "p"], "--swanlab_project p: takes effect with --report_to swanlab"),
    (["--galore_quantization", "true"], "--galore_quantization true"),
    (["--save_safetensors", "false"], "--save_safetensors false"),
    (["--template_backend", "jinja"], "--template_backend jinja"),
    (["--train_type", "full", "--use_galore", "true", "--lisa_activated_layers", "1"], "pick one"),
    (["--use_galore", "true"], "--use_galore needs --train_type full"),
]


@pytest.mark.parametrize("argv, said", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_an_option_this_release_cannot_honour_is_refused_while_parsing(argv, said):
    from swift_args import ArgumentError, parse_args

    with pytest.raises(ArgumentError) as refused:
        parse_args("sft", ["--model", "no-such-model", "--dataset", "general-instructions#8", *argv])
    assert said in str(refused.value)


@pytest.mark.parametrize("argv, said", REFUSED[:3], ids=[" ".join(a) for a, _ in REFUSED[:3]])
def test_the_command_refuses_before_any_work(tmp_path, argv, said):
    result = run_swift("sft", "--model", str(tmp_path / "no-such-model"), "--dataset", "general-instructions#8",
                       "--output_dir", str(tmp_path / "out"), *argv)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert "no-such-model" not in result.stderr  # refused before the model was looked up
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module", autouse=True)
def _commands_side_by_side():
    """The `swift` commands here run side by side (`runs`): each gets one torch thread, since two-thread
    processes on as many cores spin against one another (a 1.6-second training took 23). (They share
    one bytecode cache: the root conftest.py.)"""
    with pytest.MonkeyPatch.context() as env:
        if not os.environ.get("OMP_NUM_THREADS"):
            env.setenv("OMP_NUM_THREADS", "1")
        yield


class Runs:
    """Commands started ahead and run side by side; `result(key)` waits for one, or runs it right here when it
    has not started yet (so one test alone, `-k`, does not wait behind the others)."""

    def __init__(self, workers: int):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="swift")
        self._jobs: dict = {}
        self._lock = threading.Lock()

    def start(self, key, work, *args) -> None:
        with self._lock:
            self._jobs[key] = (self._pool.submit(work, *args), work, args)

    def result(self, key):
        with self._lock:
            future, work, args = self._jobs[key]
            here = future.cancel()  # still queued
            if here:
                future = Future()
                future.set_running_or_notify_cancel()
                self._jobs[key] = (future, work, args)
        if here:
            try:
                future.set_result(work(*args))
            except BaseException as error:  # to whoever else waits for it, and here
                future.set_exception(error)
                raise
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


TUNERS = [
    ("adalora", ["--adalora_init_r", "4", "--adalora_target_r", "2"], "--adapters"),
    ("vera", ["--vera_rank", "16"], "--adapters"),
    ("boft", ["--boft_block_size", "4"], "--adapters"),
    ("fourierft", ["--fourier_n_frequency", "100"], "--adapters"),
    ("llamapro", ["--llamapro_num_new_blocks", "2"], "--model"),
    ("full", ["--lisa_activated_layers", "1", "--lisa_step_interval", "1"], "--model"),
    ("full", ["--use_galore", "true", "--galore_rank", "8"], "--model"),
    ("lora", ["--init_weights", "lora-ga", "--lora_ga_iters", "1"], "--adapters"),
]
LISA = TUNERS[5]  # the full-training run that the checkpoint tests read too


def _tuner_key(train_type, extra):
    return ("tuner", train_type, *extra)


def _answers(train_type, extra):
    return train_type in ("boft", "llamapro") or "lora-ga" in extra  # the rest reload in test_more_tuners


def _train_tuner(root: Path, model: Path, train_type, extra, flag):
    out = root / "run"
    trained = run_swift(*tiny_sft(model, out, "--max_steps", "2", "--train_type", train_type, *extra))
    answered = None
    if trained.returncode == 0 and _answers(train_type, extra):
        answered = run_swift("infer", flag, str(out / "checkpoint-2"), "--max_new_tokens", "3", input="hi\n")
    return SimpleNamespace(out=out, trained=trained, answered=answered)


def _infer_taken_over(runs: Runs):
    full_run = runs.result(_tuner_key(*LISA[:2])).out
    return run_swift("infer", "--model", str(full_run / "checkpoint-2"), "--max_new_tokens", "2", input="hi\n")


def _infer_rope_scaling(root: Path, model: Path, kind: str, register: bool):
    """--rope_scaling `kind`; the linear one also imports a --custom_register_path plugin that marks a file."""
    plugin, marker, extra = root / "register.py", root / "imported", []
    if register:
        plugin.write_text(f"open({str(marker)!r}, 'a').write('x')\n")
        extra = ["--custom_register_path", str(plugin)]
    result = run_swift("infer", "--model", str(model), "--rope_scaling", kind, "--max_length", "4096",
                       "--max_new_tokens", "2", *extra, input="hi\n")
    return SimpleNamespace(result=result, marker=marker)


def _check_model(runs: Runs, root: Path, model: Path):
    full_run = runs.result(_tuner_key(*LISA[:2])).out
    checkpoint = root / "checkpoint-1"
    shutil.copytree(full_run / "checkpoint-2", checkpoint)
    weights = next(checkpoint.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the last tensor: the checksum no longer matches
    weights.write_bytes(bytes(data))
    again = tiny_sft(model, root / "next", "--max_steps", "1", "--train_type", "full")
    again[again.index("--model") + 1] = str(checkpoint)
    refused = run_swift(*again)
    accepted = run_swift(*again, "--check_model", "false") if refused.returncode == 2 else None
    return SimpleNamespace(refused=refused, accepted=accepted)


# The LoRA run shared by the merge, SwanLab and plugins tests: the plugins run repeats it with its plugins, and
# with generated answers to score at step 2 (neither changes the loss of step 1, which the test compares).
LORA = ("--max_steps", "2", "--lora_rank", "16", "--split_dataset_ratio", "0.1")
SCORED = ("--predict_with_generate", "true", "--eval_steps", "2", "--max_new_tokens", "4")
SWANLAB = ("--report_to", "swanlab", "--swanlab_mode", "local", "--swanlab_project", "proj",
           "--swanlab_exp_name", "myexp")


def _train(out: Path, *argv: str):
    return SimpleNamespace(out=out, result=run_swift(*argv))


def _train_lora(root: Path, model: Path):
    return _train(root / "run", *tiny_sft(model, root / "run", *LORA, *SWANLAB))


def _merge_lora(runs: Runs):
    lora = runs.result("lora")
    if lora.result.returncode != 0:
        return SimpleNamespace(lora=lora)
    checkpoint = lora.out / "checkpoint-2"
    ask = ("--max_new_tokens", "8", "--temperature", "0")
    adapter = run_swift("infer", "--adapters", str(checkpoint), *ask, input="hi\n")
    merged = run_swift("infer", "--adapters", str(checkpoint), "--merge_lora", "true", "--max_shard_size", "1MB",
                       *ask, input="hi\n")
    again = run_swift("infer", "--adapters", str(checkpoint), "--merge_lora", "true", *ask, input="hi\n")
    return SimpleNamespace(lora=lora, adapter=adapter, merged=merged, again=again)


def _train_plugins(root: Path, model: Path):
    plugin = root / "plugins.py"
    mark = root / "optimizer-used"
    plugin.write_text(f"OPTIMIZER_MARK = {str(mark)!r}\n" + PLUGIN)
    trained = _train(root / "plugins", *tiny_sft(model, root / "plugins", *LORA, *SCORED, "--custom_register_path",
                                                 str(plugin), "--loss_type", "double", "--optimizer", "sgd",
                                                 "--metric", "exact"))
    trained.mark = mark
    return trained


def _sequence_classification_full(root: Path, model: Path):
    data = _sentiment_rows(root / "sentiment.jsonl")
    out = root / "run"
    trained = run_swift(*tiny_sft(model, out, "--num_labels", "2", "--train_type", "full", "--max_steps", "30",
                                  "--learning_rate", "3e-3", "--weight_decay", "0", "--lr_scheduler_type", "constant",
                                  "--per_device_train_batch_size", "32", "--logging_steps", "10"),
                        "--dataset", str(data))
    results = root / "predicted.jsonl"
    inferred = None
    if trained.returncode == 0:
        inferred = run_swift("infer", "--model", str(out / "checkpoint-30"), "--val_dataset", str(data),
                             "--result_path", str(results))
    return SimpleNamespace(out=out, trained=trained, results=results, inferred=inferred)


def _sequence_classification_lora(root: Path, model: Path):
    data = _sentiment_rows(root / "sentiment.jsonl")
    out = root / "run"
    trained = run_swift(*tiny_sft(model, out, "--num_labels", "2", "--max_steps", "2"), "--dataset", str(data))
    answered = None
    if trained.returncode == 0:
        answered = run_swift("infer", "--adapters", str(out / "checkpoint-2"), input="The film was great.\n")
    bad = _sentiment_rows(root / "bad.jsonl")
    bad.write_text(bad.read_text().replace('"label": 1', '"label": 5'))
    refused = run_swift(*tiny_sft(model, root / "bad", "--num_labels", "2", "--max_steps", "2", "--strict", "true"),
                        "--dataset", str(bad))
    return SimpleNamespace(out=out, trained=trained, answered=answered, refused=refused)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_chat_model):
    """Every command the tests below read, started now: the longest first, those that read another run's
    checkpoint after it; as many side by side as there are cores (at least two: one may be waiting for a run
    that another is doing)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 2
    runs = Runs(min(4, max(2, cores)))
    model, where = tiny_chat_model, tmp_path_factory.mktemp
    tuners = sorted(TUNERS, key=lambda t: (t is not LISA, not _answers(*t[:2])))
    runs.start(_tuner_key(*LISA[:2]), _train_tuner, where("tuner"), model, *LISA)
    runs.start("lora", _train_lora, where("lora"), model)
    runs.start("seq_cls_full", _sequence_classification_full, where("seq_cls_full"), model)
    runs.start("seq_cls_lora", _sequence_classification_lora, where("seq_cls_lora"), model)
    runs.start("merge", _merge_lora, runs)
    runs.start("check_model", _check_model, runs, where("check_model"), model)
    for train_type, extra, flag in tuners[1:]:
        runs.start(_tuner_key(train_type, extra), _train_tuner, where("tuner"), model, train_type, extra, flag)
    runs.start("plugins", _train_plugins, where("plugins"), model)
    runs.start("taken_over", _infer_taken_over, runs)
    for kind in ("linear", "dynamic"):
        runs.start(("rope", kind), _infer_rope_scaling, where("rope"), model, kind, kind == "linear")
    yield runs
    runs.close()


def test_options_taken_over_from_a_saved_run_are_not_refused(runs):
    """swift infer reads args.json beside the checkpoint: the run's own settings are no request to infer."""
    result = runs.result("taken_over")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("train_type, extra, flag", TUNERS)
def test_each_tuner_trains_and_its_checkpoint_answers(runs, train_type, extra, flag):
    run = runs.result(_tuner_key(train_type, extra))
    out, trained = run.out, run.trained
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert [r["loss"] for r in read_log(out) if "loss" in r]  # it logged its steps
    checkpoint = out / "checkpoint-2"
    kind = "adapter_config.json" if flag == "--adapters" else "config.json"
    assert (checkpoint / kind).is_file()
    saved = json.loads((out / "args.json").read_text())
    assert saved["train_type"] == train_type and all(str(saved[a.lstrip("-")]).lower() == v.lower()
                                                     for a, v in zip(extra[::2], extra[1::2]))
    if _answers(train_type, extra):  # the rest reload in test_more_tuners
        answered = run.answered
        assert answered.returncode == 0, answered.stderr[-3000:]
    if train_type == "llamapro":
        config = json.loads((checkpoint / "config.json").read_text())
        assert config["num_hidden_layers"] == 4 and config["llamapro_new_layers"] == [1, 3]


def test_rope_scaling_keeps_the_models_rope_theta(runs):
    for kind in ("linear", "dynamic"):
        result = runs.result(("rope", kind)).result
        assert result.returncode == 0, result.stderr[-2000:]


def test_check_model_false_skips_the_checkpoint_verification(runs):
    run = runs.result("check_model")
    refused = run.refused
    assert refused.returncode == 2 and "checkpoint-1" in refused.stderr
    assert run.accepted.returncode == 0


def test_custom_register_path_runs_before_every_command(runs):
    run = runs.result(("rope", "linear"))  # the infer with --rope_scaling linear imports the plugin
    assert run.result.returncode == 0, run.result.stderr[-2000:]
    assert run.marker.read_text() == "x"  # imported once



PLUGIN = '''
import torch
from swift_train.plugins import cross_entropy, losses, metrics, optimizers

def double(logits, labels, loss_scale):
    total, count = cross_entropy(logits, labels, loss_scale)
    return 2 * total, count

def sgd(model, args):
    open(OPTIMIZER_MARK, "w").write("sgd")
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)

def exact(predictions, references):
    return {"exact": sum(p.strip() == r.strip() for p, r in zip(predictions, references)) / max(len(references), 1)}

losses["double"], optimizers["sgd"], metrics["exact"] = double, sgd, exact
'''


def test_loss_optimizer_and_metric_plugins_take_effect(runs):
    first_loss = {}
    plugins = runs.result("plugins")
    # "plain": the shared LoRA run, the same command but for the plugins and what only scores or reports
    for name, run in (("plain", runs.result("lora")), ("plugins", plugins)):
        result, out = run.result, run.out
        assert result.returncode == 0, result.stderr[-3000:]
        log = read_log(out)
        first_loss[name] = next(r["loss"] for r in log if "loss" in r)
        if name == "plugins":
            assert any("eval_exact" in r for r in log) and not any("eval_rouge-l" in r for r in log)
    assert first_loss["plugins"] == pytest.approx(2 * first_loss["plain"], rel=1e-3)  # before any update
    assert plugins.mark.read_text() == "sgd"


def test_an_unknown_plugin_name_is_one_line_before_any_work(tmp_path, tiny_chat_model):
    result = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "out", "--loss_type", "focal"))
    assert result.returncode == 2 and "--loss_type focal: no such plugin (registered: cross_entropy)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_infer_merge_lora_merges_once_and_answers_like_the_adapter(runs):
    run = runs.result("merge")
    assert run.lora.result.returncode == 0, run.lora.result.stderr[-3000:]
    adapter, merged, again = run.adapter, run.merged, run.again
    assert adapter.returncode == 0 and merged.returncode == 0, merged.stderr[-2000:]
    assert merged.stdout == adapter.stdout
    merged_dir = run.lora.out / "checkpoint-2-merged"
    assert (merged_dir / "config.json").is_file() and len(list(merged_dir.glob("*.safetensors"))) > 1  # 1MB shards
    assert "using the merged model already at" in again.stderr and again.stdout == adapter.stdout


def test_swanlab_local_mode_logs_the_run_offline(runs):
    run = runs.result("lora")
    result, out = run.result, run.out
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = (out / "swanlog").glob("run-*/run-*.swanlab")
    data = record.read_bytes()
    assert b"train/loss" in data and b"myexp" in data and b"proj" in data


def test_template_backend_jinja_is_for_inference_with_the_models_own_template():
    from swift_args import ArgumentError, parse_args

    assert parse_args("infer", ["--model", "m", "--template_backend", "jinja"]).args.template_backend == "jinja"
    with pytest.raises(ArgumentError, match="drop --template chatml"):
        parse_args("infer", ["--model", "m", "--template_backend", "jinja", "--template", "chatml"])
    with pytest.raises(ArgumentError, match="trains with the swift template only"):
        parse_args("sft", ["--model", "m", "--template_backend", "jinja"])


def _sentiment_rows(path):
    good, bad = ["great", "wonderful", "excellent", "lovely"], ["awful", "terrible", "horrible", "dreadful"]
    rows = [{"messages": [{"role": "user", "content": f"The film was {(good if i % 2 else bad)[i // 2 % 4]}."}],
             "label": i % 2} for i in range(32)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sequence_classification_learns_and_infer_predicts_labels(runs):
    run = runs.result("seq_cls_full")
    out, trained, inferred, results = run.out, run.trained, run.inferred, run.results
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = json.loads((out / "checkpoint-30" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert json.loads((out / "args.json").read_text())["num_labels"] == 2  # infer takes it from there
    logged = [r for r in read_log(out) if "loss" in r]
    assert all("acc" in r and "token_acc" not in r for r in logged)  # samples are counted, not tokens
    assert inferred.returncode == 0, inferred.stderr[-2000:]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 32 and all(abs(sum(r["probabilities"]) - 1) < 1e-4 for r in records)
    assert sum(r["predicted"] == r["label"] for r in records) >= 29  # it learned the words, not one class
    assert json.loads(results.with_suffix(".metric.json").read_text())["acc"] >= 0.9


def test_sequence_classification_with_lora_saves_the_head_and_answers_interactively(runs):
    run = runs.result("seq_cls_lora")
    out, trained, answered, refused = run.out, run.trained, run.answered, run.refused
    assert trained.returncode == 0, trained.stderr[-3000:]
    adapter = json.loads((out / "checkpoint-2" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_CLS" and "score" in adapter["modules_to_save"]
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert ">>> label " in answered.stdout and "probabilities [" in answered.stdout
    assert refused.returncode == 2 and "label must be a class index 0..1" in refused.stderr


@pytest.mark.parametrize("command, argv, said", [
    ("sft", ["--init_weights", "LoftQ"], "--init_weights LoftQ: this initialisation is not supported yet"),
    ("sft", ["--init_weights", "pissa", "--load_best_model_at_end", "true"], "drop --load_best_model_at_end"),
    ("sft", ["--init_weights", "lora-ga", "--streaming", "true", "--max_steps", "3"], "not with --streaming"),
    ("deploy", ["--val_dataset", "x.jsonl"], "swift deploy answers requests and reads no dataset"),
    ("deploy", ["--num_labels", "2"], "this command generates text"),
])
def test_combinations_that_cannot_work_are_refused_while_parsing(command, argv, said):
    from swift_args import ArgumentError, parse_args

    with pytest.raises(ArgumentError, match=said):
        parse_args(command, ["--model", "m", *argv], warn=lambda _: None)
