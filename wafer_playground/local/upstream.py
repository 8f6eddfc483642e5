"""The local engine's shared part: its llama-server backends, the per-model queue, auth, body
reading, limits, and the calls upstream (JSON, and SSE through wafer_playground/sse.py). The
routes_*.py modules handle one surface each on top of it."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request

from wafer_playground import media
from wafer_playground.local import cards
from wafer_playground.local.asgi import dumps
from wafer_playground.local.files import FileStore, owner_of
from wafer_playground.local.reqlog import RequestLog, RequestRecord
from wafer_playground.local.validation import ApiError, schema_error
from wafer_playground.sse import SSEDecoder

log = logging.getLogger(__name__)


# Wafer's cap on a request body (inline media count toward it;
# docs/spec/addendum-2026-12.md §1.1); also what
# stops memory abuse
MAX_BODY = media.MAX_BYTES
# Neutral sampling defaults (SGLang/OpenAI semantics) instead of llama.cpp's own
# (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05), so results mean the same as on Wafer.
NEUTRAL = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
# Sampling fields llama-server takes under the same name and meaning on chat and completions.
SAMPLING_FORWARDED = ("temperature", "top_p", "min_p", "frequency_penalty", "presence_penalty",
                      "stop", "seed", "logit_bias")


def usage_of(prompt_n: int, completion_n: int, cached: int) -> dict[str, Any]:
    """The OpenAI usage object the engine reports (streamed or not)."""
    return {"prompt_tokens": prompt_n, "completion_tokens": completion_n,
            "total_tokens": prompt_n + completion_n,
            "prompt_tokens_details": {"cached_tokens": cached}}


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
        return cards.model_card(
            self.spec,
            n_ctx=self.n_ctx,
            max_output_tokens=max_output,
            n_vocab=self.n_vocab,
            meta=self.meta,
        )


@dataclass
class EngineConfig:
    api_key: str | None = None
    queue_size: int = 8  # waiting requests per model beyond the ones running
    parallel: int = 1  # requests running at once per model (llama-server's -np slots)
    max_output_tokens: int = cards.DEFAULT_MAX_OUTPUT
    # tests inject faults here (a transport that refuses, breaks mid-stream, answers junk)
    upstream_transport: httpx.AsyncBaseTransport | None = None
    files: FileStore | None = None  # POST /v1/files storage (default: under the cache root)


@dataclass
class Ticket:
    """A place in one model's queue (running or waiting); release() gives it back once."""

    backend: Backend
    live: bool = True

    def release(self) -> None:
        if self.live:
            self.live = False
            self.backend.admitted -= 1


