"""The one fake Wafer server for tests and benchmarks: one scenario, two faces.

* The scenario: healthy defaults (model cards, `/v1/models/{id}`, chat / completions /
  messages answers, the Files API, media refusals) plus a script per method+path: a queue of
  `Reply`s, or a function of the request (per-request overrides). The last reply of a queue
  stays in place, so "500 forever" is one reply. Faults (HTTP errors in the Wafer envelope,
  429 with Retry-After, delay before the first token, inter-token pace, a stall, an error
  event mid-stream, a cut stream) are `Reply` fields: the tests inject them, the app never does.
* The request log: `requests` (every request: method, path, query, body, headers without
  Authorization, whether a key was present and its fingerprint) and `clear()`. The fake never
  holds an API key.
* Face one, `transport()`: an `httpx.MockTransport` for unit and app tests
  (`WaferClient(MOCK_URL, transport=fake.transport())`). Face two, `start()`/`stop()`:
  Starlette on uvicorn in a thread on 127.0.0.1 (`url`), for browser tests, reliability tests
  and benchmarks. Both run the same `_answer` and `_steps`.

Bounded on purpose: stalls end when the server stops, streams are finite, loopback only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from wafer_playground.client import key_fingerprint
from wafer_playground.local.net import HOST, free_port

MOCK_URL = "http://fake-wafer.test/v1"
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

# A vision model card with every field of the reconstructed Kimi-K3 card in
# docs/spec/addendum-2026-12.md:
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

Event = dict[str, Any] | str | bytes


class Abort(Exception):
    """Raised inside a streaming body: the connection drops mid-response."""


@dataclass
class Reply:
    """One scripted answer. `sse` items are event payloads (dict -> JSON, str -> raw data
    line, bytes -> raw wire bytes); `first_token_s` waits between the headers and the first
    item; `tokens_per_s` paces the items; `stall_after`/`stall_s` stall once; `reset` drops
    the connection after them; `delay_s` waits before the status line."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sse: list[Event] | None = None
    tokens_per_s: float = 0.0  # pace of `sse` events (0 = as fast as possible)
    first_token_s: float = 0.0
    stall_after: int | None = None  # stall after this many sse items
    stall_s: float = 0.0
    reset: bool = False
    delay_s: float = 0.0
    default: bool = False  # answer like the healthy server would


