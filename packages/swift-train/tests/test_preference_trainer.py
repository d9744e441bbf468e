"""The preference trainer as `swift rlhf` builds it: its reference model (the adapter disabled for LoRA, a frozen
copy for full training), a resumed run that logs what the uninterrupted one did, and the refusals on the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from swift_e2e import read_log, run_swift, write_tiny_chat_model

IGNORE = -100
QUESTIONS = [
    ("What is 2 + 2?", "2 + 2 is 4.", "2 + 2 is 5."),
    ("What is the capital of France?", "Paris.", "Rome, of course."),
    ("Name a primary colour.", "Red is a primary colour.", "Green, I believe."),
    ("How many legs does a spider have?", "Eight.", "Six legs."),
]


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    from swift_data.models import resolve_model_dir

    return resolve_model_dir("SmolLM2-135M-Instruct")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer and chat template."""
    return write_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "tiny-chat", smollm2_dir)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 preference pairs (messages + rejected_response)."""
    rows = []
    for i in range(16):
        question, chosen, rejected = QUESTIONS[i % len(QUESTIONS)]
        rows.append({"messages": [{"role": "user", "content": f"{question} ({i})"},
                                  {"role": "assistant", "content": chosen}], "rejected_response": rejected})
    return write_jsonl(tmp_path_factory.mktemp("data") / "pairs.jsonl", rows)


# -- the trainer, built the way run_training builds it ------------------------------------------


def build_trainer(model: Path, dataset: Path, run_dir: Path, *argv: str):
    """parse -> tokenizer -> data -> policy (tuner attached) -> reference -> PreferenceTrainer, as sft.run_training."""
    from swift_args import parse_args
    from swift_data.models import load_tokenizer, model_for_args
    from swift_data.pipeline import prepare_datasets
    from swift_train.sft import build_trainer as build, load_reference_model, prepare_model, reference_model_info
    from transformers import set_seed

    args = parse_args("rlhf", ["--model", str(model), "--dataset", str(dataset), "--split_dataset_ratio", "0",
                               "--output_dir", str(run_dir), "--report_to", "none", "--gradient_checkpointing", "false",
                               "--seed", "1", *argv], warn=lambda _: None).args
    _, info = model_for_args(args)
    tokenizer = load_tokenizer(info.model_dir)
    data = prepare_datasets(args, tokenizer, max_length=info.max_model_len, report=False)
    set_seed(args.seed)
    loaded = prepare_model(args, None, info, tokenizer, data.train)
    reference = reference_model_info(args, info)
    ref_model = load_reference_model(args, reference, tokenizer) if reference is not None else None
    run_dir.mkdir(parents=True, exist_ok=True)
    return build(args, run_dir, loaded, data, ref_model)


def base_model(model: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()


def sequences(samples: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batch's sequences in its order: every chosen answer, then every rejected one."""
    return [(torch.as_tensor(s[f"{side}_input_ids"]), torch.as_tensor(s[f"{side}_labels"]))
            for side in ("chosen", "rejected") for s in samples]


