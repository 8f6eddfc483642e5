"""wafer_playground/local/loopback.py against a raw socket server that writes exactly the
bytes each case needs: the framings llama-server uses, and every way a peer can break them.
The real llama-server path is covered by the contract tests (tests/engine/test_contract.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from wafer_playground.local.loopback import LoopbackTransport

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
T = TypeVar("T")


def _arun(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a thread of its own: in the whole suite, Playwright's sync API keeps an
    event loop running on the main thread, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _run(reply: Reply, work: Callable[[httpx.AsyncClient], Awaitable[object]],
         seen: list[bytes] | None = None) -> object:
    async def main() -> object:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            head = await r.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            body = await r.readexactly(length)
            if seen is not None:
                seen.append(head + body)
            try:
                await reply(r, w)
            finally:
                w.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         transport=LoopbackTransport(),
                                         timeout=httpx.Timeout(2, connect=2)) as c:
                return await work(c)
        finally:
            server.close()

    return _arun(main())


def _writes(*parts: bytes, gap: float = 0.0) -> Reply:
    async def reply(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for i, p in enumerate(parts):
            if gap and i:
                await asyncio.sleep(gap)
            w.write(p)
            await w.drain()
    return reply


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _lines(c: httpx.AsyncClient) -> list[str]:
    async with c.stream("POST", "/v1/chat/completions", json={"stream": True}) as r:
        assert r.status_code == 200
        return [line async for line in r.aiter_lines() if line]


def test_chunked_sse_arrives_event_by_event_and_the_request_is_well_formed() -> None:
    seen: list[bytes] = []
    reply = _writes(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n",
                    _chunk(b'data: {"a": 1}\n\n'), _chunk(b'data: {"a": 2}\n\n'),
                    _chunk(b"data: [DONE]\n\n"), b"0\r\n\r\n", gap=0.01)
    assert _run(reply, _lines, seen) == ['data: {"a": 1}', 'data: {"a": 2}', "data: [DONE]"]
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert b"Connection: close" in lines and b"Content-Length: 15" in lines
    assert body == b'{"stream":true}'


def test_content_length_and_read_until_close_bodies() -> None:
    sized = _writes(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", b'{"ok"', b":true}")

    async def get_json(c: httpx.AsyncClient) -> object:
        r = await c.post("/tokenize", json={})
        return r.status_code, r.json()

    assert _run(sized, get_json) == (200, {"ok": True})
    until_close = _writes(b"HTTP/1.0 200 OK\r\n\r\n", b"hello ", b"world")

    async def text(c: httpx.AsyncClient) -> object:
        return (await c.get("/health")).text

    assert _run(until_close, text) == "hello world"


def test_error_status_keeps_its_body() -> None:
    reply = _writes(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 25\r\n\r\n",
                    b'{"error":{"code":400}}   ')

    async def post(c: httpx.AsyncClient) -> object:
        r = await c.post("/completion", json={})
        return r.status_code, r.reason_phrase, r.json()

    assert _run(reply, post) == (400, "Bad Request", {"error": {"code": 400}})


@pytest.mark.parametrize("reply, message", [
    (_writes(), "Server disconnected without sending a response"),
    (_writes(b"SSH-2.0-OpenSSH\r\n"), "bad status line"),
    (_writes(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), "bad header line"),
    (_writes(b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n"), "bad Content-Length"),
])
def test_a_broken_response_head_is_a_protocol_error(reply: Reply, message: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match=message):
        _run(reply, _lines)


@pytest.mark.parametrize("tail", [
    _chunk(b"data: {}\n\n")[:-4],  # the peer dies inside a chunk
    b"zz\r\n",  # not a chunk size
    b"ffffffff\r\n",  # a chunk far too large to buffer
])
def test_a_broken_chunked_body_is_a_protocol_error_after_the_good_events(tail: bytes) -> None:
    got: list[str] = []
    reply = _writes(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    _chunk(b'data: {"a": 1}\n\n'), tail)

    async def read(c: httpx.AsyncClient) -> object:
        async with c.stream("POST", "/v1/completions", json={}) as r:
            async for line in r.aiter_lines():
                got.append(line)
        return got

    with pytest.raises(httpx.RemoteProtocolError):
        _run(reply, read)
    assert got[0] == 'data: {"a": 1}'


def test_a_short_sized_body_is_a_protocol_error() -> None:
    reply = _writes(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"only this")

    async def read(c: httpx.AsyncClient) -> object:
        return (await c.get("/x")).text

    with pytest.raises(httpx.RemoteProtocolError):
        _run(reply, read)


def test_refused_connection_and_silent_peer_map_to_httpx_errors() -> None:
    async def refused() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with httpx.AsyncClient(transport=LoopbackTransport()) as c:
            await c.get(f"http://127.0.0.1:{port}/health")

    with pytest.raises(httpx.ConnectError):
        _arun(refused())

    async def silent(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def get(c: httpx.AsyncClient) -> object:
        return await c.get("/health", timeout=0.2)

    with pytest.raises(httpx.ReadTimeout):
        _run(silent, get)


def test_leaving_a_stream_early_closes_the_connection() -> None:
    """How llama-server learns to stop generating: the socket closes when we stop reading."""
    async def main() -> bytes:
        eof: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.readuntil(b"\r\n\r\n")
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + _chunk(b"data: {}\n\n"))
            eof.set_result(await r.read())  # b"" once the client has closed its end

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient(transport=LoopbackTransport()) as c, \
                c.stream("GET", f"http://127.0.0.1:{port}/s") as r:
            async for _line in r.aiter_lines():
                break
        try:
            return await asyncio.wait_for(eof, 3)
        finally:
            server.close()

    assert _arun(main()) == b""
