"""Packed batches are contamination-free: the packed loss equals the sum of the unpacked losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from swift_data.collator import Collator
from swift_data.packing import pack_bins, pack_dataset
from swift_data.templates.encode import IGNORE


def random_samples(count: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        n = int(rng.integers(5, 40))
        ids = rng.integers(0, 128, n)
        labels = ids.copy()
        labels[: int(rng.integers(1, n - 1))] = IGNORE  # a prompt, then an answer
        samples.append({"input_ids": ids, "labels": labels})
    return samples


def summed_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
    logits = model(**inputs, use_cache=False).logits.float()
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE, reduction="sum"
    )


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=128, max_position_embeddings=256)
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config).eval()


def test_bins_respect_max_length_and_keep_every_sample() -> None:
    lengths = [30, 10, 25, 5, 60, 15, 40]
    bins = pack_bins(lengths, 64)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 64 for b in bins)
    assert len(bins) == 4  # the 60 fits with nothing else; the rest cannot share two rows of 64


@torch.no_grad()
def test_packed_loss_equals_the_sum_of_unpacked_losses(tiny_model: torch.nn.Module) -> None:
    samples = random_samples(12)
    collator = Collator(pad_token_id=0)
    unpacked = sum(summed_loss(tiny_model, collator([s])) for s in samples)
    packed_rows = pack_dataset(samples, max_length=96)
    assert len(packed_rows) < len(samples)
    packed = sum(summed_loss(tiny_model, Collator(pad_token_id=0, packing=True)(packed_rows[i : i + 2]))
                 for i in range(0, len(packed_rows), 2))
    torch.testing.assert_close(packed, unpacked, rtol=1e-4, atol=1e-3)


@torch.no_grad()
def test_without_position_ids_the_samples_would_contaminate(tiny_model: torch.nn.Module) -> None:
    """The check above can fail: dropping the position_ids lets samples attend to each other."""
    samples = random_samples(6, seed=1)
    unpacked = sum(summed_loss(tiny_model, Collator(pad_token_id=0)([s])) for s in samples)
    batch = Collator(pad_token_id=0, packing=True)(pack_dataset(samples, max_length=512))
    del batch["position_ids"]
    assert not torch.isclose(summed_loss(tiny_model, batch), unpacked, rtol=1e-3)


def test_padded_batches_pad_on_the_chosen_side() -> None:
    samples = [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    right = Collator(pad_token_id=0)(samples)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    left = Collator(pad_token_id=0, padding_side="left")(samples)
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]


def test_packed_batch_is_one_flat_row_without_attention_mask() -> None:
    rows = pack_dataset([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}, {"input_ids": [4, 5], "labels": [IGNORE, 5]}], 8)
    batch = Collator(pad_token_id=0, packing=True)(rows)
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[IGNORE, 2, 3, IGNORE, 5]]  # each sample's first label is never predicted


def test_loss_scale_travels_through_packing_and_padding() -> None:
    samples = [{"input_ids": [1, 2, 3], "labels": [IGNORE, 2, 3], "loss_scale": [0.0, 2.0, 1.0]},
               {"input_ids": [4, 5], "labels": [IGNORE, 5]}]
    packed = Collator(pad_token_id=0, packing=True)(pack_dataset(samples, 8))
    assert sorted(packed["loss_scale"][0].tolist()) == [0.0, 0.0, 1.0, 1.0, 2.0]
    padded = Collator(pad_token_id=0)(samples)
    assert padded["loss_scale"].tolist() == [[0.0, 2.0, 1.0], [0.0, 1.0, 0.0]]


def test_preview_marks_trained_tokens_in_each_packed_sample(smollm2_tokenizer) -> None:
    from swift_data.preview import format_sample

    ids = smollm2_tokenizer("Q: hi A: yo", add_special_tokens=False)["input_ids"]
    n = len(ids)
    sample = {"input_ids": ids, "labels": [IGNORE] * (n - 2) + ids[-2:], "loss_scale": [0.0] * (n - 2) + [2.0, 2.0]}
    packed = pack_dataset([sample, {"input_ids": ids, "labels": [IGNORE] * (n - 1) + ids[-1:]}], 64)[0]
    text = format_sample(packed, smollm2_tokenizer)
    assert text.count("[[") == 2 and "[[x2:" in text and "\n--- packed with ---\n" in text
