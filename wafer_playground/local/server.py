"""Starlette app speaking the Wafer API in front of llama-server child processes.

One llama-server per model (`-np 1`), reached over loopback with a pooled
`httpx.AsyncClient`. The adapter owns everything Wafer promises that llama-server does not:
strict request validation, Wafer's error envelope and request ids, token-ID-only
completions with XGrammar-dialect `ebnf` (checked by `wafer_playground.grammar`, then
translated to GBNF), `stop_token_ids` / `min_tokens` emulation, legacy completion logprobs,
the Anthropic Messages surface, a bounded per-model queue, and usage/metrics from its own
request log. Streams are forwarded event by event; a client disconnect cancels the
upstream request (the connection is closed, and llama-server stops generating).

Extensions (documented on the cards under `local.extensions`):
- completions `logprobs` adds `token_ids` and `top_logprobs_by_id` ([{id, token, bytes,
  logprob}] per position) next to SGLang's `tokens`/`token_logprobs`/`top_logprobs`/
  `text_offset`, so a UI can fork generation on an exact token id.
- `POST /tokenize`, `/detokenize`, `/apply-template` (also under /v1), routed by `model`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wafer_playground import media
from wafer_playground.local import cards
from wafer_playground.local import messages as anth
from wafer_playground.local.files import FileStore, check_headers, owner_of
from wafer_playground.local.reqlog import PERIODS, RANGES, RequestLog, RequestRecord
from wafer_playground.local.validation import (
    CHAT_FIELDS,
    COMPLETION_FIELDS,
    MESSAGES_FIELDS,
    ApiError,
    check_fields,
    check_messages,
    check_prompt,
    check_response_format,
    check_token_ids,
    check_tools,
    schema_error,
)

log = logging.getLogger("wafer_playground.local.server")

# Wafer's cap on a request body (inline media count toward it; addendum §1.1); also what
# stops memory abuse
MAX_BODY = media.MAX_BYTES
COMPLETION_DEFAULT_MAX_TOKENS = 16  # SGLang's default for /v1/completions
# Neutral sampling defaults (SGLang/OpenAI semantics) instead of llama.cpp's own
# (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05), so results mean the same as on Wafer.
NEUTRAL = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


@dataclass
class Backend:
    """One llama-server child serving one model."""

    spec: cards.LocalModelSpec
    url: str
    n_ctx: int
    n_vocab: int
    meta: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    client: httpx.AsyncClient | None = None
    slot: asyncio.Semaphore | None = None
    admitted: int = 0  # running + waiting requests

    def card(self, max_output: int) -> dict[str, Any]:
        return cards.model_card(self.spec, n_ctx=self.n_ctx, max_output_tokens=max_output,
                                n_vocab=self.n_vocab, meta=self.meta)


@dataclass
class EngineConfig:
    api_key: str | None = None
    queue_size: int = 8  # waiting requests per model beyond the ones running
    parallel: int = 1  # requests running at once per model (llama-server's -np slots)
    max_output_tokens: int = cards.DEFAULT_MAX_OUTPUT
    # tests inject faults here (a transport that refuses, breaks mid-stream, answers junk)
    upstream_transport: httpx.AsyncBaseTransport | None = None
    files: FileStore | None = None  # POST /v1/files storage (default: under the cache root)


# --- request ids and the envelope ------------------------------------------------------------


def _clean_client_id(raw: bytes) -> str | None:
    text = raw.decode("latin-1").strip()
    text = "".join(c for c in text if 32 < ord(c) < 127)[:128]
    return "client_" + text if text else None


class RequestIdMiddleware:
    """Outermost ASGI layer: every HTTP response carries `x-request-id`, even a crash's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                rid = _clean_client_id(v)
                break
        rid = rid or "req_" + secrets.token_hex(6)
        scope.setdefault("state", {})["request_id"] = rid
        extra = [(b"x-request-id", rid.encode())]
        if scope.get("path", "").startswith("/v1/messages"):
            # the anthropic SDK reads `request-id` (Anthropic's header), not x-request-id
            extra.append((b"request-id", rid.encode()))
        sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                sent = True
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in request %s", rid)
            if sent:
                raise
            err = ApiError(500, "internal_error", "Internal error in the local engine",
                           type="api_error")
            await error_response(err, rid)(scope, receive, send_with_id)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(err: ApiError, rid: str, *, anthropic: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"error": err.envelope(rid)}
    if anthropic:
        body = {"type": "error", "error": err.envelope(rid)}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse(obj: Any) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


