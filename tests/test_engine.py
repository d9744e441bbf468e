"""The pt engine's continuous batching, checked against transformers' own `generate`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

QUESTIONS = ["What is the capital of France?", "Hi", "Write a long story about a dragon and a knight in a castle.",
             "2+2?", "Name three colours.", "Why is the sky blue?"]


@pytest.fixture(scope="module")
def engine(tiny_chat_model: Path):  # noqa: ANN201
    from swift_data.models import load_tokenizer
    from swift_data.templates.encode import Encoder, EncoderOptions
    from swift_infer.engines import PtEngine
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(tiny_chat_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model, dtype=torch.float32)
    return PtEngine(model, tokenizer, Encoder(tokenizer, EncoderOptions()), max_batch_size=4)


def _conversation(text: str):  # noqa: ANN202
    from swift_data.preprocess.conversation import Conversation

    return Conversation([{"role": "user", "content": text}])


def _reference(engine, prompt: list[int], max_new_tokens: int) -> list[int]:  # noqa: ANN001
    """transformers' greedy generate, one prompt alone: the answer batching must not change."""
    ids = torch.tensor([prompt])
    out = engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                max_new_tokens=max_new_tokens, pad_token_id=engine.batcher.pad_id,
                                temperature=None, top_p=None, top_k=None)
    tokens = out[0, len(prompt):].tolist()
    for i, token in enumerate(tokens):
        if token in engine.stop_token_ids:
            return tokens[:i]
    return tokens


def test_batched_greedy_answers_equal_generate_one_at_a_time(engine) -> None:  # noqa: ANN001
    from swift_infer.engines import GenerationSettings

    # Different lengths, more requests than slots: rows join and leave the batch mid-flight.
    settings = [GenerationSettings(temperature=0, max_new_tokens=n) for n in (5, 17, 30, 9, 23, 12)]
    prompts = [engine.prompt_ids(_conversation(q)) for q in QUESTIONS]
    handles = [engine.submit(p, s) for p, s in zip(prompts, settings)]
    results = [h.result() for h in handles]
    for prompt, setting, result in zip(prompts, settings, results):
        expected = _reference(engine, prompt, setting.max_new_tokens)
        assert [c.token for c in result.tokens][: len(expected)] == expected
        assert result.finish_reason == ("length" if len(expected) == setting.max_new_tokens else "stop")
        assert result.prompt_tokens == len(prompt)


def test_a_short_request_does_not_wait_for_a_long_one(engine) -> None:  # noqa: ANN001
    from swift_infer.engines import GenerationSettings

    long = engine.submit(engine.prompt_ids(_conversation(QUESTIONS[2])), GenerationSettings(temperature=0, max_new_tokens=400))
    time.sleep(0.05)
    short = engine.submit(engine.prompt_ids(_conversation("Hi")), GenerationSettings(temperature=0, max_new_tokens=3))
    short.result()
    assert not long.cancelled.is_set()
    deltas = list(long.deltas())  # the long one is still running when the short one is back
    assert deltas[-1].finish_reason in ("length", "stop") and sum(len(d.tokens) for d in deltas) > 3


def test_stop_words_are_kept_and_eos_removed_logprobs_and_seeds(engine) -> None:  # noqa: ANN001
    from swift_infer.engines import GenerationSettings

    prompt = engine.prompt_ids(_conversation(QUESTIONS[0]))
    free = engine.submit(prompt, GenerationSettings(temperature=0, max_new_tokens=20)).result()
    word = free.text[3:6]
    cut = engine.submit(prompt, GenerationSettings(temperature=0, max_new_tokens=20, stop_words=[word])).result()
    assert cut.text == free.text[: free.text.find(word) + len(word)] and cut.finish_reason == "stop"

    scored = engine.submit(prompt, GenerationSettings(temperature=0, max_new_tokens=4, top_logprobs=3)).result()
    for choice in scored.tokens:
        assert choice.logprob is not None and choice.logprob <= 0
        assert len(choice.top) == 3 and choice.top[0][0] == choice.token  # greedy picks the most likely token
        assert choice.top[0][1] == pytest.approx(choice.logprob)

    sampled = [engine.submit(prompt, GenerationSettings(temperature=1.0, max_new_tokens=8, seed=s)).result().text
               for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] != sampled[2]


def test_streamed_text_equals_the_whole_answer_and_cancel_frees_the_slot(engine) -> None:  # noqa: ANN001
    from swift_infer.engines import GenerationSettings

    conversation = _conversation(QUESTIONS[4])
    settings = GenerationSettings(temperature=0, max_new_tokens=25)
    assert "".join(engine.stream(conversation, settings)) == engine.generate([conversation], settings)[0]
    handle = engine.submit(engine.prompt_ids(conversation), GenerationSettings(temperature=0, max_new_tokens=1000))
    next(iter(handle.deltas()))
    handle.cancel()
    assert list(handle.deltas())[-1].finish_reason == "cancelled"
    deadline = time.time() + 5
    while engine.batcher.load != (0, 0) and time.time() < deadline:
        time.sleep(0.01)
    assert engine.batcher.load == (0, 0)


def _submit_raw(engine, prompt: list[int], request_id: str, **params):  # noqa: ANN001, ANN003, ANN202
    """A request straight to the batcher, past the server's validation: what a bug upstream would send."""
    from swift_infer.engines.sampling import SamplingParams

    return engine.batcher.submit(prompt, SamplingParams(**params), request_id=request_id)


