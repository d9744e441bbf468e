"""Ulysses sequence parallelism on CPU: two gloo processes split each sequence and must train as one unsplit process.

The distributed checks run once, in two processes started by torchrun with this file as their script
(`python -m torch.distributed.run ... test_sequence_parallel.py RESULTS`); rank 0 writes what they
measured to RESULTS, and the tests below read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

HERE = Path(__file__).parent
SIZE = 2  # processes, all in one sequence-parallel group
# (name, key/value heads, batch, chunked loss, token count as transformers passes it, gradient checkpointing, accuracy)
CASES = [
    ("padded", 2, "padded", True, "all_devices", False, "token"),
    ("padded_full_logits_per_device_count", 2, "padded", False, "this_device", False, "seq"),
    ("left_padded", 2, "left_padded", True, "all_devices", False, "token"),
    ("packed_repeated_kv_checkpointed", 1, "packed", True, "all_devices", True, "token"),
    ("packed_full_logits_no_count", 2, "packed", False, "none", False, "token"),
]


# -- the two processes ----------------------------------------------------------------------------------


def _worker(out: Path) -> None:
    import torch.distributed as dist

    sys.path.insert(0, str(HERE))
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    results: dict[str, Any] = {"all_to_all": _check_all_to_all()}
    for name, *case in CASES:
        results[name] = _check_training_step(out.parent / name, *case)
    results["dataloader"] = _check_dataloader(out.parent / "loader")
    if dist.get_rank() == 0:
        out.write_text(json.dumps(results))
    dist.destroy_process_group()


def _check_all_to_all() -> dict[str, float]:
    import torch.distributed as dist
    from swift_train import sequence_parallel

    groups = sequence_parallel.setup(SIZE)
    rank = dist.get_rank()
    full = torch.randn(3, 4, 6, 5, generator=torch.Generator().manual_seed(0))  # [B, H, L, D], the same on both
    mine = full.chunk(SIZE, dim=2)[rank].clone().requires_grad_()  # this rank's positions, every head
    heads = sequence_parallel.all_to_all(mine, 1, 2, groups.group)  # this rank's heads, every position
    back = sequence_parallel.all_to_all(heads, 2, 1, groups.group)
    upstream = torch.randn(back.shape, generator=torch.Generator().manual_seed(rank + 1))
    back.backward(upstream)
    return {"shape": list(heads.shape), "forward": _max_error(heads, full.chunk(SIZE, dim=1)[rank]),
            "round_trip": _max_error(back, mine), "backward": _max_error(mine.grad, upstream)}


def _check_training_step(tmp: Path, kv_heads: int, kind: str, chunked: bool, count: str, checkpointing: bool,
                         accuracy: str) -> dict[str, Any]:
    """One training micro step split over the group (under DDP) against the same step unsplit in one process."""
    import torch.distributed as dist
    from _tiny import samples
    from swift_train import sequence_parallel
    from swift_train.loss import full_token_loss
    from torch.nn.parallel import DistributedDataParallel

    reference = _model(kv_heads)
    inputs = _batch(kind, samples([13, 6]))  # odd lengths: the split pads them
    ref_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "loss_scale")}
    inputs["labels"] = _partly_predicted(reference, ref_inputs, inputs["labels"])
    tokens = int((inputs["labels"][:, 1:] != -100).sum())
    ref_parts = full_token_loss(reference(**ref_inputs, use_cache=False).logits, inputs["labels"], inputs["loss_scale"])
    ref_loss = ref_parts.loss_sum / tokens
    ref_loss.backward()

    model = _model(kv_heads)
    sequence_parallel.enable(model)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    train = _trainer(model, tmp, average_tokens_across_devices=count == "all_devices",
                     argv=("--sequence_parallel_size", str(SIZE), "--acc_strategy", accuracy))
    train.use_chunked_loss = chunked
    wrapped = DistributedDataParallel(model)
    wrapped.train()
    # What transformers passes: the batch's trained tokens, gathered over both processes (each counts the whole batch).
    num_items = {"all_devices": torch.tensor(tokens * SIZE), "this_device": torch.tensor(tokens), "none": None}[count]
    loss = train.compute_loss(wrapped, inputs, num_items_in_batch=num_items)
    loss.backward()  # DDP averages the gradients over both processes, as in training
    logged = loss.detach().clone()
    dist.all_reduce(logged)  # transformers logs the mean over processes
    ref_grads = dict(reference.named_parameters())
    grad_error = max(_max_error(p.grad, ref_grads[n].grad) for n, p in model.named_parameters())
    if accuracy == "seq":
        expected_accuracy = [float(((ref_parts.correct | ~ref_parts.mask).all(-1) & ref_parts.mask.any(-1)).sum()),
                             int(ref_parts.mask.any(-1).sum())]
    else:
        expected_accuracy = [float(ref_parts.correct.sum()), int(ref_parts.mask.sum())]
    return {"loss": float(logged / SIZE), "reference_loss": float(ref_loss.detach()), "grad_error": grad_error,
            "grads_checked": sum(1 for p in model.parameters() if p.grad is not None),
            "parameters": sum(1 for _ in model.parameters()), "accuracy": train._accuracy,
            "reference_accuracy": expected_accuracy}


def _check_dataloader(tmp: Path) -> dict[str, Any]:
    """The ranks of one group read the same batches, as many as one process alone would."""
    import torch.distributed as dist
    from _tiny import samples

    rows = [{k: v.tolist() for k, v in s.items()} for s in samples([5] * 8)]
    train = _trainer(_model(2), tmp, argv=("--sequence_parallel_size", str(SIZE)), train_dataset=rows,
                     per_device_train_batch_size=2)
    loader = train.get_train_dataloader()
    batches = [batch["input_ids"] for batch in loader]
    mine = torch.stack(batches)
    both = [torch.empty_like(mine) for _ in range(SIZE)]
    dist.all_gather(both, mine)
    return {"batches": len(batches), "length": len(loader), "same": all(torch.equal(b, both[0]) for b in both),
            "distinct_rows": len({tuple(r.tolist()) for b in batches for r in b})}


@torch.no_grad()
def _partly_predicted(model: Any, inputs: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Labels the model gets partly right, so accuracy is no zero: the first of several rows all right, the others
    two trained tokens of three."""
    predicted = model(**inputs, use_cache=False).logits.argmax(-1)[:, :-1]
    labels = labels.clone()
    targets = labels[:, 1:]  # a view: position i's target
    trained = targets != -100
    take = trained & (torch.arange(trained.shape[1]) % 3 != 0)
    if len(take) > 1:
        take[0] = trained[0]
    targets[take] = predicted[take]
    return labels


