"""--gradient_checkpointing_layers N: only the first N layers recompute in backward; gradients do not change."""

from __future__ import annotations

import torch
from _tiny import lora_model
from swift_train.checkpointing import limit_checkpointed_layers


def _forward_counts_and_grads(limit: int | None) -> tuple[list[int], dict[str, torch.Tensor]]:
    model = lora_model()
    model.train()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if limit is not None:
        limit_checkpointed_layers(model, limit)
    layers = model.base_model.model.model.layers
    counts = [0] * len(layers)
    for index, layer in enumerate(layers):
        layer.self_attn.register_forward_hook(lambda *_, i=index: counts.__setitem__(i, counts[i] + 1))
    ids = torch.randint(0, 96, (2, 24), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
    return counts, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_only_the_first_layers_are_recomputed_and_gradients_are_unchanged() -> None:
    all_counts, all_grads = _forward_counts_and_grads(None)
    first_counts, first_grads = _forward_counts_and_grads(1)
    none_counts, _ = _forward_counts_and_grads(0)
    assert all_counts == [2, 2]  # forward, then the recomputation in backward
    assert first_counts == [2, 1]
    assert none_counts == [1, 1]
    assert all_grads.keys() == first_grads.keys()
    for name in all_grads:
        torch.testing.assert_close(first_grads[name], all_grads[name], rtol=1e-5, atol=1e-6)
