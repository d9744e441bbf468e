"""swift_export.gguf_file: a Hugging Face directory -> one .gguf file, checked by reading the file back with
transformers' GGUF loader (written independently, after llama.cpp's converter) and its header reader."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from swift_args import ArgumentError

from swift_export.gguf_file import GGUF_TYPES, check_gguf_supported, write_gguf

ROUNDED = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
CHAT = [{"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3 + 3?"}]


@pytest.fixture(scope="session")
def gguf_file(tmp_path_factory: pytest.TempPathFactory, tiny_model: Callable[[str], Path]) -> Callable[..., Path]:
    """`gguf_file(kind, type)`: the tiny model written as GGUF, alone in its directory, so whatever
    transformers reads back (config, tokenizer, weights) comes from the file."""
    written: dict[tuple[str, str], Path] = {}

    def get(kind: str, gguf_type: str) -> Path:
        if (kind, gguf_type) not in written:
            path = tmp_path_factory.mktemp(f"gguf-{kind}-{gguf_type}") / "model.gguf"
            write_gguf(tiny_model(kind), path, gguf_type)
            written[kind, gguf_type] = path
        return written[kind, gguf_type]

    return get


def test_a_chosen_template_is_the_ggufs_chat_template(tmp_path: Path, tiny_model: Callable[[str], Path]) -> None:
    """--template: llama.cpp reads the GGUF's chat template, so the chosen one goes there (Ollama's is the
    Modelfile's)."""
    from swift_data.templates.builtin import BUILTIN_TEMPLATES
    from transformers import AutoTokenizer

    write_gguf(tiny_model("llama"), tmp_path / "model.gguf", "f16", chat_template=BUILTIN_TEMPLATES["mistral"])
    assert AutoTokenizer.from_pretrained(tmp_path, gguf_file="model.gguf").chat_template == BUILTIN_TEMPLATES["mistral"]