def _model(kv_heads: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=kv_heads, vocab_size=96, max_position_embeddings=128,
                         tie_word_embeddings=True, attn_implementation="sdpa")
    return LlamaForCausalLM(config).float()


def _trainer(model: Any, tmp: Path, argv: tuple[str, ...], train_dataset: Any = None, **training: Any) -> Any:
    from _tiny import sft
    from swift_data.collator import Collator
    from swift_train.trainer import SwiftTrainer
    from transformers import Seq2SeqTrainingArguments

    args = Seq2SeqTrainingArguments(output_dir=str(tmp), use_cpu=True, report_to=[], remove_unused_columns=False,
                                    dataloader_pin_memory=False, ddp_backend="gloo", **training)
    return SwiftTrainer(model=model, args=args, swift_args=sft(*argv), train_dataset=train_dataset,
                        data_collator=Collator(pad_token_id=0))


def _batch(kind: str, batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    from _tiny import packed, padded

    if kind == "packed":
        return packed(batch)
    inputs = padded(batch)
    if kind == "left_padded":  # each row's padding moved to its start
        shifts = (inputs["attention_mask"] == 0).sum(-1).tolist()
        inputs = {k: torch.stack([row.roll(n) for row, n in zip(v, shifts)]) for k, v in inputs.items()}
    return inputs


def _max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max())


