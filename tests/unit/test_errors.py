"""Error envelope parsing and the one-sentence `human()` text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from wafer_playground.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamError,
    UnprocessableEntityError,
    WaferError,
    error_from_response,
    parse_envelope,
    stream_error,
)

DOC_ENVELOPE = {"error": {
    "type": "invalid_request_error", "code": "tool_schema_invalid",
    "message": "tools[0].function.parameters must be a JSON Schema object",
    "param": "tools[0].function.parameters", "request_id": "req_a1b2c3d4e5f6",
    "docs_url": "https://docs.wafer.ai/errors#tool_schema_invalid"}}


def test_documented_envelope() -> None:
    err = error_from_response(400, {"x-request-id": "req_a1b2c3d4e5f6"},
                              json.dumps(DOC_ENVELOPE))
    assert isinstance(err, BadRequestError)
    assert (err.status, err.type, err.code, err.param, err.request_id) == (
        400, "invalid_request_error", "tool_schema_invalid", "tools[0].function.parameters",
        "req_a1b2c3d4e5f6")
    assert err.human() == (
        "HTTP 400 `tool_schema_invalid`: tools[0].function.parameters must be a JSON Schema "
        "object (param `tools[0].function.parameters`) [request id req_a1b2c3d4e5f6]")
    assert str(err) == err.human()
    assert err.to_dict()["code"] == "tool_schema_invalid"
    assert err.title == "Bad request"


def test_anthropic_wrapped_envelope() -> None:
    body = {"type": "error", "error": {"type": "authentication_error",
                                       "message": "invalid x-api-key"}}
    err = error_from_response(401, {"x-request-id": "req_000000000001"}, json.dumps(body))
    assert isinstance(err, AuthenticationError)
    assert err.type == "authentication_error" and err.message == "invalid x-api-key"
    assert err.request_id == "req_000000000001"  # header fills a missing body id


def test_sglang_raw_shape() -> None:
    body = {"object": "error", "message": "The input (300000 tokens) is longer than the "
            "model's context length (262144 tokens).", "type": "BadRequestError",
            "param": None, "code": 400}
    err = error_from_response(400, {}, json.dumps(body))
    assert isinstance(err, BadRequestError)
    assert err.code is None  # an int status is not a Wafer code
    assert err.type == "BadRequestError" and "context length" in err.message
    assert err.param is None


def test_llama_cpp_string_error() -> None:
    assert parse_envelope({"error": "model not loaded"}) == {"message": "model not loaded"}


def test_proxy_shapes() -> None:
    assert error_from_response(422, {}, json.dumps({"detail": "bad body"})).message == "bad body"
    err = error_from_response(422, {}, json.dumps(
        {"detail": [{"loc": ["body", "model"], "msg": "field required"}]}))
    assert err.message == "field required"
    assert error_from_response(503, {}, json.dumps({"message": "overloaded"})).message == \
        "overloaded"
    odd = error_from_response(500, {}, json.dumps({"status": "bad"}))
    assert "without a message" in odd.message and "non-JSON" not in odd.message


@pytest.mark.parametrize("payload", [None, [], "x", {"data": []}, {"object": "error"}])
def test_not_an_envelope(payload: object) -> None:
    assert parse_envelope(payload) is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError),
     (404, NotFoundError), (422, UnprocessableEntityError), (429, RateLimitError),
     (500, ServerError), (502, ServerError), (503, ServerError), (418, APIStatusError)],
)
def test_status_mapping(status: int, cls: type[APIStatusError]) -> None:
    err = error_from_response(status, {}, "{}")
    assert type(err) is cls and err.status == status


def test_html_body_summarised() -> None:
    err = error_from_response(502, {"content-type": "text/html; charset=utf-8"},
                              "<html><body>" + "x" * 5000 + "</body></html>")
    assert "HTML page" in err.message
    assert len(err.human()) < 200
    assert err.body is not None and len(err.body) == 2000


def test_html_without_content_type() -> None:
    err = error_from_response(500, {}, "<!DOCTYPE html><title>oops</title>")
    assert "HTML page" in err.message


def test_empty_and_plain_bodies() -> None:
    assert "empty body" in error_from_response(503, {}, "").message
    err = error_from_response(500, {}, "upstream   connect\nerror")
    assert "'upstream connect error'" in err.message


def test_retry_after() -> None:
    err = error_from_response(429, {"retry-after": "3"}, "{}")
    assert err.retry_after == 3.0 and "Retry after 3 s." in err.human()
    # The HTTP-date form: a past date means "now", a future one the seconds until then.
    assert error_from_response(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
                               "{}").retry_after == 0.0
    soon = (datetime.now(UTC) + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    wait = error_from_response(429, {"retry-after": soon}, "{}").retry_after
    assert wait is not None and 80 <= wait <= 90
    assert error_from_response(429, {"retry-after": "soon-ish"}, "{}").retry_after is None
    assert error_from_response(429, {"retry-after": "-5"}, "{}").retry_after == 0.0


def test_message_missing() -> None:
    err = error_from_response(400, {}, json.dumps({"error": {"code": "x"}}))
    assert err.message == "no message" and err.code == "x"


def test_stream_error_shapes() -> None:
    err = stream_error({"error": {"message": "m", "code": "upstream_error",
                                  "type": "server_error"}}, "req_1")
    assert isinstance(err, StreamError)
    assert (err.code, err.type, err.request_id, err.status) == (
        "upstream_error", "server_error", "req_1", None)
    assert err.human() == "Stream failed `upstream_error`: m [request id req_1]"
    assert stream_error({"error": {"message": "x", "request_id": "req_2"}}, "req_1") \
        .request_id == "req_2"
    assert stream_error({}, None).message == "the stream reported an error"


def test_transport_errors_human() -> None:
    assert APIConnectionError("could not reach h").human() == \
        "Connection failed: could not reach h"
    timeout = APITimeoutError("slow")
    assert isinstance(timeout, APIConnectionError) and timeout.title == "Timed out"
    assert WaferError("plain").human() == "Request failed: plain"
