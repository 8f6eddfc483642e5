"""Starlette app speaking the Wafer API in front of llama-server child processes.

One llama-server per model (with `--parallel` slots), reached over loopback by an
`httpx.AsyncClient` on loopback.py's lean transport. The adapter owns everything Wafer
promises that llama-server does not: strict request validation, Wafer's error envelope and
request ids, token-ID-only completions with XGrammar-dialect `ebnf` (checked by
`wafer_playground.grammar`, then translated to GBNF), `stop_token_ids` / `min_tokens`
emulation, legacy completion logprobs, the Anthropic Messages surface, a bounded per-model
queue, and usage/metrics from its own request log. Streams are forwarded event by event; a
client disconnect cancels the upstream request (the connection is closed, and llama-server
stops generating).

Extensions (documented on the cards under `local.extensions`):
- completions `logprobs` adds `token_ids` and `top_logprobs_by_id` ([{id, token, bytes,
  logprob}] per position) next to SGLang's `tokens`/`token_logprobs`/`top_logprobs`/
  `text_offset`, so a UI can fork generation on an exact token id.
- `POST /tokenize`, `/detokenize`, `/apply-template` (also under /v1), routed by `model`.

This module wires the routes; the work lives beside it: asgi.py (request ids, the error
envelope, SSE responses), upstream.py (backends, queue, auth, limits, calls to llama-server),
and one routes_*.py per surface (chat, messages, completions, models, files, tokens, account).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from wafer_playground.local import (
    routes_account,
    routes_chat,
    routes_completions,
    routes_files,
    routes_messages,
    routes_models,
    routes_tokens,
)
from wafer_playground.local.asgi import EventStream, RequestIdMiddleware, error_response, request_id
from wafer_playground.local.loopback import LoopbackTransport
from wafer_playground.local.reqlog import RequestRecord
from wafer_playground.local.upstream import Adapter, Backend, EngineConfig
from wafer_playground.local.validation import ApiError

log = logging.getLogger(__name__)

# Every route is `async def route(eng, request, rec)` in its routes_*.py module.
Handler = Callable[[Adapter, Request, RequestRecord | None], Awaitable[Any]]


class LocalEngineApp(Adapter):
    """The adapter with its routes: `build()` gives the ASGI app."""

    def endpoint(
        self, fn: Handler, *, logged: str | None = None, auth: bool = True, anthropic: bool = False
    ) -> Callable[[Request], Awaitable[Response | EventStream]]:
        """One route's handler: request id, auth, the request log, and every error as Wafer's
        envelope (Anthropic's for /v1/messages)."""

        async def handler(request: Request) -> Response | EventStream:
            rid = request_id(request)
            rec = self.log.start(rid, logged) if logged else None
            try:
                if auth:
                    self.check_auth(request)
                result = await fn(self, request, rec)
            except ApiError as err:
                if rec:
                    self.log.finish(rec, err.status, err.code)
                return error_response(err, rid, anthropic=anthropic)
            except Exception:
                log.exception("error in %s", request.url.path)
                if rec:
                    self.log.finish(rec, 500, "internal_error")
                return error_response(
                    ApiError(
                        500,
                        "internal_error",
                        "Internal error in the local engine",
                        type="api_error",
                    ),
                    rid,
                    anthropic=anthropic,
                )
            if isinstance(result, EventStream):
                return result  # an ASGI app; it logs itself
            if rec:
                self.log.finish(rec, 200)
            return JSONResponse(result)

        return handler

    def build(self) -> ASGIApp:
        e = self.endpoint
        routes = [
            Route("/v1/models", e(routes_models.models, auth=False), methods=["GET"]),
            Route(
                "/v1/models/{model_id:path}", e(routes_models.model, auth=False), methods=["GET"]
            ),
            Route("/v1/files", e(routes_files.upload_file), methods=["POST"]),
            Route(
                "/v1/chat/completions",
                e(routes_chat.chat, logged="/v1/chat/completions"),
                methods=["POST"],
            ),
            Route(
                "/v1/completions",
                e(routes_completions.completions, logged="/v1/completions"),
                methods=["POST"],
            ),
            Route(
                "/v1/messages",
                e(routes_messages.messages, logged="/v1/messages", anthropic=True),
                methods=["POST"],
            ),
            Route("/v1/usage/me", e(routes_account.usage_me), methods=["GET"]),
            Route("/v1/endpoints/metrics", e(routes_account.endpoint_metrics), methods=["GET"]),
            Route("/health", e(routes_models.health, auth=False), methods=["GET"]),
        ]
        for path, fn in (
            ("tokenize", routes_tokens.tokenize),
            ("detokenize", routes_tokens.detokenize),
            ("apply-template", routes_tokens.apply_template),
        ):
            routes.append(Route(f"/{path}", e(fn), methods=["POST"]))
            routes.append(Route(f"/v1/{path}", e(fn), methods=["POST"]))

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            if exc.status_code == 404:
                err = ApiError(404, "not_found", f"No route for {request.url.path}")
            elif exc.status_code == 405:
                err = ApiError(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed on {request.url.path}",
                    type="invalid_request_error",
                )
            else:
                err = ApiError(exc.status_code, "http_error", str(exc.detail))
            return error_response(
                err, request_id(request), anthropic=request.url.path == "/v1/messages"
            )

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            for b in self.backends.values():
                b.client = httpx.AsyncClient(
                    base_url=b.url,
                    timeout=httpx.Timeout(600, connect=5),
                    transport=self.config.upstream_transport or LoopbackTransport(),
                )
                b.slot = asyncio.Semaphore(max(1, self.config.parallel))
            try:
                yield
            finally:
                for b in self.backends.values():
                    if b.client:
                        await b.client.aclose()

        app = Starlette(
            routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan
        )
        return RequestIdMiddleware(app)


def create_app(backends: list[Backend], config: EngineConfig) -> ASGIApp:
    return LocalEngineApp(backends, config).build()


__all__ = ["Backend", "EngineConfig", "LocalEngineApp", "create_app"]
