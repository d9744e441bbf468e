"""--use_liger: a clear one-line error without the extra or without CUDA; the kernels on a GPU."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from _tiny import padded, samples, sft, tiny_llama, trainer
from swift_args import ArgumentError
from swift_train.liger import apply_liger
from swift_train.sft import speed_up


def test_without_the_package_it_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "liger_kernel", None)  # import liger_kernel raises ImportError
    with pytest.raises(ArgumentError) as raised:
        speed_up(tiny_llama(), sft("--use_liger", "true"))
    assert raised.value.problems == ["--use_liger true needs liger-kernel: pip install 'swift-train[liger]'"]
    assert raised.value.exit_code == 2


def test_without_cuda_it_says_so(monkeypatch) -> None:
    package = types.ModuleType("liger_kernel")
    transformers = types.ModuleType("liger_kernel.transformers")
    transformers._apply_liger_kernel_to_instance = lambda **_: pytest.fail("must not patch without CUDA")
    monkey_patch = types.ModuleType("liger_kernel.transformers.monkey_patch")
    monkey_patch.MODEL_TYPE_TO_APPLY_LIGER_FN = {"llama": None}
    for name, module in [("liger_kernel", package), ("liger_kernel.transformers", transformers),
                         ("liger_kernel.transformers.monkey_patch", monkey_patch)]:
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ArgumentError, match="needs a CUDA GPU"):
        apply_liger(tiny_llama())


@pytest.mark.gpu
def test_liger_kernels_keep_the_loss(tmp_path, monkeypatch) -> None:
    pytest.importorskip("liger_kernel")
    from transformers.models.llama import modeling_llama

    for name in ("LlamaRMSNorm", "LlamaMLP", "apply_rotary_pos_emb"):  # liger patches the module: undo after
        monkeypatch.setattr(modeling_llama, name, getattr(modeling_llama, name))
    inputs = {k: v.cuda() for k, v in padded(samples([40, 70])).items()}
    losses = []
    for use_liger in (False, True):
        model = tiny_llama().to("cuda", torch.bfloat16)
        if use_liger:
            assert apply_liger(model) == "llama"
        train = trainer(model, tmp_path)
        loss = train.compute_loss(model, inputs)
        loss.backward()
        losses.append(loss.float())
    assert torch.allclose(losses[0], losses[1], atol=2e-2)
