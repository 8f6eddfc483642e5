"""WaferClient over pytest-httpx: URLs, headers, bodies, retries, timeouts, error mapping."""

from __future__ import annotations

import copy
import json

import httpx
import pytest
from pytest_httpx import HTTPXMock, IteratorStream

from wafer_playground.client import WaferClient, account_base_url, key_fingerprint, root_url
from wafer_playground.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ProtocolError,
    RateLimitError,
    ServerError,
    StreamError,
    UnprocessableEntityError,
    WaferError,
)

BASE = "http://wafer.test/v1"
KEY = "wfr_live_SECRET_0123456789abcdef"
SSE = {"content-type": "text/event-stream"}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> WaferClient:
    return WaferClient(BASE, KEY, sleep=sleeps)


def _sse(*payloads: object, done: bool = True) -> bytes:
    out = b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in payloads)
    return out + (b"data: [DONE]\n\n" if done else b"")


# ---- URLs, methods, headers ----------------------------------------------------------


def test_list_models_get_with_bearer_and_request_id(httpx_mock: HTTPXMock,
                                                    client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", method="GET",
                            json={"object": "list", "data": []},
                            headers={"x-request-id": "req_0123456789ab"})
    res = client.list_models()
    assert res.data == {"object": "list", "data": []}
    assert res.status == 200 and res.request_id == "req_0123456789ab"
    assert res.elapsed_s >= 0
    req = httpx_mock.get_request()
    assert req is not None
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in req.headers
    assert "Wafer-ZDR" not in req.headers
    assert KEY not in str(req.url)