DONE = b"data: [DONE]\n\n"


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class EventStream:
    """SSE response that sends nothing until the first event (so early errors are plain HTTP
    errors), and cancels the producer as soon as the client goes away."""

    def __init__(self, gen: AsyncGenerator[bytes, None], rid: str, *,
                 anthropic: bool = False) -> None:
        self.gen = gen
        self.rid = rid
        self.anthropic = anthropic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def start() -> None:
            nonlocal started
            started = True
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]})

        async def pump() -> None:
            try:
                async for chunk in self.gen:
                    if not started:
                        await start()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except ApiError as err:
                if not started:
                    await error_response(err, self.rid, anthropic=self.anthropic)(
                        scope, receive, send)
                    return
                env = err.envelope(self.rid)
                tail = (anth.sse_event("error", {"type": "error", "error": env})
                        if self.anthropic else sse({"error": env}) + DONE)
                await send({"type": "http.response.body", "body": tail, "more_body": True})
            finally:
                await self.gen.aclose()
            if not started:
                await start()
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        pump_task = asyncio.ensure_future(pump())
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({pump_task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (pump_task, watch):
                t.cancel()
            results = await asyncio.gather(pump_task, watch, return_exceptions=True)
        exc = results[0]
        if isinstance(exc, BaseException) and not isinstance(exc, asyncio.CancelledError):
            raise exc


async def run_cancellable(request: Request, work: Awaitable[Any]) -> Any:
    """Await `work`, cancelling it if the client disconnects first (frees the model slot)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_wait_disconnect(request.receive))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise ApiError(499, "client_disconnected", "Client closed the request")
    return task.result()


# --- the engine ----------------------------------------------------------------------------


@dataclass
class Ticket:
    backend: Backend
    live: bool = True

    def release(self) -> None:
        if self.live:
            self.live = False
            self.backend.admitted -= 1


@dataclass
class Final:
    finish_reason: str
    matched_stop: int | str | None
    completion_tokens: int
    cached_tokens: int


@dataclass
class Piece:
    text: str
    ids: list[int]
    probs: list[dict[str, Any]]


class LocalEngineApp:
    def __init__(self, backends: list[Backend], config: EngineConfig) -> None:
        self.backends = {b.spec.id: b for b in backends}
        self.default_model = (cards.DEFAULT_MODEL if cards.DEFAULT_MODEL in self.backends
                              else backends[0].spec.id)
        self.config = config
        self.log = RequestLog()
        self.files = config.files or FileStore()
        self.files_owner = owner_of(config.api_key)  # one engine, one user (its key)

    # --- plumbing --------------------------------------------------------------------------

    def check_auth(self, request: Request) -> None:
        key = self.config.api_key
        if not key:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if given is None:
            given = request.headers.get("x-api-key")
        if given is None or not hmac.compare_digest(given.encode(), key.encode()):
            raise ApiError(401, "invalid_api_key",
                           "Missing or invalid API key: send Authorization: Bearer <key>"
                           if given is None else "Invalid API key")

    def resolve(self, model: Any, *, default: bool = False) -> Backend:
        if model is None:
            if default:
                return self.backends[self.default_model]
            raise schema_error("model", "model is required")
        if not isinstance(model, str) or not model:
            raise schema_error("model", "model must be a non-empty string")
        b = self.backends.get(model)
        if b is None:
            b = next((x for x in self.backends.values() if x.spec.id.lower() == model.lower()),
                     None)
        if b is None:
            raise ApiError(404, "model_not_found",
                           f"The model '{model}' does not exist or is not served by this "
                           f"engine. Available: {', '.join(self.backends)}", param="model")
        return b

    @staticmethod
    def check_zdr(request: Request, b: Backend) -> None:
        value = request.headers.get("wafer-zdr")
        if value is None:
            return
        if value.strip().lower() != "required":
            raise ApiError(400, "invalid_header", "Wafer-ZDR only accepts the value 'required'",
                           param="Wafer-ZDR")
        if not b.spec.zdr_supported:
            raise ApiError(422, "model_zdr_not_supported",
                           f"Model '{b.spec.id}' does not support Zero Data Retention "
                           "(zdr_supported is false); drop the Wafer-ZDR header or pick a "
                           "ZDR model", param="model")

    def admit(self, b: Backend) -> Ticket:
        if b.admitted >= self.config.parallel + self.config.queue_size:
            retry = max(1, b.admitted)
            raise ApiError(429, "rate_limit_exceeded",
                           f"Model '{b.spec.id}' is busy: {b.admitted} requests running or "
                           f"queued (limit {self.config.parallel + self.config.queue_size}). "
                           "Retry later.",
                           headers={"Retry-After": str(retry)})
        b.admitted += 1
        return Ticket(b)

    async def read_json(self, request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise ApiError(413, "request_too_large",
                           f"Request body exceeds {MAX_BODY // (1 << 20)} MiB")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ApiError(413, "request_too_large",
                           f"Request body exceeds {MAX_BODY // (1 << 20)} MiB")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise ApiError(400, "invalid_json_request", "Could not parse JSON body") from None
        if b"\\ud" in raw.lower():  # only an escape can smuggle in an unpaired surrogate
            try:
                json.dumps(body, ensure_ascii=False).encode()
            except UnicodeEncodeError:
                raise ApiError(400, "invalid_json_request", "The JSON body contains an "
                               "unpaired UTF-16 surrogate escape (\\ud800-\\udfff)") from None
        if not isinstance(body, dict):
            raise schema_error("body", "The request body must be a JSON object")
        return body

    @staticmethod
    def upstream_error(status: int, content: bytes) -> ApiError:
        try:
            err = json.loads(content).get("error", {})
            msg, kind = str(err.get("message", "")), str(err.get("type", ""))
        except (ValueError, AttributeError):
            msg, kind = content[:300].decode(errors="replace"), ""
        if kind == "exceed_context_size_error":
            return ApiError(400, "context_length_exceeded", msg)
        if status == 500 and "grammar" in msg:
            # e.g. a literal no token of this vocabulary can produce ("\x00")
            return ApiError(400, "unsupported_grammar",
                            f"llama.cpp could not apply this grammar with this model's "
                            f"vocabulary ({msg})", param="ebnf")
        if status == 400 and "grammar" in msg:
            # our checker accepted it (Wafer would too), but llama.cpp's GBNF cannot apply it
            return ApiError(400, "invalid_grammar",
                            f"The grammar is valid Wafer EBNF but llama.cpp could not apply it "
                            f"on the local engine ({msg})", param="ebnf")
        if status == 400:
            return ApiError(400, "invalid_request", f"llama-server rejected the request: {msg}")
        if status == 503:
            return ApiError(503, "engine_unavailable", f"Model is not ready: {msg}",
                            type="api_error", headers={"Retry-After": "2"})
        return ApiError(502, "upstream_error", f"llama-server error {status}: {msg}",
                        type="api_error")

    async def up_json(self, b: Backend, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert b.client is not None
        for attempt in range(2):
            try:
                r = await b.client.post(path, content=_dumps(body),
                                        headers={"content-type": "application/json"})
                break
            except httpx.HTTPError as exc:
                if attempt == 0 and isinstance(exc, _STALE):
                    continue  # a pooled keep-alive connection the server had just closed
                raise ApiError(503, "engine_unavailable",
                               f"llama-server for '{b.spec.id}' is not reachable "
                               f"({type(exc).__name__})",
                               type="api_error", headers={"Retry-After": "2"}) from None
        if r.status_code >= 400:
            raise self.upstream_error(r.status_code, r.content)
        try:
            data: dict[str, Any] = r.json()
        except ValueError:
            raise ApiError(502, "upstream_error", "llama-server answered with a body that is "
                           "not JSON", type="api_error") from None
        return data

    async def up_stream(self, b: Backend, path: str, body: dict[str, Any]
                        ) -> AsyncIterator[dict[str, Any]]:
        """Upstream SSE events as dicts. Leaving the loop closes the upstream connection,
        which is how llama-server learns to stop generating."""
        assert b.client is not None
        yielded = False
        for attempt in range(2):
            try:
                async with b.client.stream("POST", path, content=_dumps(body),
                                           headers={"content-type": "application/json"}) as r:
                    if r.status_code >= 400:
                        raise self.upstream_error(r.status_code, await r.aread())
                    async for line in r.aiter_lines():
                        if not line.startswith("data: "):
                            continue  # blank separators and `: ping` comments
                        data = line[6:]
                        if data == "[DONE]":
                            return
                        ev = json.loads(data)
                        if "error" in ev and "choices" not in ev:
                            e = ev["error"]
                            raise self.upstream_error(int(e.get("code", 500) or 500),
                                                      json.dumps({"error": e}).encode())
                        yielded = True
                        yield ev
                return
            except httpx.HTTPError as exc:
                if attempt == 0 and not yielded and isinstance(exc, _STALE):
                    continue  # a pooled keep-alive connection the server had just closed
                raise ApiError(503, "engine_unavailable",
                               f"lost the connection to llama-server for '{b.spec.id}' "
                               f"({type(exc).__name__})", type="api_error") from None

    def check_max_output(self, b: Backend, requested: int | None, param: str) -> int:
        """The card's max_output_tokens is a limit, not a hint: a larger max_tokens is
        refused (400), never silently cut. Returns the effective value."""
        cap = self.config.max_output_tokens
        if requested is not None and requested > cap:
            raise ApiError(400, "max_tokens_exceeded",
                           f"{param} is {requested}, but model '{b.spec.id}' produces at most "
                           f"{cap} tokens (max_output_tokens on its card)", param=param)
        return requested or cap

    def resolve_max_tokens(self, b: Backend, requested: int | None, n_prompt: int,
                           default: int | None, param: str = "max_tokens") -> int:
        if n_prompt >= b.n_ctx:
            raise ApiError(400, "context_length_exceeded",
                           f"This model's maximum context length is {b.n_ctx} tokens, but the "
                           f"prompt has {n_prompt} tokens", param="messages")
        cap = self.config.max_output_tokens
        if requested is not None:
            eff = self.check_max_output(b, requested, param)
            if n_prompt + eff > b.n_ctx:
                raise ApiError(400, "context_length_exceeded",
                               f"This model's maximum context length is {b.n_ctx} tokens, but "
                               f"{n_prompt + eff} were requested ({n_prompt} in the prompt, "
                               f"{eff} for the completion)", param=param)
            return eff
        return min(default or cap, cap, b.n_ctx - n_prompt)

    async def count_chat_prompt(self, b: Backend, up: dict[str, Any]) -> int:
        """Exact prompt length: render the chat template, then tokenize the result."""
        tmpl: dict[str, Any] = {k: up[k] for k in ("messages", "tools", "tool_choice",
                                                   "response_format", "parallel_tool_calls")
                                if k in up}
        prompt = (await self.up_json(b, "/apply-template", tmpl))["prompt"]
        toks = await self.up_json(b, "/tokenize", {"content": prompt, "add_special": True})
        return len(toks["tokens"])

    # --- handler wrapper -------------------------------------------------------------------

    def endpoint(self, fn: Callable[[Request, RequestRecord | None], Awaitable[Any]], *,
                 logged: str | None = None, auth: bool = True, anthropic: bool = False
                 ) -> Callable[[Request], Awaitable[Response | EventStream]]:
        async def handler(request: Request) -> Response | EventStream:
            rid = request_id(request)
            rec = self.log.start(rid, logged) if logged else None
            try:
                if auth:
                    self.check_auth(request)
                result = await fn(request, rec)
            except ApiError as err:
                if rec:
                    self.log.finish(rec, err.status, err.code)
                return error_response(err, rid, anthropic=anthropic)
            except Exception:
                log.exception("error in %s", request.url.path)
                if rec:
                    self.log.finish(rec, 500, "internal_error")
                return error_response(ApiError(500, "internal_error",
                                               "Internal error in the local engine",
                                               type="api_error"), rid, anthropic=anthropic)
            if isinstance(result, EventStream):
                return result  # an ASGI app; it logs itself
            if rec:
                self.log.finish(rec, 200)
            return JSONResponse(result)

        return handler

    # --- GET /v1/models ----------------------------------------------------------------------

    async def models(self, request: Request, rec: RequestRecord | None) -> dict[str, Any]:
        cap = self.config.max_output_tokens
        return {"object": "list", "data": [b.card(cap) for b in self.backends.values()]}

    async def model(self, request: Request, rec: RequestRecord | None) -> dict[str, Any]:
        """GET /v1/models/{id}: one card (what the openai SDK's models.retrieve reads)."""
        return self.resolve(request.path_params["model_id"]).card(self.config.max_output_tokens)

    # --- POST /v1/files ------------------------------------------------------------------------

    async def upload_file(self, request: Request, rec: RequestRecord | None) -> dict[str, Any]:
        up = check_headers(request.headers)
        return await self.files.save(self.files_owner, up, request.headers.get("content-length"),
                                     request.stream())

    def check_media(self, refs: list[media.MediaRef], b: Backend) -> None:
        """Resolve file ids (404 `file_not_found` for unknown or expired ones), then refuse
        media for a text-only model (every local model is text-only)."""
        for ref in refs:
            # any purpose may sit in an image_url part: the app's default sends documents
            # and videos in the documented image form (wafer_playground/media.py)
            if ref.file_id is not None:
                self.files.get(self.files_owner, ref.file_id,
                               param=f"{ref.path}.{ref.kind}.file_id")
        if refs:
            first = refs[0]
            raise ApiError(400, "model_capability_unsupported",
                           f"Model '{b.spec.id}' is text-only (capabilities.vision is false): "
                           f"it cannot take images, documents or video ({first.path} is a "
                           f"{first.kind} part). Send text only, or pick a vision model",
                           param=first.path)

    # --- POST /v1/chat/completions -----------------------------------------------------------

    def _chat_common(self, request: Request, body: dict[str, Any], rec: RequestRecord | None
                     ) -> Backend:
        b = self.resolve(body.get("model"))
        if rec:
            rec.model = b.spec.id
        self.check_zdr(request, b)
        if not b.spec.chat_template:
            raise ApiError(400, "chat_template_missing",
                           f"Model '{b.spec.id}' is a base model without a chat template, so "
                           "it cannot serve chat. Use POST /v1/completions with token-ID "
                           "prompts (see /v1/tokenize)", param="model")
        return b

    async def chat(self, request: Request, rec: RequestRecord | None) -> Any:
        assert rec is not None
        body = await self.read_json(request)
        check_fields(body, CHAT_FIELDS, "/v1/chat/completions")
        b = self._chat_common(request, body, rec)
        effort = body.get("reasoning_effort")
        if effort is not None and effort != "none":
            raise ApiError(400, "reasoning_not_supported",
                           f"Model '{b.spec.id}' does not support reasoning "
                           "(capabilities.reasoning is false); omit reasoning_effort or send "
                           "\"none\"", param="reasoning_effort")
        anth.check_thinking(body.get("thinking"))
        if body.get("enable_thinking") is True:
            raise ApiError(400, "reasoning_not_supported",
                           "This model does not support reasoning", param="enable_thinking")
        ctk = body.get("chat_template_kwargs") or {}
        for k, v in ctk.items():
            if k != "enable_thinking":
                raise schema_error(f"chat_template_kwargs.{k}",
                                   f"Unsupported chat_template_kwargs key '{k}'")
            if v is not False:
                raise ApiError(400, "reasoning_not_supported",
                               "This model does not support reasoning",
                               param="chat_template_kwargs.enable_thinking")
        if "messages" not in body:
            raise schema_error("messages", "messages is required")
        self.check_media(check_messages(body["messages"]), b)
        names = check_tools(body.get("tools"), body.get("tool_choice"))
        if names and not b.spec.tools:
            raise ApiError(400, "model_capability_unsupported",
                           f"Model '{b.spec.id}' does not support tools", param="tools")
        if body.get("response_format") is not None:
            check_response_format(body["response_format"])
        if body.get("top_logprobs") is not None and not body.get("logprobs"):
            raise schema_error("top_logprobs", "top_logprobs requires logprobs: true")
        if body.get("logprobs") and body.get("tools") and body.get("stream"):
            raise ApiError(400, "unsupported_parameter_combination",
                           "logprobs with tools is not supported when streaming on the local "
                           "engine", param="logprobs")
        up = self._chat_upstream(body)
        requested = body.get("max_tokens")
        if requested is None:
            requested = body.get("max_completion_tokens")
        param = "max_tokens" if body.get("max_tokens") is not None else "max_completion_tokens"
        eff = self.check_max_output(b, requested, param)
        if _prompt_token_bound(up) + eff <= b.n_ctx:
            up["max_tokens"] = eff  # provably fits: skip two round trips on the hot path
        else:
            n_prompt = await self.count_chat_prompt(b, up)
            up["max_tokens"] = self.resolve_max_tokens(b, requested, n_prompt, None, param)
        top_k = int(body.get("top_logprobs") or 0) if body.get("logprobs") else None
        stream = body.get("stream") is True
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        rec.streaming = stream
        ticket = self.admit(b)
        if stream:
            up["stream"] = True
            up["stream_options"] = {"include_usage": True}  # always: the log needs usage
            return EventStream(self._chat_stream(b, up, rec, ticket, include_usage, top_k),
                               request_id(request))
        try:
            data = await run_cancellable(request, self._chat_once(b, up, rec))
        finally:
            ticket.release()
        if top_k is not None:
            for ch in data.get("choices", []):
                _trim_chat_logprobs(ch.get("logprobs"), top_k)
        return data

    @staticmethod
    def _chat_upstream(body: dict[str, Any]) -> dict[str, Any]:
        up: dict[str, Any] = {"messages": body["messages"], **NEUTRAL, "cache_prompt": True}
        for k in ("temperature", "top_p", "min_p", "frequency_penalty", "presence_penalty",
                  "stop", "seed", "logit_bias", "tools", "tool_choice", "parallel_tool_calls",
                  "response_format"):
            if body.get(k) is not None:
                up[k] = body[k]
        if body.get("top_k") is not None:
            up["top_k"] = max(0, body["top_k"])  # SGLang -1 == llama.cpp 0 == disabled
        if body.get("repetition_penalty") is not None:
            up["repeat_penalty"] = body["repetition_penalty"]  # llama.cpp's name for it
        if body.get("logprobs"):
            up["logprobs"] = True
            # llama.cpp returns no logprobs at all with top_logprobs 0; ask for 1, trim later
            up["top_logprobs"] = max(1, int(body.get("top_logprobs") or 0))
        return up

    async def _chat_once(self, b: Backend, up: dict[str, Any], rec: RequestRecord
                         ) -> dict[str, Any]:
        assert b.slot is not None
        async with b.slot:
            t0 = time.perf_counter()
            data = await self.up_json(b, "/v1/chat/completions", up)
        timings = data.pop("timings", None) or {}
        data.pop("system_fingerprint", None)
        data["model"] = b.spec.id
        for ch in data.get("choices", []):
            ch.setdefault("logprobs", None)
        self._record_usage(rec, data.get("usage") or {})
        if timings.get("predicted_n"):
            first = timings.get("prompt_ms", 0) + timings["predicted_ms"] / timings["predicted_n"]
            rec.ttft_ms = (t0 - rec._t0) * 1000 + first
        return data

    @staticmethod
    def _record_usage(rec: RequestRecord, usage: dict[str, Any]) -> None:
        rec.input_tokens += int(usage.get("prompt_tokens", 0))
        rec.output_tokens += int(usage.get("completion_tokens", 0))
        rec.cached_tokens += int((usage.get("prompt_tokens_details") or {})
                                 .get("cached_tokens", 0) or 0)

    @contextlib.asynccontextmanager
    async def _outcome(self, rec: RequestRecord, ticket: Ticket, what: str
                       ) -> AsyncIterator[None]:
        """Release the queue slot and log how a streamed request ended, whatever ends it.

        A client that goes away closes the generator (GeneratorExit/CancelledError pass
        through untouched), which is logged as 499.
        """
        status: int = 499
        code: str | None = "client_disconnected"
        try:
            yield
            status, code = 200, None
        except ApiError as err:
            status, code = err.status, err.code
            raise
        except Exception:
            status, code = 500, "internal_error"
            log.exception("%s stream failed", what)
            raise ApiError(500, "internal_error", "Internal error in the local engine",
                           type="api_error") from None
        finally:
            ticket.release()
            self.log.finish(rec, status, code)

    async def _chat_stream(self, b: Backend, up: dict[str, Any], rec: RequestRecord,
                           ticket: Ticket, include_usage: bool, top_k: int | None
                           ) -> AsyncGenerator[bytes, None]:
        async with self._outcome(rec, ticket, "chat"):
            assert b.slot is not None
            async with b.slot:
                async for ev in self.up_stream(b, "/v1/chat/completions", up):
                    ev.pop("timings", None)
                    ev.pop("system_fingerprint", None)
                    choices = ev.get("choices")
                    if not choices:
                        if ev.get("usage"):
                            self._record_usage(rec, ev["usage"])
                            if include_usage:
                                yield sse(ev)
                        continue
                    if rec.ttft_ms is None:
                        d = choices[0].get("delta") or {}
                        if d.get("content") or d.get("tool_calls"):
                            rec.first_token()
                    if top_k is not None:
                        _trim_chat_logprobs(choices[0].get("logprobs"), top_k)
                    yield sse(ev)
            yield DONE

    # --- POST /v1/messages -------------------------------------------------------------------

    async def messages(self, request: Request, rec: RequestRecord | None) -> Any:
        assert rec is not None
        body = await self.read_json(request)
        check_fields(body, MESSAGES_FIELDS, "/v1/messages")
        if "max_tokens" not in body or body["max_tokens"] is None:
            raise schema_error("max_tokens", "max_tokens is required")
        if "messages" not in body:
            raise schema_error("messages", "messages is required")
        b = self._chat_common(request, body, rec)
        conv = anth.to_openai(body)
        if conv.get("tools") and not b.spec.tools:
            raise ApiError(400, "model_capability_unsupported",
                           f"Model '{b.spec.id}' does not support tools", param="tools")
        up: dict[str, Any] = {**conv, **NEUTRAL, "cache_prompt": True, "verbose": True}
        for k in ("temperature", "top_p"):
            if body.get(k) is not None:
                up[k] = body[k]
        if body.get("top_k") is not None:
            up["top_k"] = body["top_k"]
        if body.get("stop_sequences") is not None:
            up["stop"] = body["stop_sequences"]
        n_prompt = await self.count_chat_prompt(b, up)
        up["max_tokens"] = self.resolve_max_tokens(b, body["max_tokens"], n_prompt, None)
        stream = body.get("stream") is True
        rec.streaming = stream
        ticket = self.admit(b)
        if stream:
            up["stream"] = True
            up["stream_options"] = {"include_usage": True}
            return EventStream(self._messages_stream(b, up, rec, ticket, n_prompt),
                               request_id(request), anthropic=True)
        try:
            data = await run_cancellable(request, self._chat_once(b, up, rec))
        finally:
            ticket.release()
        return anth.from_openai(data, b.spec.id)

    async def _messages_stream(self, b: Backend, up: dict[str, Any], rec: RequestRecord,
                               ticket: Ticket, n_prompt: int
                               ) -> AsyncGenerator[bytes, None]:
        tr = anth.StreamTranslator(b.spec.id, n_prompt)
        usage: dict[str, Any] = {}
        async with self._outcome(rec, ticket, "messages"):
            assert b.slot is not None
            async with b.slot:
                yield tr.start()
                async for ev in self.up_stream(b, "/v1/chat/completions", up):
                    if ev.get("usage") and not ev.get("choices"):
                        usage = ev["usage"]
                        continue
                    out = tr.feed(ev)
                    if out:
                        if rec.ttft_ms is None:
                            rec.first_token()
                        yield out
            self._record_usage(rec, usage)
            yield tr.finish(usage)

    # --- POST /v1/completions ----------------------------------------------------------------

    async def completions(self, request: Request, rec: RequestRecord | None) -> Any:
        assert rec is not None
        body = await self.read_json(request)
        check_fields(body, COMPLETION_FIELDS, "/v1/completions")
        b = self.resolve(body.get("model"))
        rec.model = b.spec.id
        self.check_zdr(request, b)
        if "prompt" not in body:
            raise schema_error("prompt", "prompt is required")
        prompts = check_prompt(body["prompt"], b.n_vocab)
        native = self._completion_upstream(body, b)
        stop_ids = set(check_token_ids(body["stop_token_ids"], b.n_vocab, "stop_token_ids")
                       if body.get("stop_token_ids") else [])
        min_tokens = int(body.get("min_tokens") or 0)
        if min_tokens and ("grammar" in native or "json_schema" in native):
            raise ApiError(400, "unsupported_parameter_combination",
                           "min_tokens cannot be combined with ebnf/json_schema on the local "
                           "engine", param="min_tokens")
        echo = body.get("echo") is True
        n_logprobs = body.get("logprobs")
        if echo and n_logprobs is not None:
            raise ApiError(400, "unsupported_parameter_combination",
                           "echo with logprobs (prompt logprobs) is not supported on the local "
                           "engine", param="echo")
        longest = max(len(p) for p in prompts)
        max_tokens = self.resolve_max_tokens(b, body.get("max_tokens"), longest,
                                             COMPLETION_DEFAULT_MAX_TOKENS)
        if min_tokens > max_tokens:
            raise schema_error("min_tokens", f"min_tokens ({min_tokens}) must not exceed "
                                             f"max_tokens ({max_tokens})")
        plan = _Plan(native=native, stop_ids=stop_ids, min_tokens=min_tokens,
                     max_tokens=max_tokens, n_logprobs=n_logprobs,
                     return_ids=body.get("return_token_ids") is True)
        echoes = [await self._detok(b, p) for p in prompts] if echo else [""] * len(prompts)
        stream = body.get("stream") is True
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        rec.streaming = stream
        ticket = self.admit(b)
        cid = "cmpl-" + secrets.token_hex(12)
        if stream:
            return EventStream(self._completions_stream(b, prompts, plan, rec, ticket, cid,
                                                        include_usage, echoes),
                               request_id(request))
        try:
            return await run_cancellable(
                request, self._completions_once(b, prompts, plan, rec, cid, echoes))
        finally:
            ticket.release()

    def _completion_upstream(self, body: dict[str, Any], b: Backend) -> dict[str, Any]:
        native: dict[str, Any] = {**NEUTRAL, "cache_prompt": True}
        for k in ("temperature", "top_p", "min_p", "frequency_penalty", "presence_penalty",
                  "stop", "seed", "logit_bias", "ignore_eos"):
            if body.get(k) is not None:
                native[k] = body[k]
        if body.get("top_k") is not None:
            native["top_k"] = max(0, body["top_k"])
        if body.get("repetition_penalty") is not None:
            native["repeat_penalty"] = body["repetition_penalty"]
        constraints = [k for k in ("ebnf", "regex", "json_schema") if body.get(k) is not None]
        if len(constraints) > 1:
            raise ApiError(400, "conflicting_constraints",
                           f"Only one of ebnf, regex and json_schema may be set per request "
                           f"(got {', '.join(constraints)})", param=constraints[1])
        if body.get("regex") is not None:
            raise ApiError(400, "unsupported_parameter",
                           "regex constraints are not supported by the local engine "
                           "(llama.cpp has no regex sampler); express it as ebnf", param="regex")
        if body.get("ebnf") is not None:
            native["grammar"] = _ebnf_to_gbnf(body["ebnf"])
        if body.get("json_schema") is not None:
            native["json_schema"] = _parse_json_schema(body["json_schema"])
        if body.get("logprobs") is not None:
            native["n_probs"] = max(1, int(body["logprobs"]))
        return native

    async def _detok(self, b: Backend, ids: list[int]) -> str:
        return str((await self.up_json(b, "/detokenize", {"tokens": ids}))["content"])

    async def _generate(self, b: Backend, ids: list[int], plan: _Plan
                        ) -> AsyncIterator[Piece | Final]:
        """Generate for one prompt: native /completion stream with token ids, plus the
        emulated parts (min_tokens as a first EOS-free phase; stop_token_ids by watching ids
        and closing the upstream stream)."""
        generated: list[int] = []
        completion_n = 0
        cached = 0
        cached_set = False
        phases: list[tuple[str, int]] = []
        if plan.min_tokens:
            phases.append(("min", plan.min_tokens))
        phases.append(("main", 0))
        native = plan.native
        for phase, n in phases:
            n_predict = n if phase == "min" else plan.max_tokens - len(generated)
            if n_predict <= 0:
                yield Final("length", None, completion_n, cached)
                return
            req = {**native, "prompt": ids + generated, "n_predict": n_predict,
                   "stream": True, "return_tokens": True}
            if phase == "min":
                req["ignore_eos"] = True
                req.pop("stop", None)
            final: dict[str, Any] | None = None
            stop_hit: int | None = None
            phase_n = 0
            async for ev in self.up_stream(b, "/completion", req):
                if ev.get("stop"):
                    final = ev
                    break
                toks: list[int] = ev.get("tokens") or []
                text = ev.get("content", "")
                probs = ev.get("completion_probabilities") or []
                if phase == "main" and plan.stop_ids:
                    for k, t in enumerate(toks):
                        if t in plan.stop_ids:
                            stop_hit, toks, probs, text = t, toks[: k + 1], probs[: k + 1], ""
                            break
                generated.extend(toks)
                phase_n += len(toks)
                yield Piece(text, toks, probs)
                if stop_hit is not None:
                    break  # closes the upstream stream: llama-server stops this task
            if final is not None:
                completion_n += int(final.get("tokens_predicted", phase_n))
                if not cached_set:
                    cached = int((final.get("timings") or {}).get("cache_n", 0))
            else:
                completion_n += phase_n
            cached_set = True
            if stop_hit is not None:
                yield Final("stop", stop_hit, completion_n, cached)
                return
            if phase == "min":
                continue
            stop_type = (final or {}).get("stop_type")
            if stop_type == "limit":
                yield Final("length", None, completion_n, cached)
            elif stop_type == "word":
                yield Final("stop", (final or {}).get("stopping_word"), completion_n, cached)
            else:
                yield Final("stop", generated[-1] if generated else None, completion_n, cached)
            return

    @staticmethod
    def _legacy_logprobs(probs: list[dict[str, Any]], k: int) -> dict[str, Any]:
        out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [],
                               "text_offset": [], "token_ids": [], "top_logprobs_by_id": []}
        for e in probs:
            alts = (e.get("top_logprobs") or [])[:k]
            out["tokens"].append(e.get("token", ""))
            out["token_logprobs"].append(e.get("logprob"))
            out["top_logprobs"].append({a.get("token", ""): a.get("logprob") for a in alts})
            out["text_offset"].append(-1)  # as SGLang: offsets are not computed
            out["token_ids"].append(e.get("id"))
            out["top_logprobs_by_id"].append(
                [{"id": a.get("id"), "token": a.get("token", ""), "bytes": a.get("bytes"),
                  "logprob": a.get("logprob")} for a in alts])
        return out

    async def _completions_once(self, b: Backend, prompts: list[list[int]], plan: _Plan,
                                rec: RequestRecord, cid: str, echoes: list[str]
                                ) -> dict[str, Any]:
        choices = []
        prompt_n = completion_n = cached = 0
        assert b.slot is not None
        async with b.slot:
            for i, ids in enumerate(prompts):
                texts: list[str] = [echoes[i]]
                out_ids: list[int] = []
                probs: list[dict[str, Any]] = []
                fin: Final | None = None
                async for item in self._generate(b, ids, plan):
                    if isinstance(item, Final):
                        fin = item
                    else:
                        if rec.ttft_ms is None:
                            rec.first_token()
                        texts.append(item.text)
                        out_ids.extend(item.ids)
                        probs.extend(item.probs)
                assert fin is not None
                choice: dict[str, Any] = {
                    "index": i, "text": "".join(texts),
                    "logprobs": (self._legacy_logprobs(probs, int(plan.n_logprobs))
                                 if plan.n_logprobs is not None else None),
                    "finish_reason": fin.finish_reason, "matched_stop": fin.matched_stop}
                if plan.return_ids:
                    choice["token_ids"] = out_ids
                    choice["prompt_token_ids"] = ids
                choices.append(choice)
                prompt_n += len(ids)
                completion_n += fin.completion_tokens
                cached += fin.cached_tokens
        usage = {"prompt_tokens": prompt_n, "completion_tokens": completion_n,
                 "total_tokens": prompt_n + completion_n,
                 "prompt_tokens_details": {"cached_tokens": cached}}
        self._record_usage(rec, usage)
        return {"id": cid, "object": "text_completion", "created": int(time.time()),
                "model": b.spec.id, "choices": choices, "usage": usage}

    async def _completions_stream(self, b: Backend, prompts: list[list[int]], plan: _Plan,
                                  rec: RequestRecord, ticket: Ticket, cid: str,
                                  include_usage: bool, echoes: list[str]
                                  ) -> AsyncGenerator[bytes, None]:
        created = int(time.time())
        head = {"id": cid, "object": "text_completion", "created": created, "model": b.spec.id}
        prompt_n = completion_n = cached = 0
        k = int(plan.n_logprobs) if plan.n_logprobs is not None else None
        async with self._outcome(rec, ticket, "completions"):
            assert b.slot is not None
            async with b.slot:
                for i, ids in enumerate(prompts):
                    first = True
                    if echoes[i]:
                        yield sse({**head, "choices": [{"index": i, "text": echoes[i],
                                                        "logprobs": None, "finish_reason": None,
                                                        "matched_stop": None}]})
                    async for item in self._generate(b, ids, plan):
                        choice: dict[str, Any] = {"index": i}
                        if isinstance(item, Final):
                            choice.update(text="", logprobs=None,
                                          finish_reason=item.finish_reason,
                                          matched_stop=item.matched_stop)
                            if plan.return_ids:
                                choice["token_ids"] = []
                            completion_n += item.completion_tokens
                            cached += item.cached_tokens
                        else:
                            if not item.text and not item.ids:
                                continue
                            if rec.ttft_ms is None:
                                rec.first_token()
                            choice.update(text=item.text,
                                          logprobs=(self._legacy_logprobs(item.probs, k)
                                                    if k is not None else None),
                                          finish_reason=None, matched_stop=None)
                            if plan.return_ids:
                                choice["token_ids"] = item.ids
                        if plan.return_ids and first:
                            choice["prompt_token_ids"] = ids
                        first = False
                        yield sse({**head, "choices": [choice]})
                    prompt_n += len(ids)
            usage = {"prompt_tokens": prompt_n, "completion_tokens": completion_n,
                     "total_tokens": prompt_n + completion_n,
                     "prompt_tokens_details": {"cached_tokens": cached}}
            self._record_usage(rec, usage)
            if include_usage:
                yield sse({**head, "choices": [], "usage": usage})
            yield DONE

    # --- token extensions ----------------------------------------------------------------------

    async def tokenize(self, request: Request, rec: RequestRecord | None) -> Any:
        body = await self.read_json(request)
        check_fields(body, {"model": _str, "content": _str, "add_special": _bool,
                            "with_pieces": _bool, "parse_special": _bool}, "/tokenize")
        b = self.resolve(body.get("model"), default=True)
        if not isinstance(body.get("content"), str):
            raise schema_error("content", "content (a string) is required")
        up = {k: body[k] for k in ("content", "add_special", "with_pieces", "parse_special")
              if body.get(k) is not None}
        return await self.up_json(b, "/tokenize", up)

    async def detokenize(self, request: Request, rec: RequestRecord | None) -> Any:
        body = await self.read_json(request)
        check_fields(body, {"model": _str, "tokens": _any}, "/detokenize")
        b = self.resolve(body.get("model"), default=True)
        if body.get("tokens") is None:
            raise schema_error("tokens", "tokens (an array of token ids) is required")
        # llama-server does not range-check ids here; an out-of-vocab id must never reach it
        ids = check_token_ids(body["tokens"], b.n_vocab, "tokens")
        return await self.up_json(b, "/detokenize", {"tokens": ids})

    async def apply_template(self, request: Request, rec: RequestRecord | None) -> Any:
        body = await self.read_json(request)
        check_fields(body, {"model": _str, "messages": _any, "tools": _any}, "/apply-template")
        b = self.resolve(body.get("model"), default=True)
        if not b.spec.chat_template:
            raise ApiError(400, "chat_template_missing",
                           f"Model '{b.spec.id}' has no chat template", param="model")
        if "messages" not in body:
            raise schema_error("messages", "messages is required")
        self.check_media(check_messages(body["messages"]), b)
        up: dict[str, Any] = {"messages": body["messages"]}
        if body.get("tools") is not None:
            check_tools(body["tools"], None)
            up["tools"] = body["tools"]
        data = await self.up_json(b, "/apply-template", up)
        return {"prompt": data["prompt"], "model": b.spec.id}

    # --- account APIs --------------------------------------------------------------------------

    async def usage_me(self, request: Request, rec: RequestRecord | None) -> Any:
        q = request.query_params
        now = datetime.now(UTC)
        if q.get("start_at") or q.get("end_at"):
            try:
                start = _parse_dt(q["start_at"])
                end = _parse_dt(q["end_at"])
            except (KeyError, ValueError):
                raise ApiError(400, "invalid_window", "start_at and end_at must both be ISO "
                                                      "timestamps", param="start_at") from None
            if end <= start:
                raise ApiError(400, "invalid_window", "end_at must be after start_at",
                               param="end_at")
        else:
            period = q.get("period", "7d")
            if period not in PERIODS:
                raise ApiError(400, "invalid_window", "period must be 1d, 7d or 30d",
                               param="period")
            end, start = now, now - timedelta(days=PERIODS[period])
        return self.log.usage_me(start, end)

    async def endpoint_metrics(self, request: Request, rec: RequestRecord | None) -> Any:
        q = request.query_params
        endpoint = q.get("endpoint")
        if not endpoint:
            raise ApiError(422, "schema_validation_failed", "endpoint is required",
                           param="endpoint")
        try:
            rng = int(q.get("range_minutes", "60"))
        except ValueError:
            rng = -1
        if rng not in RANGES:
            raise ApiError(422, "schema_validation_failed",
                           f"range_minutes must be one of {', '.join(map(str, RANGES))}",
                           param="range_minutes")
        model = q.get("model")
        if model is not None:
            model = self.resolve(model).spec.id
        return self.log.metrics(endpoint, rng, model)

    async def health(self, request: Request, rec: RequestRecord | None) -> Any:
        return {"status": "ok", "models": {
            b.spec.id: {"pid": b.pid, "url": b.url, "admitted": b.admitted}
            for b in self.backends.values()}}

    # --- the ASGI app ------------------------------------------------------------------------

    def build(self) -> ASGIApp:
        e = self.endpoint
        routes = [
            Route("/v1/models", e(self.models, auth=False), methods=["GET"]),
            Route("/v1/models/{model_id:path}", e(self.model, auth=False), methods=["GET"]),
            Route("/v1/files", e(self.upload_file), methods=["POST"]),
            Route("/v1/chat/completions", e(self.chat, logged="/v1/chat/completions"),
                  methods=["POST"]),
            Route("/v1/completions", e(self.completions, logged="/v1/completions"),
                  methods=["POST"]),
            Route("/v1/messages", e(self.messages, logged="/v1/messages", anthropic=True),
                  methods=["POST"]),
            Route("/v1/usage/me", e(self.usage_me), methods=["GET"]),
            Route("/v1/endpoints/metrics", e(self.endpoint_metrics), methods=["GET"]),
            Route("/health", e(self.health, auth=False), methods=["GET"]),
        ]
        for path, fn in (("tokenize", self.tokenize), ("detokenize", self.detokenize),
                         ("apply-template", self.apply_template)):
            routes.append(Route(f"/{path}", e(fn), methods=["POST"]))
            routes.append(Route(f"/v1/{path}", e(fn), methods=["POST"]))

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            if exc.status_code == 404:
                err = ApiError(404, "not_found", f"No route for {request.url.path}")
            elif exc.status_code == 405:
                err = ApiError(405, "method_not_allowed",
                               f"{request.method} is not allowed on {request.url.path}",
                               type="invalid_request_error")
            else:
                err = ApiError(exc.status_code, "http_error", str(exc.detail))
            return error_response(err, request_id(request),
                                  anthropic=request.url.path == "/v1/messages")

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            for b in self.backends.values():
                b.client = httpx.AsyncClient(
                    base_url=b.url, timeout=httpx.Timeout(600, connect=5),
                    # llama-server (cpp-httplib) drops idle connections after 5 s; let
                    # ours expire first so a request rarely lands on a closing socket
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=16,
                                        keepalive_expiry=2.0),
                    transport=self.config.upstream_transport)
                b.slot = asyncio.Semaphore(max(1, self.config.parallel))
            try:
                yield
            finally:
                for b in self.backends.values():
                    if b.client:
                        await b.client.aclose()

        app = Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                        lifespan=lifespan)
        return RequestIdMiddleware(app)


