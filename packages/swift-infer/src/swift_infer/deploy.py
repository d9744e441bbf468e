"""`swift deploy`: an OpenAI-compatible server in front of the pt engine.

Run as: swift deploy --model M [--adapters name=path ...] [--max_batch_size 16] [--api_key KEY]
Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (streaming with SSE).
Each `name=path` adapter is served as its own model next to the base; an unnamed adapter is part
of the default model (served as --served_model_name).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from swift_args import ArgumentError, Invocation
from swift_data.preprocess.conversation import Conversation
from swift_data.templates.tools import parse_tool_calls

from swift_infer.engines import GenerationSettings, PtEngine
from swift_infer.engines.batcher import BASE_MODEL, Completion, Delta, RequestHandle
from swift_infer.openai_api import (
    ChatCompletionRequest,
    CompletionRequest,
    OpenAIError,
    chat_logprobs,
    completion_logprobs,
    new_id,
    now,
    usage,
)


@dataclass
class ServedModel:
    name: str
    adapter: str | None  # None: the engine's default (base + unnamed adapters); BASE_MODEL: no adapter


def served_models(default_name: str, adapters: list[tuple[str, str, bool]]) -> list[ServedModel]:
    """The default model first, then every named adapter under its own name."""
    unnamed = [name for name, _, named in adapters if not named]
    models = [ServedModel(default_name, unnamed[0] if unnamed else BASE_MODEL)]
    models += [ServedModel(name, name) for name, _, named in adapters if named]
    return models


class Server:
    """The routes' shared state: the engine, what is served, and throughput counters."""

    def __init__(self, engine: PtEngine, args: Any, models: list[ServedModel]):
        self.engine, self.args, self.models = engine, args, {m.name: m for m in models}
        self.defaults = GenerationSettings.from_args(args)
        self.tool_style = None if engine.encoder.template_has_tools else args.tools_prompt

    def model(self, name: str | None) -> ServedModel:
        if name is None:
            return next(iter(self.models.values()))
        if name not in self.models:
            raise OpenAIError(404, f"The model '{name}' does not exist; this server has: {', '.join(self.models)}",
                              param="model", code="model_not_found")
        return self.models[name]

    def settings(self, request: Any, max_tokens: int | None, top_logprobs: int, index: int) -> GenerationSettings:
        """The server's generation arguments, overridden by what the request says."""
        if top_logprobs > self.args.max_logprobs:
            raise OpenAIError(400, f"top_logprobs is {top_logprobs}; this server allows at most {self.args.max_logprobs} "
                              "(--max_logprobs)", param="top_logprobs")
        pick = lambda value, default: default if value is None else value  # noqa: E731
        return GenerationSettings(
            max_new_tokens=pick(max_tokens, self.defaults.max_new_tokens),
            temperature=pick(request.temperature, self.defaults.temperature),
            top_k=pick(request.top_k, self.defaults.top_k),
            top_p=pick(request.top_p, self.defaults.top_p),
            repetition_penalty=pick(request.repetition_penalty, self.defaults.repetition_penalty),
            stop_words=request.stop_words() or self.defaults.stop_words,
            logprobs=bool(request.logprobs), top_logprobs=top_logprobs,
            seed=None if request.seed is None else request.seed + index,  # n choices differ, yet reproducibly
        )

    def submit(self, prompt: list[int], settings: GenerationSettings, model: ServedModel,
               queue: asyncio.Queue, index: int) -> RequestHandle:
        loop = asyncio.get_running_loop()
        deliver = lambda delta: loop.call_soon_threadsafe(queue.put_nowait, (index, delta))  # noqa: E731
        return self.engine.submit(prompt, settings, adapter=model.adapter, on_delta=deliver)

    def log_request(self, request_id: str, model: str, prompt: int, completion: int, started: float) -> None:
        if self.args.verbose:
            print(f"swift deploy: {request_id} model={model} prompt_tokens={prompt} completion_tokens={completion} "
                  f"seconds={time.perf_counter() - started:.2f}", flush=True)

    async def report_throughput(self) -> None:
        """Every --log_interval seconds: requests, prompt and generated tokens/s, and the queue."""
        interval, stats = self.args.log_interval, self.engine.batcher.stats
        last = dict(stats)
        while True:
            await asyncio.sleep(interval)
            current = dict(stats)
            done = {key: current[key] - last[key] for key in current}
            last = current
            running, waiting = self.engine.batcher.load
            print(f"swift deploy: last {interval}s: {done['requests']} requests, prompt {done['prompt_tokens'] / interval:.1f} "
                  f"tokens/s, generation {done['generated_tokens'] / interval:.1f} tokens/s; {running} running, "
                  f"{waiting} waiting", flush=True)


def conversation_of(request: ChatCompletionRequest) -> Conversation:
    messages = []
    for message in request.messages:
        entry: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role, "content": message.text()}
        if message.tool_calls:
            entry["tool_calls"] = [_with_parsed_arguments(call) for call in message.tool_calls]
        messages.append(entry)
    return Conversation(messages, tools=request.tools or None)