# -- the tests ----------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sequence_parallel") / "results.json"
    env = {k: v for k, v in os.environ.items() if k not in ("NPROC_PER_NODE", "NNODES", "WORLD_SIZE")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={SIZE}",
                           f"--master_port={_free_port()}", __file__, str(out)],
                          capture_output=True, text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1"}, check=False)
    assert done.returncode == 0 and out.exists(), done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(out.read_text())


def test_all_to_all_moves_heads_and_positions_and_back(results: dict[str, Any]) -> None:
    found = results["all_to_all"]
    assert found["shape"] == [3, 4 // SIZE, 6, 5]  # a share of the heads, every position
    assert found["forward"] == 0 and found["round_trip"] == 0
    assert found["backward"] == 0  # the backward of the round trip is the identity


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_split_step_equals_unsplit_step(results: dict[str, Any], name: str) -> None:
    found = results[name]
    assert found["loss"] == pytest.approx(found["reference_loss"], abs=1e-5)
    assert found["grads_checked"] == found["parameters"]
    assert found["grad_error"] < 1e-5
    assert found["accuracy"] == found["reference_accuracy"]  # the group's counts, not one shard's


def test_a_group_reads_the_same_batches(results: dict[str, Any]) -> None:
    found = results["dataloader"]
    assert found["same"]
    assert found["batches"] == found["length"] == 4  # 8 rows, 2 a batch: one data-parallel replica reads them all
    assert found["distinct_rows"] == 8


def test_segments_are_samples_and_padding() -> None:
    from swift_train.sequence_parallel import segment_bounds

    packed = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2]])  # two samples, then the split's padding from 0
    assert segment_bounds(packed, None)[0].tolist() == [0, 3, 5, 8]
    rows = torch.arange(4).expand(2, 4)
    valid = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1]])  # right and left padding
    cu, longest = segment_bounds(rows, valid)
    assert cu.tolist() == [0, 3, 4, 6, 8] and longest == 3


REFUSED = [
    (["--sequence_parallel_size", "2"], {}, ("--sequence_parallel_size 2: each sequence is split over 2 processes, "
                                             "but this run has 1: launch with NPROC_PER_NODE=2")),
    (["--sequence_parallel_size", "2"], {"NPROC_PER_NODE": "3"}, "but this run has 3"),
    (["--sequence_parallel_size", "0"], {}, "--sequence_parallel_size 0: must be at least 1"),
    (["--sequence_parallel_size", "2", "--num_labels", "3"], {"NPROC_PER_NODE": "2"}, "--num_labels 3: sequence classification"),
    (["--sequence_parallel_size", "2", "--streaming", "true", "--max_steps", "2"], {"NPROC_PER_NODE": "2"},
     "--streaming true"),
    (["--sequence_parallel_size", "2", "--loss_type", "cross_entropy"], {"NPROC_PER_NODE": "2"},
     "--loss_type cross_entropy"),
    (["--sequence_parallel_size", "2", "--attn_impl", "eager"], {"NPROC_PER_NODE": "2"}, "--attn_impl eager"),
    (["--sequence_parallel_size", "2", "--fsdp", "full_shard"], {"NPROC_PER_NODE": "2"}, "--fsdp full_shard"),
    (["--sequence_parallel_size", "2", "--neftune_noise_alpha", "5"], {"NPROC_PER_NODE": "2"},
     "--neftune_noise_alpha 5.0"),
]


