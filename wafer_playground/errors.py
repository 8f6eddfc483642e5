"""Typed errors for the Wafer API: the error envelope, transport failures, broken streams.

Every error can say what happened in one sentence (`human()`), with the Wafer `code` and
`request_id` when the server sent them, so pages never need a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "NotFoundError",
    "NotSentError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "UnprocessableEntityError",
    "WaferError",
    "error_from_response",
]


class WaferError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,  # noqa: A002 - the envelope's field name
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body

    @property
    def title(self) -> str:
        """Short label for the error kind, e.g. 'Authentication failed'."""
        return _TITLES.get(type(self), "Request failed")

    def human(self, *, text: Callable[[str], str] = str,
              code: Callable[[str], str] = lambda v: f"`{v}`",
              ident: Callable[[str], str] = str) -> str:
        """One readable sentence: status, code, message, param, request id.

        `text`, `code` and `ident` format what the server sent (the message; code and param;
        the request id): components/errors.py passes ones that make it inert in markdown."""
        head = f"HTTP {self.status}" if self.status else self.title
        parts = [head]
        if self.code:
            parts.append(code(self.code))
        out = " ".join(parts) + f": {text(self.message)}"
        if self.param:
            out += f" (param {code(self.param)})"
        if self.retry_after is not None:
            out += f" Retry after {self.retry_after:g} s."
        if self.request_id:
            out += f" [request id {ident(self.request_id)}]"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "status": self.status,
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "request_id": self.request_id,
            # kept so an error redrawn from session state or the store still says how long
            # to wait
            "retry_after": self.retry_after,
        }

    def __str__(self) -> str:
        return self.human()


class APIStatusError(WaferError):
    """The server answered with HTTP >= 400."""


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class UnprocessableEntityError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class ServerError(APIStatusError):
    pass


class StreamError(WaferError):
    """An error event arrived in the middle of a stream."""


class ProtocolError(WaferError):
    """The server broke the protocol: malformed JSON or SSE, truncated body, HTML page."""


class APIConnectionError(WaferError):
    """The request never got an answer: refused, reset, DNS, TLS."""


class APITimeoutError(APIConnectionError):
    pass


class NotSentError(WaferError):
    """Nothing was sent: the endpoint is not usable yet (engine provisioning, URL refused)."""


_TITLES: dict[type, str] = {
    BadRequestError: "Bad request",
    AuthenticationError: "Authentication failed",
    PermissionDeniedError: "Permission denied",
    NotFoundError: "Not found",
    UnprocessableEntityError: "Request rejected",
    RateLimitError: "Rate limited",
    ServerError: "Server error",
    StreamError: "Stream failed",
    ProtocolError: "Unexpected response",
    APIConnectionError: "Connection failed",
    APITimeoutError: "Timed out",
    NotSentError: "Not sent",
}

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait: `Retry-After` is delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_envelope(payload: Any) -> dict[str, Any] | None:
    """Find the error object in Wafer, Anthropic-wrapped, SGLang or llama.cpp shapes."""
    if not isinstance(payload, dict):
        return None
    err = payload.get("error")
    if isinstance(err, dict):
        return err
    if isinstance(err, str):
        return {"message": err}
    if payload.get("object") == "error" and "message" in payload:  # raw SGLang
        return payload
    detail = payload.get("detail")  # FastAPI/Starlette-style proxies in front of a backend
    if isinstance(detail, str) and detail:
        return {"message": detail}
    if isinstance(detail, list) and detail:
        first = detail[0]
        text = first.get("msg") if isinstance(first, dict) else None
        return {"message": str(text or detail[0])}
    if isinstance(payload.get("message"), str) and payload["message"]:
        return payload
    return None


# A failed upstream shows its status and at most this much of its body, labelled: a typed
# Custom URL must not turn the app into a reader of whatever that server returns
# (SECURITY.md, "Endpoints").
EXCERPT_CHARS = 80


def _summarise_body(text: str, content_type: str, *, is_json: bool = False) -> str:
    flat = " ".join(text.split())
    snippet = flat[:EXCERPT_CHARS] + ("…" if len(flat) > EXCERPT_CHARS else "")
    if "html" in content_type or snippet.lower().startswith(("<!doctype", "<html")):
        return "the server returned an HTML page instead of JSON (a proxy or gateway error?)"
    if not snippet:
        return "the server returned an empty body"
    if is_json:
        return f"the server returned an error body without a message (excerpt: {snippet!r})"
    return f"the server returned a non-JSON body (excerpt: {snippet!r})"


def error_from_response(
    status: int, headers: dict[str, str], text: str, *, fallback_request_id: str | None = None
) -> APIStatusError:
    """Map an HTTP error response to a typed exception with a human message."""
    request_id = headers.get("x-request-id") or fallback_request_id
    retry_after = _retry_after(headers.get("retry-after"))
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIStatusError)
    is_json = True
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        payload, is_json = None, False
    err = parse_envelope(payload)
    if err is None:
        return cls(
            _summarise_body(text, headers.get("content-type", ""), is_json=is_json and
                            payload is not None),
            status=status,
            request_id=request_id,
            retry_after=retry_after,
            body=text[:2000],
        )
    code = err.get("code")
    return cls(
        str(err.get("message") or "no message"),
        status=status,
        type=err.get("type") if isinstance(err.get("type"), str) else None,
        code=str(code) if code is not None and not isinstance(code, int) else None,
        param=err.get("param") if isinstance(err.get("param"), str) else None,
        request_id=err.get("request_id") or request_id,
        retry_after=retry_after,
        body=text[:2000],
    )


def stream_error(payload: dict[str, Any], request_id: str | None) -> StreamError:
    err = parse_envelope(payload) or {}
    code = err.get("code")
    return StreamError(
        str(err.get("message") or "the stream reported an error"),
        type=err.get("type") if isinstance(err.get("type"), str) else None,
        code=str(code) if code is not None and not isinstance(code, int) else None,
        status=code if isinstance(code, int) else None,
        param=err.get("param") if isinstance(err.get("param"), str) else None,
        request_id=err.get("request_id") or request_id,
    )