def _with_parsed_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """Chat templates expect a tool call's arguments as an object; the API sends a JSON string."""
    function = dict(call.get("function", call))
    if isinstance(function.get("arguments"), str):
        try:
            function["arguments"] = json.loads(function["arguments"])
        except json.JSONDecodeError:
            pass
    return {"type": "function", "function": function}


async def _deltas(queue: asyncio.Queue, count: int, handles: list[RequestHandle]) -> AsyncIterator[tuple[int, Delta]]:
    """Deltas of `count` requests as they come; a reader that goes away cancels them all."""
    open_ = count
    try:
        while open_:
            index, delta = await queue.get()
            if delta.finish_reason == "error":
                raise OpenAIError(500, f"generation failed: {handles[index].error}", kind="server_error")
            if delta.finish_reason is not None:
                open_ -= 1
            yield index, delta
    finally:
        for handle in handles:
            handle.cancel()


async def _collect(queue: asyncio.Queue, handles: list[RequestHandle]) -> list[Completion]:
    """Every request's whole answer, once all of them are done."""
    answers = [Completion("", [], "stop", len(h.prompt_ids)) for h in handles]
    async for index, delta in _deltas(queue, len(handles), handles):
        answers[index].text += delta.text
        answers[index].tokens += delta.tokens
        answers[index].finish_reason = delta.finish_reason or answers[index].finish_reason
    return answers


def _sse(payload: dict[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)}\n\n"


def build_app(engine: PtEngine, args: Any, models: list[ServedModel]) -> FastAPI:
    server = Server(engine, args, models)
    app = FastAPI(title="swift deploy", lifespan=_lifespan(server))

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, error: OpenAIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"] if part != "body")
        message = f"{where}: {problem['msg']}" if where else problem["msg"]
        return JSONResponse(OpenAIError(400, message, param=where or None).body(), status_code=400)

    @app.middleware("http")
    async def check_api_key(request: Request, call_next: Any) -> Any:
        if args.api_key and request.headers.get("authorization") != f"Bearer {args.api_key}":
            error = OpenAIError(401, "Incorrect or missing API key: send the header 'Authorization: Bearer <key>'",
                                code="invalid_api_key")
            return JSONResponse(error.body(), status_code=401)
        return await call_next(request)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        created = now()
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": args.owned_by}
                                           for name in server.models]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest) -> Any:
        model = server.model(request.model)
        conversation = conversation_of(request)
        prompt = engine.prompt_ids(conversation)
        top = request.top_logprobs or 0
        queue: asyncio.Queue = asyncio.Queue()
        handles = [server.submit(prompt, server.settings(request, request.max_completion_tokens or request.max_tokens, top, i),
                                 model, queue, i) for i in range(request.n)]
        tools = bool(request.tools) and request.tool_choice != "none"
        reply = _ChatReply(server, model.name, len(prompt), request, tools)
        if request.stream:
            return StreamingResponse(reply.stream(queue, handles), media_type="text/event-stream")
        return await reply.whole(queue, handles)

    @app.post("/v1/completions", response_model=None)
    async def complete(request: CompletionRequest) -> Any:
        model = server.model(request.model)
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if not prompts:
            raise OpenAIError(400, "prompt: give at least one prompt", param="prompt")
        queue: asyncio.Queue = asyncio.Queue()
        handles, lengths = [], []
        for p, text in enumerate(prompts):
            ids = engine.tokenizer(text)["input_ids"]
            for i in range(request.n):
                index = p * request.n + i
                lengths.append(len(ids))
                handles.append(server.submit(ids, server.settings(request, request.max_tokens, request.logprobs or 0, index),
                                             model, queue, index))
        reply = _CompletionReply(server, model.name, lengths, request)
        if request.stream:
            return StreamingResponse(reply.stream(queue, handles), media_type="text/event-stream")
        return await reply.whole(queue, handles)

    return app


