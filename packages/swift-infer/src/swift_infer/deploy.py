"""`swift deploy`: an OpenAI-compatible server in front of the pt engine.

Run as: swift deploy --model M [--adapters name=path ...] [--max_batch_size 16] [--api_key KEY]
Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (streaming with SSE), and
GET /health (no key needed: 200 while the engine runs, 503 once it stopped or the server stops).
Each `name=path` adapter is served as its own model next to the base; an unnamed adapter is part
of the default model (served as --served_model_name).

Every request gets an answer: a malformed one a 400 naming the field, one the engine fails a 500
for that client alone (logged with its id), and on SIGTERM or Ctrl-C running requests get
--shutdown_timeout seconds before they end with a 503 or a stream's error event.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
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
        self.stopping = False  # set on SIGTERM/SIGINT: new requests get a 503

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
            field = "logprobs" if isinstance(request, CompletionRequest) else "top_logprobs"  # the two APIs' names
            raise OpenAIError(400, f"{field}: {top_logprobs} asked; this server allows at most {self.args.max_logprobs} "
                              "(--max_logprobs)", param=field)
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

    def check_prompt(self, ids: list[int], param: str) -> None:
        """A 400 now, rather than an error from the engine after the reply has begun."""
        limit = self.engine.max_length
        if not ids:
            raise OpenAIError(400, f"{param}: the prompt is empty: it needs at least one token", param=param)
        if len(ids) >= limit:
            raise OpenAIError(400, f"{param}: the prompt has {len(ids)} tokens; this model's context is {limit} tokens "
                              f"for prompt and answer together, so a prompt may have at most {limit - 1}",
                              param=param, code="context_length_exceeded")

    def submit(self, prompt: list[int], settings: GenerationSettings, model: ServedModel,
               queue: asyncio.Queue, index: int, request_id: str) -> RequestHandle:
        loop = asyncio.get_running_loop()

        def deliver(delta: Delta) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (index, delta))
            except RuntimeError:  # the event loop has closed (a forced stop): nobody is left to read it
                pass

        return self.engine.submit(prompt, settings, adapter=model.adapter, on_delta=deliver,
                                  request_id=f"{request_id}#{index}")

    def begin_stopping(self, why: str) -> None:
        """New requests get a 503; running ones have --shutdown_timeout seconds before the engine ends them."""
        self.stopping = True
        running, waiting = self.engine.batcher.load
        grace = self.args.shutdown_timeout
        print(f"swift deploy: {why}: stopping; {running + waiting} open request(s) get {grace:g}s to finish "
              "(--shutdown_timeout; send the signal again to end them now)", file=sys.stderr, flush=True)
        timer = threading.Timer(grace, self.engine.batcher.stop_all,
                                args=(f"the server is stopping: {why} and --shutdown_timeout {grace:g}s passed",))
        timer.daemon = True
        timer.start()

    def log_refusal(self, request: Request, error: OpenAIError) -> None:
        if self.args.verbose:
            print(f"swift deploy: {error.status} {request.method} {request.url.path}: {error.message}", flush=True)

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
            entry["tool_calls"] = [_with_parsed_arguments(call.model_dump(exclude_none=True)) for call in message.tool_calls]
        messages.append(entry)
    return Conversation(messages, tools=request.tool_dicts())


def _with_parsed_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """Chat templates expect a tool call's arguments as an object; the API sends a JSON string."""
    function = dict(call.get("function", call))
    if isinstance(function.get("arguments"), str):
        try:
            function["arguments"] = json.loads(function["arguments"])
        except (ValueError, RecursionError):  # not JSON, or nested past the parser: the template gets the text
            pass
    return {"type": "function", "function": function}


def _failure(handle: RequestHandle) -> OpenAIError:
    status = handle.error_status
    kind = "invalid_request_error" if status < 500 else "server_error"
    prefix = "generation failed: " if status == 500 else ""  # a 503 says itself why the server stops
    return OpenAIError(status, prefix + (handle.error or "unknown error"), kind=kind)


async def _deltas(queue: asyncio.Queue, count: int, handles: list[RequestHandle],
                  first: tuple[int, Delta] | None = None) -> AsyncIterator[tuple[int, Delta]]:
    """Deltas of `count` requests as they come; a reader that goes away cancels them all."""
    open_ = count
    try:
        while open_:
            index, delta = first if first is not None else await queue.get()
            first = None
            if delta.finish_reason == "error":
                raise _failure(handles[index])
            if delta.finish_reason is not None:
                open_ -= 1
            yield index, delta
    finally:
        for handle in handles:
            handle.cancel()


async def _first_event(queue: asyncio.Queue, handles: list[RequestHandle]) -> tuple[int, Delta]:
    """Wait for a stream's first event, so a request that fails at once gets an error status, not a 200."""
    try:
        index, delta = await queue.get()
    except BaseException:
        for handle in handles:
            handle.cancel()
        raise
    if delta.finish_reason == "error":
        for handle in handles:
            handle.cancel()
        raise _failure(handles[index])
    return index, delta


