"""`swift deploy` against hostile clients, over loopback as they would talk to it.

Every request gets an answer within a bound; malformed ones a 400 naming the field, never a 5xx;
another client's request in the same batch is unaffected; the connection stays usable; and the
server stops on SIGTERM even with a request that would run for minutes.
"""

from __future__ import annotations

import json
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from swift_e2e import Server

KEY = "k"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
USER = [{"role": "user", "content": "Hello there"}]
TIMEOUT = 60  # seconds: an answer later than this is a hang


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_chat_model: Path):  # noqa: ANN201
    log = tmp_path_factory.mktemp("hostile") / "deploy.log"
    running = Server("--model", str(tiny_chat_model), "--api_key", KEY, "--max_batch_size", "4",
                     "--log_interval", "-1", "--verbose", "false", log=log)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Server):  # noqa: ANN201
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=TIMEOUT) as client:
        yield client


def post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    """The body as raw JSON text: Python's encoder keeps lone surrogates (as \\ud800) and NaN, as some clients do."""
    return client.post(path, content=body if isinstance(body, str) else json.dumps(body))


def chat(**fields: Any) -> tuple[str, dict[str, Any]]:
    return "/chat/completions", {"messages": USER, "max_tokens": 4, **fields}


def completion(**fields: Any) -> tuple[str, dict[str, Any]]:
    return "/completions", {"prompt": "Once upon a time", "max_tokens": 4, **fields}


def normal_answer(client: httpx.Client) -> str:
    reply = post(client, *chat(temperature=0, max_tokens=12))
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["message"]["content"]


WORDS = "word " * 3000  # over the tiny model's 1024-token context

# (what, request, status, a phrase of the error message): each body of the issue, and their kin.
HOSTILE = [
    ("empty prompt", completion(prompt=""), 400, "prompt: is empty"),
    ("one empty prompt of two", completion(prompt=["fine", ""]), 400, "prompt: is empty"),
    ("no prompts", completion(prompt=[]), 400, "at least one prompt"),
    ("seed 2**64", chat(temperature=1, seed=2**64), 400, "seed"),
    ("seed 10**30", chat(temperature=1, seed=10**30), 400, "seed"),
    ("empty stop string", chat(stop=[""]), 400, "stop: an empty stop string"),
    ("too many stop strings", chat(stop=[str(i) for i in range(17)]), 400, "at most 16"),
    ("top_k over int64", chat(temperature=1, top_k=2**63), 400, "top_k"),
    ("repetition_penalty 1e-300", chat(repetition_penalty=1e-300), 400, "repetition_penalty"),
    ("repetition_penalty 1e300", chat(repetition_penalty=1e300), 400, "repetition_penalty"),
    ("NaN temperature", '{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400, "temperature"),
    ("Infinity top_p", '{"messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}', 400, "top_p"),
    ("tools [{}]", chat(tools=[{}]), 400, "tools.0.function"),
    ("tool parameters 5", chat(tools=[{"type": "function", "function": {"name": "f", "parameters": 5}}]), 400, "parameters"),
    ("tool function a string", chat(tools=[{"type": "function", "function": "weather"}]), 400, "tools.0.function"),
    ("tool without a name", chat(tools=[{"type": "function", "function": {"description": "x"}}]), 400, "name"),
    ("tool_calls function a string",
     chat(messages=[*USER, {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": "weather"}]},
                    {"role": "tool", "content": "sunny"}]), 400, "tool_calls.0.function"),
    ("tool_choice required", chat(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="required"), 400,
     "tool_choice"),
    ("lone surrogate", chat(messages=[{"role": "user", "content": "a\ud800b"}]), 400,
     "messages.0.content: contains a lone surrogate"),
    ("lone surrogate in a prompt", completion(prompt="x\udfffy"), 400, "lone surrogate"),
    ("image part", chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]), 400,
     "this model takes text only"),
    ("unknown part", chat(messages=[{"role": "user", "content": [{"type": "hologram"}]}]), 400, "unknown content part"),
    ("prompt over the context", chat(messages=[{"role": "user", "content": WORDS}]), 400, "a prompt may have at most 1023"),
    ("streamed prompt over the context", chat(messages=[{"role": "user", "content": WORDS}], stream=True), 400,
     "a prompt may have at most 1023"),
    ("completion over the context", completion(prompt=WORDS), 400, "a prompt may have at most 1023"),
    ("no messages", chat(messages=[]), 400, "messages"),
    ("messages not a list", chat(messages="hi"), 400, "messages"),
    ("unknown role", chat(messages=[{"role": "robot", "content": "hi"}]), 400, "role"),
    ("content a number", chat(messages=[{"role": "user", "content": 5}]), 400, "content"),
    ("n 0", chat(n=0), 400, "n"),
    ("n 65", chat(n=65), 400, "n"),
    ("max_tokens 0", chat(max_tokens=0), 400, "max_tokens"),
    ("top_p 0", chat(top_p=0), 400, "top_p"),
    ("temperature 3", chat(temperature=3), 400, "temperature"),
    ("presence_penalty", chat(presence_penalty=1), 400, "presence_penalty"),
    ("too many logprobs", chat(logprobs=True, top_logprobs=1000), 400, "top_logprobs"),
    ("unknown model", chat(model="nosuch"), 404, "does not exist"),
    ("unknown route", ("/chat/complete", {"messages": USER}), 404, "POST /v1/chat/complete: Not Found"),
    ("tool arguments nested past the JSON parser",
     chat(messages=[*USER, {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {
         "name": "f", "arguments": "[" * 100000 + "]" * 100000}}]}, {"role": "tool", "content": "x"}]), 200, ""),
    ("not JSON", "{", 400, "the body is not valid JSON"),
    ("a JSON list", "[]", 400, "the body must be a JSON object"),
    ("a JSON string", '"hi"', 400, "the body must be a JSON object"),
    # Not hostile after all: a temperature float32 rounds to 0 is greedy; a top_k past the vocabulary means all of it.
    ("temperature 1e-46", chat(temperature=1e-46), 200, ""),
    ("top_k past the vocabulary", chat(temperature=1, top_k=2**31 - 1), 200, ""),
    ("seed at the int64 limit with n 3", chat(temperature=1, seed=2**63 - 1, n=3), 200, ""),
]


