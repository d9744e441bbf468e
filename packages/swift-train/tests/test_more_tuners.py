"""AdaLoRA, VeRA, BOFT, FourierFT, LoRA-GA, LLaMA-Pro, LISA and GaLore on a tiny Llama: what trains, what
the optimizer is, what is saved, and that a saved result reloads to the same outputs."""

from __future__ import annotations

import json

import pytest
import torch
from _tiny import samples, sft, tiny_llama
from swift_data.collator import Collator
from transformers import AutoModelForCausalLM, Seq2SeqTrainingArguments

from swift_train.trainer import SwiftTrainer
from swift_train.tuners import prepare_lora, prepare_peft_tuner
from swift_train.tuners.layers import decoder_layers
from swift_train.tuners.llamapro import NEW_LAYERS, prepare_llamapro


def trainable(model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def run(model, tmp_path, swift_args, steps: int = 3, callbacks=(), resume: str | None = None, **hf):
    """Train `model` for `steps` optimizer steps on tiny random samples; returns the trainer."""
    args = Seq2SeqTrainingArguments(**{
        "output_dir": str(tmp_path / "run"), "use_cpu": True, "report_to": [], "remove_unused_columns": False,
        "dataloader_pin_memory": False, "max_steps": steps, "per_device_train_batch_size": 2, "learning_rate": 1e-2,
        "save_strategy": "no", "logging_steps": 1, "disable_tqdm": True, **hf})
    data = samples([12, 9, 15, 11, 8, 14] * 2)
    trainer = SwiftTrainer(model=model, args=args, train_dataset=data, data_collator=Collator(0),
                           swift_args=swift_args)
    for callback in callbacks:
        trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def logits(model, ids=None) -> torch.Tensor:
    ids = torch.arange(1, 17)[None] if ids is None else ids
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


# --- peft tuners ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, peft_type, own", [
    (["--train_type", "vera", "--vera_rank", "16", "--vera_d_initial", "0.2", "--vera_dropout", "0.1"], "VERA",
     {"r": 16, "d_initial": 0.2, "vera_dropout": 0.1, "save_projection": True}),
    (["--train_type", "boft", "--boft_block_size", "8", "--boft_dropout", "0.1"], "BOFT",
     {"boft_block_size": 8, "boft_block_num": 0, "boft_dropout": 0.1}),
    (["--train_type", "boft", "--boft_block_num", "4"], "BOFT", {"boft_block_size": 0, "boft_block_num": 4}),
    (["--train_type", "fourierft", "--fourier_n_frequency", "64", "--fourier_scaling", "100"], "FOURIERFT",
     {"n_frequency": 64, "scaling": 100.0}),
])
def test_peft_tuner_trains_only_its_weights_saves_its_config_and_merges_exactly(tmp_path, argv, peft_type, own):
    args = sft(*argv, "--target_modules", "q_proj,v_proj")
    model = prepare_peft_tuner(tiny_llama(), args)
    names = trainable(model)
    assert names and all(".q_proj." in n or ".v_proj." in n for n in names)  # only the targeted modules' tuner
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    run(model, tmp_path, args)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)  # it learned
    model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["peft_type"] == peft_type and set(saved["target_modules"]) == {"q_proj", "v_proj"}
    assert {k: saved[k] for k in own} == own
    trained = logits(model)
    from peft import PeftModel

    reloaded = PeftModel.from_pretrained(tiny_llama(), tmp_path / "adapter")  # the same seed: the same base
    torch.testing.assert_close(logits(reloaded), trained)
    torch.testing.assert_close(logits(reloaded.merge_and_unload()), trained, atol=1e-4, rtol=1e-4)


