"""--train_type adapter and reft on a tiny Llama: what trains, what the interventions compute, what is
saved, that the saved tuner reloads on a fresh base to the same outputs, and that it resumes."""

from __future__ import annotations

import json

import pytest
import torch
from _tiny import sft, tiny_llama
from swift_infer import own_tuners
from swift_infer.own_tuners.reft import TYPES, Intervention
from test_more_tuners import logits, run, trainable

from swift_train.tuners import prepare_hooked_tuner


def test_bottleneck_adapter_starts_as_the_identity_and_trains_only_itself(tmp_path):
    args = sft("--train_type", "adapter")
    base = logits(tiny_llama())
    model = prepare_hooked_tuner(tiny_llama(), args)
    torch.testing.assert_close(logits(model), base)  # the up projection starts at zero
    names = trainable(model)
    assert names == {f"model.layers.{i}.mlp.swift_tuner.{part}.{kind}" for i in range(2)
                     for part in ("down", "up") for kind in ("weight", "bias")}
    assert model.get_submodule("model.layers.0.mlp.swift_tuner.down").out_features == 128  # ms-swift's length
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    run(model, tmp_path, args)
    assert all(torch.equal(frozen[n], p) for n, p in model.named_parameters() if n in frozen)
    assert not torch.allclose(logits(model), base)  # it learned
    own_tuners.save(model, tmp_path / "saved", base_model="m")
    config = json.loads((tmp_path / "saved" / own_tuners.CONFIG_FILE).read_text())
    assert config["kind"] == "adapter" and config["modules"] == ["model.layers.0.mlp", "model.layers.1.mlp"]
    reloaded = own_tuners.load(tiny_llama(), tmp_path / "saved")
    torch.testing.assert_close(logits(reloaded), logits(model))
    assert not trainable(reloaded)  # inference: frozen


def _reference(kind: str, module: Intervention, h: torch.Tensor) -> torch.Tensor:
    """pyreft's formulas, written out from the module's weights."""
    if kind in ("NoreftIntervention", "NodireftIntervention"):
        P = module.projection.weight  # [r, d]
    else:
        P = module.projection.weight.T  # orthonormal rows
    source = module.source(h) if hasattr(module, "source") else module.source_bias
    return {
        "LoreftIntervention": lambda: h + (source - h @ P.T) @ P,
        "NoreftIntervention": lambda: h + (source - module.projection(h)) @ P,
        "ConsreftIntervention": lambda: h + (source - h @ P.T) @ P,
        "LobireftIntervention": lambda: h + source @ P,
        "DireftIntervention": lambda: h + source @ P,
        "NodireftIntervention": lambda: h + source @ P,
    }[kind]()


@pytest.mark.parametrize("kind", TYPES)
def test_each_reft_intervention_computes_its_formula(kind):
    torch.manual_seed(0)
    module = Intervention(kind, hidden_size=16, rank=4)
    h = torch.randn(2, 5, 16)
    torch.testing.assert_close(module(h), _reference(kind, module, h))
    if kind in ("LoreftIntervention", "ConsreftIntervention", "LobireftIntervention", "DireftIntervention"):
        R = module.projection.weight.T
        torch.testing.assert_close(R @ R.T, torch.eye(4), atol=1e-5, rtol=0)  # orthonormal rows, kept so


def test_reft_on_chosen_layers_trains_saves_and_resumes(tmp_path):
    args = sft("--train_type", "reft", "--reft_layers", "1", "--reft_rank", "2",
               "--reft_intervention_type", "NoreftIntervention", "--reft_args", '{"add_bias": true}')
    model = prepare_hooked_tuner(tiny_llama(), args)
    assert trainable(model) == {"model.layers.1.swift_tuner.projection.weight", "model.layers.1.swift_tuner.projection.bias",
                                "model.layers.1.swift_tuner.source.weight", "model.layers.1.swift_tuner.source.bias"}
    assert model.get_submodule("model.layers.1.swift_tuner.projection").out_features == 2
    hf = {"save_strategy": "steps", "save_steps": 2}
    trainer = run(model, tmp_path, args, steps=2, **hf)
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert sorted(p.name for p in checkpoint.glob("swift_tuner*")) == ["swift_tuner.json", "swift_tuner.safetensors"]
    assert not list(checkpoint.glob("model*.safetensors"))  # the base is not copied into every checkpoint
    trained = logits(trainer.model)
    # Resumed: the same weights, then training goes on.
    again = prepare_hooked_tuner(tiny_llama(), args)
    resumed = run(again, tmp_path / "again", args, steps=3, resume=str(checkpoint))
    assert resumed.state.global_step == 3
    reloaded = own_tuners.load(tiny_llama(), checkpoint)
    torch.testing.assert_close(logits(reloaded), trained)


