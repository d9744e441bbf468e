"""`swift rlhf` on SmolLM2 (CPU) and the built-in preference pairs: each algorithm learns to prefer the better
answer on pairs it never saw, and its checkpoint answers through `swift infer --adapters` and merges.

The held-out margin is measured here, independently of the trainer's own metrics: the checkpoint is loaded with
plain transformers + peft, and each answer's log-probability is summed over the tokens `swift sft` would train.
"""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest
from swift_e2e import read_log, run_swift

HELD_OUT = 24
STEPS = "8"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, Path]:
    """The built-in set, shuffled, split into training rows and held-out pairs never trained on."""
    from swift_data.datasets.builtin import find_builtin_dataset

    rows = find_builtin_dataset("preference-pairs").path().read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(rows)
    folder = tmp_path_factory.mktemp("pairs")
    (folder / "held_out.jsonl").write_text("\n".join(rows[:HELD_OUT]) + "\n", encoding="utf-8")
    (folder / "train.jsonl").write_text("\n".join(rows[HELD_OUT:]) + "\n", encoding="utf-8")
    return {"train": folder / "train.jsonl", "held_out": folder / "held_out.jsonl"}


def margins(smollm2_dir: Path, held_out: Path, adapter: Path | None = None) -> tuple[float, float]:
    """Mean over held-out pairs of log p(chosen) - log p(rejected): summed over the answer tokens, and per token."""
    import torch
    from swift_data.models import load_tokenizer
    from swift_data.preference import preference_sample
    from swift_data.preprocess.formats import to_conversation
    from swift_data.templates.encode import Encoder, EncoderOptions
    from transformers import AutoModelForCausalLM

    encoder = Encoder(load_tokenizer(smollm2_dir), EncoderOptions(loss_scale="last_round"))
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    summed, per_token = [], []
    for line in held_out.read_text(encoding="utf-8").splitlines():
        sample = preference_sample(to_conversation(json.loads(line), "held_out"), encoder, "dpo")
        answer_logps = []
        for side in ("chosen", "rejected"):
            ids = torch.as_tensor(sample[f"{side}_input_ids"])[None]
            targets = torch.as_tensor(sample[f"{side}_labels"])[None, 1:]
            with torch.no_grad():
                logps = model(input_ids=ids).logits[:, :-1].float().log_softmax(-1)
            trained = targets != -100
            answer_logps.append(logps.gather(-1, targets.clamp(min=0)[..., None])[..., 0][trained])
        chosen, rejected = answer_logps
        summed.append(float(chosen.sum() - rejected.sum()))
        per_token.append(float(chosen.mean() - rejected.mean()))
    return statistics.mean(summed), statistics.mean(per_token)


@pytest.fixture(scope="module")
def base_margins(smollm2_dir, pairs) -> tuple[float, float]:
    return margins(smollm2_dir, pairs["held_out"])


def rlhf(rlhf_type: str, pairs: dict[str, Path], output: Path, *extra: str) -> list[str]:
    return ["rlhf", "--rlhf_type", rlhf_type, "--model", "SmolLM2-135M-Instruct", "--dataset", str(pairs["train"]),
            "--split_dataset_ratio", "0", "--max_steps", STEPS, "--per_device_train_batch_size", "4",
            "--learning_rate", "1e-3", "--logging_steps", "1", "--output_dir", str(output), "--add_version", "false",
            "--report_to", "none", "--seed", "1", "--gradient_checkpointing", "false", *extra]


# SmolLM2 already prefers most chosen answers by ~30 nats, so the reference-free losses start saturated at their
# default beta and, in 8 steps, mostly train the chosen answers' NLL (cpo_alpha 1, which also lifts the rejected
# answers); a larger beta (the papers' upper range) and, for simpo and cpo, no NLL term let the mis-ordered pairs
# drive the update. DPO and KTO compare with the reference and run at their defaults.
EXTRA = {"orpo": ["--beta", "2.0"], "simpo": ["--beta", "10", "--simpo_gamma", "5", "--cpo_alpha", "0"],
         "cpo": ["--beta", "0.5", "--cpo_alpha", "0"]}


