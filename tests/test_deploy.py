"""`swift deploy` as a user runs it, talked to with the official `openai` client."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from swift_e2e import Server, run_swift

KEY = "sk-test-key"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def _random_adapter(base: Path, target: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights: it changes the answers, which is all routing needs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path):  # noqa: ANN201
    work = tmp_path_factory.mktemp("deploy")
    first = _random_adapter(smollm2_dir, work / "first", seed=1)
    second = _random_adapter(smollm2_dir, work / "second", seed=2)
    running = Server("--model", "SmolLM2-135M-Instruct", "--adapters", f"first={first}", f"second={second}",
                     "--api_key", KEY, "--max_batch_size", "4", "--log_interval", "1", "--max_logprobs", "5",
                     log=work / "deploy.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=KEY)


def _chat(client: openai.OpenAI, model: str, **kwargs) -> str:  # noqa: ANN003
    reply = client.chat.completions.create(model=model, messages=FRANCE, temperature=0, max_tokens=24, **kwargs)
    return reply.choices[0].message.content


def test_models_lists_the_base_and_each_named_adapter(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["SmolLM2-135M-Instruct", "first", "second"]


def test_plain_and_streamed_answers_equal_swift_infer(client: openai.OpenAI, tmp_path: Path) -> None:
    reply = client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=FRANCE, temperature=0, max_tokens=24)
    text = reply.choices[0].message.content
    assert "Paris" in text
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

    stream = client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=FRANCE, temperature=0, max_tokens=24,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == reply.choices[0].finish_reason

    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"messages": FRANCE}) + "\n")
    infer = run_swift("infer", "--model", "SmolLM2-135M-Instruct", "--val_dataset", str(data), "--result_path",
                      str(tmp_path / "r.jsonl"), "--temperature", "0", "--max_new_tokens", "24")
    assert infer.returncode == 0, infer.stderr[-2000:]
    assert json.loads((tmp_path / "r.jsonl").read_text())["response"] == text


def test_each_adapter_answers_as_itself(client: openai.OpenAI) -> None:
    base, first, second = (_chat(client, m) for m in ("SmolLM2-135M-Instruct", "first", "second"))
    assert len({base, first, second}) == 3
    assert _chat(client, "first") == first  # routing is stable, not random


def test_completions_logprobs_n_and_seed(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="SmolLM2-135M-Instruct", prompt="The capital of France is",
                                           max_tokens=5, temperature=0, logprobs=2)
    choice = completion.choices[0]
    assert "Paris" in choice.text
    assert len(choice.logprobs.tokens) == completion.usage.completion_tokens
    assert all(lp <= 0 for lp in choice.logprobs.token_logprobs)

    reply = client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=FRANCE, temperature=0, max_tokens=4,
                                           logprobs=True, top_logprobs=3)
    entries = reply.choices[0].logprobs.content
    assert len(entries) == reply.usage.completion_tokens
    assert all(len(e.top_logprobs) == 3 and e.top_logprobs[0].token == e.token for e in entries)

    def sample(seed: int) -> list[str]:
        reply = client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=FRANCE, temperature=1.0,
                                               max_tokens=12, n=2, seed=seed)
        return [c.message.content for c in reply.choices]

    assert sample(7) == sample(7)
    assert len(set(sample(7) + sample(8))) > 1


def test_api_key_is_required_on_every_route(server: Server) -> None:
    for method, path in (("GET", "/models"), ("POST", "/chat/completions"), ("POST", "/completions")):
        response = httpx.request(method, server.url + path, json={})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url, api_key="wrong").models.list()


def test_bad_requests_get_a_400_naming_the_field_and_the_server_lives_on(server: Server, client: openai.OpenAI) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    cases = [
        ({"model": "SmolLM2-135M-Instruct", "messages": FRANCE, "temperature": "hot"}, 400, "temperature"),
        ({"model": "SmolLM2-135M-Instruct"}, 400, "messages"),
        ({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
        ({"model": "SmolLM2-135M-Instruct", "messages": FRANCE, "logprobs": True, "top_logprobs": 6}, 400, "top_logprobs"),
        ({"model": "SmolLM2-135M-Instruct", "messages": FRANCE, "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "gpt-9", "messages": FRANCE}, 404, "model"),
    ]
    for body, status, param in cases:
        response = httpx.post(server.url + "/chat/completions", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["param"] == param
    garbled = httpx.post(server.url + "/chat/completions", content=b"{not json", headers=headers)
    assert garbled.status_code == 400
    assert "Paris" in _chat(client, "SmolLM2-135M-Instruct")


def test_a_client_leaving_mid_stream_frees_its_slot(server: Server) -> None:
    body = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Write a very long story."}],
            "max_tokens": 3000, "stream": True, "temperature": 0}
    with httpx.stream("POST", server.url + "/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {KEY}"}) as response:
        next(response.iter_lines())
    seen = len(server.output())
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(1)
        report = [line for line in server.output()[seen:].splitlines() if "running" in line]
        if report and "0 running, 0 waiting" in report[-1]:
            return
    pytest.fail("the abandoned request kept running:\n" + server.output()[-2000:])
