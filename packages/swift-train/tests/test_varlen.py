"""Varlen attention: equal to eager attention with the block-diagonal mask, and to unpacked samples."""

from __future__ import annotations

import pytest
import torch
from _tiny import lora_model, packed, padded, samples, tiny_llama, trainer
from swift_train import varlen
from transformers.models.llama.modeling_llama import eager_attention_forward


class FakeAttention(torch.nn.Module):
    is_causal = True

    def __init__(self, groups: int):
        super().__init__()
        self.num_key_value_groups = groups


def block_causal_mask(lengths: list[int]) -> torch.Tensor:
    """Additive [1, 1, L, L] mask: causal within each sample, nothing across samples."""
    total = sum(lengths)
    ids = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    allowed = (ids[:, None] == ids[None, :]) & torch.ones(total, total, dtype=torch.bool).tril()
    return torch.zeros(total, total).masked_fill(~allowed, float("-inf"))[None, None]


def qkv(lengths: list[int], heads: int, kv_heads: int, dim: int = 16, dtype=torch.float32, device="cpu"):
    torch.manual_seed(0)
    total = sum(lengths)
    shapes = [(1, heads, total, dim), (1, kv_heads, total, dim), (1, kv_heads, total, dim)]
    return [torch.randn(s, dtype=dtype, device=device, requires_grad=True) for s in shapes]


def position_ids(lengths: list[int], device="cpu") -> torch.Tensor:
    return torch.cat([torch.arange(n) for n in lengths])[None].to(device)


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (8, 2)])
def test_attention_equals_eager_with_block_mask(heads: int, kv_heads: int) -> None:
    lengths = [5, 1, 12, 7]
    module = FakeAttention(heads // kv_heads).eval()
    q, k, v = qkv(lengths, heads, kv_heads)
    ours, _ = varlen.attention_forward(module, q, k, v, None, scaling=0.3, position_ids=position_ids(lengths))
    ref, _ = eager_attention_forward(module, q, k, v, block_causal_mask(lengths), scaling=0.3)
    assert torch.allclose(ours, ref, atol=1e-5)
    grads = torch.autograd.grad(ours.square().sum(), (q, k, v))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-4)


def test_sample_bounds_from_position_ids() -> None:
    cu, longest = varlen.seq_bounds(torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3], [5, 6, 0, 1, 2, 3, 4, 0, 1]]))
    assert cu.tolist() == [0, 3, 5, 9, 11, 16, 18] and longest == 5
    assert cu.dtype == torch.int32


def packed_model(tmp_path):
    model = lora_model(attn="sdpa")
    varlen.enable(model.get_base_model())
    assert model.config._attn_implementation == varlen.NAME
    return model, trainer(model, tmp_path)


def test_packed_forward_backward_matches_unpacked_samples(tmp_path) -> None:
    model, train = packed_model(tmp_path)
    batch = samples([9, 4, 15, 7])
    inputs = packed(batch)
    assert varlen.batch_kwargs(model, inputs)["cu_seq_lens_q"].tolist() == [0, 9, 13, 28, 35]
    train.use_chunked_loss = False
    model.zero_grad()
    loss = train.compute_loss(model, inputs, num_items_in_batch=100)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    expected = sum(train.compute_loss(model, padded([s]), num_items_in_batch=100) for s in batch)
    expected.backward()
    assert torch.allclose(loss, expected, atol=1e-4)
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert torch.allclose(grads[name], param.grad, atol=1e-4), name


def test_padded_batches_go_to_sdpa_unchanged(tmp_path) -> None:
    model, _ = packed_model(tmp_path)
    reference = lora_model(attn="sdpa")
    inputs = padded(samples([9, 4, 15]))
    extra = {k: inputs[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        ours, theirs = model(**extra).logits, reference(**extra).logits
    trained = inputs["attention_mask"].bool()
    assert torch.allclose(ours[trained], theirs[trained], atol=1e-5)


def test_models_it_cannot_serve() -> None:
    config = tiny_llama().config
    assert varlen.unsupported(config) is None
    config.sliding_window = 16
    assert "sliding" in varlen.unsupported(config)


@pytest.mark.gpu
@pytest.mark.parametrize("heads,kv_heads", [(8, 8), (8, 2)])
def test_cuda_flash_equals_cpu_reference_bf16(heads: int, kv_heads: int) -> None:
    lengths = [300, 17, 1, 512, 130]
    module = FakeAttention(heads // kv_heads).eval()
    q, k, v = qkv(lengths, heads, kv_heads, dim=128, dtype=torch.bfloat16, device="cuda")
    pos = position_ids(lengths, "cuda")
    ours, _ = varlen.attention_forward(module, q, k, v, None, scaling=128**-0.5, position_ids=pos)
    ref_inputs = [t.detach().float().cpu().requires_grad_() for t in (q, k, v)]
    ref, _ = varlen.attention_forward(module, *ref_inputs, None, scaling=128**-0.5, position_ids=pos.cpu())
    assert torch.allclose(ours.float().cpu(), ref, atol=2e-2, rtol=2e-2)
    upstream = torch.randn_like(ref)
    grads = torch.autograd.grad(ours, (q, k, v), upstream.to("cuda", torch.bfloat16))
    ref_grads = torch.autograd.grad(ref, ref_inputs, upstream)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g.float().cpu(), r, atol=2e-2, rtol=2e-2)


@pytest.mark.gpu
def test_cuda_packed_training_step_matches_unpacked(tmp_path) -> None:
    model = lora_model(attn="sdpa").to("cuda", torch.bfloat16)
    varlen.enable(model.get_base_model())
    train = trainer(model, tmp_path)
    batch = samples([90, 40, 150, 70])

    def cuda(inputs):
        return {k: v.cuda() for k, v in inputs.items()}

    loss = train.compute_loss(model, cuda(packed(batch)), num_items_in_batch=200)
    expected = sum(train.compute_loss(model, cuda(padded([s])), num_items_in_batch=200) for s in batch)
    assert torch.allclose(loss.float(), expected.float(), atol=2e-2)
    loss.backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters() if p.requires_grad)
