"""The Wafer API client: one httpx.Client, explicit timeouts, typed errors, spec-true SSE.

Request bodies pass through untouched: the caller decides every field (see `params.py`);
the client only adds what the transport needs (`stream`, `stream_options.include_usage`).
The key lives only in the Authorization header; it is never logged and never in `repr()`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ProtocolError,
    WaferError,
    error_from_response,
    stream_error,
)
from .sse import ServerSentEvent, SSEDecoder

DEFAULT_BASE_URL = "https://pass.wafer.ai/v1"
WAFER_ACCOUNT_URL = "https://api.wafer.ai/v1"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=5.0)
MAX_RETRY_WAIT_S = 10.0  # never leave a user staring at a spinner longer for one retry


def key_fingerprint(api_key: str | None) -> str:
    """A stable, non-reversible id for cache keys and logs: never the key itself."""
    if not api_key:
        return "anonymous"
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def account_base_url(base_url: str) -> str:
    """Usage and metrics live on api.wafer.ai for Wafer; elsewhere on the same base URL."""
    parts = urlsplit(base_url)
    if parts.hostname == "pass.wafer.ai":
        return WAFER_ACCOUNT_URL
    return base_url.rstrip("/")


def root_url(base_url: str) -> str:
    """Base URL without a trailing `/v1` (the Anthropic SDK's notion of base URL)."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path[:-3] if parts.path.endswith("/v1") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass
class Result:
    data: Any
    status: int
    headers: dict[str, str]
    request_id: str | None
    elapsed_s: float
    request_json: dict[str, Any] | None = None


@dataclass(frozen=True)
class TokenPiece:
    id: int
    piece: str | bytes  # bytes when the piece alone is not valid UTF-8

    @property
    def text(self) -> str:
        if isinstance(self.piece, bytes):
            return self.piece.decode("utf-8", errors="replace")
        return self.piece


def streamed_body(body: Mapping[str, Any], *, anthropic: bool = False) -> dict[str, Any]:
    """The body a streamed request sends: `stream: true` and, on OpenAI surfaces, usage in
    the stream (the only way to get usage, and so cost). "View code" shows this body."""
    out = dict(body)
    out["stream"] = True
    if not anthropic:
        opts = dict(out.get("stream_options") or {})
        opts.setdefault("include_usage", True)
        out["stream_options"] = opts
    return out


@dataclass
class Stream:
    """An open SSE response: iterate for parsed JSON chunks; always closed in `finally`."""

    response: httpx.Response
    request_json: dict[str, Any]
    started_at: float
    anthropic: bool = False
    events: list[ServerSentEvent] = field(default_factory=list)
    first_byte_at: float | None = None
    finished: bool = False  # saw [DONE] (OpenAI) or message_stop (Anthropic)
    _closed: bool = False
    _secret: str | None = field(default=None, repr=False)  # only to redact echoed keys

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> dict[str, str]:
        return _clean_headers(self.response.headers, self._secret)

    @property
    def request_id(self) -> str | None:
        return _clean_headers(self.response.headers, self._secret).get("x-request-id")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        decoder = SSEDecoder()
        try:
            for sse in decoder.iter_bytes(self._raw_chunks()):
                if self._secret and self._secret in sse.data:
                    # a server echoing the key: the raw events end up in the inspector
                    sse = replace(sse, data=sse.data.replace(self._secret, "[redacted key]"))
                self.events.append(sse)
                if sse.data == "[DONE]":
                    self.finished = True
                    return
                if not sse.data and sse.event is None:
                    continue
                if self.anthropic and sse.event == "ping":
                    continue
                try:
                    payload = sse.json()
                except ValueError as exc:
                    raise ProtocolError(
                        f"malformed JSON in stream event: {sse.data[:120]!r}",
                        request_id=self.request_id,
                    ) from exc
                if not isinstance(payload, dict):
                    raise ProtocolError(
                        f"stream event is not a JSON object: {sse.data[:120]!r}",
                        request_id=self.request_id,
                    )
                # `"error": null` is SGLang serialising an absent field, not an error.
                if (payload.get("error") is not None or sse.event == "error"
                        or payload.get("type") == "error"):
                    raise stream_error(payload, self.request_id)
                yield payload
                if self.anthropic and payload.get("type") == "message_stop":
                    self.finished = True
                    return
            raise APIConnectionError(
                "the stream ended before it was complete (connection closed early)",
                request_id=self.request_id,
            )
        except WaferError as err:
            raise redact(err, self._secret) from err.__cause__
        finally:
            self.close()

    def _raw_chunks(self) -> Iterator[bytes]:
        try:
            for chunk in self.response.iter_bytes():
                if self.first_byte_at is None and chunk:
                    self.first_byte_at = time.perf_counter()
                yield chunk
        except httpx.TimeoutException as exc:
            raise APITimeoutError(
                "no data from the server within the read timeout; the stream was abandoned",
                request_id=self.request_id,
            ) from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise APIConnectionError(
                f"the connection broke mid-stream ({type(exc).__name__})",
                request_id=self.request_id,
            ) from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class WaferClient:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        zdr: bool = False,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or None
        self.zdr = zdr
        self.max_retries = max_retries
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=timeout or DEFAULT_TIMEOUT,
            transport=transport,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            follow_redirects=False,  # a redirect could carry the Authorization header elsewhere
        )

    def __repr__(self) -> str:
        return f"WaferClient(base_url={self.base_url!r}, key={key_fingerprint(self._api_key)})"

    @property
    def key_fingerprint(self) -> str:
        return key_fingerprint(self._api_key)

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    # ---- plumbing -------------------------------------------------------------------

    def _headers(self, request_id: str | None = None, *, anthropic: bool = False) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "wafer-playground/0.1"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self.zdr:
            headers["Wafer-ZDR"] = "required"
        if request_id:
            headers["x-request-id"] = request_id
        if anthropic:
            headers["anthropic-version"] = "2023-06-01"
        return headers

    def _send(
        self, method: str, url: str, *, body: dict[str, Any] | None, stream: bool,
        request_id: str | None = None, anthropic: bool = False,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            return self._send_once_or_retry(method, url, body=body, stream=stream,
                                            request_id=request_id, anthropic=anthropic,
                                            params=params)
        except WaferError as err:
            raise redact(err, self._api_key) from err.__cause__

    def _send_once_or_retry(
        self, method: str, url: str, *, body: dict[str, Any] | None, stream: bool,
        request_id: str | None, anthropic: bool, params: dict[str, Any] | None,
    ) -> httpx.Response:
        """Retry only where safe: GETs, or POSTs answered 429/503 (nothing generated yet)."""
        attempt = 0
        while True:
            request = self._http.build_request(
                method, url, json=body, params=params,
                headers=self._headers(request_id, anthropic=anthropic),
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                if method == "GET" and attempt < self.max_retries:
                    attempt += 1
                    continue
                raise APITimeoutError(
                    f"{method} {_path(url)} timed out ({type(exc).__name__})"
                ) from exc
            except httpx.TransportError as exc:
                if method == "GET" and attempt < self.max_retries:
                    attempt += 1
                    self._sleep(min(0.25 * 2**attempt, 2.0))
                    continue
                raise APIConnectionError(
                    f"could not reach {_host(url)}: {_transport_reason(exc)}"
                ) from exc
            if response.status_code < 400:
                return response
            text = _read_text(response)
            err = error_from_response(response.status_code, dict(response.headers), text)
            retryable = response.status_code in (429, 503) or (
                method == "GET" and response.status_code >= 500
            )
            if retryable and attempt < self.max_retries:
                wait = err.retry_after if err.retry_after is not None else 0.5 * 2**attempt
                if wait <= MAX_RETRY_WAIT_S:
                    attempt += 1
                    self._sleep(wait)
                    continue
            raise err

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None, *,
              base: str | None = None, params: dict[str, Any] | None = None,
              request_id: str | None = None, anthropic: bool = False) -> Result:
        url = (base or self.base_url) + path
        started = time.perf_counter()
        response = self._send(method, url, body=body, stream=False, params=params,
                              request_id=request_id, anthropic=anthropic)
        text = response.text
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise redact(ProtocolError(
                f"{method} {_path(url)} returned a body that is not valid JSON "
                f"({len(text)} bytes, starts {text[:60]!r})",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ), self._api_key) from exc
        headers = _clean_headers(response.headers, self._api_key)
        return Result(
            data=data,
            status=response.status_code,
            headers=headers,
            request_id=headers.get("x-request-id"),
            elapsed_s=time.perf_counter() - started,
            request_json=body,
        )

    def _stream(self, path: str, body: dict[str, Any], *, anthropic: bool = False,
                request_id: str | None = None) -> Stream:
        body = streamed_body(body, anthropic=anthropic)
        started = time.perf_counter()
        response = self._send("POST", self.base_url + path, body=body, stream=True,
                              request_id=request_id, anthropic=anthropic)
        ctype = response.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            text = _read_text(response)
            response.close()
            raise redact(ProtocolError(
                f"expected an event stream but got {ctype or 'no content type'}: {text[:120]!r}",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ), self._api_key)
        return Stream(response=response, request_json=body, started_at=started,
                      anthropic=anthropic, _secret=self._api_key)

    # ---- API ------------------------------------------------------------------------

    def list_models(self) -> Result:
        return self._json("GET", "/models")

    def chat(self, body: dict[str, Any], *, request_id: str | None = None) -> Result:
        return self._json("POST", "/chat/completions", body, request_id=request_id)

    def chat_stream(self, body: dict[str, Any], *, request_id: str | None = None) -> Stream:
        return self._stream("/chat/completions", body, request_id=request_id)

    def completions(self, body: dict[str, Any], *, request_id: str | None = None) -> Result:
        return self._json("POST", "/completions", body, request_id=request_id)

    def completions_stream(self, body: dict[str, Any], *, request_id: str | None = None) -> Stream:
        return self._stream("/completions", body, request_id=request_id)

    def messages(self, body: dict[str, Any], *, request_id: str | None = None) -> Result:
        return self._json("POST", "/messages", body, request_id=request_id, anthropic=True)

    def messages_stream(self, body: dict[str, Any], *, request_id: str | None = None) -> Stream:
        return self._stream("/messages", body, anthropic=True, request_id=request_id)

    def tokenize(self, text: str, *, model: str | None = None,
                 add_special: bool = False) -> list[TokenPiece]:
        body: dict[str, Any] = {"content": text, "add_special": add_special, "with_pieces": True}
        if model:
            body["model"] = model
        data = self._json("POST", "/tokenize", body).data
        pieces: list[TokenPiece] = []
        for tok in data.get("tokens", []):
            if isinstance(tok, dict):
                piece = tok.get("piece", "")
                pieces.append(TokenPiece(int(tok["id"]),
                                         bytes(piece) if isinstance(piece, list) else str(piece)))
            else:
                pieces.append(TokenPiece(int(tok), ""))
        return pieces

    def detokenize(self, ids: list[int], *, model: str | None = None) -> str:
        body: dict[str, Any] = {"tokens": ids}
        if model:
            body["model"] = model
        return str(self._json("POST", "/detokenize", body).data.get("content", ""))

    def apply_template(self, messages: list[dict[str, Any]], *, model: str | None = None) -> str:
        body: dict[str, Any] = {"messages": messages}
        if model:
            body["model"] = model
        return str(self._json("POST", "/apply-template", body).data.get("prompt", ""))

    def usage_me(self, period: str = "7d", *, start_at: str | None = None,
                 end_at: str | None = None) -> Result:
        """`period`, or `start_at` + `end_at` (ISO timestamps; the API takes one form)."""
        params = ({"start_at": start_at, "end_at": end_at} if start_at and end_at
                  else {"period": period})
        return self._json("GET", "/usage/me", base=account_base_url(self.base_url),
                          params=params)

    def endpoint_metrics(self, endpoint: str, range_minutes: int = 60,
                         model: str | None = None) -> Result:
        params: dict[str, Any] = {"endpoint": endpoint, "range_minutes": range_minutes}
        if model:
            # the resolved model name; case-sensitive (docs/spec/addendum-2026-12.md §3.2)
            params["model"] = model
        return self._json("GET", "/endpoints/metrics", base=account_base_url(self.base_url),
                          params=params)

    def inference_quota(self) -> Result:
        """`GET /v1/inference/quota` on the inference host: the Pass quota. Undocumented
        (docs/spec/addendum-2026-12.md §4); a 404 means this endpoint or key has none."""
        return self._json("GET", "/inference/quota")

    def upload_file(self, data: bytes, mime: str, purpose: str,
                    filename: str | None = None) -> Result:
        """`POST /v1/files` (docs/spec/addendum-2026-12.md §1.2): the raw bytes as the body,
        metadata in headers.
        Not retried: an upload is not idempotent (a retry could store the file twice)."""
        headers = {**self._headers(), "Content-Type": mime, "X-Wafer-Purpose": purpose}
        if filename:
            # a free label; header values must be plain ASCII
            label = "".join(c for c in filename if 32 <= ord(c) < 127)[:200]
            if label:
                headers["X-Wafer-Filename"] = label
        url = self.base_url + "/files"
        started = time.perf_counter()
        try:
            try:
                response = self._http.post(url, content=data, headers=headers)
            except httpx.TimeoutException as exc:
                raise APITimeoutError(f"POST {_path(url)} timed out "
                                      f"({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise APIConnectionError(f"could not reach {_host(url)}: "
                                         f"{_transport_reason(exc)}") from exc
            text = response.text
            if response.status_code >= 400:
                raise error_from_response(response.status_code, dict(response.headers), text)
            try:
                payload = json.loads(text)
            except ValueError as exc:
                raise ProtocolError(f"POST {_path(url)} returned a body that is not JSON",
                                    status=response.status_code,
                                    request_id=response.headers.get("x-request-id")) from exc
            if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
                raise ProtocolError(f"POST {_path(url)} answered without a file id",
                                    status=response.status_code,
                                    request_id=response.headers.get("x-request-id"))
        except WaferError as err:
            raise redact(err, self._api_key) from err.__cause__
        clean = _clean_headers(response.headers, self._api_key)
        return Result(data=payload, status=response.status_code, headers=clean,
                      request_id=clean.get("x-request-id"),
                      elapsed_s=time.perf_counter() - started, request_json=None)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WaferClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def redact(err: WaferError, secret: str | None) -> WaferError:
    """Blank out a key the server (or a transport message) echoed back, in place.

    Errors end up on screen and in logs; a server that quotes the bad key in its message
    must not make us display it.
    """
    if not secret:
        return err
    mask = "[redacted key]"
    err.message = err.message.replace(secret, mask)
    if err.body:
        err.body = err.body.replace(secret, mask)
    err.args = tuple(a.replace(secret, mask) if isinstance(a, str) else a for a in err.args)
    return err


def _clean_headers(headers: httpx.Headers, secret: str | None) -> dict[str, str]:
    """Response headers as a dict, with a key the server echoed blanked (they are shown in
    the inspector and kept with the last request)."""
    out = dict(headers)
    if secret:
        out = {k: v.replace(secret, "[redacted key]") for k, v in out.items()}
    return out


def _read_text(response: httpx.Response) -> str:
    try:
        response.read()
        return response.text
    except httpx.HTTPError:
        return ""


def _path(url: str) -> str:
    return urlsplit(url).path


def _host(url: str) -> str:
    """host[:port] for messages: never userinfo (`user:password@`) from the URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url if "@" not in url else "the server"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname}:{port}" if port else parts.hostname


def _transport_reason(exc: httpx.TransportError) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused (is the server running?)"
    return text or type(exc).__name__


__all__ = [
    "DEFAULT_BASE_URL",
    "APIStatusError",
    "Result",
    "Stream",
    "TokenPiece",
    "WaferClient",
    "WaferError",
    "account_base_url",
    "key_fingerprint",
    "root_url",
]