def test_adalora_prunes_to_its_target_rank_and_adds_the_orthogonality_penalty(tmp_path):
    from swift_train.tuners.peft_tuners import adalora_schedule, orthogonal_regularisation

    args = sft("--train_type", "adalora", "--adalora_init_r", "6", "--adalora_target_r", "2", "--adalora_tinit", "1",
               "--adalora_tfinal", "1", "--adalora_deltaT", "1", "--target_modules", "q_proj,v_proj",
               "--adalora_orth_reg_weight", "0.3")
    model = prepare_peft_tuner(tiny_llama(), args)
    assert {n.rsplit(".", 2)[-2] for n in trainable(model)} == {"lora_A", "lora_B", "lora_E"}
    assert float(orthogonal_regularisation(model)) > 0
    run(model, tmp_path, args, steps=6, callbacks=[adalora_schedule()])
    config = model.peft_config["default"]
    assert config.total_step == 6 and config.orth_reg_weight == 0.3
    kept = sum(sum(mask) for mask in config.rank_pattern.values())  # the final allocation, saved with the adapter
    assert kept == 2 * len(config.rank_pattern) == 2 * 4  # target_r per module on average: 4 modules x 2


# --- LoRA-GA, and the adapters that move the base weights ------------------------------------------------

@pytest.mark.parametrize("init", ["lora-ga", "pissa", "olora"])
def test_an_adapter_whose_init_moves_the_base_is_saved_for_the_original_model(tmp_path, init):
    args = sft("--init_weights", init, "--lora_ga_iters", "2", "--lora_ga_batch_size", "2", "--lora_rank", "4",
               "--lora_dropout", "0", "--output_dir", str(tmp_path / "run"))
    base = logits(tiny_llama())
    model = prepare_lora(tiny_llama(), args, samples([12, 9, 15, 11]))
    torch.testing.assert_close(logits(model), base, atol=1e-4, rtol=1e-4)  # starts as the original model
    assert (tmp_path / "run" / "initial_adapter" / "adapter_config.json").is_file()
    trainer = run(model, tmp_path, args)
    trainer._save(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "adapter_config.json").read_text())
    assert saved["init_lora_weights"] is True and saved["r"] == 8  # a plain LoRA of twice the rank
    from peft import PeftModel

    reloaded = PeftModel.from_pretrained(tiny_llama(), tmp_path / "saved")  # on the untouched base
    torch.testing.assert_close(logits(reloaded), logits(model), atol=1e-4, rtol=1e-4)


def test_lora_ga_initialises_from_the_gradient(tmp_path):
    args = sft("--init_weights", "lora-ga", "--lora_rank", "4", "--target_modules", "q_proj", "--output_dir", str(tmp_path))
    plain = prepare_lora(tiny_llama(), sft("--lora_rank", "4", "--target_modules", "q_proj"))
    ga = prepare_lora(tiny_llama(), args, samples([12, 9, 15, 11]))
    b = {n: p for n, p in ga.named_parameters() if "lora_B" in n}
    assert all(p.abs().sum() > 0 for p in b.values())  # plain LoRA starts with B = 0
    assert all(p.abs().sum() == 0 for n, p in plain.named_parameters() if "lora_B" in n)
    assert ga.peft_config["default"].lora_ga_config.direction == "ArB2r"


# --- LLaMA-Pro --------------------------------------------------------------------------------------------

def test_llamapro_grows_identity_blocks_and_trains_only_them(tmp_path):
    args = sft("--train_type", "llamapro", "--llamapro_num_new_blocks", "2", "--llamapro_num_groups", "2")
    model = tiny_llama()  # 2 layers -> 4: a new block after each
    before = logits(model)
    model = prepare_llamapro(model, args)
    assert len(decoder_layers(model)) == 4 and model.config.num_hidden_layers == 4
    assert getattr(model.config, NEW_LAYERS) == [1, 3]
    torch.testing.assert_close(logits(model), before)  # identity blocks: the same function
    assert {n.split(".")[2] for n in trainable(model)} == {"1", "3"}
    old = {n: p.detach().clone() for n, p in model.named_parameters()}
    run(model, tmp_path, args)
    changed = {n.split(".")[2] for n, p in model.named_parameters() if not torch.equal(old[n], p)}
    assert changed == {"1", "3"}
    model.save_pretrained(tmp_path / "grown")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "grown")
    assert reloaded.config.num_hidden_layers == 4 and getattr(reloaded.config, NEW_LAYERS) == [1, 3]
    torch.testing.assert_close(logits(reloaded), logits(model))
    again = prepare_llamapro(reloaded, args)  # training on a grown checkpoint does not grow it again
    assert len(decoder_layers(again)) == 4 and {n.split(".")[2] for n in trainable(again)} == {"1", "3"}