@pytest.mark.parametrize("rlhf_type", ["dpo", "orpo", "simpo", "cpo", "kto"])
def test_alignment_prefers_the_better_answer_on_held_out_pairs(rlhf_type, pairs, base_margins, smollm2_dir,
                                                               tmp_path):
    out = tmp_path / "run"
    trained = run_swift(*rlhf(rlhf_type, pairs, out, *EXTRA.get(rlhf_type, [])))
    assert trained.returncode == 0, trained.stderr[-3000:]
    log = [record for record in read_log(out) if "loss" in record]
    assert len(log) == int(STEPS)
    expected = {"rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"}
    assert expected <= set(log[-1]), sorted(log[-1])
    checkpoint = out / f"checkpoint-{STEPS}"
    summed, per_token = margins(smollm2_dir, pairs["held_out"], checkpoint)
    print(f"{rlhf_type}: held-out margin summed {base_margins[0]:.2f} -> {summed:.2f}, "
          f"per token {base_margins[1]:.3f} -> {per_token:.3f}")
    assert summed > base_margins[0] + 1.0 and per_token > base_margins[1]

    answered = run_swift("infer", "--adapters", str(checkpoint), "--max_new_tokens", "12", "--merge_lora", "true",
                         input="What is the capital of France?\n")
    assert answered.returncode == 0, answered.stderr[-3000:]
    assert ">>>" in answered.stdout or answered.stdout.strip()
    merged = checkpoint.with_name(f"checkpoint-{STEPS}-merged")
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()


def test_reward_model_scores_the_chosen_answer_higher(pairs, tmp_path):
    out = tmp_path / "run"
    trained = run_swift(*rlhf("rm", pairs, out))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "rewards/accuracies" in [r for r in read_log(out) if "loss" in r][-1]
    checkpoint = out / f"checkpoint-{STEPS}"
    args = json.loads((out / "args.json").read_text())
    assert (args["task_type"], args["num_labels"]) == ("seq_cls", 1)

    results = tmp_path / "scores.jsonl"
    scored = run_swift("infer", "--adapters", str(checkpoint), "--val_dataset", str(pairs["held_out"]),
                       "--result_path", str(results))
    assert scored.returncode == 0, scored.stderr[-3000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == HELD_OUT and all({"score", "rejected_score"} <= set(r) for r in rows)
    accuracy = sum(r["score"] > r["rejected_score"] for r in rows) / len(rows)
    print(f"rm: chosen scored above rejected on {accuracy:.0%} of {len(rows)} held-out pairs")
    assert accuracy >= 0.7
    assert json.loads(results.with_suffix(".metric.json").read_text())["acc"] == pytest.approx(accuracy)

    merged = run_swift("merge-lora", "--adapters", str(checkpoint), "--output_dir", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr[-3000:]
    from transformers import AutoModelForSequenceClassification

    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged")  # plain transformers
    assert reloaded.config.num_labels == 1


def test_show_sample_prints_both_answers_of_a_pair(pairs):
    shown = run_swift("rlhf", "--model", "SmolLM2-135M-Instruct", "--dataset", str(pairs["held_out"]),
                      "--show_sample", "1")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "=== sample 0 chosen (" in shown.stdout and "=== sample 0 rejected (" in shown.stdout
    first = json.loads(pairs["held_out"].read_text(encoding="utf-8").splitlines()[0])
    assert f"[[{first['rejected_response']}<|im_end|>]]" in shown.stdout


def test_two_processes_train_kto_and_average_its_metrics(pairs, tiny_chat_model, tmp_path):
    # KTO's KL reference point and every logged metric are gathered over the processes (gloo on CPUs).
    out = tmp_path / "run"
    trained = run_swift("rlhf", "--rlhf_type", "kto", "--model", str(tiny_chat_model), "--dataset", str(pairs["train"]),
                        "--split_dataset_ratio", "0", "--max_steps", "2", "--per_device_train_batch_size", "1",
                        "--logging_steps", "1", "--output_dir", str(out), "--add_version", "false", "--report_to",
                        "none", "--gradient_checkpointing", "false", NPROC_PER_NODE="2")
    assert trained.returncode == 0, trained.stderr[-3000:]
    log = [r for r in read_log(out) if "loss" in r]
    assert len(log) == 2 and all({"kl", "rewards/chosen", "rewards/rejected", "rewards/margins"} <= set(r) for r in log)
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
