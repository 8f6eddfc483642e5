"""A server-sent-events decoder that follows the WHATWG rules.

Bytes are split into lines before UTF-8 decoding, so a multi-byte character split across
network chunks survives; `\\r\\n`, `\\r` and `\\n` all end a line; multi-line `data:` joins with
`\\n`; `:` comments are ignored; `id` and `retry` are tracked. Modelled on openai-python's
`_streaming.SSEDecoder`.

One decoder, two faces: `iter_bytes` for a sync byte stream (the client,
wafer_playground/client.py) and `aiter_bytes` for an async one (the local engine reading
llama-server, wafer_playground/local/upstream.py). Both feed the same line splitter and the
same `decode`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SSEDecoder:
    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._last_event_id: str | None = None
        self._retry: int | None = None

    def iter_bytes(self, chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
        """Events from a byte stream (the client's face: httpx `iter_bytes`)."""
        lines = _LineSplitter()
        for chunk in chunks:
            for line in lines.feed(chunk):
                sse = self.decode(line)
                if sse is not None:
                    yield sse
        # A stream cut without a trailing blank line: the spec discards the partial event.

    async def aiter_bytes(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
        """The same events from an async byte stream (the local engine's face: httpx
        `aiter_bytes` on llama-server's stream). Same splitter, same decode: only the loop
        differs."""
        lines = _LineSplitter()
        async for chunk in chunks:
            for line in lines.feed(chunk):
                sse = self.decode(line)
                if sse is not None:
                    yield sse

    def decode(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._event and not self._data and self._retry is None:
                return None
            sse = ServerSentEvent(
                data="\n".join(self._data),
                event=self._event,
                id=self._last_event_id,
                retry=self._retry,
            )
            self._event = None
            self._data = []
            self._retry = None
            return sse
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            if "\0" not in value:
                self._last_event_id = value
        elif field == "retry":
            with contextlib.suppress(TypeError, ValueError):
                self._retry = int(value)
        return None


class _LineSplitter:
    """Split bytes on \\r\\n, \\n or \\r in linear time, whatever the chunking.

    Only the unterminated tail is carried between chunks (chunks without any line end are
    parked in a list, not re-scanned), so one huge chunk or one huge line costs O(n), not
    O(n^2). `bytes.splitlines` splits on exactly \\r, \\n and \\r\\n. A chunk ending in \\r
    gives its line at once (no waiting for the next chunk to arrive); a \\n opening the next
    chunk is then the second half of that \\r\\n and is skipped. Trailing bytes without a
    terminator are an incomplete line and never come out.
    """

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[str]:
        if self._skip_lf and chunk:
            self._skip_lf = False
            chunk = chunk[1:] if chunk.startswith(b"\n") else chunk
        if not chunk:
            return []
        if not self._pending and chunk.endswith(b"\n") and b"\r" not in chunk:
            # The usual chunk (llama-server's, Wafer's): whole \n-terminated lines. A \n byte
            # never sits inside a UTF-8 sequence, so decoding first and splitting after gives
            # the same lines as the general path below, at a third of the cost.
            return chunk[:-1].decode("utf-8", errors="replace").split("\n")
        if b"\n" not in chunk and b"\r" not in chunk:
            self._pending.append(chunk)
            return []
        buf = b"".join(self._pending) + chunk if self._pending else chunk
        lines = buf.splitlines(keepends=True)
        self._pending = [] if lines[-1].endswith((b"\n", b"\r")) else [lines.pop()]
        self._skip_lf = buf.endswith(b"\r")
        return [line.rstrip(b"\r\n").decode("utf-8", errors="replace") for line in lines]