# --- LISA -------------------------------------------------------------------------------------------------

def test_lisa_trains_the_embeddings_and_only_the_active_layers(tmp_path):
    from swift_train.tuners import prepare_full
    from swift_train.tuners.lisa import LisaSwitcher

    torch.manual_seed(0)
    args = sft("--train_type", "full", "--lisa_activated_layers", "1", "--lisa_step_interval", "5")
    model = prepare_full(tiny_llama(), args)
    old = {n: p.detach().clone() for n, p in model.named_parameters()}
    switcher = LisaSwitcher(model, 1, 5, seed=3)
    trainer = run(model, tmp_path, args, steps=2, callbacks=[switcher])
    changed = {n for n, p in model.named_parameters() if not torch.equal(old[n], p)}
    layers = {n.split(".")[2] for n in changed if n.startswith("model.layers.")}
    assert layers == {str(i) for i in switcher.chosen} and len(layers) == 1
    assert "model.embed_tokens.weight" in changed
    states = trainer.optimizer.state
    assert sum(1 for p in model.model.layers[1 - switcher.chosen[0]].parameters() if p in states) == 0


# --- GaLore ----------------------------------------------------------------------------------------------

def test_galore_projects_the_attention_and_mlp_gradients(tmp_path):
    pytest.importorskip("galore_torch")
    from galore_torch import GaLoreAdamW

    from swift_train.training_args import galore_settings

    args = sft("--train_type", "full", "--use_galore", "true", "--galore_rank", "4", "--galore_update_proj_gap", "2",
               "--galore_scale", "0.5")
    model = tiny_llama()
    trainer = run(model, tmp_path, args, steps=2, **galore_settings(args))
    optimizer = trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer
    assert isinstance(optimizer, GaLoreAdamW)
    projected = [g for g in optimizer.param_groups if "rank" in g]
    assert len(projected) == 1 and (projected[0]["rank"], projected[0]["update_proj_gap"], projected[0]["scale"]) == (
        4, 2, 0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    targets = {names[id(p)] for p in projected[0]["params"]}
    assert targets and all(".self_attn." in n or ".mlp." in n for n in targets)
    assert all("projector" in optimizer.state[p] for p in projected[0]["params"])  # low-rank state, not full Adam


def test_lisa_tells_ddp_that_frozen_layers_have_no_gradient(tmp_path):
    """Under DDP a layer LISA froze gets no gradient; DDP must be told to expect that."""
    from swift_train.training_args import hf_training_args

    lisa = hf_training_args(sft("--train_type", "full", "--lisa_activated_layers", "1"), tmp_path, torch.float32, False)
    plain = hf_training_args(sft("--train_type", "full"), tmp_path, torch.float32, False)
    assert lisa.ddp_find_unused_parameters is True and plain.ddp_find_unused_parameters is None


def test_galore_with_embedding_projects_the_embedding_gradients_too(tmp_path):
    pytest.importorskip("galore_torch")
    from swift_train.training_args import galore_settings

    args = sft("--train_type", "full", "--use_galore", "true", "--galore_rank", "4", "--galore_with_embedding", "true")
    model = tiny_llama(tied=False)
    trainer = run(model, tmp_path, args, steps=2, **galore_settings(args))
    optimizer = trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer
    [projected] = [g for g in optimizer.param_groups if "rank" in g]
    names = {id(p): n for n, p in model.named_parameters()}
    targets = {names[id(p)] for p in projected["params"]}
    assert "model.embed_tokens.weight" in targets and "lm_head.weight" not in targets
    assert "projector" in optimizer.state[model.model.embed_tokens.weight]
    plain = [g for g in optimizer.param_groups if "rank" not in g]
    assert all(id(p) != id(model.model.embed_tokens.weight) for g in plain for p in g["params"])