class Adapter:
    """What every route shares: the backends, the config, the request log and the file store,
    and the plumbing (auth, model lookup, queue, body reading, token limits, upstream calls).
    server.LocalEngineApp adds the routes."""

    def __init__(self, backends: list[Backend], config: EngineConfig) -> None:
        self.backends = {b.spec.id: b for b in backends}
        self.default_model = (
            cards.DEFAULT_MODEL if cards.DEFAULT_MODEL in self.backends else backends[0].spec.id
        )
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
            raise ApiError(
                401,
                "invalid_api_key",
                "Missing or invalid API key: send Authorization: Bearer <key>"
                if given is None
                else "Invalid API key",
            )

    def resolve(self, model: Any, *, default: bool = False) -> Backend:
        if model is None:
            if default:
                return self.backends[self.default_model]
            raise schema_error("model", "model is required")
        if not isinstance(model, str) or not model:
            raise schema_error("model", "model must be a non-empty string")
        b = self.backends.get(model)
        if b is None:
            b = next(
                (x for x in self.backends.values() if x.spec.id.lower() == model.lower()), None
            )
        if b is None:
            raise ApiError(
                404,
                "model_not_found",
                f"The model '{model}' does not exist or is not served by this "
                f"engine. Available: {', '.join(self.backends)}",
                param="model",
            )
        return b

    @staticmethod
    def check_zdr(request: Request, b: Backend) -> None:
        value = request.headers.get("wafer-zdr")
        if value is None:
            return
        if value.strip().lower() != "required":
            raise ApiError(
                400,
                "invalid_header",
                "Wafer-ZDR only accepts the value 'required'",
                param="Wafer-ZDR",
            )
        if not b.spec.zdr_supported:
            raise ApiError(
                422,
                "model_zdr_not_supported",
                f"Model '{b.spec.id}' does not support Zero Data Retention "
                "(zdr_supported is false); drop the Wafer-ZDR header or pick a "
                "ZDR model",
                param="model",
            )

    def admit(self, b: Backend) -> Ticket:
        if b.admitted >= self.config.parallel + self.config.queue_size:
            retry = max(1, b.admitted)
            raise ApiError(
                429,
                "rate_limit_exceeded",
                f"Model '{b.spec.id}' is busy: {b.admitted} requests running or "
                f"queued (limit {self.config.parallel + self.config.queue_size}). "
                "Retry later.",
                headers={"Retry-After": str(retry)},
            )
        b.admitted += 1
        return Ticket(b)

    async def read_json(self, request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise ApiError(
                413, "request_too_large", f"Request body exceeds {MAX_BODY // (1 << 20)} MiB"
            )
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ApiError(
                413, "request_too_large", f"Request body exceeds {MAX_BODY // (1 << 20)} MiB"
            )
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise ApiError(400, "invalid_json_request", "Could not parse JSON body") from None
        if b"\\ud" in raw.lower():  # only an escape can smuggle in an unpaired surrogate
            try:
                json.dumps(body, ensure_ascii=False).encode()
            except UnicodeEncodeError:
                raise ApiError(
                    400,
                    "invalid_json_request",
                    "The JSON body contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)",
                ) from None
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
            return ApiError(
                400,
                "unsupported_grammar",
                f"llama.cpp could not apply this grammar with this model's vocabulary ({msg})",
                param="ebnf",
            )
        if status == 400 and "grammar" in msg:
            # our checker accepted it (Wafer would too), but llama.cpp's GBNF cannot apply it
            return ApiError(
                400,
                "invalid_grammar",
                f"The grammar is valid Wafer EBNF but llama.cpp could not apply it "
                f"on the local engine ({msg})",
                param="ebnf",
            )
        if status == 400:
            return ApiError(400, "invalid_request", f"llama-server rejected the request: {msg}")
        if status == 503:
            return ApiError(
                503,
                "engine_unavailable",
                f"Model is not ready: {msg}",
                type="api_error",
                headers={"Retry-After": "2"},
            )
        return ApiError(
            502, "upstream_error", f"llama-server error {status}: {msg}", type="api_error"
        )

    async def up_json(self, b: Backend, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert b.client is not None
        for attempt in range(2):
            try:
                r = await b.client.post(
                    path, content=dumps(body), headers={"content-type": "application/json"}
                )
                break
            except httpx.HTTPError as exc:
                if attempt == 0 and isinstance(exc, _STALE):
                    continue  # llama-server dropped the connection before answering: once more
                raise ApiError(
                    503,
                    "engine_unavailable",
                    f"llama-server for '{b.spec.id}' is not reachable ({type(exc).__name__})",
                    type="api_error",
                    headers={"Retry-After": "2"},
                ) from None
        if r.status_code >= 400:
            raise self.upstream_error(r.status_code, r.content)
        try:
            data: dict[str, Any] = r.json()
        except ValueError:
            raise ApiError(
                502,
                "upstream_error",
                "llama-server answered with a body that is not JSON",
                type="api_error",
            ) from None
        return data

    async def up_stream(
        self, b: Backend, path: str, body: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Upstream SSE events as dicts. Leaving the loop closes the upstream connection,
        which is how llama-server learns to stop generating."""
        assert b.client is not None
        yielded = False
        for attempt in range(2):
            try:
                async with b.client.stream(
                    "POST", path, content=dumps(body), headers={"content-type": "application/json"}
                ) as r:
                    if r.status_code >= 400:
                        raise self.upstream_error(r.status_code, await r.aread())
                    async for event in SSEDecoder().aiter_bytes(r.aiter_bytes()):
                        if not event.data:
                            continue  # `: ping` comments and events without data
                        if event.data == "[DONE]":
                            return
                        ev = json.loads(event.data)
                        if "error" in ev and "choices" not in ev:
                            e = ev["error"]
                            raise self.upstream_error(
                                int(e.get("code", 500) or 500), json.dumps({"error": e}).encode()
                            )
                        yielded = True
                        yield ev
                return
            except httpx.HTTPError as exc:
                if attempt == 0 and not yielded and isinstance(exc, _STALE):
                    continue  # llama-server dropped the connection before answering: once more
                raise ApiError(
                    503,
                    "engine_unavailable",
                    f"lost the connection to llama-server for '{b.spec.id}' ({type(exc).__name__})",
                    type="api_error",
                ) from None

    def check_max_output(self, b: Backend, requested: int | None, param: str) -> int:
        """The card's max_output_tokens is a limit, not a hint: a larger max_tokens is
        refused (400), never silently cut. Returns the effective value."""
        cap = self.config.max_output_tokens
        if requested is not None and requested > cap:
            raise ApiError(
                400,
                "max_tokens_exceeded",
                f"{param} is {requested}, but model '{b.spec.id}' produces at most "
                f"{cap} tokens (max_output_tokens on its card)",
                param=param,
            )
        return requested or cap

    def resolve_max_tokens(
        self,
        b: Backend,
        requested: int | None,
        n_prompt: int,
        default: int | None,
        param: str = "max_tokens",
    ) -> int:
        if n_prompt >= b.n_ctx:
            raise ApiError(
                400,
                "context_length_exceeded",
                f"This model's maximum context length is {b.n_ctx} tokens, but the "
                f"prompt has {n_prompt} tokens",
                param="messages",
            )
        cap = self.config.max_output_tokens
        if requested is not None:
            eff = self.check_max_output(b, requested, param)
            if n_prompt + eff > b.n_ctx:
                raise ApiError(
                    400,
                    "context_length_exceeded",
                    f"This model's maximum context length is {b.n_ctx} tokens, but "
                    f"{n_prompt + eff} were requested ({n_prompt} in the prompt, "
                    f"{eff} for the completion)",
                    param=param,
                )
            return eff
        return min(default or cap, cap, b.n_ctx - n_prompt)

    async def count_chat_prompt(self, b: Backend, up: dict[str, Any]) -> int:
        """Exact prompt length: render the chat template, then tokenize the result."""
        tmpl: dict[str, Any] = {
            k: up[k]
            for k in ("messages", "tools", "tool_choice", "response_format", "parallel_tool_calls")
            if k in up
        }
        prompt = (await self.up_json(b, "/apply-template", tmpl))["prompt"]
        toks = await self.up_json(b, "/tokenize", {"content": prompt, "add_special": True})
        return len(toks["tokens"])

    def check_media(self, refs: list[media.MediaRef], b: Backend) -> None:
        """Resolve file ids (404 `file_not_found` for unknown or expired ones), then refuse
        media for a text-only model (every local model is text-only)."""
        for ref in refs:
            # any purpose may sit in an image_url part: the app's default sends documents
            # and videos in the documented image form (wafer_playground/media.py)
            if ref.file_id is not None:
                self.files.get(
                    self.files_owner, ref.file_id, param=f"{ref.path}.{ref.kind}.file_id"
                )
        if refs:
            first = refs[0]
            raise ApiError(
                400,
                "model_capability_unsupported",
                f"Model '{b.spec.id}' is text-only (capabilities.vision is false): "
                f"it cannot take images, documents or video ({first.path} is a "
                f"{first.kind} part). Send text only, or pick a vision model",
                param=first.path,
            )

    @contextlib.asynccontextmanager
    async def outcome(self, rec: RequestRecord, ticket: Ticket, what: str) -> AsyncIterator[None]:
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
            raise ApiError(
                500, "internal_error", "Internal error in the local engine", type="api_error"
            ) from None
        finally:
            ticket.release()
            self.log.finish(rec, status, code)


def record_usage(rec: RequestRecord, usage: dict[str, Any]) -> None:
    rec.input_tokens += int(usage.get("prompt_tokens", 0))
    rec.output_tokens += int(usage.get("completion_tokens", 0))
    rec.cached_tokens += int(
        (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0) or 0
    )


_STALE = (httpx.RemoteProtocolError, httpx.ConnectError)