@dataclass
class Hit:
    """One logged request. Authorization is not kept: only whether it carried a key and the
    key's fingerprint (`wafer_playground.client.key_fingerprint`); "malformed" when the
    header is not `Bearer <key>`. `sent`, `completed` and `disconnect_at` follow a stream."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]  # every other header, raw, in order
    body: bytes
    at: float
    key_present: bool = False
    key_fingerprint: str | None = None
    sent: int = 0
    completed: bool = False
    disconnect_at: float | None = None

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def sent_key(self, key: str) -> bool:
        """True when this request carried `key` as its bearer token."""
        return self.key_fingerprint == key_fingerprint(key)


Script = Reply | Callable[[Hit], Reply]


def chunk(content: str = "", *, finish: str | None = None, role: bool = False,
          model: str = MODEL) -> dict[str, Any]:
    d: dict[str, Any] = {"content": content}
    if role:
        d["role"] = "assistant"
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def delta_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]}


def usage_chunk(prompt: int, completion: int, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion, **extra}}


def answer_stream(words: list[str], *, prompt_tokens: int = 12) -> list[Event]:
    """A complete, well-formed chat stream: role, words, stop, usage, [DONE]."""
    out: list[Event] = [chunk(role=True)]
    out += [chunk(w) for w in words]
    out += [chunk(finish="stop"), usage_chunk(prompt_tokens, len(words)), "[DONE]"]
    return out


def messages_stream(words: list[str], *, prompt_tokens: int = 12,
                    model: str = MODEL) -> list[Event]:
    """A complete Anthropic-style /v1/messages stream (named events)."""
    def ev(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    out: list[Event] = [
        ev("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [], "usage": {"input_tokens": prompt_tokens, "output_tokens": 0}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})]
    out += [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": w}})
            for w in words]
    out += [ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ev("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": "end_turn"},
                                 "usage": {"output_tokens": len(words)}}),
            ev("message_stop", {"type": "message_stop"})]
    return out


def error_json(status: int, code: str, message: str, request_id: str,
               **extra: Any) -> Reply:
    """An HTTP error in the Wafer envelope (type, code, message, param, request_id)."""
    headers = {"x-request-id": request_id, **{k: str(v) for k, v in
                                              extra.pop("headers", {}).items()}}
    return Reply(status=status, headers=headers, json={"error": {
        "type": extra.pop("type", "invalid_request_error"), "code": code, "message": message,
        "param": extra.pop("param", None), "request_id": request_id,
        "docs_url": f"https://docs.wafer.ai/errors#{code}"}})


def rate_limited(retry_after_s: int, request_id: str = "req_fake429") -> Reply:
    return error_json(429, "rate_limit_exceeded", "Too many requests", request_id,
                      type="rate_limit_error", headers={"retry-after": retry_after_s})


def error_event(code: str, message: str, request_id: str) -> dict[str, Any]:
    """An error delivered inside a 200 stream (mid-stream error)."""
    return {"error": {"type": "server_error", "code": code, "message": message,
                      "request_id": request_id}}


def encode_event(item: Event) -> bytes:
    if isinstance(item, bytes):
        return item
    data = item if isinstance(item, str) else json.dumps(item)
    return f"data: {data}\n\n".encode()


def _key_of(value: str) -> tuple[bool, str | None]:
    scheme, _, token = value.partition(" ")
    if scheme != "Bearer" or not token or " " in token:
        return True, "malformed"
    return True, key_fingerprint(token)


class FakeWafer:
    """The scenario, its script and the request log (thread-safe), with both faces."""

    def __init__(self, cards: list[dict[str, Any]] | None = None) -> None:
        self.cards = cards if cards is not None else CARDS
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], list[Script]] = {}
        self.requests: list[Hit] = []
        self._stopping = threading.Event()
        self.default_words = ["Hello", " from", " the", " fake", " server", "."]
        self.files: dict[str, dict[str, Any]] = {}  # POST /v1/files uploads (metadata)
        self.url = MOCK_URL  # the real face's URL once started
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def hits(self) -> list[Hit]:
        return self.requests

    # ---- the real face: uvicorn on 127.0.0.1 ------------------------------------------

    def start(self) -> FakeWafer:
        app = Starlette(routes=[Route("/{path:path}", self._asgi,
                                      methods=["GET", "POST", "PUT", "DELETE"])])
        sock = socket.socket()
        sock.bind((HOST, free_port()))
        self.port = int(sock.getsockname()[1])
        self.url = f"http://{HOST}:{self.port}/v1"
        config = uvicorn.Config(app, log_level="error", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1)
        self._sock, self._server = sock, uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the real face; a second call does nothing."""
        self._stopping.set()
        if self._server is not None and self._thread is not None and self._sock is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
            self._sock.close()
        self._server = self._thread = self._sock = None

    # ---- the mock face: httpx.MockTransport -------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._mock)

    # ---- the script and the log --------------------------------------------------------

    def script(self, method: str, path: str, *replies: Script) -> None:
        """Answer the next requests to `path` (relative to /v1) with `replies` in order; a
        callable reply is called with the request and returns its `Reply`."""
        with self._lock:
            self._routes[(method.upper(), "/v1" + path)] = list(replies)

    def clear(self) -> None:
        """Forget the logged requests (the script stays)."""
        with self._lock:
            self.requests.clear()

    def reset(self) -> None:
        """Forget the script and the log."""
        with self._lock:
            self._routes.clear()
            self.requests.clear()

    def count(self, method: str, path: str) -> int:
        return len(self.requests_to(method, path))

    def requests_to(self, method: str, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.requests if h.method == method and h.path == "/v1" + path]

    def _next(self, method: str, path: str) -> Script | None:
        with self._lock:
            queue = self._routes.get((method, path))
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    # ---- the scenario: both faces call these --------------------------------------------

    def _answer(self, method: str, path: str, query: str, raw_headers: list[tuple[str, str]],
                body: bytes) -> tuple[Hit, Reply, dict[str, str]]:
        key_present, fp = False, None
        headers = []
        for k, v in raw_headers:
            if k.lower() == "authorization":
                key_present, fp = _key_of(v)
            else:
                headers.append((k, v))
        hit = Hit(method, path, query, headers, body, time.monotonic(), key_present, fp)
        with self._lock:
            self.requests.append(hit)
            n = len(self.requests)
        scripted = self._next(method, path)
        reply = scripted(hit) if callable(scripted) else scripted
        if reply is None or reply.default:
            reply = self._default(hit)
        return hit, reply, {"x-request-id": f"req_fake{n:08d}", **reply.headers}

    def _steps(self, reply: Reply, hit: Hit) -> Iterator[float | bytes]:
        """The stream as steps: a float is a pause in seconds, bytes go on the wire; raises
        `Abort` for a cut stream. `hit.sent` counts the items written."""
        items = reply.sse or []
        pace = 1.0 / reply.tokens_per_s if reply.tokens_per_s else 0.0
        if reply.first_token_s:
            yield reply.first_token_s
        for i, item in enumerate(items):
            if reply.stall_after is not None and i == reply.stall_after:
                yield reply.stall_s
                if self._stopping.is_set():
                    return
            yield encode_event(item)
            hit.sent = i + 1
            if pace and i < len(items) - 1:  # none after the last: the client may hang up
                yield pace
                if self._stopping.is_set():
                    return
        if reply.stall_after is not None and reply.stall_after >= len(items):
            yield reply.stall_s
        if reply.reset:
            raise Abort("scripted connection reset")
        hit.completed = True

    def _upload(self, hit: Hit) -> Reply:
        """POST /v1/files as the stand-in rules of docs/spec/addendum-2026-12.md say (shared
        with wafer-local)."""
        from wafer_playground.local.files import check_headers
        from wafer_playground.local.validation import ApiError

        try:
            up = check_headers(httpx.Headers(hit.headers))
            if len(hit.body) > 50_000_000:
                raise ApiError(413, "file_too_large", "over 50 MB")
        except ApiError as err:
            return error_json(err.status, err.code, err.message, "req_fake_files",
                              param=err.param)
        fid = f"file_{len(self.files):032x}"
        meta = {"id": fid, "purpose": up.purpose, "filename": up.filename,
                "mime_type": up.mime, "bytes": len(hit.body), "status": "ready",
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

    def _default(self, hit: Hit) -> Reply:
        path, method = hit.path, hit.method
        if path == "/v1/models" and method == "GET":
            return Reply(json={"object": "list", "data": self.cards})
        if path.startswith("/v1/models/") and method == "GET":
            card = next((c for c in self.cards if c["id"] == path[len("/v1/models/"):]), None)
            if card is not None:
                return Reply(json=card)
            return error_json(404, "model_not_found", "no such model", "req_fake_404")
        if path == "/v1/files" and method == "POST":
            return self._upload(hit)
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions",
                                            "/v1/messages"):
            return error_json(404, "not_found", f"no route {path}", "req_fake_404")
        try:
            payload = json.loads(hit.body)
        except ValueError:
            payload = None
        if path == "/v1/chat/completions":
            refusal = self._media_refusal(payload)
            if refusal is not None:
                return refusal
        streaming = isinstance(payload, dict) and bool(payload.get("stream"))
        words, text = self.default_words, "".join(self.default_words)
        if path == "/v1/messages":
            if streaming:
                return Reply(sse=messages_stream(words))
            return Reply(json={"id": "msg_fake", "type": "message", "role": "assistant",
                               "model": MODEL, "content": [{"type": "text", "text": text}],
                               "stop_reason": "end_turn",
                               "usage": {"input_tokens": 12, "output_tokens": len(words)}})
        if streaming:
            return Reply(sse=answer_stream(words))
        return Reply(json={"id": "chatcmpl-fake", "object": "chat.completion",
                           "model": MODEL, "choices": [{
                               "index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": text}}],
                           "usage": {"prompt_tokens": 12, "completion_tokens": len(words),
                                     "total_tokens": 12 + len(words)}})

    def _pause(self, seconds: float) -> None:
        # ends early when the server stops, so a stalled test never outlives its fixture
        self._stopping.wait(seconds)

    async def _apause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._stopping.is_set():
            await asyncio.sleep(min(0.05, end - time.monotonic()))

    # ---- face glue ------------------------------------------------------------------

    async def _asgi(self, request: Request) -> Response:
        body = await request.body()
        hit, reply, headers = self._answer(
            request.method, request.url.path, request.url.query,
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw], body)
        if reply.delay_s:
            await self._apause(reply.delay_s)
        if reply.sse is not None:
            return StreamingResponse(self._aevents(reply, hit), status_code=reply.status,
                                     headers=headers,
                                     media_type=reply.content_type or "text/event-stream")
        content, media = _payload(reply)
        return Response(content, reply.status, headers, media_type=media)

    async def _aevents(self, reply: Reply, hit: Hit) -> AsyncIterator[bytes]:
        try:
            for step in self._steps(reply, hit):
                if isinstance(step, bytes):
                    yield step
                else:
                    await self._apause(step)
        finally:  # Starlette cancels this generator when the client hangs up
            if not hit.completed and hit.disconnect_at is None:
                hit.disconnect_at = time.monotonic()

    def _mock(self, request: httpx.Request) -> httpx.Response:
        hit, reply, headers = self._answer(
            request.method, request.url.path, request.url.query.decode(),
            list(request.headers.multi_items()), request.read())
        if reply.delay_s:
            self._pause(reply.delay_s)
        if reply.sse is not None:
            headers.setdefault("content-type", reply.content_type or "text/event-stream")
            return httpx.Response(reply.status, headers=headers,
                                  stream=_MockStream(self, reply, hit))
        content, media = _payload(reply)
        return httpx.Response(reply.status, headers={"content-type": media, **headers},
                              content=content)


def _payload(reply: Reply) -> tuple[bytes, str]:
    if reply.json is not None:
        return json.dumps(reply.json).encode(), reply.content_type or "application/json"
    return reply.body or b"", reply.content_type or "text/plain"


class _MockStream(httpx.SyncByteStream):
    """The mock face's stream: pauses really sleep; a cut stream is a read error."""

    def __init__(self, fake: FakeWafer, reply: Reply, hit: Hit) -> None:
        self._fake, self._reply, self._hit = fake, reply, hit

    def __iter__(self) -> Iterator[bytes]:
        try:
            for step in self._fake._steps(self._reply, self._hit):
                if isinstance(step, bytes):
                    yield step
                else:
                    self._fake._pause(step)
        except Abort as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc

    def close(self) -> None:
        if not self._hit.completed and self._hit.disconnect_at is None:
            self._hit.disconnect_at = time.monotonic()


def serve(cards: list[dict[str, Any]] | None = None) -> Iterator[FakeWafer]:
    """Generator for fixtures: a started real face, stopped afterwards."""
    fake = FakeWafer(cards).start()
    try:
        yield fake
    finally:
        fake.stop()
