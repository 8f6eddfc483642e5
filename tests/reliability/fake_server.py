"""A fault-injecting fake Wafer server: Starlette on uvicorn in a thread, loopback only.

Tests script each path with a queue of `Reply`s (the scenario registry): every request to
that method+path takes the next reply; the last one stays in place (so "500 forever" is one
reply). Unscripted paths answer like a healthy Wafer: good model cards, a short stream.
Every request is recorded with all its headers and its raw body (the canary check needs them).

Bounded on purpose: stalls sleep at most `Reply.stall_s` (and end when the server stops),
streams are finite, and the server only binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

MODEL = "fake-glm"
CARDS: list[dict[str, Any]] = [
    {"id": MODEL, "object": "model", "owned_by": "wafer", "max_model_len": 32768,
     "wafer": {"display_name": "Fake GLM", "context_length": 32768, "max_output_tokens": 4096,
               "zdr_supported": True,
               "capabilities": {"tools": True, "reasoning": False, "vision": False},
               "pricing": {"input_cents_per_million": 100, "output_cents_per_million": 200,
                           "currency": "usd"}}},
    {"id": "fake-tiny", "object": "model", "owned_by": "wafer", "max_model_len": 4096,
     "wafer": {"display_name": "Fake Tiny", "zdr_supported": False,
               "capabilities": {"tools": False, "reasoning": False},
               "pricing": {"input_cents_per_million": 10, "output_cents_per_million": 20}}},
]

# A vision model card with every field of the addendum's reconstructed Kimi-K3 card (§2.1):
# max_output_tokens, reasoning_effort, chat_completions flags, the microcent cache price,
# supports_vision, and one field no client knows (must stay visible in the raw card).
VISION_MODEL = "fake-kimi-vision"
VISION_CARD: dict[str, Any] = {
    "id": VISION_MODEL, "object": "model", "owned_by": "wafer", "max_model_len": 262144,
    "supports_vision": True,
    "wafer": {"display_name": "Fake Kimi Vision", "tier": "serverless_only",
              "context_length": 262144, "max_output_tokens": 8192, "zdr_supported": True,
              "description": "A fake vision model: image and video input.",
              "capabilities": {"vision": True, "tools": True, "reasoning": True},
              "pricing": {"currency": "usd", "input_cents_per_million": 144,
                          "output_cents_per_million": 900,
                          "cache_read_cents_per_million": 24,
                          "cache_read_microcents_per_million": 23590000},
              "reasoning_effort": {"control": "native_effort",
                                   "efforts": ["none", "high", "max"], "default": "none"},
              "chat_completions": {"supported": True, "streaming": True, "tools": True,
                                   "tool_streaming": False, "json_object": True,
                                   "json_schema": False,
                                   "tools_with_response_format": False},
              "future_field": {"note": "not read by the app"}}}
CARDS_WITH_VISION: list[dict[str, Any]] = [*CARDS, VISION_CARD]


class Abort(Exception):
    """Raised inside a streaming body: uvicorn drops the connection mid-response."""


@dataclass
class Reply:
    """One scripted answer. `sse` items are event payloads (dict -> JSON, str -> raw data
    line, bytes -> raw wire bytes); `reset` drops the connection after them; `stall_s`
    sleeps before the rest; `delay_s` sleeps before the status line."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sse: list[dict[str, Any] | str | bytes] | None = None
    tokens_per_s: float = 0.0  # pace of `sse` events (0 = as fast as possible)
    stall_after: int | None = None  # stall after this many sse items
    stall_s: float = 0.0
    reset: bool = False
    delay_s: float = 0.0
    default: bool = False  # answer like the healthy server would


@dataclass
class Hit:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]  # every header, raw, in order
    body: bytes
    at: float

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def chunk(content: str = "", *, finish: str | None = None, role: bool = False,
          model: str = MODEL) -> dict[str, Any]:
    d: dict[str, Any] = {"content": content}
    if role:
        d["role"] = "assistant"
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}}


def answer_stream(words: list[str], *, prompt_tokens: int = 12) -> list[dict[str, Any] | str]:
    """A complete, well-formed chat stream: role, words, stop, usage, [DONE]."""
    out: list[dict[str, Any] | str] = [chunk(role=True)]
    out += [chunk(w) for w in words]
    out += [chunk(finish="stop"), usage_chunk(prompt_tokens, len(words)), "[DONE]"]
    return out


def error_json(status: int, code: str, message: str, request_id: str,
               **extra: Any) -> Reply:
    headers = {"x-request-id": request_id, **{k: str(v) for k, v in
                                              extra.pop("headers", {}).items()}}
    return Reply(status=status, headers=headers, json={"error": {
        "type": extra.pop("type", "invalid_request_error"), "code": code, "message": message,
        "param": extra.pop("param", None), "request_id": request_id,
        "docs_url": f"https://docs.wafer.ai/errors#{code}"}})