class _ChatReply:
    """Builds /v1/chat/completions answers, whole or as chunks."""

    def __init__(self, server: Server, model: str, prompt_tokens: int, request: ChatCompletionRequest, tools: bool):
        self.server, self.model, self.prompt_tokens, self.request, self.tools = server, model, prompt_tokens, request, tools
        self.id, self.created, self.started = new_id("chatcmpl"), now(), time.perf_counter()
        self.tokenizer = server.engine.tokenizer

    def _message(self, text: str) -> tuple[dict[str, Any], bool]:
        if self.tools:
            content, calls = parse_tool_calls(text, self.server.tool_style)
            if calls:
                calls = [{"id": new_id("call"), **call} for call in calls]
                return {"role": "assistant", "content": content or None, "tool_calls": calls}, True
        return {"role": "assistant", "content": text}, False

    async def whole(self, queue: asyncio.Queue, handles: list[RequestHandle]) -> dict[str, Any]:
        answers = await _collect(queue, handles)
        choices = []
        for index, answer in enumerate(answers):
            message, called = self._message(answer.text)
            choice = {"index": index, "message": message, "finish_reason": "tool_calls" if called else answer.finish_reason,
                      "logprobs": chat_logprobs(self.tokenizer, answer.tokens) if self.request.logprobs else None}
            choices.append(choice)
        completion = sum(a.completion_tokens for a in answers)
        self.server.log_request(self.id, self.model, self.prompt_tokens * len(handles), completion, self.started)
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": choices, "usage": usage(self.prompt_tokens * len(handles), completion)}

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": choices, **extra}

    async def stream(self, queue: asyncio.Queue, handles: list[RequestHandle]) -> AsyncIterator[str]:
        completion, texts = 0, [""] * len(handles)
        for index in range(len(handles)):
            yield _sse(self._chunk([{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
        try:
            async for index, delta in _deltas(queue, len(handles), handles):
                completion += len(delta.tokens)
                texts[index] += delta.text
                reason = delta.finish_reason
                content: dict[str, Any] = {"content": delta.text} if delta.text and not self.tools else {}
                if reason and self.tools:  # tool calls can only be recognised in the whole answer
                    message, called = self._message(texts[index])
                    content = {k: v for k, v in message.items() if k != "role"}
                    reason = "tool_calls" if called else reason
                if content or reason or delta.tokens:
                    choice = {"index": index, "delta": content, "finish_reason": reason,
                              "logprobs": chat_logprobs(self.tokenizer, delta.tokens) if self.request.logprobs else None}
                    yield _sse(self._chunk([choice]))
        except OpenAIError as error:
            yield _sse(error.body())
        options = self.request.stream_options
        if options and options.include_usage:
            yield _sse(self._chunk([], usage=usage(self.prompt_tokens * len(handles), completion)))
        self.server.log_request(self.id, self.model, self.prompt_tokens * len(handles), completion, self.started)
        yield _sse("[DONE]")


class _CompletionReply:
    """Builds /v1/completions answers, whole or as chunks."""

    def __init__(self, server: Server, model: str, prompt_lengths: list[int], request: CompletionRequest):
        self.server, self.model, self.lengths, self.request = server, model, prompt_lengths, request
        self.id, self.created, self.started = new_id("cmpl"), now(), time.perf_counter()
        self.tokenizer = server.engine.tokenizer

    def _choice(self, index: int, text: str, tokens: list[Any], reason: str | None, offset: int = 0) -> dict[str, Any]:
        logprobs = completion_logprobs(self.tokenizer, tokens, offset) if self.request.logprobs is not None else None
        return {"index": index, "text": text, "finish_reason": reason, "logprobs": logprobs}

    def _body(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "choices": choices, **extra}

    async def whole(self, queue: asyncio.Queue, handles: list[RequestHandle]) -> dict[str, Any]:
        answers = await _collect(queue, handles)
        completion = sum(a.completion_tokens for a in answers)
        self.server.log_request(self.id, self.model, sum(self.lengths), completion, self.started)
        choices = [self._choice(i, a.text, a.tokens, a.finish_reason) for i, a in enumerate(answers)]
        return self._body(choices, usage=usage(sum(self.lengths), completion))

    async def stream(self, queue: asyncio.Queue, handles: list[RequestHandle]) -> AsyncIterator[str]:
        completion, sent = 0, [0] * len(handles)
        try:
            async for index, delta in _deltas(queue, len(handles), handles):
                completion += len(delta.tokens)
                yield _sse(self._body([self._choice(index, delta.text, delta.tokens, delta.finish_reason, sent[index])]))
                sent[index] += len(delta.text)
        except OpenAIError as error:
            yield _sse(error.body())
        options = self.request.stream_options
        if options and options.include_usage:
            yield _sse(self._body([], usage=usage(sum(self.lengths), completion)))
        self.server.log_request(self.id, self.model, sum(self.lengths), completion, self.started)
        yield _sse("[DONE]")


def _lifespan(server: Server) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(server.report_throughput()) if server.args.log_interval > 0 else None
        yield
        if task:
            task.cancel()

    return lifespan


def check_can_listen(host: str, port: int) -> None:
    """--host resolves and --port is free there (another server may still take it before uvicorn does)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ArgumentError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ArgumentError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); "
                                "choose another --port or stop the server that holds it") from None


def run_deploy(invocation: Invocation) -> int:
    import uvicorn

    from swift_infer.infer import adapter_names, load_engine

    args = invocation.args
    check_can_listen(args.host, args.port)  # before the model loads, not after minutes of it
    engine = load_engine(args, serve=True)
    models = served_models(args.served_model_name or "default", adapter_names(args.adapters))
    app = build_app(engine, args, models)
    names = ", ".join(m.name for m in models)
    print(f"swift deploy: serving {names} at http://{args.host}:{args.port}/v1 "
          f"({args.max_batch_size} request(s) at a time" + ("; --max_batch_size N serves N at once)" if args.max_batch_size == 1 else ")"),
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
