"""A Hugging Face model directory -> one .gguf file, the single-file format llama.cpp and Ollama run.

The file is written with gguf-py's GGUFWriter and follows what llama.cpp's convert_hf_to_gguf.py
writes for these architectures (tensor names, metadata keys, the q/k row order, the tokenizer
keys), so llama.cpp, Ollama and transformers' GGUF loader all read it.

Tensors are streamed: the file's header (every tensor's name, shape and type) is planned from
the safetensors headers alone, then each tensor is read, converted and written before the next
one is read, so memory holds one tensor at a time, never the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

GGUF_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")

# Hugging Face architecture -> GGUF architecture. llama.cpp has no Mistral (v0.x, Nemo) architecture
# of its own: it runs them as llama, ignoring the sliding window (as wide as their usual contexts).
ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}

# A byte-level tokenizer's split regex -> the name llama.cpp's `tokenizer.ggml.pre` gives it.
# llama.cpp does not read the regex from the file: it knows each pre-tokenizer by this name.
_SPLIT_REGEXES = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "llama-bpe",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "qwen2",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "tekken",
}
_ROPE_TYPES = ("default", "linear", "llama3")
_GGUF_EXTRA = "writing a GGUF file needs the gguf package: pip install 'swift-export[gguf]'"


def check_gguf_supported(model_dir: Path) -> None:
    """Raise ArgumentError (one line) if `model_dir` cannot be written as GGUF.

    Reads config.json and loads the tokenizer, no weights, so a command can call it before any work.
    """
    _checked(model_dir)


def write_gguf(model_dir: Path, out_file: Path, gguf_type: str, chat_template: str | None = None) -> None:
    """Write `model_dir` (config.json, *.safetensors, tokenizer.json) to the single file `out_file`.

    `gguf_type` is one of GGUF_TYPES: the type of the 2-D weights; 1-D tensors (norms, biases)
    stay f32, as llama.cpp keeps them. `chat_template` (Jinja) replaces the model's own (--template).
    """
    if gguf_type not in GGUF_TYPES:
        raise ArgumentError(f"GGUF type '{gguf_type}' is not one of: {', '.join(GGUF_TYPES)}")
    config, tokenizer, spec = _checked(model_dir)
    import gguf
    import numpy as np

    arch = ARCHITECTURES[config["architectures"][0]]
    plan = _plan_tensors(model_dir, config, arch, gguf_type)
    writer = gguf.GGUFWriter(out_file, arch)
    try:
        _add_model_metadata(writer, model_dir, config, gguf_type)
        _add_tokenizer(writer, model_dir, config, tokenizer, spec, chat_template)
        for tensor in plan:
            writer.add_tensor_info(tensor.name, tensor.byte_shape, np.uint8, math.prod(tensor.byte_shape),
                                   raw_dtype=tensor.qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor in plan:
            writer.write_tensor_data(gguf.quants.quantize(tensor.read(), tensor.qtype))
    finally:
        writer.close()


def _checked(model_dir: Path) -> tuple[dict, Any, dict]:
    """(config, tokenizer, the tokenizer's tokenizers-library serialization) of a model we can write."""
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise ArgumentError(_GGUF_EXTRA)
    config = _read_json(model_dir / "config.json")
    architecture = (config.get("architectures") or ["(none)"])[0]
    if architecture not in ARCHITECTURES:
        raise ArgumentError(f"{model_dir}: cannot convert architecture {architecture} to GGUF; supported: "
                            f"{', '.join(ARCHITECTURES)}")
    rope_type = _rope_scaling(config).get("rope_type", "default")
    if rope_type not in _ROPE_TYPES or (rope_type == "llama3" and ARCHITECTURES[architecture] != "llama"):
        raise ArgumentError(f"{model_dir}: cannot convert {architecture} with rope scaling '{rope_type}' to "
                            f"GGUF; supported: {', '.join(_ROPE_TYPES)}")
    tokenizer, spec = _load_tokenizer(model_dir)
    _pre_tokenizer_name(spec, model_dir)
    return config, tokenizer, spec


# -- tensors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlannedTensor:
    name: str  # the GGUF name
    byte_shape: tuple[int, ...]  # numpy order, bytes in the last dimension
    qtype: Any  # gguf.GGMLQuantizationType
    read: Callable[[], Any]  # -> float32 numpy array, rows already in GGUF order


def _plan_tensors(model_dir: Path, config: dict, arch: str, gguf_type: str) -> list[_PlannedTensor]:
    import gguf

    layers = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(_model_arch(arch), layers)
    tied = config.get("tie_word_embeddings", False)
    plan = []
    if arch == "llama" and (factors := _llama3_rope_factors(config)) is not None:
        # llama.cpp reads llama3 rope scaling as one divisor per rotary frequency, stored as a tensor.
        f32 = gguf.GGMLQuantizationType.F32
        plan.append(_planned("rope_freqs.weight", factors.shape, f32, lambda: factors))
    for shard, hf_names in _shards(model_dir):
        for hf_name, shape in hf_names:
            if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
                continue  # recomputed from the metadata; a tied output is the embedding itself
            name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise ArgumentError(f"{shard}: tensor {hf_name} has no GGUF name for architecture {arch}")
            transform = _permute_for_llama_rope(config, name) if arch == "llama" else None
            read = _reader(shard, hf_name, transform)
            plan.append(_planned(name, shape, _tensor_type(name, shape, gguf_type), read))
    return plan


def _planned(name: str, shape: tuple[int, ...], qtype: Any, read: Callable[[], Any]) -> _PlannedTensor:
    from gguf.quants import quant_shape_to_byte_shape

    return _PlannedTensor(name, quant_shape_to_byte_shape(shape, qtype), qtype, read)


def _tensor_type(name: str, shape: tuple[int, ...], gguf_type: str) -> Any:
    """llama.cpp's choice: 1-D tensors stay f32 (tiny, and precision-sensitive); quantized types
    need rows that are whole blocks, else f16; q4_0 keeps the embedding and output at q8_0, as
    llama-quantize keeps them above the rest (every token's logits go through the output)."""
    from gguf import GGML_QUANT_SIZES
    from gguf import GGMLQuantizationType as T

    if len(shape) == 1 or gguf_type == "f32":
        return T.F32
    wanted = {"f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q4_0": T.Q4_0}[gguf_type]
    if wanted == T.Q4_0 and name in ("token_embd.weight", "output.weight"):
        wanted = T.Q8_0
    return wanted if shape[-1] % GGML_QUANT_SIZES[wanted][0] == 0 else T.F16


def _reader(shard: Path, hf_name: str, transform: Callable[[Any], Any] | None) -> Callable[[], Any]:
    def read() -> Any:
        from safetensors import safe_open

        with safe_open(shard, framework="pt") as f:
            values = f.get_tensor(hf_name).float().numpy()
        return transform(values) if transform is not None else values

    return read


def _shards(model_dir: Path) -> list[tuple[Path, list[tuple[str, tuple[int, ...]]]]]:
    """Each safetensors file with its tensors' names and shapes, read from the headers only."""
    from safetensors import safe_open

    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(_read_json(index)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    shards = []
    for file in files:
        path = model_dir / file
        if not path.is_file():
            raise ArgumentError(f"{model_dir}: {file} is missing; GGUF export needs the weights as safetensors")
        with safe_open(path, framework="pt") as f:
            shards.append((path, [(name, tuple(f.get_slice(name).get_shape())) for name in f.keys()]))
    return shards


def _permute_for_llama_rope(config: dict, name: str) -> Callable[[Any], Any] | None:
    """Hugging Face rotates the two halves of each q/k head against each other ("rotate_half");
    llama.cpp's llama rotates adjacent pairs. Reordering each head's rows (and bias) from
    [x0..x(d/2-1), y0..] to [x0, y0, x1, y1, ...] makes the two compute the same thing; transformers'
    GGUF loader undoes exactly this reorder. Qwen2/3 use llama.cpp's rotate-half (NEOX) mode: no reorder.
    """
    heads = config["num_attention_heads"]
    if ".attn_q." in name:
        groups = heads
    elif ".attn_k." in name:
        groups = config.get("num_key_value_heads") or heads
    else:
        return None

    def permute(values: Any) -> Any:
        rows = values.shape[0]
        return (values.reshape(groups, 2, rows // groups // 2, *values.shape[1:])
                .swapaxes(1, 2).reshape(values.shape))

    return permute


# -- metadata --------------------------------------------------------------------------------------


def _add_model_metadata(writer: Any, model_dir: Path, config: dict, gguf_type: str) -> None:
    import gguf

    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_dir.resolve().name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    scaling = _rope_scaling(config)
    writer.add_rope_freq_base(float(scaling.get("rope_theta") or config.get("rope_theta") or 10000.0))
    if scaling.get("rope_type") == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-6))
    writer.add_vocab_size(config["vocab_size"])
    file_types = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0",
                  "q4_0": "MOSTLY_Q4_0"}
    writer.add_file_type(gguf.LlamaFileType[file_types[gguf_type]])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _rope_scaling(config: dict) -> dict:
    """The rope settings, from transformers 5's `rope_parameters` or the older `rope_scaling`."""
    scaling = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    if "type" in scaling:  # configs written before `rope_type`
        scaling.setdefault("rope_type", scaling.pop("type"))
    return scaling


