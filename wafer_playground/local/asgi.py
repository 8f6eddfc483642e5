"""ASGI plumbing of the local engine: request ids, Wafer's error envelope, SSE responses that
stay plain HTTP errors until the first event, and cancelling work when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncGenerator, Awaitable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wafer_playground.local import messages as anth
from wafer_playground.local.validation import ApiError

log = logging.getLogger(__name__)


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
            err = ApiError(
                500, "internal_error", "Internal error in the local engine", type="api_error"
            )
            await error_response(err, rid)(scope, receive, send_with_id)


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(err: ApiError, rid: str, *, anthropic: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"error": err.envelope(rid)}
    if anthropic:
        body = {"type": "error", "error": err.envelope(rid)}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


DONE = b"data: [DONE]\n\n"


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class EventStream:
    """SSE response that sends nothing until the first event (so early errors are plain HTTP
    errors), and cancels the producer as soon as the client goes away."""

    def __init__(
        self, gen: AsyncGenerator[bytes, None], rid: str, *, anthropic: bool = False
    ) -> None:
        self.gen = gen
        self.rid = rid
        self.anthropic = anthropic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def start() -> None:
            nonlocal started
            started = True
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )

        async def pump() -> None:
            try:
                async for chunk in self.gen:
                    if not started:
                        await start()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except ApiError as err:
                if not started:
                    await error_response(err, self.rid, anthropic=self.anthropic)(
                        scope, receive, send
                    )
                    return
                env = err.envelope(self.rid)
                tail = (
                    anth.sse_event("error", {"type": "error", "error": env})
                    if self.anthropic
                    else sse({"error": env}) + DONE
                )
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