@dataclass
class _Plan:
    native: dict[str, Any]
    stop_ids: set[int]
    min_tokens: int
    max_tokens: int
    n_logprobs: int | None
    return_ids: bool


_STALE = (httpx.RemoteProtocolError, httpx.ConnectError)


def _str(v: Any, p: str) -> None:
    if not isinstance(v, str):
        raise schema_error(p, f"{p} must be a string")


def _bool(v: Any, p: str) -> None:
    if not isinstance(v, bool):
        raise schema_error(p, f"{p} must be a boolean")


def _any(v: Any, p: str) -> None:
    return None


def _parse_dt(s: str) -> datetime:
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _prompt_token_bound(up: dict[str, Any]) -> int:
    """An upper bound on the templated prompt's token count without tokenizing: a token
    covers at least one byte (byte-level BPE and byte-fallback SPM alike), plus a generous
    allowance for the chat template's own text (ChatML adds < 30 bytes per message and a
    ~70-byte default system prompt)."""
    n = 256
    for m in up["messages"]:
        c = m.get("content")
        if isinstance(c, str):
            n += len(c.encode())
        elif isinstance(c, list):
            n += sum(len(str(p.get("text", "")).encode()) for p in c if isinstance(p, dict))
        if m.get("tool_calls"):
            n += len(_dumps(m["tool_calls"]))
        n += 64
    for k in ("tools", "response_format"):
        if up.get(k) is not None:
            n += 2 * len(_dumps(up[k]))
    return n


