"""Fault injection for the adapter, in process: llama-server refusing connections, dying
mid-stream, answering junk; plus pure pieces (request log maths, Anthropic stream events).
These need no llama-server, so they run in seconds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from wafer_playground.local import cards
from wafer_playground.local.messages import StreamTranslator
from wafer_playground.local.reqlog import RequestLog
from wafer_playground.local.server import Backend, EngineConfig, create_app

Handler = Callable[[httpx.Request], httpx.Response]


class _Broken(httpx.AsyncByteStream):
    """Two good SSE events, then the connection drops (llama-server killed)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(2):
            ev = {"content": f"t{i}", "tokens": [100 + i], "stop": False}
            yield f"data: {json.dumps(ev)}\n\n".encode()
        raise httpx.ReadError("connection reset by peer")


def _client(handler: Handler, seen: list[str] | None = None) -> Iterator[TestClient]:
    async def recording(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request.url.path)
        return handler(request)

    backend = Backend(spec=cards.SMOLLM2, url="http://upstream.invalid", n_ctx=4096,
                      n_vocab=49152)
    app = create_app([backend], EngineConfig(upstream_transport=httpx.MockTransport(recording)))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    gens: list[Iterator[TestClient]] = []

    def make(handler: Handler, seen: list[str] | None = None) -> TestClient:
        g = _client(handler, seen)
        gens.append(g)
        return next(g)

    yield make
    for g in gens:
        for _ in g:
            pass


