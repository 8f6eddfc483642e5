"""The adapter's HTTP/1.1 client for its own llama-server children on 127.0.0.1.

Why not httpx's default transport: through httpcore, anyio and h11, reading one streamed
chunk cost ~0.3 ms of CPU, ~60 % of the adapter's work per token (measured with yappi; see
benchmarks/local_engine.py). On a 2-core machine that CPU is taken from llama-server's decode
threads, and the adapter kept only 94 % of raw tokens/s. This transport reads the same bytes
with asyncio's StreamReader: one connection per request (`Connection: close`, so no pooled
socket can go stale), Content-Length, chunked and read-until-close bodies, and httpx's
exceptions, so wafer_playground/local/upstream.py handles failures as before. It is a
transport, not a client: httpx still builds requests and decodes responses, and tests inject
their faults with httpx.MockTransport in its place (EngineConfig.upstream_transport).

Its only peer is a process we started, but its replies are still parsed defensively (sizes
capped, malformed framing raised as httpx.RemoteProtocolError).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

MAX_HEAD = 64 * 1024  # status line + headers
MAX_CHUNK = 16 * 1024 * 1024
_NO_RESPONSE = "Server disconnected without sending a response."  # httpcore's words
_DROP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"host"}


class _Body(httpx.AsyncByteStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 framing: str, length: int, read_timeout: float | None) -> None:
        self._reader, self._writer = reader, writer
        self._framing, self._length, self._timeout = framing, length, read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parts = {"chunked": self._chunked, "length": self._sized}.get(self._framing, self._rest)
        try:
            async for part in parts():
                yield part
        except TimeoutError:
            raise httpx.ReadTimeout("llama-server sent nothing for too long") from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise httpx.RemoteProtocolError(
                f"llama-server broke off the response body ({type(exc).__name__})") from None
        finally:
            await self.aclose()

    async def _chunked(self) -> AsyncIterator[bytes]:
        # one timer per chunk, not per read: the timeout is between chunks, as in httpx
        read_line, read_exactly = self._reader.readline, self._reader.readexactly
        while True:
            async with asyncio.timeout(self._timeout):
                line = await read_line()
                size = int(line.split(b";", 1)[0], 16)  # ValueError: not a chunk size
                if not 0 <= size <= MAX_CHUNK:
                    raise httpx.RemoteProtocolError(f"chunk size {size} out of range")
                if size == 0:
                    while (await read_line()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                data = await read_exactly(size + 2)  # the payload and its CRLF
            yield data[:-2]

    async def _sized(self) -> AsyncIterator[bytes]:
        left = self._length
        while left > 0:
            async with asyncio.timeout(self._timeout):
                part = await self._reader.read(min(left, 65536))
            if not part:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(part)
            yield part

    async def _rest(self) -> AsyncIterator[bytes]:
        while True:
            async with asyncio.timeout(self._timeout):
                part = await self._reader.read(65536)
            if not part:
                return
            yield part

    async def aclose(self) -> None:
        # closing the socket is also how llama-server learns to stop generating
        if not self._writer.is_closing():
            self._writer.close()


class LoopbackTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout") or {}
        url = request.url
        port = url.port or 80
        try:
            async with asyncio.timeout(timeout.get("connect")):
                reader, writer = await asyncio.open_connection(url.host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {url.host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"{url.host}:{port}: {exc.strerror or exc}") from None
        try:
            body = await request.aread()
            head = [request.method.encode() + b" " + url.raw_path + b" HTTP/1.1",
                    b"Host: " + url.netloc, b"Connection: close",
                    b"Content-Length: " + str(len(body)).encode()]
            head += [k + b": " + v for k, v in request.headers.raw if k.lower() not in _DROP]
            writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            async with asyncio.timeout(timeout.get("read")):
                status, reason, headers = await _read_head(reader)
        except BaseException as exc:
            writer.close()
            if isinstance(exc, TimeoutError):
                raise httpx.ReadTimeout("llama-server did not answer in time") from None
            if isinstance(exc, ConnectionError | asyncio.IncompleteReadError):
                raise httpx.RemoteProtocolError(_NO_RESPONSE) from None
            if isinstance(exc, ValueError):  # a line over the StreamReader's 64 KiB limit
                raise httpx.RemoteProtocolError("oversized line in the response head") from None
            raise
        framing, length = _framing(request.method, status, headers)
        return httpx.Response(
            status, headers=headers,
            stream=_Body(reader, writer, framing, length, timeout.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    line = await reader.readline()
    if not line:
        raise httpx.RemoteProtocolError(_NO_RESPONSE)
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"bad status line {line[:60]!r}")
    size = len(line)
    headers: list[tuple[bytes, bytes]] = []
    while (line := await reader.readline()) not in (b"\r\n", b"\n"):
        size += len(line)
        if not line or size > MAX_HEAD:
            raise httpx.RemoteProtocolError("truncated or oversized response head")
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"bad header line {line[:60]!r}")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


def _framing(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return "length", 0
    values = {k.lower(): v for k, v in headers}
    if b"chunked" in values.get(b"transfer-encoding", b"").lower():
        return "chunked", 0
    if b"content-length" in values:
        with contextlib.suppress(ValueError):
            n = int(values[b"content-length"])
            if n >= 0:
                return "length", n
        raise httpx.RemoteProtocolError("bad Content-Length")
    return "close", 0


__all__ = ["LoopbackTransport"]