def _trim_chat_logprobs(lp: Any, k: int) -> None:
    if isinstance(lp, dict):
        for e in lp.get("content") or []:
            if isinstance(e, dict) and "top_logprobs" in e:
                e["top_logprobs"] = e["top_logprobs"][:k]


def _parse_json_schema(value: Any) -> dict[str, Any]:
    """SGLang takes json_schema as a string; an object is accepted too."""
    import jsonschema

    schema = value
    if isinstance(value, str):
        try:
            schema = json.loads(value)
        except ValueError as exc:
            raise ApiError(400, "invalid_json_schema", f"json_schema is not valid JSON: {exc}",
                           param="json_schema") from None
    if not isinstance(schema, dict):
        raise ApiError(400, "invalid_json_schema", "json_schema must be a JSON object",
                       param="json_schema")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ApiError(400, "invalid_json_schema", f"Invalid JSON Schema: {exc.message}",
                       param="json_schema") from None
    return schema


def _ebnf_to_gbnf(ebnf: str) -> str:
    """Check with OUR XGrammar-dialect checker; an invalid grammar never reaches llama-server
    (its error text is generic, and it accepts grammars Wafer rejects)."""
    from wafer_playground import grammar

    report = grammar.check(ebnf)
    if not report.ok:
        first = report.issues[0] if report.issues else None
        if first is None:
            detail = "EBNF parser error"
        elif "line" in first.message and "column" in first.message:
            detail = first.message
        else:
            detail = f"EBNF parser error at line {first.line}, column {first.column}: " \
                     f"{first.message}"
        raise ApiError(400, "invalid_grammar", f"Invalid grammar request: {detail}",
                       param="ebnf")
    try:
        gbnf = grammar.to_gbnf(ebnf)
    except ValueError as exc:
        raise ApiError(400, "unsupported_grammar",
                       f"The grammar is valid Wafer EBNF, but the local engine (llama.cpp "
                       f"GBNF) cannot express it: {exc}", param="ebnf") from None
    # llama.cpp expands {m,n} into copies of the rule; a huge bound would stall the model
    for m in _REPEAT.finditer(gbnf):
        bound = max(int(m[1]), int(m[2] or 0))
        if bound > MAX_REPEAT:
            raise ApiError(400, "grammar_too_large",
                           f"Repetition bound {bound} exceeds the local engine's limit of "
                           f"{MAX_REPEAT}", param="ebnf")
    return gbnf


_REPEAT = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")
MAX_REPEAT = 1000


def create_app(backends: list[Backend], config: EngineConfig) -> ASGIApp:
    return LocalEngineApp(backends, config).build()


__all__ = ["Backend", "EngineConfig", "LocalEngineApp", "create_app"]