@pytest.mark.parametrize("what, request_, status, phrase", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_a_hostile_request_is_answered_and_harms_no_one(client: httpx.Client, what: str, request_: Any, status: int,
                                                        phrase: str) -> None:
    path, body = ("/chat/completions", request_) if isinstance(request_, str) else request_
    expected = normal_answer(client)
    with ThreadPoolExecutor(2) as pool:  # another client's request runs beside the hostile one
        bystander = pool.submit(normal_answer, client)
        reply = post(client, path, body)
        assert bystander.result(timeout=TIMEOUT) == expected
    assert reply.status_code == status, reply.text
    if status != 200:
        error = reply.json()["error"]
        assert phrase in error["message"]
        assert error["type"] == "invalid_request_error"
    assert reply.headers.get("connection") != "close"
    assert normal_answer(client) == expected  # same connection, still answering, same answer


def _random_value(rng: random.Random) -> Any:
    pool = [None, True, -1, 0, 1, 7, 2**31, 2**63, 2**64, -(2**70), 10**30, 1e-46, 1e-300, 0.5, 1e308, -0.0, "", "x",
            "\ud800", "a" * 5000, [], [""], [{}], {}, {"type": "function"}, [{"role": "user"}], [1, 2], {"a": [None]}]
    return rng.choice(pool)


FIELDS = ["model", "temperature", "top_p", "top_k", "repetition_penalty", "n", "stream", "stop", "seed", "logprobs",
          "top_logprobs", "tools", "tool_choice", "stream_options", "presence_penalty", "messages", "prompt", "echo"]


def _read(reply: httpx.Response) -> list[Any]:
    """A streamed reply's events, which must end with [DONE]."""
    events = [line.removeprefix("data: ") for line in reply.text.splitlines() if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", reply.text[-500:]
    return [json.loads(e) for e in events[:-1]]


def test_two_hundred_random_bodies_get_no_5xx_and_no_hang(client: httpx.Client) -> None:
    rng = random.Random(10)
    expected = normal_answer(client)
    statuses: dict[int, int] = {}
    for _ in range(200):
        path, body = rng.choice([chat, completion])()
        for field in rng.sample(FIELDS, rng.randint(1, 3)):
            body[field] = _random_value(rng)
        body["max_tokens"] = rng.choice([1, 4, 8])
        started = time.monotonic()
        reply = post(client, path, body)
        assert time.monotonic() - started < TIMEOUT
        assert reply.status_code < 500, (body, reply.text)
        statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
        if reply.status_code == 200 and body.get("stream") is True:
            assert all("error" not in event for event in _read(reply)), reply.text
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 100  # the fuzz reached both sides
    assert normal_answer(client) == expected


def test_health_says_the_engine_runs_without_a_key(server: Server) -> None:
    reply = httpx.get(server.url.removesuffix("/v1") + "/health", timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"


@pytest.fixture
def long_context_model(tmp_path: Path, smollm2_dir: Path) -> Path:
    """The tiny model with a 64k context: an answer with no max_tokens runs for minutes, like a hung request."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=49152, max_position_embeddings=65536,
                         bos_token_id=1, eos_token_id=None, pad_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "model")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(smollm2_dir / name, tmp_path / "model" / name)
    return tmp_path / "model"


@pytest.mark.parametrize("signals, grace, ending", [
    (1, "2", "the server is stopping: SIGTERM and --shutdown_timeout 2s passed"),
    (2, "600", "the server is stopping: SIGTERM twice"),  # the second signal does not wait for the grace period
])
def test_sigterm_stops_the_server_with_a_request_that_would_run_for_minutes(
        tmp_path: Path, long_context_model: Path, signals: int, grace: str, ending: str) -> None:
    running = Server("--model", str(long_context_model), "--log_interval", "-1", "--shutdown_timeout", grace,
                     log=tmp_path / "deploy.log")
    try:
        with httpx.Client(base_url=running.url, headers=HEADERS, timeout=TIMEOUT) as client, ThreadPoolExecutor(1) as pool:
            body = {"messages": USER, "stream": True, "temperature": 0}
            endless = pool.submit(post, client, "/chat/completions", body)
            time.sleep(2)  # it is generating
            assert not endless.done()
            stopped_at = time.monotonic()
            for _ in range(signals):
                running.process.send_signal(signal.SIGTERM)
                time.sleep(0.5)
            running.process.wait(timeout=30)
            assert time.monotonic() - stopped_at < 15
            reply = endless.result(timeout=TIMEOUT)
        events = _read(reply)  # ends with [DONE]
        assert events[-1]["error"]["message"] == ending
        assert f"SIGTERM: stopping; 1 open request(s) get {grace}s to finish" in running.output()
    finally:
        running.stop()
