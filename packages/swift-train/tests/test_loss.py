"""The chunked loss equals the full-logits loss: value, LoRA gradients and token accuracy."""

from __future__ import annotations

import pytest
import torch
from _tiny import lora_model, packed, padded, samples, tiny_llama, trainer
from swift_train.loss import Head, find_head


def loss_and_grads(train, model, inputs, chunked: bool, chunk_tokens: int | None = 5):
    """One compute_loss + backward; returns the loss, trainable gradients and the accuracy counters."""
    train.use_chunked_loss, train._head = chunked, None
    train._accuracy = [0.0, 0]
    model.zero_grad()
    head = train._chunked_head(model)
    if chunked and chunk_tokens:
        assert isinstance(head, Head)
        head.chunk_tokens = chunk_tokens  # several chunks even on a tiny batch
    loss = train.compute_loss(model, inputs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads, list(train._accuracy)


def with_known_answers(inputs, model):
    """Make about half the trained targets the model's own prediction, so accuracy is not zero."""
    with torch.no_grad():
        extra = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
        predicted = model(**extra).logits.argmax(-1)
    labels = inputs["labels"].clone()
    trained = labels[:, 1:] != -100
    pick = trained & (torch.arange(trained.shape[1]) % 2 == 0)
    labels[:, 1:][pick] = predicted[:, :-1][pick]
    return {**inputs, "labels": labels}


@pytest.mark.parametrize("layout", [packed, padded])
@pytest.mark.parametrize("scaled", [True, False])
def test_chunked_loss_matches_full_logits(tmp_path, layout, scaled: bool) -> None:
    model = lora_model()
    train = trainer(model, tmp_path)
    inputs = layout(samples([7, 12, 9]))
    if not scaled:
        inputs.pop("loss_scale")
    inputs = with_known_answers(inputs, model)
    full_loss, full_grads, full_acc = loss_and_grads(train, model, inputs, chunked=False)
    loss, grads, acc = loss_and_grads(train, model, inputs, chunked=True)
    assert torch.allclose(loss, full_loss, atol=1e-5, rtol=1e-5)
    assert grads.keys() == full_grads.keys() and any("lora_A" in n for n in grads)
    for name, grad in grads.items():
        assert full_grads[name].abs().sum() > 0, name
        assert torch.allclose(grad, full_grads[name], atol=1e-5, rtol=1e-5), name
    assert acc == full_acc and 0 < acc[0] < acc[1]


def test_num_items_in_batch_and_seq_accuracy(tmp_path) -> None:
    model = lora_model()
    train = trainer(model, tmp_path, "--acc_strategy", "seq")
    inputs = with_known_answers(padded(samples([6, 10])), model)
    results = []
    for chunked in (False, True):
        train.use_chunked_loss, train._head, train._accuracy = chunked, None, [0.0, 0]
        loss = train.compute_loss(model, inputs, num_items_in_batch=torch.tensor(40))
        results.append((loss.detach(), list(train._accuracy)))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert results[0][1] == results[1][1]


def test_eval_accuracy_unchanged(tmp_path) -> None:
    model = lora_model().eval()
    train = trainer(model, tmp_path)
    train.model.eval()
    inputs = with_known_answers(padded(samples([8, 11, 5])), model)
    accuracy = []
    for chunked in (False, True):
        train.use_chunked_loss, train._head, train._eval_accuracy = chunked, None, [0.0, 0]
        with torch.no_grad():
            train.compute_loss(model, inputs)
        accuracy.append(train._eval_accuracy)
    assert accuracy[0] == accuracy[1] and accuracy[0][0] > 0


def test_modules_to_save_lm_head_gets_the_same_gradient(tmp_path) -> None:
    model = lora_model("--modules_to_save", "lm_head", tied=False)
    train = trainer(model, tmp_path)
    inputs = packed(samples([9, 13]))
    full_loss, full_grads, _ = loss_and_grads(train, model, inputs, chunked=False)
    loss, grads, _ = loss_and_grads(train, model, inputs, chunked=True)
    assert torch.allclose(loss, full_loss, atol=1e-5)
    saved = [n for n in grads if "modules_to_save" in n and "lm_head" in n]
    assert saved
    for name in grads:
        assert torch.allclose(grads[name], full_grads[name], atol=1e-5), name


def test_logit_transforms_keep_full_logits() -> None:
    model = tiny_llama()
    model.config.final_logit_softcapping = 30.0
    assert "final_logit_softcapping" in find_head(model)


def test_a_head_it_cannot_see_is_caught_on_the_first_step(tmp_path) -> None:
    """A forward that rescales logits after lm_head: the first step notices and uses full logits."""
    model = tiny_llama()
    original = type(model).forward

    def scaled_forward(self, input_ids=None, logits_to_keep=0, **kwargs):
        out = original(self, input_ids, logits_to_keep=logits_to_keep, **kwargs)
        out.logits = out.logits * 2
        return out

    model.forward = scaled_forward.__get__(model)
    train = trainer(model, tmp_path)
    inputs = padded(samples([6, 9]))
    train.use_chunked_loss, train._head = False, None
    expected = train.compute_loss(model, inputs)
    train.use_chunked_loss, train._head = True, None
    assert torch.allclose(train.compute_loss(model, inputs), expected)
    assert isinstance(train._head, str) and "differs" in train._head


def test_return_outputs_uses_full_logits(tmp_path) -> None:
    model = lora_model()
    train = trainer(model, tmp_path)
    _, outputs = train.compute_loss(model, padded(samples([6, 9])), return_outputs=True)
    assert outputs.logits.shape[1] == 9