def test_no_key_sends_no_authorization(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", json={"data": []})
    WaferClient(BASE, None).list_models()
    assert "Authorization" not in httpx_mock.get_request().headers  # type: ignore[union-attr]


def test_empty_key_is_no_key(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", json={"data": []})
    c = WaferClient(BASE, "")
    c.list_models()
    assert not c.has_key
    assert "Authorization" not in httpx_mock.get_request().headers  # type: ignore[union-attr]


def test_zdr_header(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", json={"choices": []})
    WaferClient(BASE, KEY, zdr=True).chat({"model": "GLM-5.1", "messages": []})
    assert httpx_mock.get_request().headers["Wafer-ZDR"] == "required"  # type: ignore[union-attr]


def test_trailing_slash_base_url(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", json={"data": []})
    assert WaferClient(BASE + "/", KEY).list_models().status == 200


def test_chat_body_passes_through_untouched(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    body = {
        "model": "GLM-5.1",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hé"}]}],
        "temperature": 0, "top_k": -1, "seed": 7, "logprobs": True, "top_logprobs": 3,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "chat_template_kwargs": {"enable_thinking": False}, "reasoning_effort": "high",
        "some_future_field": {"nested": [1, None, 2.5]},
    }
    original = copy.deepcopy(body)
    httpx_mock.add_response(url=f"{BASE}/chat/completions", method="POST",
                            json={"id": "c", "choices": []},
                            headers={"x-request-id": "client_mine"})
    res = client.chat(body, request_id="mine")
    req = httpx_mock.get_request()
    assert json.loads(req.content) == original  # type: ignore[union-attr]
    assert body == original  # the caller's dict is not mutated
    assert req.headers["x-request-id"] == "mine"  # type: ignore[union-attr]
    assert req.headers["content-type"] == "application/json"  # type: ignore[union-attr]
    assert res.request_id == "client_mine"
    assert res.request_json == original


def test_chat_stream_adds_stream_and_include_usage(httpx_mock: HTTPXMock,
                                                   client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", method="POST", headers=SSE,
                            content=_sse({"choices": [{"delta": {"content": "x"}}]}))
    body = {"model": "m", "messages": [], "stream_options": {"continuous_usage_stats": True}}
    original = copy.deepcopy(body)
    with client.chat_stream(body) as stream:
        chunks = list(stream)
    sent = json.loads(httpx_mock.get_request().content)  # type: ignore[union-attr]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}
    assert body == original
    assert stream.request_json == sent
    assert chunks == [{"choices": [{"delta": {"content": "x"}}]}]


def test_include_usage_false_is_respected(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", headers=SSE, content=_sse())
    list(client.chat_stream({"model": "m", "stream_options": {"include_usage": False}}))
    sent = json.loads(httpx_mock.get_request().content)  # type: ignore[union-attr]
    assert sent["stream_options"] == {"include_usage": False}


def test_completions_and_stream(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    body = {"model": "m", "prompt": [1, 2, 3], "ebnf": 'root ::= "a"', "max_tokens": 4}
    httpx_mock.add_response(url=f"{BASE}/completions", method="POST",
                            json={"choices": [{"text": "a"}]})
    httpx_mock.add_response(url=f"{BASE}/completions", method="POST", headers=SSE,
                            content=_sse({"choices": [{"text": "a"}]}))
    assert client.completions(body).data["choices"][0]["text"] == "a"
    assert [c["choices"][0]["text"] for c in client.completions_stream(body)] == ["a"]
    first, second = httpx_mock.get_requests()
    assert json.loads(first.content) == body
    sent = json.loads(second.content)
    assert sent["ebnf"] == body["ebnf"] and sent["prompt"] == [1, 2, 3]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_messages_uses_bearer_and_anthropic_version(httpx_mock: HTTPXMock,
                                                    client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/messages", method="POST",
                            json={"type": "message", "content": []})
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    client.messages(body)
    req = httpx_mock.get_request()
    assert req.headers["Authorization"] == f"Bearer {KEY}"  # type: ignore[union-attr]
    assert "x-api-key" not in req.headers  # type: ignore[operator]
    assert req.headers["anthropic-version"] == "2023-06-01"  # type: ignore[union-attr]
    assert json.loads(req.content) == body  # type: ignore[union-attr]


def test_messages_stream_no_stream_options(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    body = (b'event: message_start\ndata: {"type":"message_start"}\n\n'
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    httpx_mock.add_response(url=f"{BASE}/messages", headers=SSE, content=body)
    events = list(client.messages_stream({"model": "m", "max_tokens": 5, "messages": []}))
    sent = json.loads(httpx_mock.get_request().content)  # type: ignore[union-attr]
    assert sent["stream"] is True and "stream_options" not in sent
    assert [e["type"] for e in events] == ["message_start", "message_stop"]


def test_tokenize_detokenize_template(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/tokenize", json={"tokens": [
        {"id": 1, "piece": "he"}, {"id": 2, "piece": [0xE4, 0xB8]}, 3]})
    httpx_mock.add_response(url=f"{BASE}/detokenize", json={"content": "hello"})
    httpx_mock.add_response(url=f"{BASE}/apply-template", json={"prompt": "<|user|>hi"})
    pieces = client.tokenize("hello", model="m", add_special=True)
    assert [p.id for p in pieces] == [1, 2, 3]
    assert pieces[0].text == "he" and pieces[1].piece == bytes([0xE4, 0xB8])
    assert client.detokenize([1, 2]) == "hello"
    assert client.apply_template([{"role": "user", "content": "hi"}]) == "<|user|>hi"
    tok, detok, tmpl = (json.loads(r.content) for r in httpx_mock.get_requests())
    assert tok == {"content": "hello", "add_special": True, "with_pieces": True, "model": "m"}
    assert detok == {"tokens": [1, 2]}
    assert tmpl == {"messages": [{"role": "user", "content": "hi"}]}


def test_account_apis_go_to_api_wafer_for_wafer(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://api.wafer.ai/v1/usage/me?period=30d", json={})
    httpx_mock.add_response(
        url="https://api.wafer.ai/v1/endpoints/metrics?endpoint=pass.wafer.ai&range_minutes=15",
        json={})
    c = WaferClient("https://pass.wafer.ai/v1", KEY)
    c.usage_me("30d")
    c.endpoint_metrics("pass.wafer.ai", 15)
    for req in httpx_mock.get_requests():
        assert req.method == "GET" and req.headers["Authorization"] == f"Bearer {KEY}"


def test_account_apis_stay_on_other_base_urls(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/usage/me?period=7d", json={"days": []})
    assert client.usage_me().data == {"days": []}


def test_url_helpers() -> None:
    assert account_base_url("https://pass.wafer.ai/v1") == "https://api.wafer.ai/v1"
    assert account_base_url("http://127.0.0.1:9/v1/") == "http://127.0.0.1:9/v1"
    assert root_url("https://pass.wafer.ai/v1") == "https://pass.wafer.ai"
    assert root_url("http://h:1/api") == "http://h:1/api"
    assert key_fingerprint(None) == "anonymous"
    fp = key_fingerprint(KEY)
    assert len(fp) == 16 and KEY not in fp and fp == key_fingerprint(KEY)


# ---- retries -------------------------------------------------------------------------


def test_get_retries_503_honouring_retry_after(httpx_mock: HTTPXMock, client: WaferClient,
                                               sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", status_code=503,
                            headers={"Retry-After": "2"}, json={"error": {"message": "busy"}})
    httpx_mock.add_response(url=f"{BASE}/models", json={"data": []})
    assert client.list_models().status == 200
    assert sleeps == [2.0]


def test_post_retries_429_then_succeeds(httpx_mock: HTTPXMock, client: WaferClient,
                                        sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", status_code=429,
                            headers={"Retry-After": "1.5"},
                            json={"error": {"code": "rate_limit_exceeded", "message": "slow"}})
    httpx_mock.add_response(url=f"{BASE}/chat/completions", json={"choices": []})
    client.chat({"model": "m"})
    assert sleeps == [1.5]
    assert len(httpx_mock.get_requests()) == 2


def test_retries_without_retry_after_back_off(httpx_mock: HTTPXMock, client: WaferClient,
                                              sleeps: Sleeps) -> None:
    for _ in range(3):
        httpx_mock.add_response(url=f"{BASE}/models", status_code=502, text="bad gateway")
    with pytest.raises(ServerError) as info:
        client.list_models()
    assert info.value.status == 502
    assert sleeps == [0.5, 1.0]  # max_retries=2 -> 3 attempts
    assert len(httpx_mock.get_requests()) == 3


def test_post_500_is_not_retried(httpx_mock: HTTPXMock, client: WaferClient,
                                 sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", status_code=500,
                            json={"error": {"message": "boom"}})
    with pytest.raises(ServerError):
        client.chat({"model": "m"})
    assert sleeps == [] and len(httpx_mock.get_requests()) == 1


def test_non_retryable_statuses(httpx_mock: HTTPXMock, client: WaferClient,
                                sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", status_code=401,
                            json={"error": {"type": "authentication_error",
                                            "code": "invalid_api_key", "message": "bad key"}})
    with pytest.raises(AuthenticationError):
        client.list_models()
    assert sleeps == []


def test_long_retry_after_is_not_waited_for(httpx_mock: HTTPXMock, client: WaferClient,
                                            sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", status_code=429,
                            headers={"Retry-After": "120"},
                            json={"error": {"message": "later"}})
    with pytest.raises(RateLimitError) as info:
        client.chat({"model": "m"})
    assert sleeps == [] and info.value.retry_after == 120
    assert "Retry after 120 s" in info.value.human()


def test_max_retries_zero(httpx_mock: HTTPXMock, sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", status_code=503, json={})
    with pytest.raises(ServerError):
        WaferClient(BASE, KEY, max_retries=0, sleep=sleeps).list_models()
    assert sleeps == []


def test_stream_429_before_any_token_is_retried(httpx_mock: HTTPXMock, client: WaferClient,
                                                sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", status_code=429,
                            headers={"Retry-After": "0"}, json={"error": {"message": "x"}})
    httpx_mock.add_response(url=f"{BASE}/chat/completions", headers=SSE,
                            content=_sse({"choices": []}))
    assert len(list(client.chat_stream({"model": "m"}))) == 1
    assert sleeps == [0.0]


def test_no_retry_after_tokens(httpx_mock: HTTPXMock, client: WaferClient,
                               sleeps: Sleeps) -> None:
    # The connection breaks after one token: the error surfaces, nothing is re-sent.
    def chunks():  # type: ignore[no-untyped-def]
        yield _sse({"choices": [{"delta": {"content": "a"}}]}, done=False)
        raise httpx.RemoteProtocolError("peer closed connection")

    httpx_mock.add_response(url=f"{BASE}/chat/completions", headers=SSE,
                            stream=IteratorStream(chunks()))
    got = []
    with pytest.raises(APIConnectionError):
        for c in client.chat_stream({"model": "m"}):
            got.append(c)
    assert len(got) == 1
    assert len(httpx_mock.get_requests()) == 1 and sleeps == []


# ---- transport failures --------------------------------------------------------------


def test_post_timeout_is_api_timeout_error_without_retry(httpx_mock: HTTPXMock,
                                                         client: WaferClient) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    with pytest.raises(APITimeoutError) as info:
        client.chat({"model": "m"})
    assert isinstance(info.value, APIConnectionError)
    assert len(httpx_mock.get_requests()) == 1


def test_get_timeout_retried_then_api_timeout_error(httpx_mock: HTTPXMock,
                                                    client: WaferClient) -> None:
    for _ in range(3):
        httpx_mock.add_exception(httpx.ConnectTimeout("timed out"))
    with pytest.raises(APITimeoutError):
        client.list_models()
    assert len(httpx_mock.get_requests()) == 3


def test_connection_refused(httpx_mock: HTTPXMock, sleeps: Sleeps) -> None:
    for _ in range(3):
        httpx_mock.add_exception(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(APIConnectionError) as info:
        WaferClient(BASE, KEY, sleep=sleeps).list_models()
    assert not isinstance(info.value, APITimeoutError)
    assert "connection refused" in info.value.human()
    assert "wafer.test" in info.value.human()
    assert len(sleeps) == 2


def test_connection_refused_for_real() -> None:
    # A closed loopback port, no mocking: the real transport's error is mapped too.
    from wafer_playground.local.net import HOST, free_port

    c = WaferClient(f"http://{HOST}:{free_port()}/v1", KEY, max_retries=0)
    with pytest.raises(APIConnectionError):
        c.chat({"model": "m"})


@pytest.mark.httpx_mock(assert_all_requests_were_expected=False)
def test_post_connect_error_not_retried(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"))
    with pytest.raises(APIConnectionError):
        client.chat({"model": "m"})
    assert len(httpx_mock.get_requests()) == 1


# ---- bodies that are not what they should be -----------------------------------------


def test_html_error_page(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    page = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"
    for _ in range(3):
        httpx_mock.add_response(url=f"{BASE}/models", status_code=502, text=page,
                                headers={"content-type": "text/html",
                                         "x-request-id": "req_ffffffffffff"})
    with pytest.raises(ServerError) as info:
        client.list_models()
    text = info.value.human()
    assert "HTML page" in text and "HTTP 502" in text and "req_ffffffffffff" in text
    assert "<h1>" not in text


def test_html_200_is_protocol_error(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/models", text="<html>captive portal</html>",
                            headers={"content-type": "text/html"})
    with pytest.raises(ProtocolError) as info:
        client.list_models()
    assert info.value.status == 200


def test_truncated_json(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions",
                            text='{"id": "c", "choices": [{"message": {"cont')
    with pytest.raises(ProtocolError) as info:
        client.chat({"model": "m"})
    assert "not valid JSON" in info.value.human()


def test_error_envelope_fields(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/chat/completions", status_code=422,
        headers={"x-request-id": "req_header00000"},
        json={"error": {"type": "invalid_request_error", "code": "model_zdr_not_supported",
                        "message": "no ZDR", "param": "model",
                        "request_id": "req_body00000000"}})
    with pytest.raises(UnprocessableEntityError) as info:
        client.chat({"model": "m"})
    err = info.value
    assert (err.status, err.code, err.param, err.request_id) == (
        422, "model_zdr_not_supported", "model", "req_body00000000")


def test_redirect_not_followed(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    # Following would carry the Authorization header to another host.
    httpx_mock.add_response(url=f"{BASE}/models", status_code=302,
                            headers={"location": "http://evil.test/steal"}, text="")
    with pytest.raises(ProtocolError):
        client.list_models()
    assert len(httpx_mock.get_requests()) == 1


# ---- the key never leaks -------------------------------------------------------------


def test_key_not_in_repr_or_str(client: WaferClient) -> None:
    assert KEY not in repr(client) and KEY not in str(client)
    assert key_fingerprint(KEY) in repr(client)


def test_key_echoed_by_server_is_redacted_from_errors(httpx_mock: HTTPXMock,
                                                      client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", status_code=400,
                            json={"error": {"message": f"key {KEY} is malformed",
                                            "code": "bad_key"}})
    httpx_mock.add_response(url=f"{BASE}/completions", text=f"not json {KEY}")
    httpx_mock.add_response(url=f"{BASE}/messages", status_code=200,
                            headers={"content-type": "text/plain"}, text=f"echo {KEY}")
    errors: list[WaferError] = []
    for call in (lambda: client.chat({"model": "m"}),
                 lambda: client.completions({"model": "m"}),
                 lambda: client.messages_stream({"model": "m"})):
        with pytest.raises(WaferError) as info:
            call()
        errors.append(info.value)
    assert isinstance(errors[0], BadRequestError)
    for err in errors:
        for text in (str(err), repr(err), err.human(), json.dumps(err.to_dict()),
                     err.body or "", str(err.args)):
            assert KEY not in text, type(err).__name__


def test_key_echoed_in_stream_error_is_redacted(httpx_mock: HTTPXMock,
                                                client: WaferClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", headers=SSE,
                            content=_sse({"error": {"message": f"bad {KEY}"}}))
    with pytest.raises(StreamError) as info:
        list(client.chat_stream({"model": "m"}))
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_transport_error_text_never_has_key(httpx_mock: HTTPXMock, client: WaferClient) -> None:
    httpx_mock.add_exception(httpx.ConnectError(f"refused while sending {KEY}"))
    with pytest.raises(APIConnectionError) as info:
        client.chat({"model": "m"})
    assert KEY not in str(info.value)


def test_userinfo_in_base_url_never_in_messages(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"))
    c = WaferClient("http://alice:hunter2@wafer.test:8080/v1", KEY, max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        c.chat({"model": "m"})
    assert "hunter2" not in str(info.value) and "wafer.test:8080" in str(info.value)
