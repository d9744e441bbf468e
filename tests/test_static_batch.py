"""The static-batch generator GRPO's GPU rollouts use (swift_infer.engines.static_batch): the same tokens as
transformers' `generate`, whatever the prompts' lengths, cut after the stop token; on a GPU, the CUDA-graph
replay gives the eager step's tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

QUESTIONS = ["What is 2 + 3?", "Say hi to the reader of this long question, please, in one short line.",
             "Name a colour."]


def _model_and_prompts(smollm2_dir: Path, device: str = "cpu") -> tuple:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32, attn_implementation="sdpa")
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                             tokenize=False) for q in QUESTIONS]
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    return model.to(device).eval(), tokenizer, ids


def test_greedy_tokens_match_transformers_generate_row_by_row(smollm2_dir):
    from swift_infer.engines.sampling import SamplingParams
    from swift_infer.engines.static_batch import StaticBatchGenerator, supported

    model, tokenizer, prompts = _model_and_prompts(smollm2_dir)
    assert supported(model) is None
    eos = tokenizer.eos_token_id
    generator = StaticBatchGenerator(model, {eos}, tokenizer.pad_token_id, use_graphs=False)
    completions = generator.generate(prompts, SamplingParams(temperature=0.0), max_new_tokens=16)
    assert len({len(p) for p in prompts}) == 3  # left padding is exercised
    for prompt, completion in zip(prompts, completions):
        expected = model.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False)[0, len(prompt):].tolist()
        if eos in expected:
            expected = expected[:expected.index(eos) + 1]  # the stop token ends it and is kept
        assert completion == expected
    assert any(c[-1] == eos for c in completions)  # at least one row stopped early while others went on


def test_sampling_stays_inside_top_k(smollm2_dir):
    from swift_infer.engines.sampling import SamplingParams
    from swift_infer.engines.static_batch import StaticBatchGenerator

    model, tokenizer, prompts = _model_and_prompts(smollm2_dir)
    generator = StaticBatchGenerator(model, {tokenizer.eos_token_id}, tokenizer.pad_token_id, use_graphs=False)
    torch.manual_seed(0)
    first = generator.generate(prompts, SamplingParams(temperature=1.5, top_k=3), max_new_tokens=1)
    with torch.no_grad():
        for prompt, token in zip(prompts, first):
            logits = model(torch.tensor([prompt])).logits[0, -1]
            assert token[0] in logits.topk(3).indices.tolist()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_cuda_graph_replay_gives_the_eager_tokens(smollm2_dir):
    from swift_infer.engines.sampling import SamplingParams
    from swift_infer.engines.static_batch import StaticBatchGenerator

    model, tokenizer, prompts = _model_and_prompts(smollm2_dir, "cuda")
    stop, pad = {tokenizer.eos_token_id}, tokenizer.pad_token_id
    eager = StaticBatchGenerator(model, stop, pad, use_graphs=False).generate(prompts, SamplingParams(temperature=0.0), 24)
    graphed = StaticBatchGenerator(model, stop, pad, use_graphs=True)
    assert graphed.generate(prompts, SamplingParams(temperature=0.0), 24) == eager
    assert graphed.generate(prompts, SamplingParams(temperature=0.0), 24) == eager  # the captured graph, replayed