CHAT = {"model": cards.SMOLLM2.id, "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4}
COMPLETE = {"model": cards.SMOLLM2.id, "prompt": [1, 2, 3], "max_tokens": 4}


def test_upstream_refusing_connections_is_503(make_client: Callable[..., TestClient]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    c = make_client(refuse)
    r = c.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "engine_unavailable" and err["type"] == "api_error"
    assert err["request_id"] == r.headers["x-request-id"]
    assert r.headers["retry-after"] == "2"


def test_upstream_dying_mid_stream_ends_with_error_event(
        make_client: Callable[..., TestClient]) -> None:
    c = make_client(lambda req: httpx.Response(200, stream=_Broken(),
                                               headers={"content-type": "text/event-stream"}))
    r = c.post("/v1/completions", json={**COMPLETE, "stream": True})
    assert r.status_code == 200  # headers went out with the first token
    data = [ln[6:] for ln in r.text.splitlines() if ln.startswith("data: ")]
    assert [json.loads(d)["choices"][0]["text"] for d in data[:2]] == ["t0", "t1"]
    err = json.loads(data[2])["error"]
    assert err["code"] == "engine_unavailable" and err["request_id"] == r.headers["x-request-id"]
    assert data[3] == "[DONE]"
    m = c.get("/v1/endpoints/metrics", params={"endpoint": "local"}).json()["summary"]
    assert m["count_5xx"] == 1 and m["concurrent_requests"] == 0
    # non-stream: the same failure is a plain 503, the queue slot is released
    r = c.post("/v1/completions", json=COMPLETE)
    assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable"
    assert c.get("/health").json()["models"][cards.SMOLLM2.id]["admitted"] == 0


def test_upstream_junk_500_is_502(make_client: Callable[..., TestClient]) -> None:
    c = make_client(lambda req: httpx.Response(500, text="<html>boom</html>"))
    r = c.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"


def test_upstream_context_error_maps_to_wafer_code(
        make_client: Callable[..., TestClient]) -> None:
    body = {"error": {"code": 400, "type": "exceed_context_size_error",
                      "message": "request (9001 tokens) exceeds the available context size"}}
    c = make_client(lambda req: httpx.Response(400, json=body))
    r = c.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_invalid_grammar_never_reaches_llama_server(
        make_client: Callable[..., TestClient]) -> None:
    seen: list[str] = []
    c = make_client(lambda req: httpx.Response(500), seen)
    for bad in ('root ::= "A" |', "root ::= foo", 'start ::= "A"', "root ::= <[33]>"):
        r = c.post("/v1/completions", json={**COMPLETE, "ebnf": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_grammar"
    r = c.post("/v1/detokenize", json={"tokens": [49152]})
    assert r.status_code == 400
    assert seen == []


def test_messages_stream_translator_event_sequence() -> None:
    tr = StreamTranslator("m", input_tokens=7)
    out = tr.start()
    out += tr.feed({"choices": [{"delta": {"role": "assistant", "content": None}}]})
    out += tr.feed({"choices": [{"delta": {"content": "Hel"}}]})
    out += tr.feed({"choices": [{"delta": {"content": "lo"}}]})
    out += tr.feed({"choices": [{"delta": {}, "finish_reason": "stop"}],
                    "__verbose": {"stop_type": "word", "stopping_word": "!"}})
    out += tr.finish({"prompt_tokens": 7, "completion_tokens": 2,
                      "prompt_tokens_details": {"cached_tokens": 3}})
    events = [ln[7:] for ln in out.decode().splitlines() if ln.startswith("event: ")]
    assert events == ["message_start", "ping", "content_block_start", "content_block_delta",
                      "content_block_delta", "content_block_stop", "message_delta",
                      "message_stop"]
    last = [json.loads(ln[6:]) for ln in out.decode().splitlines() if ln.startswith("data: ")]
    delta = last[-2]
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "!"}
    assert delta["usage"] == {"output_tokens": 2, "input_tokens": 4, "cache_read_input_tokens": 3}


def test_request_log_usage_and_percentiles() -> None:
    log = RequestLog()
    for i in range(10):
        rec = log.start(f"req_{i}", "/v1/chat/completions")
        rec.model = "m"
        rec.input_tokens, rec.output_tokens, rec.cached_tokens = 100, 10, 50
        rec.ttft_ms = float(i + 1)
        log.finish(rec, 200 if i < 8 else 429, None if i < 8 else "rate_limit_exceeded")
    now = datetime.now(UTC)
    u = log.usage_me(now - timedelta(days=1), now + timedelta(seconds=1))
    assert u["total_requests"] == 8 and u["total_input_tokens"] == 800
    assert u["models"][0]["cache_read_tokens"] == 400
    m = log.metrics("local", 60, None)
    s = m["summary"]
    assert (s["count_2xx"], s["count_4xx"], s["total_requests"]) == (8, 2, 10)
    assert s["error_rate_pct"] == 20.0 and s["cache_hit_pct"] == 50.0
    assert s["ttft_p50_ms"] == 4.0 and s["ttft_p90_ms"] == 8.0  # nearest rank over 2xx only
    assert sum(b["requests"] for b in m["timeseries"]) == 10
    assert len(m["timeseries"]) <= 61


def test_chat_upstream_body_is_translated(make_client: Callable[..., TestClient]) -> None:
    """What reaches llama-server: neutral defaults, renamed fields, max_tokens, and
    always include_usage on streams (the request log needs usage)."""
    bodies: list[dict[str, object]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        chunks = [
            {"choices": [{"index": 0, "delta": {"content": "hi"}, "logprobs": {"content": [
                {"id": 1, "token": "hi", "logprob": -0.1,
                 "top_logprobs": [{"id": 1, "token": "hi", "logprob": -0.1}]}]}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "timings": {"x": 1}},
            {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1,
                                      "total_tokens": 6}},
        ]
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    c = make_client(upstream)
    no_max = {k: v for k, v in CHAT.items() if k != "max_tokens"}
    r = c.post("/v1/chat/completions", json={**no_max,
                                             "max_completion_tokens": cards.DEFAULT_MAX_OUTPUT,
                                             "stream": True, "repetition_penalty": 1.1,
                                             "top_k": -1, "logprobs": True, "top_logprobs": 0})
    assert r.status_code == 200
    up = bodies[0]
    assert up["max_tokens"] == cards.DEFAULT_MAX_OUTPUT  # max_completion_tokens, renamed
    assert up["repeat_penalty"] == 1.1 and "repetition_penalty" not in up
    assert up["top_k"] == 0 and up["temperature"] == 1.0 and up["min_p"] == 0.0
    assert up["stream_options"] == {"include_usage": True}
    assert up["top_logprobs"] == 1  # llama.cpp needs >= 1 to return any logprobs
    data = [json.loads(x[6:]) for x in r.text.splitlines()
            if x.startswith("data: ") and x != "data: [DONE]"]
    assert all("timings" not in d for d in data)
    assert data[0]["choices"][0]["logprobs"]["content"][0]["top_logprobs"] == []  # trimmed to 0
    assert all(d["choices"] for d in data)  # client did not ask for the usage chunk
    u = c.get("/v1/usage/me", params={"period": "1d"}).json()
    assert u["total_input_tokens"] == 5 and u["total_output_tokens"] == 1


def test_messages_history_with_tool_blocks_is_converted() -> None:
    from wafer_playground.local.messages import to_openai

    out = to_openai({"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "S"}],
                     "messages": [
                         {"role": "user", "content": "weather?"},
                         {"role": "assistant", "content": [
                             {"type": "text", "text": "Let me check."},
                             {"type": "tool_use", "id": "tu1", "name": "w",
                              "input": {"city": "Paris"}}]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": "tu1", "content": "sunny"},
                             {"type": "text", "text": "thanks"}]}]})
    msgs = out["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "user"]
    call = msgs[2]["tool_calls"][0]
    assert call["id"] == "tu1" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert msgs[3] == {"role": "tool", "tool_call_id": "tu1", "content": "sunny"}


def test_stale_keepalive_connection_is_retried_once(
        make_client: Callable[..., TestClient]) -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) % 2 == 1:  # every first attempt lands on a socket the server closed
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if request.url.path == "/detokenize":
            return httpx.Response(200, json={"content": "x"})
        text = ('data: {"content":"x","tokens":[5],"stop":false}\n\n'
                'data: {"content":"","stop":true,"stop_type":"limit","tokens_predicted":1,'
                '"timings":{"cache_n":0}}\n\n')
        return httpx.Response(200, text=text)

    c = make_client(flaky)
    r = c.post("/v1/completions", json=COMPLETE)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] == "x" and len(calls) == 2
    r = c.post("/v1/detokenize", json={"tokens": [5]})  # the plain JSON path retries too
    assert r.status_code == 200 and len(calls) == 4
