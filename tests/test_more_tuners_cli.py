"""--train_type adapter, reft and longlora from the command line: trained, answered with --adapters (also
when served), resumed, merged where they can be, and refused where they cannot work."""

from __future__ import annotations

import json

import pytest
from swift_e2e import read_log, run_swift, tiny_sft


@pytest.fixture(scope="module")
def reft_run(tmp_path_factory, tiny_chat_model):
    out = tmp_path_factory.mktemp("reft") / "run"
    trained = run_swift(*tiny_sft(tiny_chat_model, out, "--max_steps", "2", "--save_steps", "1", "--train_type", "reft",
                                  "--reft_layers", "0", "--reft_rank", "2",
                                  "--gradient_checkpointing", "true"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    return out


def test_reft_trains_and_infer_answers_with_its_checkpoint(reft_run):
    assert [r["loss"] for r in read_log(reft_run) if "loss" in r]
    checkpoint = reft_run / "checkpoint-2"
    config = json.loads((checkpoint / "swift_tuner.json").read_text())
    assert config["kind"] == "reft" and config["modules"] == ["model.layers.0"]
    assert config["settings"] == {"intervention_type": "LoreftIntervention", "rank": 2, "reft_args": {}}
    answered = run_swift("infer", "--adapters", str(checkpoint), "--max_new_tokens", "3", input="hi\n")
    assert answered.returncode == 0, answered.stderr[-3000:]


def test_reft_resumes_its_run(reft_run, tmp_path, tiny_chat_model):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reft_run, run)
    shutil.rmtree(run / "checkpoint-2")
    resume = ("--resume_from_checkpoint", str(run / "checkpoint-1"))
    mismatched = run_swift(*tiny_sft(tiny_chat_model, run, "--max_steps", "2", "--train_type", "reft", *resume))
    assert mismatched.returncode == 2 and "resume with the arguments in its args.json" in mismatched.stderr
    resumed = run_swift(*tiny_sft(tiny_chat_model, run, "--max_steps", "2", "--train_type", "reft", *resume,
                                  "--reft_layers", "0", "--reft_rank", "2"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from checkpoint-1 at step 1" in resumed.stderr
    assert (run / "checkpoint-2" / "swift_tuner.safetensors").is_file()
    wrong = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "other", "--max_steps", "3", "--train_type", "adapter",
                                *resume))
    assert wrong.returncode == 2 and "holds a reft tuner; train on from it with --train_type reft" in wrong.stderr


def test_reft_cannot_be_merged(reft_run, tmp_path):
    for argv in (["merge-lora", "--output_dir", str(tmp_path / "merged")],
                 ["infer", "--merge_lora", "true", "--max_new_tokens", "2"]):
        refused = run_swift(*argv[:1], "--adapters", str(reft_run / "checkpoint-2"), *argv[1:], input="hi\n")
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert "a reft tuner adds modules that cannot be merged into the weights" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (tmp_path / "merged").exists() and not (reft_run / "checkpoint-2-merged").exists()


def test_adapter_trains_and_is_served_as_the_default_model(tmp_path, tiny_chat_model):
    from swift_args import ArgumentError, parse_args
    from swift_data.preprocess.conversation import Conversation
    from swift_infer.engines import GenerationSettings
    from swift_infer.infer import load_engine

    out = tmp_path / "run"
    trained = run_swift(*tiny_sft(tiny_chat_model, out, "--max_steps", "1", "--train_type", "adapter"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = out / "checkpoint-1"
    assert json.loads((checkpoint / "swift_tuner.json").read_text())["kind"] == "adapter"
    served = load_engine(parse_args("deploy", ["--adapters", str(checkpoint)]).args, serve=True)
    assert served.model.get_submodule("model.layers.0.mlp.swift_tuner") is not None
    try:
        conversation = Conversation(messages=[{"role": "user", "content": "hi"}])
        [answer] = served.complete([conversation], GenerationSettings(max_new_tokens=2))
        assert answer.finish_reason == "length" and len(answer.tokens) == 2
    finally:
        served.batcher.close()

    with pytest.raises(ArgumentError, match="cannot be chosen per request"):
        load_engine(parse_args("deploy", ["--adapters", f"mine={checkpoint}"]).args, serve=True)


@pytest.mark.parametrize("argv, said", [
    (["--reft_rank", "8"], "--reft_rank 8: these configure --train_type reft"),
    (["--train_type", "reft", "--reft_args", '{"rank": 2}'], "the interventions take dropout, act_fn, add_bias"),
    (["--train_type", "adapter", "--quant_method", "bnb", "--quant_bits", "4"], "not adapter or reft"),
    (["--train_type", "reft", "--num_labels", "2"], "--task_type seq_cls trains with --train_type lora or full"),
])
def test_what_the_hooked_tuners_cannot_do_is_refused_while_parsing(argv, said):
    from swift_args import ArgumentError, parse_args

    with pytest.raises(ArgumentError) as refused:
        parse_args("sft", ["--model", "no-such-model", "--dataset", "general-instructions#8", *argv])
    assert said in str(refused.value)


def test_reft_layers_outside_the_model_are_refused_before_loading(tmp_path, tiny_chat_model):
    result = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "run", "--train_type", "reft", "--reft_layers", "0", "7"))
    assert result.returncode == 2 and "--reft_layers 7: the model's decoder layers are 0 to 1" in result.stderr
    assert not (tmp_path / "run").exists()


def test_longlora_trains_a_plain_lora_adapter_that_merges(tmp_path, tiny_chat_model):
    out = tmp_path / "run"
    trained = run_swift(*tiny_sft(tiny_chat_model, out, "--max_steps", "2", "--train_type", "longlora",
                                  "--max_length", "64", "--rope_scaling", "linear"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert [r["loss"] for r in read_log(out) if "loss" in r]
    config = json.loads((out / "checkpoint-2" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    merged = run_swift("merge-lora", "--adapters", str(out / "checkpoint-2"), "--output_dir", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert "swift_s2attn" not in (tmp_path / "merged" / "config.json").read_text()  # inference: full attention


@pytest.mark.parametrize("argv, said", [
    (["--packing", "true"], "longlora's shifted groups would mix the samples of a packed row"),
    (["--attn_impl", "eager"], "longlora trains with its own shifted sparse attention"),
])
def test_longlora_refuses_what_its_attention_cannot_do(argv, said):
    from swift_args import ArgumentError, parse_args

    with pytest.raises(ArgumentError) as refused:
        parse_args("sft", ["--model", "no-such-model", "--dataset", "general-instructions#8", "--train_type", "longlora",
                           *argv])
    assert said in str(refused.value)


def test_qlora_trains_lora_on_a_4bit_base_and_infer_reloads_it_so(tmp_path, tiny_chat_model):
    """bitsandbytes 4-bit runs on CPU too: the base's linear layers are Linear4bit under the LoRA layers."""
    pytest.importorskip("bitsandbytes")
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit
    from swift_args import parse_args
    from swift_infer.loading import load_model

    from swift_train.tuners import prepare_lora

    quant = ("--quant_method", "bnb", "--quant_bits", "4", "--bnb_4bit_compute_dtype", "float32")
    args = parse_args("sft", ["--model", str(tiny_chat_model), "--dataset", "general-instructions#8", *quant]).args
    model = prepare_lora(load_model(args).model, args)
    wrapped = [m for m in model.modules() if isinstance(m, LoraLinear4bit)]
    assert len(wrapped) == 2 * 7  # every linear layer of both decoder layers: 4-bit base, LoRA on top
    assert {n.split(".")[-3] for n, p in model.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}
    out = tmp_path / "run"
    trained = run_swift(*tiny_sft(tiny_chat_model, out, "--max_steps", "2", *quant))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads((out / "args.json").read_text())["quant_method"] == "bnb"
    answered = run_swift("infer", "--adapters", str(out / "checkpoint-2"), "--max_new_tokens", "3", input="hi\n")
    assert answered.returncode == 0, answered.stderr[-3000:]


@pytest.mark.parametrize("argv, said", [
    (["--train_type", "reft", "--reft_layers", "0", "0"], "a layer is listed twice"),
    (["--train_type", "reft", "--reft_args", '{"dropout": 2}'], "dropout is a number in [0, 1)"),
    (["--galore_with_embedding", "true"], "configures GaLore; add --use_galore true"),
    (["--train_type", "adapter", "--deepspeed", "zero3"], "adapter and reft checkpoints are saved from the unsharded"),
    (["--adapters", "a", "b"], "training goes on from one adapter"),
])
def test_more_combinations_the_tuners_cannot_honour_are_refused_while_parsing(argv, said):
    from swift_args import ArgumentError, parse_args

    with pytest.raises(ArgumentError) as refused:
        parse_args("sft", ["--model", "no-such-model", "--dataset", "general-instructions#8", *argv])
    assert said in str(refused.value)


def test_training_on_from_an_adapter_of_another_tuner_is_refused_before_loading(reft_run, tmp_path, tiny_chat_model):
    result = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "run", "--adapters", str(reft_run / "checkpoint-2")))
    assert result.returncode == 2 and "holds a reft tuner; train on from it with --train_type reft" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
    bad_act = run_swift(*tiny_sft(tiny_chat_model, tmp_path / "act", "--train_type", "reft", "--reft_args",
                                  '{"act_fn": "nope"}'))
    assert bad_act.returncode == 2 and "act_fn nope is not an activation" in bad_act.stderr
    assert not (tmp_path / "act").exists()