class _Picky(torch.nn.Module):
    """The model, except that any forward pass holding token 13 raises: a failure that only some prompts cause."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.config, self.generation_config = inner, inner.config, inner.generation_config

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.inner.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, **kwargs):  # noqa: ANN003, ANN201
        if (input_ids == 13).any():
            raise RuntimeError("token 13 breaks this model")
        return self.inner(input_ids=input_ids, **kwargs)


def test_one_request_failing_in_the_batch_fails_alone(engine, capfd) -> None:  # noqa: ANN001
    from swift_infer.engines.batcher import ContinuousBatcher
    from swift_infer.engines.sampling import SamplingParams

    batcher = ContinuousBatcher(_Picky(engine.model), engine.tokenizer, 4, engine.stop_token_ids, engine.max_length)
    prompt = engine.prompt_ids(_conversation(QUESTIONS[0]))
    expected = _reference(engine, prompt, 12)
    # NaN temperature: sampling raises; token 13 in the prompt: the prefill raises.
    cases = [("good-1", prompt, {}), ("nan-temperature", prompt, {"temperature": float("nan")}),
             ("breaks-prefill", [5, 13, 7], {}), ("good-2", prompt, {})]
    handles = [batcher.submit(ids, SamplingParams(max_new_tokens=12, **extra), request_id=name)
               for name, ids, extra in cases]
    for handle in (handles[0], handles[3]):
        assert [c.token for c in handle.result().tokens][: len(expected)] == expected
    for handle in handles[1:3]:
        with pytest.raises(RuntimeError):
            handle.result()
        assert handle.error_status == 500
    log = capfd.readouterr().err
    assert "request nan-temperature failed" in log and "request breaks-prefill failed: RuntimeError: token 13" in log
    assert "good-1" not in log and "good-2" not in log
    batcher.close()


def test_requests_the_engine_cannot_take_end_with_a_400_not_silence(engine) -> None:  # noqa: ANN001
    empty = _submit_raw(engine, [], "empty", max_new_tokens=4)
    too_long = _submit_raw(engine, [5] * engine.max_length, "too-long", max_new_tokens=4)
    unknown_token = _submit_raw(engine, [5, 10**7], "unknown-token", max_new_tokens=4)
    huge_seed = _submit_raw(engine, [5, 6], "huge-seed", max_new_tokens=4, temperature=1.0, seed=10**30)
    for handle, message in ((empty, "the prompt is empty"), (too_long, f"at most {engine.max_length - 1}"),
                            (unknown_token, "token id 10000000 is outside the model's vocabulary of 49152")):
        with pytest.raises(RuntimeError, match=message):
            handle.result()
        assert handle.error_status == 400
    assert huge_seed.result().completion_tokens == 4  # any integer seeds: torch takes it modulo 2**64


def test_a_tiny_temperature_or_a_huge_top_k_still_sample(engine) -> None:  # noqa: ANN001
    prompt = engine.prompt_ids(_conversation(QUESTIONS[1]))
    greedy = _submit_raw(engine, prompt, "greedy", max_new_tokens=6).result()
    tiny = _submit_raw(engine, prompt, "tiny", max_new_tokens=6, temperature=1e-30, seed=1).result()
    assert [c.token for c in tiny.tokens] == [c.token for c in greedy.tokens]
    wide = _submit_raw(engine, prompt, "wide", max_new_tokens=6, temperature=1.0, top_k=2**40, seed=1).result()
    assert wide.completion_tokens == 6


def test_when_the_engine_loop_stops_every_open_request_hears_it(engine) -> None:  # noqa: ANN001
    from swift_infer.engines.batcher import ContinuousBatcher
    from swift_infer.engines.sampling import SamplingParams

    batcher = ContinuousBatcher(engine.model, engine.tokenizer, 2, engine.stop_token_ids, engine.max_length)

    def crash() -> None:
        raise SystemExit("simulated crash inside the loop")

    batcher._step = crash
    handles = [batcher.submit([5, 6, 7], SamplingParams(max_new_tokens=3)) for _ in range(3)]
    for handle in handles:
        with pytest.raises(RuntimeError, match="the engine has stopped: SystemExit: simulated crash"):
            handle.result()
        assert handle.error_status == 503
    assert not batcher.alive
    late = batcher.submit([5], SamplingParams(max_new_tokens=1))
    with pytest.raises(RuntimeError, match="the engine has stopped"):
        late.result()


def test_stop_all_ends_running_and_waiting_requests(engine) -> None:  # noqa: ANN001
    from swift_infer.engines.batcher import ContinuousBatcher
    from swift_infer.engines.sampling import SamplingParams

    batcher = ContinuousBatcher(engine.model, engine.tokenizer, 1, engine.stop_token_ids, 10**6)
    handles = [batcher.submit([5, 6, 7], SamplingParams(max_new_tokens=10**6, temperature=1.0, seed=i)) for i in range(2)]
    next(handles[0].deltas())  # the first is running, the second waits for its slot
    batcher.stop_all("SIGTERM and --shutdown_timeout 0s passed")
    for handle in handles:
        with pytest.raises(RuntimeError, match="SIGTERM"):
            handle.result()
        assert handle.error_status == 503
    assert batcher.alive  # stopping requests is not stopping the engine
    batcher.close()