def test_reft_trains_with_gradient_checkpointing_like_without(tmp_path):
    """The hook runs again in the recomputed forward, so gradients are the same with or without it."""
    args = sft("--train_type", "reft", "--reft_rank", "2")
    grads = []
    for checkpointing in (False, True):
        model = prepare_hooked_tuner(tiny_llama(), args)
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        ids = torch.arange(1, 13)[None]
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == 2 * 3  # 2 layers x (R, W, b)
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name])


def test_loreft_stays_orthonormal_through_training_and_saves_only_its_weights(tmp_path):
    args = sft("--train_type", "reft", "--reft_rank", "2", "--reft_layers", "0")
    model = prepare_hooked_tuner(tiny_llama(), args)
    run(model, tmp_path, args, steps=3)
    rotation = model.get_submodule("model.layers.0.swift_tuner.projection").weight  # [hidden, rank]
    torch.testing.assert_close(rotation.T @ rotation, torch.eye(2), atol=1e-5, rtol=0)
    shapes = {name.split("swift_tuner.")[1]: tuple(t.shape) for name, t in own_tuners.tuner_state(model).items()}
    assert shapes == {"projection.parametrizations.weight.original": (32, 2), "source.weight": (2, 32),
                      "source.bias": (2,)}  # no [hidden, hidden] buffer beside the [hidden, rank] weight


def test_a_tuner_from_another_base_of_the_same_width_is_refused(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    model = prepare_hooked_tuner(tiny_llama(), sft("--train_type", "reft", "--reft_layers", "0"))
    own_tuners.save(model, tmp_path / "saved", base_model="tiny")
    deeper = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                          num_attention_heads=4, num_key_value_heads=2, vocab_size=96))
    with pytest.raises(ValueError, match=r"trained on tiny \(num_hidden_layers 2 vs 3\)"):
        own_tuners.load(deeper, tmp_path / "saved")


def test_load_best_model_at_end_restores_the_best_checkpoints_tuner(tmp_path):
    from safetensors.torch import load_file
    from swift_data.collator import Collator
    from transformers import Seq2SeqTrainingArguments

    from _tiny import samples
    from swift_train.trainer import SwiftTrainer

    args = sft("--train_type", "adapter")
    model = prepare_hooked_tuner(tiny_llama(), args)
    hf = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / "run"), use_cpu=True, report_to=[], remove_unused_columns=False,
        dataloader_pin_memory=False, max_steps=3, per_device_train_batch_size=2, learning_rate=3e-2,
        eval_strategy="steps", eval_steps=1, save_strategy="steps", save_steps=1, load_best_model_at_end=True,
        metric_for_best_model="loss", greater_is_better=False, logging_steps=1, disable_tqdm=True)
    data = samples([12, 9, 15, 11, 8, 14])
    trainer = SwiftTrainer(model=model, args=hf, train_dataset=data, eval_dataset=data[:2], data_collator=Collator(0),
                           swift_args=args)
    trainer.train()
    assert trainer.state.best_model_checkpoint is not None
    # Whichever step was best, going back to the first checkpoint must bring back exactly its tuner.
    first = str(tmp_path / "run" / "checkpoint-1")
    trainer.state.best_model_checkpoint = first
    trainer._load_best_model()
    saved = load_file(f"{first}/{own_tuners.WEIGHTS_FILE}")
    now = own_tuners.tuner_state(model)
    assert saved.keys() == now.keys() and all(torch.equal(saved[k], now[k]) for k in saved)
    assert not all(torch.equal(saved[k], v) for k, v in load_file(
        str(tmp_path / "run" / "checkpoint-3" / own_tuners.WEIGHTS_FILE)).items())  # step 3 had moved on
