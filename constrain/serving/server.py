"""An OpenAI-compatible HTTP server over :class:`constrain.LLM`.

    python -m constrain serve --port 8000

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.chat.completions.create(model="any", messages=[...],
                                   response_format={"type": "json_schema", "json_schema": {...}})

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` and
``POST /v1/completions``. One model per server: any ``model`` is accepted and the
configured name is echoed.

Request fields, as OpenAI's: ``messages`` (chat; text content, or a list of text parts),
``prompt`` (completions; a string, a list of one string, or token ids), ``max_tokens`` /
``max_completion_tokens`` (default 256), ``temperature`` (default 1.0, OpenAI's: pass 0
for greedy decoding), ``top_p`` (default 1.0), ``seed``, ``stop`` (a string or a list;
ends free-text outputs only: a constrained output ends where its grammar does), ``n``
(1 only), ``stream`` with ``stream_options.include_usage``, and ``response_format``:
``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` (``strict``: no
property beyond those each object lists), ``{"type": "json_object"}`` or
``{"type": "text"}``. Fields this server cannot honour (``tools``, ``logprobs``,
``logit_bias``, penalties, ``echo``, ``suffix``, ``best_of``) are refused, not ignored;
other unknown fields are ignored.

Extensions, at the top level of the body (the ``openai`` client's ``extra_body``):

* ``"regex": "..."``: the whole output matches this regular expression (Python ``re``
  syntax and semantics).
* ``"grammar": "..."`` with ``"grammar_syntax": "lark"`` (default) or ``"gbnf"``: the
  output is a sentence of this grammar (start rule ``start`` for Lark, ``root`` for GBNF).
* ``"top_k"``: sample among the ``top_k`` likeliest allowed tokens (0, the default: all).

A request takes one constraint at most: a JSON ``response_format``, ``regex`` or ``grammar``.

Errors are OpenAI's JSON, ``{"error": {"message", "type", "param", "code"}}``: 400 for a
malformed body or field, an unsupported or malformed schema, regex or grammar (the message
is constrain's, naming the keyword and its JSON pointer, or the position), a spec over the
compile limits, a prompt too long for the model or a ``max_tokens`` too small for the
shortest output the constraint admits; 413 for a body over ``max_body_bytes``; 500 when
generation itself failed. A client that disconnects cancels its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from jinja2 import TemplateError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import CompileLimitError, PromptTooLongError, SpecError, UnsatisfiableError
from ..specs import GBNF, Lark, Regex, from_response_format
from .engine import Event
from .llm import LLM

__all__ = ["create_app", "serve"]

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_MAX_TOKENS = 256

# Fields whose non-default value would change the output in a way this server cannot honour.
_UNSUPPORTED = ("tools", "functions", "logit_bias", "logprobs", "top_logprobs", "echo", "suffix",
                "frequency_penalty", "presence_penalty")


# ---------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    # Strict: "5" is not an integer, true is not a number, as OpenAI's API has it.
    model_config = ConfigDict(strict=True, extra="ignore")


class _StreamOptions(_Body):
    include_usage: bool = False


class _TextPart(_Body):
    type: Literal["text"]
    text: str


class _Message(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_TextPart]


class _Common(_Body):
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    best_of: int | None = None
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    response_format: dict[str, Any] | None = None
    regex: str | None = None
    grammar: str | None = None
    grammar_syntax: Literal["lark", "gbnf"] | None = None


class _ChatBody(_Common):
    messages: list[_Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class _CompletionBody(_Common):
    prompt: str | list[str] | list[int]


# ---------------------------------------------------------------------- errors


class _APIError(Exception):
    """A request the server answers with an OpenAI-style error."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def response(self) -> JSONResponse:
        return _error(self.status, self.message, param=self.param, code=self.code, kind=self.kind)


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None,
           kind: str = "invalid_request_error") -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


# ---------------------------------------------------------------------- the app