@torch.no_grad()
def logps_by_hand(model, seqs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Each sequence alone through `model`: the sum of log_softmax at its trained targets."""
    out = []
    for ids, labels in seqs:
        logps = torch.log_softmax(model(input_ids=ids[None]).logits[0, :-1].double(), -1)
        targets = labels[1:]
        trained = targets != IGNORE
        out.append(float(logps[trained.nonzero().flatten(), targets[trained]].sum()))
    return torch.tensor(out, dtype=torch.float64)


def tensors_in_memory(trainer) -> dict[int, int]:
    """data_ptr -> numel of every parameter and buffer of every module the trainer holds."""
    found: dict[int, int] = {}
    for value in vars(trainer).values():
        if isinstance(value, torch.nn.Module):
            for tensor in [*value.parameters(), *value.buffers()]:
                found[tensor.data_ptr()] = tensor.numel()
    return found


def batch_of(trainer, count: int) -> tuple[list[dict], dict[str, torch.Tensor]]:
    samples = [trainer.train_dataset[i] for i in range(count)]
    return samples, trainer.data_collator(samples)


def test_lora_reference_is_the_adapter_disabled_not_a_second_model(tiny_model, pairs, tmp_path) -> None:
    base = base_model(tiny_model)
    base_tensors = sum(t.numel() for t in [*base.parameters(), *base.buffers()])
    trainer = build_trainer(tiny_model, pairs, tmp_path / "run", "--lora_dropout", "0")
    assert trainer.ref_model is None
    model = trainer.model
    assert hasattr(model, "disable_adapter") and "position_ids" in trainer.data_collator([trainer.train_dataset[0]])

    # Change the adapter so the policy is no longer the base model.
    torch.manual_seed(2)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    samples, batch = batch_of(trainer, 3)
    expected = logps_by_hand(base, sequences(samples))

    model.train()
    before_head = trainer._reference_logps(model, batch)[0]  # the full-logits path: the head is not verified yet
    policy, tokens = trainer._logps(model, batch)  # verifies the chunked head on the way
    after_head = trainer._reference_logps(model, batch)[0]  # the chunked head, adapter disabled
    assert trainer._head is not None and not isinstance(trainer._head, str) and trainer._head.verified
    for reference in (before_head, after_head):
        assert not reference.requires_grad
        assert torch.allclose(reference.double(), expected, rtol=1e-5, atol=1e-5), (reference, expected)
    assert (policy.detach().double() - expected).abs().max() > 1e-2  # the adapter does change the policy
    assert tokens.tolist() == [int((lab[1:] != IGNORE).sum()) for _, lab in sequences(samples)]
    again, _ = trainer._logps(model, batch)
    assert torch.allclose(again, policy, atol=1e-6)  # the adapter is back on after the reference pass
    policy_by_hand = logps_by_hand(model, sequences(samples))
    assert torch.allclose(policy.detach().double(), policy_by_hand, rtol=1e-5, atol=1e-5)

    # One copy of the base weights: the LoRA matrices on top, nothing doubled.
    in_memory = sum(tensors_in_memory(trainer).values())
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert in_memory == base_tensors + lora, (in_memory, base_tensors, lora)


def test_pissa_reference_is_the_starting_model_not_the_residual(tiny_model, pairs, tmp_path) -> None:
    # PiSSA moves the adapter's share out of the base weights: "adapter disabled" would be the residual model.
    trainer = build_trainer(tiny_model, pairs, tmp_path / "run", "--init_weights", "pissa", "--lora_dropout", "0")
    samples, batch = batch_of(trainer, 2)
    expected = logps_by_hand(base_model(tiny_model), sequences(samples))
    with torch.no_grad():
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name and ".default." in name:
                param.add_(0.2 * torch.randn_like(param))  # the trained adapter moves on; the reference must not
    reference = trainer._reference_logps(trainer.model, batch)[0]
    assert torch.allclose(reference.double(), expected, rtol=1e-4, atol=1e-4), (reference, expected)
    assert sorted({n.split(".")[-2] for n, p in trainer.model.named_parameters() if p.requires_grad}) == ["default"]


def test_training_on_from_an_adapter_keeps_it_as_the_reference(tiny_model, pairs, tmp_path) -> None:
    from peft import PeftModel

    sft_run = tmp_path / "sft"
    trained = run_swift("sft", "--model", str(tiny_model), "--dataset", str(pairs), "--split_dataset_ratio", "0",
                        "--max_steps", "1", "--learning_rate", "1e-2", "--output_dir", str(sft_run), "--add_version",
                        "false", "--report_to", "none", "--gradient_checkpointing", "false")
    assert trained.returncode == 0, trained.stderr[-2000:]
    adapter = sft_run / "checkpoint-1"
    trainer = build_trainer(tiny_model, pairs, tmp_path / "run", "--adapters", str(adapter), "--lora_dropout", "0")
    samples, batch = batch_of(trainer, 2)
    sft_model = PeftModel.from_pretrained(base_model(tiny_model), str(adapter)).eval()
    expected = logps_by_hand(sft_model, sequences(samples))
    assert (expected - logps_by_hand(base_model(tiny_model), sequences(samples))).abs().max() > 1e-3
    with torch.no_grad():
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name and ".default." in name:
                param.add_(0.2 * torch.randn_like(param))
    reference = trainer._reference_logps(trainer.model, batch)[0]
    assert torch.allclose(reference.double(), expected, rtol=1e-4, atol=1e-4), (reference, expected)
    trainer.save_model(str(tmp_path / "saved"))  # the frozen copy is not saved with the trained adapter
    assert (tmp_path / "saved" / "adapter_config.json").is_file() and not (tmp_path / "saved" / "ref").exists()


def test_full_training_compares_against_a_frozen_copy(tiny_model, pairs, tmp_path) -> None:
    trainer = build_trainer(tiny_model, pairs, tmp_path / "run", "--train_type", "full")
    policy, reference = trainer.model, trainer.ref_model
    assert isinstance(reference, torch.nn.Module) and reference is not policy
    assert all(not p.requires_grad for p in reference.parameters())
    assert all(p.requires_grad for p in policy.parameters())
    assert not any(m.training for m in reference.modules())
    assert {p.dtype for p in reference.parameters()} == {p.dtype for p in policy.parameters()} == {torch.float32}
    policy_ptrs = {p.data_ptr() for p in policy.parameters()}
    assert not policy_ptrs & {p.data_ptr() for p in reference.parameters()}  # a copy, sharing no weight
    base_params = sum(p.numel() for p in policy.parameters())
    assert sum(tensors_in_memory(trainer).values()) >= 2 * base_params

    # Training the policy leaves the reference as the starting model.
    samples, batch = batch_of(trainer, 2)
    expected = logps_by_hand(base_model(tiny_model), sequences(samples))
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.05 * torch.randn_like(param))
    reference_logps = trainer._reference_logps(policy, batch)[0]
    assert torch.allclose(reference_logps.double(), expected, rtol=1e-5, atol=1e-5)
    assert (trainer._logps(policy, batch)[0].detach().double() - expected).abs().max() > 1e-2
    assert reference_logps.tolist() == trainer._reference_logps(policy, batch)[0].tolist()


# -- a resumed run -----------------------------------------------------------------------------


def dpo_run(model: Path, dataset: Path, output: Path, *extra: str) -> list[str]:
    return ["rlhf", "--rlhf_type", "dpo", "--model", str(model), "--dataset", str(dataset), "--split_dataset_ratio",
            "0", "--max_steps", "4", "--save_steps", "2", "--logging_steps", "1", "--seed", "1", "--learning_rate",
            "1e-3", "--per_device_train_batch_size", "2", "--gradient_checkpointing", "false", "--output_dir",
            str(output), "--add_version", "false", "--report_to", "none", *extra]


def test_a_resumed_run_logs_the_losses_of_the_uninterrupted_one(tiny_model, pairs, tmp_path) -> None:
    run = tmp_path / "run"
    first = run_swift(*dpo_run(tiny_model, pairs, run))
    assert first.returncode == 0, first.stderr[-3000:]
    steps = [r for r in read_log(run) if "loss" in r]
    assert [r["global_step"] for r in steps] == [1, 2, 3, 4]
    metrics = {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
               "logps/rejected", "nll_loss"}
    assert all(metrics <= set(r) for r in steps), steps[-1]
    assert steps[0]["rewards/chosen"] == steps[0]["rewards/rejected"] == 0.0  # the policy starts as its reference
    assert steps[-1]["rewards/margins"] != 0.0

    shutil.rmtree(run / "checkpoint-4")
    resumed = run_swift(*dpo_run(tiny_model, pairs, run, "--resume_from_checkpoint", str(run / "checkpoint-2")))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = read_log(run)
    again = [r for r in records if "loss" in r][4:]
    assert [r["global_step"] for r in again] == [3, 4]
    assert [{k: v for k, v in r.items() if k != "time"} for r in records if "event" in r] == [
        {"event": "resumed", "checkpoint": "checkpoint-2", "global_step": 2}]
    for before, after in zip(steps[2:], again):
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-4)
        for name in metrics:
            assert after[name] == pytest.approx(before[name], rel=1e-3, abs=1e-5), name
    assert (run / "checkpoint-4").is_dir()


# -- refusals on the command line --------------------------------------------------------------


def refused(tmp_path: Path, *argv: str, command: str = "rlhf", lines: int = 1) -> str:
    """Run swift `command`; it must stop with exit code 2 and one error line per refused argument (`lines`),
    before a run directory exists. Returns the error lines, prefix dropped, joined by newlines."""
    output = tmp_path / "out"
    result = run_swift(command, *argv, "--output_dir", str(output), "--report_to", "none")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    prefix = f"swift {command}: error: "
    errors = [line.removeprefix(prefix) for line in result.stderr.splitlines() if line.startswith(prefix)]
    assert len(errors) == lines, result.stderr
    assert not output.exists() or not any(output.iterdir()), list(output.iterdir())
    return "\n".join(errors)


def test_an_sft_dataset_is_refused_for_dpo(tiny_model, tmp_path) -> None:
    sft_rows = write_jsonl(tmp_path / "sft.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}] * 3)
    message = refused(tmp_path, "--rlhf_type", "dpo", "--model", str(tiny_model), "--dataset", str(sft_rows))
    assert "no usable rows" in message and "no rejected answer" in message and f"{sft_rows}:1" in message


def test_kto_rows_without_a_label_are_refused(tiny_model, tmp_path) -> None:
    rows = write_jsonl(tmp_path / "kto.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}] * 3)
    message = refused(tmp_path, "--rlhf_type", "kto", "--model", str(tiny_model), "--dataset", str(rows))
    assert "no usable rows" in message and "no kto label" in message


def test_a_missing_reference_model_is_named_as_ref_model(tiny_model, pairs, tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    message = refused(tmp_path, "--model", str(tiny_model), "--dataset", str(pairs), "--train_type", "full",
                      "--ref_model", str(missing))
    assert message.startswith(f"--ref_model {missing}"), message


PARSE_TIME = {
    "ref_model-lora": (["--ref_model", "SmolLM2-135M-Instruct"],
                       "--ref_model with --train_type lora: the reference is the model with its adapter disabled"),
    "ref_model-simpo": (["--rlhf_type", "simpo", "--ref_model", "x"], "--ref_model: --rlhf_type simpo uses no reference"),
    "grpo": (["--rlhf_type", "grpo", "--per_device_train_batch_size", "8"], "--rlhf_type grpo needs rewards"),
    "num_generations": (["--num_generations", "4"], "--num_generations 4: configures GRPO; add --rlhf_type grpo"),
    "packing": (["--packing", "true"], "--packing true: chosen and rejected answers are scored as whole sequences"),
    "orpo-ipo": (["--rlhf_type", "orpo", "--loss_type", "ipo"], "--loss_type ipo: --rlhf_type orpo takes no --loss_type"),
    "exo_pair": (["--loss_type", "exo_pair"], "--loss_type exo_pair needs --label_smoothing above 0"),
    "rm-num_labels": (["--rlhf_type", "rm", "--num_labels", "3"], "--rlhf_type rm trains a one-output score head"),
    "dpo-num_labels": (["--num_labels", "2"], "--num_labels 2: --rlhf_type dpo trains a language model"),
    "predict_with_generate": (["--predict_with_generate", "true"],
                              "--predict_with_generate true: preference training evaluates with its loss"),
    "label_smoothing": (["--loss_type", "robust", "--label_smoothing", "0.5"], "--label_smoothing must be in [0, 0.5)"),
    "ref_model_revision-lora": (["--ref_model_revision", "v1"], "--ref_model_revision: applies to --ref_model"),
}


@pytest.mark.parametrize(("argv", "expected"), PARSE_TIME.values(), ids=PARSE_TIME.keys())
def test_arguments_rlhf_cannot_honour_are_refused(tmp_path, argv, expected) -> None:
    message = refused(tmp_path, "--model", "SmolLM2-135M-Instruct", "--dataset", "preference-pairs", *argv)
    assert message.startswith(expected), message


def test_a_missing_reward_model_is_named_as_reward_model(tmp_path) -> None:
    """Found missing before the run directory or any weights: named as the argument the user typed."""
    missing = tmp_path / "no-such-rm"
    message = refused(tmp_path, "--model", "SmolLM2-135M-Instruct", "--dataset", "preference-pairs", "--rlhf_type",
                      "ppo", "--reward_model", str(missing))
    assert message.startswith(f"--reward_model {missing}: no such file or directory"), message


def test_sft_refuses_a_reward_models_num_labels(tmp_path) -> None:
    message = refused(tmp_path, "--model", "SmolLM2-135M-Instruct", "--dataset", "general-instructions",
                      "--num_labels", "1", command="sft")
    expected = "--num_labels 1 is a reward model's single score: train one with swift rlhf --rlhf_type rm"
    assert message.startswith(expected), message