def _llama3_rope_factors(config: dict) -> Any:
    """llama3 rope scaling as llama.cpp takes it: theta_i is divided by factor_i (the same formula
    as transformers' `_compute_llama3_parameters`), or None for any other rope."""
    import numpy as np

    scaling = _rope_scaling(config)
    if scaling.get("rope_type") != "llama3":
        return None
    base = float(scaling.get("rope_theta") or config.get("rope_theta") or 10000.0)
    dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    original = scaling["original_max_position_embeddings"]
    wavelengths = 2 * math.pi * base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    smooth = (original / wavelengths - low) / (high - low)
    factors = np.where(wavelengths < original / high, 1.0,
                       np.where(wavelengths > original / low, factor, 1 / ((1 - smooth) / factor + smooth)))
    return factors.astype(np.float32)


# -- tokenizer -------------------------------------------------------------------------------------


def _pre_tokenizer_name(spec: dict, model_dir: Path) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer; ArgumentError for a tokenizer we cannot write.

    Only byte-level BPE (GPT-2 style, as SmolLM2, Qwen2, Llama 3 and Mistral Nemo use) is written.
    """
    kind = spec.get("model", {}).get("type")
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    types = [step.get("type") for step in steps]
    name = None
    if kind == "BPE" and types == ["ByteLevel"] and steps[0].get("use_regex", True):
        name = "gpt-2"
    elif kind == "BPE" and types == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        name = "smollm"  # SmolLM's own tokenizer: single digits, then the GPT-2 split
    elif kind == "BPE" and types == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        name = _SPLIT_REGEXES.get(steps[0].get("pattern", {}).get("Regex"))
    normalizer = (spec.get("normalizer") or {}).get("type")
    byte_level = not steps[-1].get("add_prefix_space", False)
    if name is None or not byte_level or normalizer not in (None, "NFC"):
        steps_named = "+".join(map(str, types)) or "none"
        described = f"{kind} model, pre-tokenizer {steps_named}, normalizer {normalizer}"
        raise ArgumentError(f"{model_dir}: cannot write this tokenizer to GGUF ({described}); supported: "
                            "byte-level BPE tokenizers (GPT-2, SmolLM, Llama 3, Qwen2, Mistral tekken)")
    return name


def _load_tokenizer(model_dir: Path) -> tuple[Any, dict]:
    """The tokenizer transformers loads for this model, as training and inference use it, and its
    tokenizers-library serialization. That, not tokenizer.json, is the source: for some model types
    (Qwen2) transformers builds the pre-tokenizer itself, whatever tokenizer.json says."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for missing or broken files
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ArgumentError(f"{model_dir}: cannot load the tokenizer ({type(exc).__name__}: {first})") from None
    backend = getattr(tokenizer, "backend_tokenizer", None)  # none for mistral-common's tekken, for one
    return tokenizer, json.loads(backend.to_str()) if backend is not None else {}