def create_app(llm: LLM, *, model_name: str = DEFAULT_MODEL_NAME, max_body_bytes: int = 4 << 20) -> FastAPI:
    """The OpenAI-compatible app over ``llm``. The app starts ``llm``'s loop when it starts
    (``llm.start()``, a no-op when running already); stopping it is the owner's business.

    ``model_name`` is what ``/v1/models`` lists and every response names; request bodies
    over ``max_body_bytes`` are refused with 413."""
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
    api = _API(llm, model_name, max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        llm.start()
        yield

    app = FastAPI(title="constrain", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.exception_handler(_APIError)
    async def _api_error(request: Request, exc: _APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), code=None if exc.status_code < 500 else "server_error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Anything else is a bug on this side: answer 500 and keep serving.
        return _error(500, f"internal error: {type(exc).__name__}: {exc}", kind="server_error")

    app.get("/health")(api.health)
    app.get("/v1/models")(api.models)
    app.post("/v1/chat/completions")(api.chat)
    app.post("/v1/completions")(api.completions)
    return app


class _API:
    def __init__(self, llm: LLM, model_name: str, max_body_bytes: int):
        self.llm = llm
        self.model_name = model_name
        self.max_body_bytes = max_body_bytes
        self.created = int(time.time())

    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    async def models(self) -> dict[str, Any]:
        card = {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "constrain"}
        return {"object": "list", "data": [card]}

    async def chat(self, request: Request) -> Response:
        raw = await self._read_json(request)
        body = _validate(_ChatBody, raw)
        prompt = [{"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)}
                  for m in body.messages]
        max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
        return await self._run(request, body, prompt, max_tokens, chat=True)

    async def completions(self, request: Request) -> Response:
        raw = await self._read_json(request)
        body = _validate(_CompletionBody, raw)
        prompt: Any = body.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
            if len(prompt) != 1:
                raise _APIError(400, f"one prompt per request, got {len(prompt)}", param="prompt")
            prompt = prompt[0]
        if not prompt:
            raise _APIError(400, "the prompt is empty", param="prompt")
        return await self._run(request, body, prompt, body.max_tokens or DEFAULT_MAX_TOKENS, chat=False)

    # ------------------------------------------------------------------ one request

    async def _read_json(self, request: Request) -> dict[str, Any]:
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise _APIError(400, f"invalid Content-Length {declared!r}")
            if int(declared) > limit:
                raise _APIError(413, f"the body ({declared} bytes) is over the limit of {limit} bytes",
                                code="request_too_large")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise _APIError(413, f"the body is over the limit of {limit} bytes", code="request_too_large")
        try:
            raw = json.loads(data)
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
            raise _APIError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise _APIError(400, f"the body must be a JSON object, not {type(raw).__name__}")
        for key in _UNSUPPORTED:
            if raw.get(key):
                raise _APIError(400, f"'{key}' is not supported by this server", param=key)
        return raw

    async def _run(self, request: Request, body: _Common, prompt: Any, max_tokens: int, *, chat: bool) -> Response:
        if body.n not in (None, 1):
            raise _APIError(400, f"only n=1 is supported, got n={body.n}", param="n")
        if body.best_of not in (None, 1):
            raise _APIError(400, f"only best_of=1 is supported, got best_of={body.best_of}", param="best_of")
        param, spec = _constraint(body)
        llm = self.llm
        try:
            # Compiling may take long: off the event loop, so other requests go on.
            fmt = await run_in_threadpool(llm.resolve_format, spec)
        except SpecError as exc:
            raise _APIError(400, str(exc), param=param) from None
        except CompileLimitError as exc:
            raise _APIError(400, str(exc), param=param, code="compile_limit") from None

        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()

        def on_event(event: Event) -> None:  # on the generation loop's thread
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the event loop has closed: the server is going down
                pass

        sampling = dict(max_new_tokens=max_tokens, temperature=1.0 if body.temperature is None else body.temperature,
                        top_p=1.0 if body.top_p is None else body.top_p, top_k=body.top_k or 0, seed=body.seed,
                        stop=body.stop)
        try:
            req = await run_in_threadpool(llm.submit, prompt, fmt, on_event=on_event, **sampling)
        except UnsatisfiableError as exc:
            tokens = "max_completion_tokens" if getattr(body, "max_completion_tokens", None) else "max_tokens"
            raise _APIError(400, f"{tokens} is too small for this constraint: {exc}", param=tokens) from None
        except PromptTooLongError as exc:
            raise _APIError(400, str(exc), param="messages" if chat else "prompt",
                            code="context_length_exceeded") from None
        except ValueError as exc:  # bad sampling values
            raise _APIError(400, str(exc)) from None
        except TemplateError as exc:  # the model's chat template refused these messages
            raise _APIError(400, f"the chat template refused the messages: {exc}", param="messages") from None

        reply = _Reply(self, request, req, events, chat=chat)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(reply.sse(include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        if not await reply.wait():
            return Response(status_code=499)  # the client has gone; nobody reads this
        done = llm.completion(req)
        if done.finish_reason not in ("stop", "length"):
            raise _finish_error(done.finish_reason, done.error)
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": done.text, "refusal": None},
                      "logprobs": None, "finish_reason": done.finish_reason}
        else:
            choice = {"index": 0, "text": done.text, "logprobs": None, "finish_reason": done.finish_reason}
        out = reply.envelope([choice])
        out["usage"] = _usage(done.prompt_tokens, len(done.token_ids), done.cached_tokens)
        return JSONResponse(out)


class _Reply:
    """The answer to one submitted request: its events, read on the event loop until it
    finishes or its client disconnects (which cancels it), as one body or as SSE chunks."""

    def __init__(self, api: _API, request: Request, req: Any, events: asyncio.Queue[Event], *, chat: bool):
        self.api, self.request, self.req, self.events, self.chat = api, request, req, events, chat
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    async def _events(self) -> AsyncIterator[Event]:
        watcher = asyncio.ensure_future(_disconnected(self.request))
        getter: asyncio.Future[Event] | None = None
        finished = False
        try:
            while True:
                getter = asyncio.ensure_future(self.events.get())
                await asyncio.wait({getter, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    return
                event = getter.result()
                finished = event.finished
                yield event
                if finished:
                    return
        finally:
            watcher.cancel()
            if getter is not None:
                getter.cancel()
            if not finished:
                self.api.llm.abort(self.req)

    async def wait(self) -> bool:
        """Wait for the end; False when the client disconnected first (the request is cancelled)."""
        async for event in self._events():
            if event.finished:
                return True
        return False

    def envelope(self, choices: list[dict[str, Any]], *, chunk: bool = False) -> dict[str, Any]:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.api.model_name,
                "system_fingerprint": None, "choices": choices}

    def _chunk(self, text: str | None, finish_reason: str | None, first: bool = False) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, Any] = {}
            if first:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
        return self.envelope([choice], chunk=True)

    async def sse(self, include_usage: bool) -> AsyncIterator[str]:
        extra = {"usage": None} if include_usage else {}
        if self.chat:
            yield _sse({**self._chunk("", None, first=True), **extra})
        async for event in self._events():
            if event.text:
                yield _sse({**self._chunk(event.text, None), **extra})
            if not event.finished:
                continue
            done = self.api.llm.completion(self.req)
            if done.finish_reason not in ("stop", "length"):
                err = _finish_error(done.finish_reason, done.error)
                yield _sse({"error": {"message": err.message, "type": err.kind, "param": None, "code": err.code}})
            else:
                yield _sse({**self._chunk(None, done.finish_reason), **extra})
                if include_usage:
                    usage = _usage(done.prompt_tokens, len(done.token_ids), done.cached_tokens)
                    yield _sse({**self.envelope([], chunk=True), "usage": usage})
            yield "data: [DONE]\n\n"


# ---------------------------------------------------------------------- helpers


async def _disconnected(request: Request) -> None:
    """Return when the client has gone. Called once the body is read, so ``receive``
    has nothing left to give but the disconnect."""
    receive = request.receive
    while (await receive())["type"] != "http.disconnect":
        pass


# Names inside nested fields, kept in error locations; pydantic's union-branch tags are dropped.
_FIELD_NAMES = set(_Message.model_fields) | set(_TextPart.model_fields) | set(_StreamOptions.model_fields)


def _validate(model: type[_Body], raw: dict[str, Any]) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        where = ".".join(loc[:1] + [p for p in loc[1:] if p.isdigit() or p in _FIELD_NAMES])
        raise _APIError(400, f"invalid '{where}': {first['msg']}" if where else first["msg"],
                        param=loc[0] if loc else None) from None


def _text(content: str | list[_TextPart]) -> str:
    return content if isinstance(content, str) else "".join(part.text for part in content)


def _constraint(body: _Common) -> tuple[str | None, Any]:
    """The one constraint of a request, and the field it came from."""
    given: list[tuple[str, Any]] = []
    if body.response_format is not None:
        try:
            spec = from_response_format(body.response_format)
        except SpecError as exc:
            raise _APIError(400, str(exc), param="response_format") from None
        if spec is not None:
            given.append(("response_format", spec))
    if body.regex is not None:
        given.append(("regex", Regex(body.regex)))
    if body.grammar is not None:
        syntax = body.grammar_syntax or "lark"
        given.append(("grammar", Lark(body.grammar) if syntax == "lark" else GBNF(body.grammar)))
    if len(given) > 1:
        names = " and ".join(name for name, _ in given)
        raise _APIError(400, f"one constraint per request: got {names}", param=given[1][0])
    return given[0] if given else (None, None)


def _finish_error(reason: str | None, error: str | None) -> _APIError:
    if reason == "abort":
        return _APIError(503, "the request was cancelled: the server is shutting down", kind="server_error")
    return _APIError(500, f"generation failed: {error}", kind="server_error", code="generation_failed")


def _usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


# ---------------------------------------------------------------------- serve


def serve(model_dir: str | None = None, host: str = "127.0.0.1", port: int = 8000, *, model_name: str | None = None,
          log_level: str = "warning", max_body_bytes: int = 4 << 20, **llm_kwargs: Any) -> None:
    """Load a model (the bundled SmolLM2-135M-Instruct when ``model_dir`` is None), start
    its loop and serve it until interrupted. ``llm_kwargs`` go to :class:`LLM`
    (``max_batch_size``, ``kv_cache_tokens``, ...). Prints one line once it listens."""
    import uvicorn

    llm = LLM.bundled(**llm_kwargs) if model_dir is None else LLM(model_dir, **llm_kwargs)
    if model_name is None:
        model_name = DEFAULT_MODEL_NAME if model_dir is None else Path(model_dir).resolve().name
    app = create_app(llm, model_name=model_name, max_body_bytes=max_body_bytes)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            access_log=log_level in ("info", "debug", "trace"))

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                print(f"constrain serving {model_name} on http://{host}:{bound}", flush=True)

    llm.start()
    try:
        _Server(config).run()
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then re-raised the Ctrl-C
        pass
    finally:
        llm.shutdown()
