"""LongLoRA's shifted sparse attention: what each token attends to while training, full attention
otherwise, and the models it refuses."""

from __future__ import annotations

import pytest
import torch
from _tiny import tiny_llama

from swift_train.tuners import longlora
from swift_train.tuners.longlora import GROUPS, shifted_group_attention


def reference(q, k, v, valid, scale):
    """Token by token: which keys each query sees under S²-Attn, written out plainly: its group (shifted by
    half a group in the second half of the heads, the last group wrapping around), never a later token."""
    batch, heads, length, dim = q.shape
    padded = -(-length // GROUPS) * GROUPS
    size = padded // GROUPS
    out = torch.zeros_like(q)
    for b in range(batch):
        for h in range(heads):
            shift = size // 2 if h >= heads // 2 else 0
            for i in range(length):
                slot = (i - shift) % padded  # where token i sits once its head's tokens are rolled back by `shift`
                group_start = slot // size * size
                keys = [j for j in range(length)
                        if group_start <= (j - shift) % padded <= slot and j <= i and valid[b, j]]
                if not keys:
                    continue
                scores = (q[b, h, i] @ k[b, h, keys].T) * scale
                out[b, h, i] = scores.softmax(-1) @ v[b, h, keys]
    return out


# A multiple of the 4 groups (unpadded: the plain causal kernel), with a right-padded row, and padded to 4.
# 1 key/value head (repeated to split in halves), and 2 (grouped-query attention, split as they are).
@pytest.mark.parametrize("length, padded_row", [(16, False), (16, True), (14, True)])
@pytest.mark.parametrize("kv_heads", [1, 2])
def test_each_token_attends_within_its_group_and_half_the_heads_are_shifted(length, padded_row, kv_heads):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, length, 8) for _ in range(3))
    valid = torch.ones(2, length, dtype=torch.bool)
    if padded_row:
        valid[1, -3:] = False
    k, v = k[:, :kv_heads], v[:, :kv_heads]
    got = shifted_group_attention(q, k, v, valid, 0.0, 8**-0.5).transpose(1, 2)
    repeat = 4 // kv_heads
    expected = reference(q, k.repeat_interleave(repeat, 1), v.repeat_interleave(repeat, 1), valid, 8**-0.5)
    real = valid[:, None, :, None].expand_as(got)
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)


def test_no_token_sees_a_later_one():
    """The wrapped group of the shifted heads holds the sequence's end and start: the start must not see the end."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 4, 16, 8) for _ in range(3))
    valid = torch.ones(1, 16, dtype=torch.bool)
    before = shifted_group_attention(q, k, v, valid, 0.0, 1.0)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, -1], v2[:, :, -1] = 5.0, 5.0  # only the last token changes
    after = shifted_group_attention(q, k2, v2, valid, 0.0, 1.0)
    torch.testing.assert_close(after[:, :-1], before[:, :-1])


def test_training_uses_shifted_groups_and_evaluation_full_attention():
    ids = torch.randint(0, 96, (2, 32))
    full = tiny_llama()
    model = tiny_llama()
    longlora.enable(model)
    model.eval(), full.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, full(input_ids=ids).logits)
    model.train(), full.train()
    loss = model(input_ids=ids, labels=ids).loss
    assert not torch.allclose(loss, full(input_ids=ids, labels=ids).loss)  # groups: not full attention
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_models_outside_the_llama_family_are_refused():
    from transformers import GPT2Config, MistralConfig

    assert "gpt2 model; longlora supports llama" in longlora.unsupported(GPT2Config())
    assert longlora.unsupported(MistralConfig(sliding_window=4096)) == "it uses sliding-window attention"
    assert longlora.unsupported(tiny_llama().config) is None


@pytest.mark.gpu
def test_long_sequences_train_on_the_gpu_with_a_quarter_of_the_attention():
    """16k tokens through a small Llama with LoRA: S²-Attn per group equals sdpa on that group's slice,
    and a training step's attention memory stays below full attention's."""
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    torch.manual_seed(0)
    length, size = 16384, 16384 // GROUPS
    q, k, v = (torch.randn(1, 8, length, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = shifted_group_attention(q, k, v, torch.ones(1, length, dtype=torch.bool, device="cuda"), 0.0, 64**-0.5)
    out = out.transpose(1, 2)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for g in range(GROUPS):
        part = slice(g * size, (g + 1) * size)
        plain = sdpa(q[:, :4, part], k[:, :4, part], v[:, :4, part], is_causal=True)
        torch.testing.assert_close(out[:, :4, part], plain, atol=2e-2, rtol=2e-2)
        rolled = [t[:, 4:].roll(-(size // 2), dims=2)[:, :, part] for t in (q, k, v)]
        shifted = out[:, 4:].roll(-(size // 2), dims=2)[:, :, part]
        allowed = torch.ones(size, size, dtype=torch.bool, device="cuda").tril()
        if g == GROUPS - 1:  # the wrapped group: the sequence's start does not see its end
            allowed[size // 2:, :size // 2] = False
        torch.testing.assert_close(shifted, sdpa(*rolled, attn_mask=allowed), atol=2e-2, rtol=2e-2)
    from transformers import LlamaConfig, LlamaForCausalLM

    from swift_train.tuners import prepare_lora
    from _tiny import sft

    config = LlamaConfig(hidden_size=512, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
                         num_key_value_heads=4, vocab_size=1000, max_position_embeddings=length)
    peaks, losses = {}, {}
    for name in ("lora", "longlora"):
        model = LlamaForCausalLM(config).to("cuda", torch.bfloat16)
        if name == "longlora":
            longlora.enable(model)
        model = prepare_lora(model, sft("--train_type", name))
        model.train()
        ids = torch.randint(0, 1000, (1, length), device="cuda")
        torch.cuda.reset_peak_memory_stats()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        peaks[name], losses[name] = torch.cuda.max_memory_allocated() / 2**30, float(loss)
        del model
        torch.cuda.empty_cache()
    print(f"16k tokens, one LoRA step: peak memory {peaks}, loss {losses}")
    assert all(torch.isfinite(torch.tensor(list(losses.values()))))
    assert peaks["longlora"] < 1.5 * peaks["lora"]  # fused kernels per group: no [L, L] scores in memory