class FakeWafer:
    """The server plus its scenario registry and request log (thread-safe)."""

    def __init__(self, cards: list[dict[str, Any]] | None = None) -> None:
        self.cards = cards if cards is not None else CARDS
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], list[Reply]] = {}
        self.hits: list[Hit] = []
        self._stopping = threading.Event()
        self.default_words = ["Hello", " from", " the", " fake", " server", "."]
        self.files: dict[str, dict[str, Any]] = {}  # POST /v1/files uploads (metadata)
        app = Starlette(routes=[Route("/{path:path}", self._handle,
                                      methods=["GET", "POST", "PUT", "DELETE"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._sock = sock
        config = uvicorn.Config(app, log_level="error", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [sock]}, daemon=True)

    # ---- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeWafer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()

    # ---- the registry -----------------------------------------------------------------

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` (relative to /v1) with `replies` in order."""
        with self._lock:
            self._routes[(method.upper(), "/v1" + path)] = list(replies)

    def reset(self) -> None:
        with self._lock:
            self._routes.clear()
            self.hits.clear()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for h in self.hits if h.method == method and h.path == "/v1" + path)

    def requests_to(self, method: str, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.method == method and h.path == "/v1" + path]

    def _next(self, method: str, path: str) -> Reply | None:
        with self._lock:
            queue = self._routes.get((method, path))
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    # ---- serving ----------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        hit = Hit(request.method, request.url.path, request.url.query,
                  [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                  body, time.monotonic())
        with self._lock:
            self.hits.append(hit)
        reply = self._next(request.method, request.url.path)
        if reply is None or reply.default:
            reply = self._default(request, body)
        if reply.delay_s:
            await self._sleep(reply.delay_s)
        headers = {"x-request-id": f"req_fake{len(self.hits):08d}", **reply.headers}
        if reply.sse is not None:
            return StreamingResponse(self._events(reply), status_code=reply.status,
                                     headers=headers,
                                     media_type=reply.content_type or "text/event-stream")
        if reply.json is not None:
            payload = json.dumps(reply.json).encode()
            return Response(payload, reply.status, headers,
                            media_type=reply.content_type or "application/json")
        return Response(reply.body or b"", reply.status, headers,
                        media_type=reply.content_type or "text/plain")

    def _upload(self, request: Request, body: bytes) -> Reply:
        """POST /v1/files as the addendum's stand-in rules say (shared with wafer-local)."""
        from wafer_playground.local.files import check_headers
        from wafer_playground.local.validation import ApiError

        try:
            up = check_headers(request.headers)
            if len(body) > 50_000_000:
                raise ApiError(413, "file_too_large", "over 50 MB")
        except ApiError as err:
            return error_json(err.status, err.code, err.message, "req_fake_files",
                              param=err.param)
        fid = f"file_{len(self.files):032x}"
        meta = {"id": fid, "purpose": up.purpose, "filename": up.filename,
                "mime_type": up.mime, "bytes": len(body), "status": "ready",
                "created_at": "2026-12-04T10:00:00Z", "expires_at": "2027-01-03T10:00:00Z"}
        self.files[fid] = meta
        return Reply(json=meta)

    def _media_refusal(self, payload: Any) -> Reply | None:
        """Media on a model whose card has no vision, or an unknown file id: Wafer-shaped."""
        from wafer_playground.media import media_ref

        if not isinstance(payload, dict):
            return None
        card = next((c for c in self.cards if c["id"] == payload.get("model")), {})
        vision = bool((card.get("wafer") or {}).get("capabilities", {}).get("vision"))
        for i, m in enumerate(payload.get("messages") or []):
            content = m.get("content") if isinstance(m, dict) else None
            for j, p in enumerate(content if isinstance(content, list) else []):
                ref = media_ref(p, f"messages[{i}].content[{j}]") if isinstance(p, dict) \
                    else None
                if ref is None:
                    continue
                if not vision:
                    return error_json(400, "invalid_request_error", "This model does not "
                                      "accept image input", "req_fake_media", param=ref.path)
                if ref.file_id is not None and ref.file_id not in self.files:
                    return error_json(404, "file_not_found", "unknown file", "req_fake_media",
                                      param=ref.path)
        return None

    def _default(self, request: Request, body: bytes) -> Reply:
        path = request.url.path
        if path == "/v1/models":
            return Reply(json={"object": "list", "data": self.cards})
        if path == "/v1/files" and request.method == "POST":
            return self._upload(request, body)
        if path == "/v1/chat/completions" and request.method == "POST":
            try:
                refusal = self._media_refusal(json.loads(body))
            except ValueError:
                refusal = None
            if refusal is not None:
                return refusal
        if path in ("/v1/chat/completions", "/v1/completions") and request.method == "POST":
            try:
                streaming = bool(json.loads(body).get("stream"))
            except (ValueError, AttributeError):
                streaming = False
            if streaming:
                return Reply(sse=list(answer_stream(self.default_words)))
            text = "".join(self.default_words)
            return Reply(json={"id": "chatcmpl-fake", "object": "chat.completion",
                               "model": MODEL, "choices": [{
                                   "index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": text}}],
                               "usage": {"prompt_tokens": 12,
                                         "completion_tokens": len(self.default_words),
                                         "total_tokens": 12 + len(self.default_words)}})
        return error_json(404, "not_found", f"no route {path}", "req_fake_404")

    async def _sleep(self, seconds: float) -> None:
        # Ends early when the server stops, so a stalled test never outlives its fixture.
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._stopping.is_set():
            await asyncio.sleep(min(0.05, end - time.monotonic()))

    async def _events(self, reply: Reply) -> AsyncIterator[bytes]:
        items = reply.sse or []
        pace = 1.0 / reply.tokens_per_s if reply.tokens_per_s else 0.0
        for i, item in enumerate(items):
            if reply.stall_after is not None and i == reply.stall_after:
                await self._sleep(reply.stall_s)
                if self._stopping.is_set():
                    return
            yield encode_event(item)
            if pace:
                await asyncio.sleep(pace)
        if reply.stall_after is not None and reply.stall_after >= len(items):
            await self._sleep(reply.stall_s)
        if reply.reset:
            raise Abort("scripted connection reset")


def encode_event(item: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(item, bytes):
        return item
    data = item if isinstance(item, str) else json.dumps(item)
    return f"data: {data}\n\n".encode()


def serve(cards: list[dict[str, Any]] | None = None) -> Iterator[FakeWafer]:
    """Generator for fixtures: a started server, stopped afterwards."""
    fake = FakeWafer(cards).start()
    try:
        yield fake
    finally:
        fake.stop()