async def _collect(queue: asyncio.Queue, handles: list[RequestHandle]) -> list[Completion]:
    """Every request's whole answer, once all of them are done."""
    answers = [Completion("", [], "stop", len(h.prompt_ids)) for h in handles]
    async for index, delta in _deltas(queue, len(handles), handles):
        answers[index].text += delta.text
        answers[index].tokens += delta.tokens
        answers[index].finish_reason = delta.finish_reason or answers[index].finish_reason
    return answers


def _stream_error(error: Exception, request_id: str) -> dict[str, Any]:
    if isinstance(error, OpenAIError):
        return error.body()
    print(f"swift deploy: request {request_id} failed while streaming:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    return OpenAIError(500, f"internal error: {type(error).__name__}: {error}", kind="server_error").body()


def _is_branch_tag(part: Any) -> bool:
    """pydantic names a union's branch in an error's location ('str', 'list[ContentPart]'): not a field."""
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool", "list", "dict", "none"))


def _sse(payload: dict[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)}\n\n"


def build_app(engine: PtEngine, args: Any, models: list[ServedModel]) -> FastAPI:
    server = Server(engine, args, models)
    app = FastAPI(title="swift deploy", lifespan=_lifespan(server))
    app.state.server = server

    @app.exception_handler(OpenAIError)
    async def openai_error(request: Request, error: OpenAIError) -> JSONResponse:
        server.log_refusal(request, error)
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals (an unknown route, a wrong method, a body it cannot parse) in OpenAI's shape."""
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        return await openai_error(request, OpenAIError(error.status_code, f"{request.method} {request.url.path}: "
                                                       f"{error.detail}", kind=kind))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Of a union's failed branches (content: a string or a list of parts), the one that got
        # furthest says what is wrong: an image part, not "Input should be a valid string".
        problem = max(error.errors(), key=lambda e: len(e["loc"]))
        if problem["type"] == "json_invalid":
            detail = (problem.get("ctx") or {}).get("error", "")
            return await openai_error(request, OpenAIError(400, f"the body is not valid JSON: {detail} at character "
                                                                f"{problem['loc'][-1]}"))
        where = ".".join(str(part) for part in problem["loc"] if part != "body" and not _is_branch_tag(part))
        message = problem["msg"].removeprefix("Value error, ")
        if not where and problem["type"] in ("model_attributes_type", "dict_type", "model_type"):
            # The body itself is not an object: a list, a string, or a form (curl -d without -H).
            message = f"the body must be a JSON object, sent with 'Content-Type: application/json' ({message})"
        elif not where and ": " in message:  # a check of the whole body names its field first (a lone surrogate)
            where = message.split(": ", 1)[0]
            message = message.split(": ", 1)[1]
        message = f"{where}: {message}" if where else message
        return await openai_error(request, OpenAIError(400, message, param=where or None))

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        """The API key, the 503 while stopping, and a JSON 500 (logged) for anything unforeseen."""
        if request.url.path == "/health":
            return await call_next(request)
        if args.api_key and request.headers.get("authorization") != f"Bearer {args.api_key}":
            error = OpenAIError(401, "Incorrect or missing API key: send the header 'Authorization: Bearer <key>'",
                                code="invalid_api_key")
            return JSONResponse(error.body(), status_code=401)
        if server.stopping:
            error = OpenAIError(503, "the server is stopping; send the request to another replica", kind="server_error")
            return JSONResponse(error.body(), status_code=503, headers={"Connection": "close"})
        try:
            return await call_next(request)
        except Exception as exc:  # noqa: BLE001 - one request's bug must not cost the client its connection
            print(f"swift deploy: {request.method} {request.url.path} failed:\n{traceback.format_exc()}",
                  file=sys.stderr, flush=True)
            error = OpenAIError(500, f"internal error: {type(exc).__name__}: {exc}", kind="server_error")
            return JSONResponse(error.body(), status_code=500)

    @app.get("/health")
    async def health() -> JSONResponse:
        running, waiting = engine.batcher.load
        if not engine.batcher.alive:
            status = {"status": "engine stopped", "detail": engine.batcher.stopped_because}
            return JSONResponse(status, status_code=503)
        if server.stopping:
            return JSONResponse({"status": "stopping", "running": running, "waiting": waiting}, status_code=503)
        return JSONResponse({"status": "ok", "running": running, "waiting": waiting})

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        created = now()
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": args.owned_by}
                                           for name in server.models]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest) -> Any:
        model = server.model(request.model)
        try:
            prompt = engine.prompt_ids(conversation_of(request))
        except ArgumentError as error:  # the chat template refuses these messages (e.g. roles out of order)
            raise OpenAIError(400, f"messages: {error}", param="messages") from None
        server.check_prompt(prompt, "messages")
        top = request.top_logprobs or 0
        settings = [server.settings(request, request.max_completion_tokens or request.max_tokens, top, i)
                    for i in range(request.n)]
        tools = bool(request.tools) and request.tool_choice != "none"
        reply = _ChatReply(server, model.name, len(prompt), request, tools)
        queue: asyncio.Queue = asyncio.Queue()
        handles = [server.submit(prompt, settings[i], model, queue, i, reply.id) for i in range(request.n)]
        if request.stream:
            first = await _first_event(queue, handles)
            return StreamingResponse(reply.stream(queue, handles, first), media_type="text/event-stream")
        return await reply.whole(queue, handles)

    @app.post("/v1/completions", response_model=None)
    async def complete(request: CompletionRequest) -> Any:
        model = server.model(request.model)
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        encoded = [engine.tokenizer(text)["input_ids"] for text in prompts]
        for p, ids in enumerate(encoded):
            server.check_prompt(ids, "prompt" if isinstance(request.prompt, str) else f"prompt.{p}")
        jobs = [(ids, server.settings(request, request.max_tokens, request.logprobs or 0, p * request.n + i))
                for p, ids in enumerate(encoded) for i in range(request.n)]
        reply = _CompletionReply(server, model.name, [len(ids) for ids, _ in jobs], request)
        queue: asyncio.Queue = asyncio.Queue()
        handles = [server.submit(ids, settings, model, queue, index, reply.id) for index, (ids, settings) in enumerate(jobs)]
        if request.stream:
            first = await _first_event(queue, handles)
            return StreamingResponse(reply.stream(queue, handles, first), media_type="text/event-stream")
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

    async def stream(self, queue: asyncio.Queue, handles: list[RequestHandle],
                     first: tuple[int, Delta] | None = None) -> AsyncIterator[str]:
        completion, texts = 0, [""] * len(handles)
        for index in range(len(handles)):
            yield _sse(self._chunk([{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
        try:
            async for index, delta in _deltas(queue, len(handles), handles, first):
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
        except Exception as error:  # noqa: BLE001 - the status is sent: the error goes in the stream
            yield _sse(_stream_error(error, self.id))
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

    async def stream(self, queue: asyncio.Queue, handles: list[RequestHandle],
                     first: tuple[int, Delta] | None = None) -> AsyncIterator[str]:
        completion, sent = 0, [0] * len(handles)
        try:
            async for index, delta in _deltas(queue, len(handles), handles, first):
                completion += len(delta.tokens)
                yield _sse(self._body([self._choice(index, delta.text, delta.tokens, delta.finish_reason, sent[index])]))
                sent[index] += len(delta.text)
        except Exception as error:  # noqa: BLE001 - the status is sent: the error goes in the stream
            yield _sse(_stream_error(error, self.id))
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


def check_can_listen(host: str, port: int, names: tuple[str, str] = ("--host", "--port")) -> None:
    """--host resolves and --port is free there (another server may still take it before uvicorn does). `names`:
    the two arguments as the calling command calls them."""
    host_arg, port_arg = names
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ArgumentError(f"{host_arg} {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ArgumentError(f"{host_arg} {host} {port_arg} {port}: cannot listen there ({exc.strerror}); "
                                f"choose another {port_arg} or stop the server that holds it") from None


def run_deploy(invocation: Invocation) -> int:
    from swift_infer.infer import adapter_names, load_engine
    from swift_infer.merge import merge_for_inference

    args = invocation.args
    check_can_listen(args.host, args.port)  # before the model loads, not after minutes of it
    merge_for_inference(args)
    engine = load_engine(args, serve=True)
    models = served_models(args.served_model_name or "default", adapter_names(args.adapters))
    app = build_app(engine, args, models)
    names = ", ".join(m.name for m in models)
    print(f"swift deploy: serving {names} at http://{args.host}:{args.port}/v1 "
          f"({args.max_batch_size} request(s) at a time" + ("; --max_batch_size N serves N at once)" if args.max_batch_size == 1 else ")"),
          flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=args.shutdown_timeout + 5)  # a backstop if the engine is stuck
    GracefulServer(config, app.state.server).run()
    return 0


class GracefulServer(uvicorn.Server):
    """uvicorn's server, stopping within --shutdown_timeout on SIGTERM as on Ctrl-C.

    uvicorn alone waits for every open request before it stops, forever if one never ends, and
    only a second Ctrl-C (not a second SIGTERM) forces it. Here the first signal stops accepting
    requests and gives the running ones --shutdown_timeout seconds; then the engine ends them
    (a 503, or an error event and [DONE] in a stream) and the server stops. A second signal of
    either kind ends them at once; a third exits without waiting for anything (a stuck engine).
    """

    def __init__(self, config: uvicorn.Config, server: Server):
        super().__init__(config)
        self.swift = server
        self.signals = 0

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.signals += 1
        name = signal.Signals(sig).name
        if self.signals == 1:
            super().handle_exit(sig, frame)
            self.swift.begin_stopping(name)
        elif self.signals == 2:
            print(f"swift deploy: {name} again: ending the open requests now (a third signal exits at once)",
                  file=sys.stderr, flush=True)
            self.swift.engine.batcher.stop_all(f"the server is stopping: {name} twice")
        else:
            self.force_exit = True