def _add_tokenizer(writer: Any, model_dir: Path, config: dict, tokenizer: Any, spec: dict,
                   chat_template: str | None) -> None:
    from swift_data.models.detect import read_chat_template

    tokens, types = _vocabulary(spec, config["vocab_size"], model_dir)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer_name(spec, model_dir))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    merges = spec["model"].get("merges", [])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    # The special ids as transformers resolves them from tokenizer_config.json, config.json and the
    # post-processor (which, per model, hold them differently).
    for token_id, add in ((tokenizer.bos_token_id, writer.add_bos_token_id),
                          (tokenizer.eos_token_id, writer.add_eos_token_id),
                          (tokenizer.unk_token_id, writer.add_unk_token_id),
                          (tokenizer.pad_token_id, writer.add_pad_token_id)):
        if token_id is not None:
            add(token_id)
    add_bos, add_eos = special_tokens_added(tokenizer)
    # Written even when false: llama.cpp and Ollama add a bos to every prompt when the key is absent.
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(add_eos)
    if (template := chat_template or read_chat_template(model_dir)) is not None:
        writer.add_chat_template(template)


def special_tokens_added(tokenizer: Any) -> tuple[bool, bool]:
    """Whether encoding text with this (transformers) tokenizer adds its bos, and its eos: what the
    GGUF's add_bos/add_eos flags tell llama.cpp and Ollama to do to every prompt."""
    with_special = tokenizer("a")["input_ids"]
    if with_special == tokenizer("a", add_special_tokens=False)["input_ids"]:
        return False, False
    return with_special[:1] == [tokenizer.bos_token_id], with_special[-1:] == [tokenizer.eos_token_id]


def _vocabulary(spec: dict, vocab_size: int, model_dir: Path) -> tuple[list[str], list[int]]:
    """One token per embedding row, with llama.cpp's token types: added special tokens are
    control tokens (never produced from plain text), other added tokens user-defined."""
    from gguf import TokenType

    by_id = {index: (token, TokenType.NORMAL) for token, index in spec["model"]["vocab"].items()}
    for added in spec.get("added_tokens", []):
        kind = TokenType.CONTROL if added["special"] else TokenType.USER_DEFINED
        by_id[added["id"]] = (added["content"], kind)
    if max(by_id) >= vocab_size:
        raise ArgumentError(f"{model_dir}: the tokenizer has token id {max(by_id)}, beyond the model's "
                            f"vocab_size {vocab_size}")
    # Embedding rows no token uses (vocab_size is often padded) get placeholders, as llama.cpp writes them.
    rows = [by_id.get(index, (f"[PAD{index}]", TokenType.UNUSED)) for index in range(vocab_size)]
    return [token for token, _ in rows], [int(kind) for _, kind in rows]


# -- helpers ---------------------------------------------------------------------------------------


def _model_arch(arch: str) -> Any:
    import gguf

    return next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == arch)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArgumentError(f"{path.parent}: {path.name} is missing; GGUF export needs a Hugging Face model "
                            "directory") from None
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
