"""SSE decoding and stream handling, after openai-python's `tests/test_streaming.py` matrix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from wafer_playground.client import WaferClient
from wafer_playground.errors import APIConnectionError, APITimeoutError, ProtocolError, StreamError
from wafer_playground.sse import ServerSentEvent, SSEDecoder

BASE = "http://wafer.test/v1"


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    return list(SSEDecoder().iter_bytes(iter(chunks)))


# ---- the decoder ---------------------------------------------------------------------


def test_basic_event_and_done() -> None:
    events = decode(b'data: {"a": 1}\n\n', b"data: [DONE]\n\n")
    assert [e.data for e in events] == ['{"a": 1}', "[DONE]"]
    assert events[0].json() == {"a": 1}
    assert events[0].event is None


def test_event_without_data() -> None:
    events = decode(b"event: ping\n\n")
    assert events == [ServerSentEvent(data="", event="ping")]


def test_multi_line_data_joins_with_newline() -> None:
    events = decode(b"data: {\ndata: \"x\": 1\ndata: }\n\n")
    assert events[0].data == '{\n"x": 1\n}'
    assert events[0].json() == {"x": 1}


def test_comments_are_ignored() -> None:
    events = decode(b": keep-alive\n\n", b": another\ndata: hi\n: mid\n\n")
    assert [e.data for e in events] == ["hi"]


def test_field_without_space_and_without_colon() -> None:
    # "data:x" keeps x; a bare "data" line is an empty data line (WHATWG).
    events = decode(b"data:x\ndata\n\n")
    assert events[0].data == "x\n"


def test_only_first_space_is_stripped() -> None:
    assert decode(b"data:  two\n\n")[0].data == " two"


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_all_line_endings(eol: bytes) -> None:
    raw = eol.join([b"event: message_start", b'data: {"k": "v"}', b"", b"data: [DONE]", b"", b""])
    events = decode(raw)
    assert [(e.event, e.data) for e in events] == [("message_start", '{"k": "v"}'),
                                                  (None, "[DONE]")]


def test_mixed_line_endings_and_crlf_split_across_chunks() -> None:
    # The \r and \n of one CRLF arrive in different chunks: one line end, not two.
    events = decode(b"data: a\r", b"\n\r", b"\ndata: b\n\n")
    assert [e.data for e in events] == ["a", "b"]


def test_id_and_retry_tracked() -> None:
    events = decode(b"id: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events[0].id == "7" and events[0].retry == 1500
    assert events[1].id == "7"  # last event id persists
    assert events[1].retry is None


def test_id_with_nul_is_ignored_and_bad_retry_ignored() -> None:
    events = decode(b"id: a\0b\nretry: soon\ndata: x\n\n")
    assert events[0].id is None and events[0].retry is None


def test_unknown_fields_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\n\n")[0] == ServerSentEvent(data="x")


def test_multibyte_utf8_split_across_chunks() -> None:
    text = "héllo 世界 🙂"
    raw = f"data: {json.dumps({'t': text}, ensure_ascii=False)}\n\n".encode()
    emoji_at = raw.index("🙂".encode())
    events = decode(raw[: emoji_at + 2], raw[emoji_at + 2 :])
    assert events[0].json() == {"t": text}


def test_escaped_newlines_and_u2028_in_json() -> None:
    payload = {"content": "line1\n\nline2\u2028end"}
    raw = f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
    assert decode(raw)[0].json() == payload


def test_incomplete_event_at_end_is_discarded() -> None:
    assert decode(b"data: complete\n\ndata: partial") == [ServerSentEvent(data="complete")]
    assert decode(b"data: partial\n") == []


STREAM = (
    b": hello\r\n"
    b"event: message_start\r\n"
    b'data: {"type": "message_start", "msg": "h\xc3\xa9 \xe4\xb8\x96"}\r\n\r\n'
    b"id: 3\n"
    b'data: {"choices": [{"delta": {"content": "\xf0\x9f\x99\x82"}}]}\n'
    b"\n"
    b"data: line1\rdata: line2\r\r"
    b"event: ping\n\n"
    b"data: [DONE]\n\n"
)


def test_split_at_every_byte_boundary_gives_the_same_events() -> None:
    expected = decode(STREAM)
    assert len(expected) == 5
    assert expected[2].data == "line1\nline2"
    for i in range(1, len(STREAM)):
        assert decode(STREAM[:i], STREAM[i:]) == expected, f"split at byte {i}"


def test_one_byte_chunks_give_the_same_events() -> None:
    assert decode(*[STREAM[i : i + 1] for i in range(len(STREAM))]) == decode(STREAM)


def test_empty_chunks_are_harmless() -> None:
    assert decode(b"", b"data: x\n", b"", b"\n") == [ServerSentEvent(data="x")]


@pytest.mark.parametrize("raw", [
    b"data: \xe4\xb8\n\n",  # a code point cut short at the line end
    b"data: a\xff\xfeb\ndata: \xf0\x9f\x99\x82\n\n",  # invalid bytes, then a 4-byte one
    b"data: \xc3\n\xa9\n\n",  # a lead byte and its continuation on two lines
])
def test_whole_line_chunks_decode_like_the_general_path(raw: bytes) -> None:
    # One \n-terminated chunk takes the splitter's fast path; with a parked head the same
    # bytes go the general way. Invalid UTF-8 must come out the same either way.
    fast = decode(raw)
    assert fast and fast == decode(raw[:2], raw[2:])
    assert "\ufffd" in fast[0].data or "\U0001f642" in fast[-1].data


def test_event_ending_in_cr_is_dispatched_without_waiting_for_more_bytes() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"data: x\r\r"
        raise AssertionError("the decoder waited for the next chunk")

    assert next(SSEDecoder().iter_bytes(chunks())).data == "x"


def test_huge_chunk_and_huge_line_decode_in_linear_time() -> None:
    import time

    event = b'data: {"choices": [{"delta": {"content": "hello world"}}]}\n\n'
    body = event * 40_000  # 2.3 MB in ONE chunk: the quadratic splitter took ~10 s here
    long_line = b"data: " + b"x" * 2_000_000 + b"\n\n"  # one line over 500 small chunks
    started = time.perf_counter()
    assert len(decode(body)) == 40_000
    parts = [long_line[i : i + 4096] for i in range(0, len(long_line), 4096)]
    assert len(decode(*parts)[0].data) == 2_000_000
    assert time.perf_counter() - started < 5.0



# ---- the async face (the local engine reads llama-server through it) ------------------


def adecode(*chunks: bytes) -> list[ServerSentEvent]:
    async def source() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    async def collect() -> list[ServerSentEvent]:
        return [e async for e in SSEDecoder().aiter_bytes(source())]

    return asyncio.run(collect())


@pytest.mark.parametrize("chunks", [
    (STREAM,),
    (b"data: a\r", b"\n\r", b"\ndata: b\n\n"),
    (b"id: 7\nretry: 1500\ndata: x\n\ndata: y\n\n",),
    (b"data: complete\n\ndata: partial",),
    (b"", b"data: x\n", b"", b"\n"),
    (b": keep-alive\n\n", b"foo: bar\ndata:x\ndata\n\n"),
])
def test_async_face_gives_the_sync_faces_events(chunks: tuple[bytes, ...]) -> None:
    assert adecode(*chunks) == decode(*chunks)
    assert adecode(*chunks)  # every case decodes to at least one event


def test_async_face_at_every_byte_split_and_one_byte_chunks() -> None:
    expected = decode(STREAM)
    for i in range(1, len(STREAM)):
        assert adecode(STREAM[:i], STREAM[i:]) == expected, f"split at byte {i}"
    assert adecode(*[STREAM[i : i + 1] for i in range(len(STREAM))]) == expected


def test_async_face_multibyte_utf8_split_across_chunks() -> None:
    raw = "data: {\"t\": \"h\u00e9 \U0001f642\"}\n\n".encode()
    cut = raw.index("\U0001f642".encode()) + 2
    assert adecode(raw[:cut], raw[cut:])[0].json() == {"t": "h\u00e9 \U0001f642"}


def test_async_face_dispatches_an_event_ending_in_cr_without_waiting() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"data: x\r\r"
        raise AssertionError("the decoder waited for the next chunk")

    async def first() -> ServerSentEvent:
        return await anext(SSEDecoder().aiter_bytes(source()))

    assert asyncio.run(first()).data == "x"


def test_async_face_over_an_httpx_async_stream() -> None:
    """As the engine uses it: httpx.AsyncClient.stream(...).aiter_bytes(), with 5-byte parts
    that cut CRLFs, code points and field names."""
    async def handler(request: httpx.Request) -> httpx.Response:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(0, len(STREAM), 5):
                yield STREAM[i : i + 5]

        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=parts())

    async def run() -> list[ServerSentEvent]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c, \
                c.stream("POST", "http://llama.test/completion") as r:
            return [e async for e in SSEDecoder().aiter_bytes(r.aiter_bytes())]

    assert asyncio.run(run()) == decode(STREAM)


# ---- the client's Stream over real httpx responses -----------------------------------


def _chunk(content: str) -> bytes:
    return f"data: {json.dumps({'choices': [{'delta': {'content': content}}]})}\n\n".encode()


def _sse_response(*parts: bytes, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "x-request-id": "req_abc123def456",
                     **(headers or {})},
            stream=httpx.ByteStream(b"".join(parts)),
        )

    return httpx.MockTransport(handler)


def _client(transport: httpx.BaseTransport) -> WaferClient:
    return WaferClient(BASE, "wfr_secret", transport=transport, sleep=lambda s: None)


def test_stream_yields_chunks_and_stops_at_done() -> None:
    transport = _sse_response(_chunk("Hel"), _chunk("lo"), b"data: [DONE]\n\n",
                              _chunk("after done is never read"))
    with _client(transport).chat_stream({"model": "m", "messages": []}) as stream:
        chunks = list(stream)
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["Hel", "lo"]
    assert stream.finished
    assert stream.request_id == "req_abc123def456"
    assert [e.data for e in stream.events][-1] == "[DONE]"
    assert stream.first_byte_at is not None and stream.first_byte_at >= stream.started_at


def test_error_event_mid_stream_raises_stream_error_with_code_and_request_id() -> None:
    err = {"error": {"message": "backend exploded", "type": "server_error",
                     "code": "upstream_error"}}
    transport = _sse_response(_chunk("partial"), f"data: {json.dumps(err)}\n\n".encode(),
                              b"data: [DONE]\n\n")
    stream = _client(transport).chat_stream({"model": "m", "messages": []})
    got: list[dict] = []
    with pytest.raises(StreamError) as info:
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 1  # the tokens before the error were delivered
    assert info.value.code == "upstream_error"
    assert info.value.request_id == "req_abc123def456"
    assert "backend exploded" in info.value.human()


def test_sglang_int_code_error_in_stream_maps_to_status() -> None:
    err = {"error": {"message": "bad", "type": "BadRequestError", "code": 400}}
    transport = _sse_response(f"data: {json.dumps(err)}\n\n".encode(), b"data: [DONE]\n\n")
    with pytest.raises(StreamError) as info:
        list(_client(transport).chat_stream({"model": "m"}))
    assert info.value.status == 400 and info.value.code is None


def test_anthropic_error_event() -> None:
    body = (b"event: message_start\ndata: {\"type\": \"message_start\"}\n\n"
            b"event: ping\ndata: {\"type\": \"ping\"}\n\n"
            b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": "
            b"\"overloaded_error\", \"message\": \"Overloaded\"}}\n\n")
    stream = _client(_sse_response(body)).messages_stream({"model": "m", "max_tokens": 5})
    seen: list[dict] = []
    with pytest.raises(StreamError) as info:
        for ev in stream:
            seen.append(ev)
    assert [e["type"] for e in seen] == ["message_start"]  # ping skipped
    assert info.value.type == "overloaded_error"


def test_anthropic_stream_finishes_at_message_stop() -> None:
    body = (b"event: message_start\ndata: {\"type\": \"message_start\"}\n\n"
            b"event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n")
    stream = _client(_sse_response(body)).messages_stream({"model": "m", "max_tokens": 5})
    assert [e["type"] for e in stream] == ["message_start", "message_stop"]
    assert stream.finished


def test_null_error_field_is_not_an_error() -> None:
    # SGLang serialises nulls explicitly; `"error": null` must not abort a good stream.
    good = json.dumps({"choices": [{"delta": {"content": "x"}}], "error": None})
    transport = _sse_response(f"data: {good}\n\n".encode(), b"data: [DONE]\n\n")
    assert len(list(_client(transport).chat_stream({"model": "m"}))) == 1


def test_malformed_json_raises_protocol_error() -> None:
    transport = _sse_response(_chunk("ok"), b"data: {not json\n\n")
    with pytest.raises(ProtocolError) as info:
        list(_client(transport).chat_stream({"model": "m"}))
    assert info.value.request_id == "req_abc123def456"


def test_non_object_json_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        list(_client(_sse_response(b"data: [1, 2]\n\n")).chat_stream({"model": "m"}))


def test_stream_ending_before_done_is_a_connection_error() -> None:
    transport = _sse_response(_chunk("a"), _chunk("b"))
    stream = _client(transport).chat_stream({"model": "m"})
    got = []
    with pytest.raises(APIConnectionError) as info:
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 2 and not stream.finished
    assert not isinstance(info.value, APITimeoutError)


class _CutStream(httpx.SyncByteStream):
    """Sends some bytes, then the peer vanishes (or the read times out)."""

    def __init__(self, first: bytes, exc: Exception) -> None:
        self.first, self.exc = first, exc
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise self.exc

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.RemoteProtocolError("peer closed connection without sending complete message"),
         APIConnectionError),
        (httpx.ReadError("connection reset"), APIConnectionError),
        (httpx.ReadTimeout("timed out"), APITimeoutError),
    ],
)
def test_connection_cut_mid_stream(exc: Exception, expected: type[Exception]) -> None:
    body = _CutStream(_chunk("a"), exc)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    stream = _client(httpx.MockTransport(handler)).chat_stream({"model": "m"})
    got = []
    with pytest.raises(expected):
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 1
    assert body.closed  # the response was closed in `finally`


def test_abandoned_stream_is_closed_by_context_manager() -> None:
    body = _CutStream(_chunk("a") + _chunk("b"), httpx.ReadError("never reached"))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    with _client(httpx.MockTransport(handler)).chat_stream({"model": "m"}) as stream:
        next(iter(stream))
    assert body.closed


def test_non_event_stream_200_is_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"},
                              content=b"<html>login</html>")

    with pytest.raises(ProtocolError) as info:
        _client(httpx.MockTransport(handler)).chat_stream({"model": "m"})
    assert "text/html" in str(info.value)
