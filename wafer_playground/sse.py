"""A server-sent-events decoder that follows the WHATWG rules.

Bytes are split into lines before UTF-8 decoding, so a multi-byte character split across
network chunks survives; `\\r\\n`, `\\r` and `\\n` all end a line; multi-line `data:` joins with
`\\n`; `:` comments are ignored; `id` and `retry` are tracked. Modelled on openai-python's
`_streaming.SSEDecoder`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
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
        for line in self._iter_lines(chunks):
            sse = self.decode(line)
            if sse is not None:
                yield sse
        # A stream cut without a trailing blank line: the spec discards the partial event.

    @staticmethod
    def _iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
        buf = b""
        for chunk in chunks:
            if not chunk:
                continue
            buf += chunk
            while True:
                # Find the earliest line terminator among \r\n, \n and \r.
                idx_n = buf.find(b"\n")
                idx_r = buf.find(b"\r")
                if idx_n == -1 and idx_r == -1:
                    break
                if idx_r != -1 and (idx_n == -1 or idx_r < idx_n):
                    if idx_r == len(buf) - 1:
                        break  # a lone \r at the end may be the first half of \r\n
                    end, skip = idx_r, 2 if buf[idx_r + 1 : idx_r + 2] == b"\n" else 1
                else:
                    end, skip = idx_n, 1
                line, buf = buf[:end], buf[end + skip :]
                yield line.decode("utf-8", errors="replace")
        if buf.endswith(b"\r"):
            yield buf[:-1].decode("utf-8", errors="replace")
        # other trailing bytes without a terminator are an incomplete line: dropped

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