def load_gguf_model(path: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()


def rounded_reference(model_dir: Path, gguf_type: str) -> torch.nn.Module:
    """The Hugging Face model with every 2-D weight rounded to `gguf_type`, as the file stores it (1-D
    tensors, norms and biases, are f32 in the file, so they keep their values)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.copy_(parameter.to(ROUNDED[gguf_type]).float())
    return model


def greedy(model: torch.nn.Module, ids: torch.Tensor) -> list[int]:
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=20, min_new_tokens=20, do_sample=False)
    return out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize(("kind", "gguf_type", "loaded_class"), [
    ("llama", "f32", "LlamaForCausalLM"),
    ("llama", "f16", "LlamaForCausalLM"),
    ("llama", "bf16", "LlamaForCausalLM"),
    ("qwen2", "bf16", "Qwen2ForCausalLM"),
    ("qwen3", "f16", "Qwen3ForCausalLM"),
    ("mistral", "f16", "LlamaForCausalLM"),  # llama.cpp's llama architecture, as llama.cpp writes Mistral
])
def test_model_round_trips_exactly(gguf_file: Callable[..., Path], tiny_model: Callable[[str], Path], kind: str,
                                   gguf_type: str, loaded_class: str) -> None:
    """Tolerance zero: the loaded model must give bit-identical logits and the same 20 greedy tokens as the
    Hugging Face model whose 2-D weights are rounded to the file's type, since it then holds the same
    numbers and runs the same code. That also pins the llama q/k row permutation (undone by the loader)
    and the tied/untied output."""
    from transformers import AutoTokenizer

    path = gguf_file(kind, gguf_type)
    loaded = load_gguf_model(path)
    reference = rounded_reference(tiny_model(kind), gguf_type)
    assert type(loaded).__name__ == loaded_class
    tokenizer = AutoTokenizer.from_pretrained(tiny_model(kind))
    ids = tokenizer.apply_chat_template(CHAT, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)["input_ids"]
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, reference(ids).logits)
    assert greedy(loaded, ids) == greedy(reference, ids)


def test_tokenizer_and_chat_template_round_trip(gguf_file: Callable[..., Path],
                                                tiny_model: Callable[[str], Path]) -> None:
    from transformers import AutoTokenizer

    path = gguf_file("llama", "f16")
    ours = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    theirs = AutoTokenizer.from_pretrained(tiny_model("llama"))
    texts = ["Hello world, 12345 apples!", "  two spaces\n\n\ttab, ünïcödé, 日本語, emoji 🦙",
             "def f(x):\n    return {'a': x}  # code", "<|im_start|>user\nHi<|im_end|>\n<file_sep>x<|endoftext|>"]
    for text in texts:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text
        assert ours.decode(ours(text)["input_ids"]) == theirs.decode(theirs(text)["input_ids"])
    assert ours.chat_template == theirs.chat_template
    rendered = theirs.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert ours.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == rendered
    assert ours(rendered)["input_ids"] == theirs(rendered)["input_ids"]
    assert theirs(rendered)["input_ids"].count(theirs.convert_tokens_to_ids("<|im_start|>")) == 5  # kept whole
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        assert getattr(ours, name) == getattr(theirs, name), name


def test_add_bos_flag_round_trips(tmp_path: Path, tiny_model: Callable[[str], Path],
                                  prepend_bos: Callable[[Path], None]) -> None:
    """A tokenizer whose post-processor prepends the bos (as Llama 3's does): the file says so, and
    llama.cpp, Ollama and transformers then add it to every prompt."""
    from transformers import AutoTokenizer

    model_dir = tmp_path / "bos-model"
    shutil.copytree(tiny_model("llama"), model_dir)
    prepend_bos(model_dir)
    write_gguf(model_dir, tmp_path / "model.gguf", "f16")
    assert read_gguf(tmp_path / "model.gguf")[0]["tokenizer.ggml.add_bos_token"] is True
    ours = AutoTokenizer.from_pretrained(tmp_path, gguf_file="model.gguf")
    theirs = AutoTokenizer.from_pretrained(model_dir)
    plain = theirs("Hi", add_special_tokens=False)["input_ids"]
    assert ours("Hi")["input_ids"] == theirs("Hi")["input_ids"] == [1, *plain]


def test_split_pre_tokenizer_is_named_for_llama_cpp(gguf_file: Callable[..., Path],
                                                    tiny_model: Callable[[str], Path]) -> None:
    """For a Qwen2 model transformers splits text with Qwen2's regex, whatever tokenizer.json says: the file
    names that split "qwen2", which llama.cpp and transformers' GGUF reader both turn back into the regex."""
    from transformers import AutoTokenizer

    path = gguf_file("qwen2", "bf16")
    assert read_gguf(path)[0]["tokenizer.ggml.pre"] == "qwen2"
    ours, theirs = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name), AutoTokenizer.from_pretrained(
        tiny_model("qwen2"))
    gpt2_split = AutoTokenizer.from_pretrained(tiny_model("llama"))  # the same vocabulary, GPT-2's split
    text = "x\n\n  y\n  indented\n    code"  # line breaks and indents are where the two splits differ
    assert ours(text)["input_ids"] == theirs(text)["input_ids"] != gpt2_split(text)["input_ids"]


def read_gguf(path: Path) -> tuple[dict, dict]:
    """(metadata, {name: (ggml type, values as float32 numpy)}), through transformers' GGUF reader (gguf-py's
    own takes seconds per file on a 49k-token vocabulary); string arrays are left as their lengths."""
    from gguf.quants import dequantize
    from transformers.integrations.gguf.reader import GgufHeader, load_gguf_state_dict, read_gguf_metadata

    header = GgufHeader.from_file(str(path))
    raw = load_gguf_state_dict(header)
    tensors = {}
    for info in header.tensors:
        values = dequantize(raw[info.name][...].view(torch.uint8).numpy(), info.ggml_type)
        tensors[info.name] = (info.ggml_type, values.reshape(info.shape))
    return read_gguf_metadata(str(path))[0], tensors


def test_metadata(gguf_file: Callable[..., Path]) -> None:
    from gguf import LlamaFileType, TokenType

    fields, tied = read_gguf(gguf_file("llama", "f16"))
    assert fields["general.architecture"] == "llama"
    assert fields["general.file_type"] == LlamaFileType.MOSTLY_F16
    assert (fields["llama.context_length"], fields["llama.embedding_length"], fields["llama.block_count"],
            fields["llama.feed_forward_length"], fields["llama.attention.head_count"],
            fields["llama.attention.head_count_kv"], fields["llama.vocab_size"]) == (1024, 64, 2, 128, 4, 2,
                                                                                     49152)
    assert fields["llama.rope.freq_base"] == 10000.0
    assert fields["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-6)
    assert (fields["tokenizer.ggml.model"], fields["tokenizer.ggml.pre"]) == ("gpt2", "gpt-2")
    assert (fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.merges"]) == (49152, 48900)  # counts
    assert (fields["tokenizer.ggml.bos_token_id"], fields["tokenizer.ggml.eos_token_id"],
            fields["tokenizer.ggml.padding_token_id"], fields["tokenizer.ggml.unknown_token_id"]) == (1, 2, 2, 0)
    assert fields["tokenizer.ggml.add_bos_token"] is False  # SmolLM2's chat template writes no bos
    types = fields["tokenizer.ggml.token_type"]
    # SmolLM2's 17 added tokens, all special
    assert types[:17] == [TokenType.CONTROL] * 17 and set(types[17:]) == {TokenType.NORMAL}
    untied = read_gguf(gguf_file("qwen2", "bf16"))[1]
    assert "output.weight" not in tied and "output.weight" in untied and "blk.1.attn_q.bias" in untied


@pytest.mark.parametrize("gguf_type", GGUF_TYPES)
def test_tensor_types_and_values(tmp_path: Path, tiny_model: Callable[[str], Path], gguf_type: str) -> None:
    """2-D weights in the asked type (q4_0 keeps the embedding at q8_0), 1-D ones in f32; dequantized, a
    weight is within its type's rounding of the original (relative error bounds: f32 exact, f16/bf16 by
    their mantissas, q8_0 8 bits per 32-value block, q4_0 4 bits)."""
    from gguf import GGMLQuantizationType as T
    from safetensors.torch import load_file

    write_gguf(tiny_model("qwen2"), tmp_path / "model.gguf", gguf_type)
    tensors = read_gguf(tmp_path / "model.gguf")[1]
    wanted = {"f32": T.F32, "f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q4_0": T.Q4_0}[gguf_type]
    assert tensors["blk.0.ffn_down.weight"][0] == wanted
    assert tensors["token_embd.weight"][0] == (T.Q8_0 if gguf_type == "q4_0" else wanted)
    assert tensors["blk.0.attn_norm.weight"][0] == tensors["blk.0.attn_q.bias"][0] == T.F32
    original = load_file(tiny_model("qwen2") / "model.safetensors")["model.layers.0.mlp.down_proj.weight"]
    values = torch.from_numpy(tensors["blk.0.ffn_down.weight"][1])
    error = ((values - original).norm() / original.norm()).item()
    assert error <= {"f32": 0.0, "f16": 1e-3, "bf16": 5e-3, "q8_0": 1e-2, "q4_0": 0.15}[gguf_type]


def test_llama3_rope_scaling_as_llama_cpp_frequency_factors(tmp_path: Path,
                                                            tiny_model: Callable[[str], Path]) -> None:
    """llama.cpp divides each rotary frequency by `rope_freqs`; the result must be transformers' llama3 rope."""
    from transformers import AutoConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    model_dir = tmp_path / "llama3"
    shutil.copytree(tiny_model("llama"), model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 64}
    (model_dir / "config.json").write_text(json.dumps(config))
    write_gguf(model_dir, tmp_path / "model.gguf", "f16")
    factors = read_gguf(tmp_path / "model.gguf")[1]["rope_freqs.weight"][1]
    head_dim = 64 // 4
    plain = 1.0 / (500000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](AutoConfig.from_pretrained(model_dir), "cpu")
    assert 1.0 < factors.max() and factors.min() == 1.0  # this short original context scales some, not all
    assert torch.allclose(plain / torch.from_numpy(factors.astype("float64")), scaled.double(), rtol=1e-5)


def test_unsupported_architecture_stops_before_writing(tmp_path: Path, tiny_model: Callable[[str], Path]) -> None:
    model_dir = tmp_path / "gpt2"
    shutil.copytree(tiny_model("llama"), model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(ArgumentError) as error:
        check_gguf_supported(model_dir)
    message = str(error.value)
    assert "\n" not in message and "GPT2LMHeadModel" in message and "LlamaForCausalLM" in message
    with pytest.raises(ArgumentError, match="GPT2LMHeadModel"):
        write_gguf(model_dir, tmp_path / "model.gguf", "f16")
    assert not (tmp_path / "model.gguf").exists()


def test_unsupported_tokenizer_stops_before_writing(tmp_path: Path, tiny_model: Callable[[str], Path]) -> None:
    """A sentencepiece-style tokenizer (Metaspace, as Llama 2 and Mistral 7B's) is not one we write."""
    model_dir = tmp_path / "metaspace"
    shutil.copytree(tiny_model("llama"), model_dir)
    spec = json.loads((model_dir / "tokenizer.json").read_text())
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                             "split": False}
    (model_dir / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ArgumentError) as error:
        check_gguf_supported(model_dir)
    assert "\n" not in str(error.value) and "Metaspace" in str(error.value)
    with pytest.raises(ArgumentError):
        write_gguf(model_dir, tmp_path / "model.gguf", "q8_0")
    assert not (tmp_path / "model.gguf").exists()


@pytest.mark.slow
def test_q8_0_smollm2_answers_like_the_original(tmp_path: Path, smollm2_dir: Path) -> None:
    """q8_0 on the real SmolLM2-135M, greedy, through its chat template. Measured: the France and 2 + 3 answers
    are token for token the same; the colours answer diverges at token 5 (a list instead of a sentence);
    teacher-forced on the original's answers the top-1 token agrees at 92-100% of positions; the largest
    logit difference over prompt and answer is 1.37 (the logits span about -32 to +40)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    write_gguf(smollm2_dir, tmp_path / "model.gguf", "q8_0")
    quantized = load_gguf_model(tmp_path / "model.gguf")
    original = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    for question, answer in (("What is the capital of France?", "Paris"), ("What is 2 + 3?", "5"),
                             ("Name three primary colors.", "Blue")):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            ours = quantized.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1]:]
            theirs = original.generate(ids, max_new_tokens=24, do_sample=False)
            forced_ours, forced_theirs = quantized(theirs).logits[0], original(theirs).logits[0]
        assert answer in tokenizer.decode(ours), tokenizer.decode(ours)
        answer_logits = slice(ids.shape[1] - 1, -1)
        top1_ours, top1_theirs = forced_ours[answer_logits].argmax(-1), forced_theirs[answer_logits].argmax(-1)
        agreement = (top1_ours == top1_theirs).float().mean()
        assert agreement >= 0.85, (question, agreement)
        assert (forced_ours - forced_theirs).abs().max() < 2.5, question
