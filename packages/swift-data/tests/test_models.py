"""--model in every accepted form resolves to a directory transformers loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from swift_args import ArgumentError
from swift_args.checkpoint_files import write_marker
from transformers import AutoModelForCausalLM, AutoTokenizer

from swift_data.models import detect_model_info, latest_checkpoint, resolve_model_dir
from swift_data.models.builtin import find_builtin
from swift_data.models.gguf import COMPLETE_MARKER, ensure_converted


def write_chat_template(model_dir: Path, template: str) -> None:
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))


@pytest.mark.slow
def test_builtin_alias_is_a_chat_model_that_answers(smollm2_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.slow
def test_builtin_alias_detects_type_and_template(smollm2_dir: Path) -> None:
    info = detect_model_info(smollm2_dir)
    assert (info.model_type, info.template, info.architectures) == ("llama", "chatml", ("LlamaForCausalLM",))
    assert (info.torch_dtype, info.max_model_len, info.has_chat_template) == ("bfloat16", 8192, True)
    assert json.loads((smollm2_dir / COMPLETE_MARKER).read_text())["gguf_file"].endswith(".gguf")


@pytest.mark.slow
def test_alias_is_case_insensitive_and_cached(smollm2_dir: Path) -> None:
    assert resolve_model_dir("smollm2-135m-instruct") == smollm2_dir


@pytest.mark.slow
def test_a_local_gguf_file_is_converted_the_same_way(smollm2_dir: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "copy.gguf"
    shutil.copy(find_builtin("SmolLM2-135M-Instruct").locate(), gguf)
    # Same content, same cache entry: the key is the file's hash, not its path.
    assert resolve_model_dir(str(gguf)).name.split("-")[-1] == smollm2_dir.name.split("-")[-1]


def test_incomplete_conversion_is_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWIFT_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"not a gguf file")
    with pytest.raises(Exception):
        ensure_converted(gguf)
    leftovers = list((tmp_path / "cache" / "gguf").iterdir())
    assert leftovers == []  # the temporary directory was removed, nothing looks usable


def test_local_directory(tiny_model_dir: Path) -> None:
    assert resolve_model_dir(str(tiny_model_dir)) == tiny_model_dir
    info = detect_model_info(tiny_model_dir)
    assert (info.model_type, info.template, info.has_chat_template) == ("llama", "default", False)


def test_run_directory_resolves_to_its_latest_complete_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    for step in (5, 10):
        shutil.copytree(tiny_model_dir, run / f"checkpoint-{step}")
    (run / "checkpoint-15").mkdir()  # being written: no weights yet
    (run / "args.json").write_text("{}")
    assert latest_checkpoint(run) == run / "checkpoint-10"
    assert resolve_model_dir(str(run)) == run / "checkpoint-10"


def test_a_damaged_full_checkpoint_is_named_and_its_run_falls_back(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    for step in (5, 10):
        shutil.copytree(tiny_model_dir, run / f"checkpoint-{step}")
        (run / f"checkpoint-{step}" / "optimizer.pt").write_bytes(b"\x01" * 8)
        write_marker(run / f"checkpoint-{step}", step)
    (run / "checkpoint-5" / "optimizer.pt").write_bytes(b"")  # inference does not read it
    weights = run / "checkpoint-10" / "model.safetensors"
    weights.write_bytes(b"\xff" * weights.stat().st_size)
    assert resolve_model_dir(str(run)) == run / "checkpoint-5"
    assert capsys.readouterr().err == ("swift: skipping checkpoint-10: checkpoint-10/model.safetensors is damaged: its "
                                       "content differs from when it was saved (checksum); using checkpoint-5\n")
    with pytest.raises(ArgumentError) as info:
        resolve_model_dir(str(run / "checkpoint-10"))
    assert info.value.problems == [
        f"--model {run / 'checkpoint-10'}: checkpoint-10/model.safetensors is damaged: its content differs from when "
        f"it was saved (checksum); use the previous whole checkpoint: --model {run / 'checkpoint-5'}"
    ]


def test_adapter_directory_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ArgumentError) as info:
        resolve_model_dir(str(tmp_path))
    assert info.value.problems == [
        f"--model {tmp_path} is an adapter, not a model: pass it as --adapters {tmp_path} "
        "(the base model is read from its args.json)"
    ]


def test_missing_path_and_non_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="no such file or directory, and not a hub id"):
        resolve_model_dir(str(tmp_path / "nope"))
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"")
    with pytest.raises(ArgumentError, match="is a file but not a .gguf"):
        resolve_model_dir(str(weights))


def test_hugging_face_hub_offline_says_so() -> None:
    with pytest.raises(ArgumentError) as info:
        resolve_model_dir("Qwen/Qwen2.5-0.5B-Instruct", use_hf=True)
    message = info.value.problems[0]
    assert message.startswith("cannot download model 'Qwen/Qwen2.5-0.5B-Instruct': the Hugging Face hub is unreachable")
    assert "--model /path/to/model" in message


@pytest.mark.slow
def test_modelscope_offline_says_so() -> None:
    with pytest.raises(ArgumentError) as info:
        resolve_model_dir("MS::Qwen/Qwen2.5-0.5B-Instruct")
    assert info.value.problems[0].startswith("cannot download model 'Qwen/Qwen2.5-0.5B-Instruct': ModelScope is unreachable")


@pytest.mark.parametrize(
    "chat_template,config_type,expected",
    [
        ("{{'<|im_start|>' + m['role']}}", "llama", "chatml"),
        ("{{'<|im_start|>' + m['role']}}", "qwen2", "qwen2_5"),
        ("{{'<|start_header_id|>' + m['role'] + '<|end_header_id|>'}}", "llama", "llama3"),
        ("{{'<start_of_turn>' + role}}", "gemma2", "gemma"),
        ("{{'[INST] ' + m['content'] + ' [/INST]'}}", "mistral", "mistral"),
    ],
)
def test_template_detected_from_the_chat_template(tiny_model_dir: Path, chat_template: str, config_type: str, expected: str) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["model_type"] = config_type
    (tiny_model_dir / "config.json").write_text(json.dumps(config))
    write_chat_template(tiny_model_dir, chat_template)
    assert detect_model_info(tiny_model_dir).template == expected


def test_overrides_win_and_unknown_template_is_refused(tiny_model_dir: Path) -> None:
    info = detect_model_info(tiny_model_dir, model_type="my_type", template="llama3")
    assert (info.model_type, info.template) == ("my_type", "llama3")
    with pytest.raises(ArgumentError, match="unknown template 'llama9'; valid templates are: chatml, qwen2_5"):
        detect_model_info(tiny_model_dir, template="llama9")