@pytest.mark.parametrize("argv, env, said", REFUSED, ids=[" ".join(a) for a, _, _ in REFUSED])
def test_what_it_cannot_split_is_refused_while_parsing(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                       env: dict[str, str], said: str) -> None:
    from swift_args import ArgumentError, parse_args

    for name in ("WORLD_SIZE", "NPROC_PER_NODE", "NNODES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ArgumentError) as refused:
        parse_args("sft", ["--model", "m", "--dataset", "d.jsonl", *argv], warn=lambda _: None)
    assert said in str(refused.value)


@pytest.mark.parametrize("command", ["infer", "deploy", "merge-lora", "rlhf"])
def test_commands_that_do_not_train_refuse_it(command: str) -> None:
    from swift_args import ArgumentError, parse_args

    with pytest.raises(ArgumentError) as refused:
        parse_args(command, ["--model", "m", "--adapters", "a", "--sequence_parallel_size", "2"], warn=lambda _: None)
    assert "--sequence_parallel_size 2: " in str(refused.value)


def test_a_multiple_of_its_size_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from swift_args import parse_args

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("NPROC_PER_NODE", "4")
    args = parse_args("sft", ["--model", "m", "--dataset", "d.jsonl", "--sequence_parallel_size", "2",
                              "--packing", "true"], warn=lambda _: None).args
    assert args.sequence_parallel_size == 2


def test_models_it_cannot_split() -> None:
    from swift_train import sequence_parallel

    sys.path.insert(0, str(HERE))
    from _tiny import tiny_llama

    config = tiny_llama().config  # 4 heads, 2 key/value heads
    assert sequence_parallel.unsupported(config, 2) is None
    assert sequence_parallel.unsupported(config, 4) is None  # key/value heads are repeated to split
    assert "3 ranks" in sequence_parallel.unsupported(config, 3)
    config.sliding_window = 16
    assert "sliding" in sequence_parallel.unsupported(config, 2)


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama (4 heads, 2 key/value heads) with SmolLM2's tokenizer and chat template."""
    from swift_data.models import resolve_model_dir
    from swift_e2e import write_tiny_chat_model

    return write_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "tiny-chat", resolve_model_dir("SmolLM2-135M-Instruct"))


def _sft(model: Path, output: Path, *extra: str) -> list[str]:
    return ["sft", "--model", str(model), "--dataset", "general-instructions#16", "--split_dataset_ratio", "0",
            "--per_device_train_batch_size", "1", "--learning_rate", "1e-3", "--logging_steps", "1",
            "--output_dir", str(output), "--add_version", "false", "--report_to", "none", "--seed", "1",
            "--max_steps", "2", "--save_strategy", "no", "--lora_dropout", "0", "--packing", "true",
            "--max_length", "256", "--gradient_checkpointing", "true", *extra]


def test_swift_sft_over_two_processes_logs_the_one_process_losses(tmp_path: Path, tiny_chat_model: Path) -> None:
    from swift_e2e import free_port, read_log, run_swift

    alone = run_swift(*_sft(tiny_chat_model, tmp_path / "alone"))
    assert alone.returncode == 0, alone.stderr[-3000:]
    split = run_swift(*_sft(tiny_chat_model, tmp_path / "split", "--sequence_parallel_size", "2"),
                      NPROC_PER_NODE="2", MASTER_PORT=str(free_port()), OMP_NUM_THREADS="1")
    assert split.returncode == 0, split.stderr[-3000:]
    expected = [r for r in read_log(tmp_path / "alone") if "loss" in r]
    found = [r for r in read_log(tmp_path / "split") if "loss" in r]
    assert [r["global_step"] for r in found] == [r["global_step"] for r in expected] == [1, 2]
    for ours, theirs in zip(found, expected):  # packed rows of one group's batch: the same data, the same model
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
        assert ours["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-4)
        assert ours["token_acc"] == theirs["token_acc"] and ours["epoch"] == theirs["epoch"]


def test_a_model_whose_heads_do_not_split_is_refused_before_any_process_starts(tmp_path: Path,
                                                                                tiny_chat_model: Path) -> None:
    from swift_e2e import run_swift

    result = run_swift(*_sft(tiny_chat_model, tmp_path / "out", "--sequence_parallel_size", "3"), NPROC_PER_NODE="3")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "--sequence_parallel_size 3: the model's 4 attention heads do not split evenly over 3 ranks" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
