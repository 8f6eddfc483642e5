"""Render-throttle policy for streamed text (pure; used by components/streaming.py).

Measured in docs/research/streamlit-eng.md §2: re-rendering the whole message for every token is
quadratic in bytes and browser work. Rendering at most every max(50 ms, len/40k s) kept the
stream visibly live while cutting browser CPU ~4x and websocket bytes ~50x.

`freeze_point` adds the second half (benchmarks/stream_render.py): finished paragraphs are
drawn once as their own block and only the open tail is redrawn, so one redraw (and the final
one) costs the tail, not the whole answer. Re-rendering 30 KB of markdown took the browser
0.5-0.8 s on the loaded 2-core box, which is what kept the last token from showing in time.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_INTERVAL_S = 0.05
CHARS_PER_S = 40_000.0
MIN_BLOCK_CHARS = 1_500  # freeze in chunks of at least this: a few dozen blocks at most


def interval_for(length: int, *, min_interval: float = MIN_INTERVAL_S,
                 chars_per_s: float = CHARS_PER_S) -> float:
    """Seconds to wait between renders of a text of `length` characters."""
    return max(min_interval, length / chars_per_s)


@dataclass
class Throttle:
    """Decides when to redraw; call `due(now, length)` per chunk, `mark(now)` after drawing."""

    min_interval: float = MIN_INTERVAL_S
    chars_per_s: float = CHARS_PER_S
    last_render: float | None = None
    renders: int = 0

    def due(self, now: float, length: int) -> bool:
        if self.last_render is None:
            return True  # first text shows at once: that is the user's TTFT
        return now - self.last_render >= interval_for(
            length, min_interval=self.min_interval, chars_per_s=self.chars_per_s)

    def mark(self, now: float) -> None:
        self.last_render = now
        self.renders += 1


def _fence(line: str) -> str | None:
    """The fence marker (```, ~~~~, ...) a line opens/closes with, else None."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return None  # 4+ spaces: indented code, not a fence
    for ch in "`~":
        if stripped.startswith(ch * 3):
            return ch * (len(stripped) - len(stripped.lstrip(ch)))
    return None


def freeze_point(text: str, start: int = 0, *, min_chars: int = MIN_BLOCK_CHARS) -> int:
    """Where the markdown in `text[start:]` can be cut so the part before renders on its own.

    `start` must itself be such a cut (0 is). Returns the index of the last safe cut at least
    `min_chars` after `start`, else `start`. A cut is the start of a line that follows a
    blank line, outside fenced code and `$$` math, and does not begin with whitespace (an
    indented line may continue a list item or be indented code). Lists, quotes and tables
    split at a blank line still render (as two lists, two quotes), and the finished message is
    drawn as one markdown afterwards anyway.
    """
    best = start
    fence: str | None = None
    math = False
    blank = False
    pos = start
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl < 0:
            break  # the last line is still arriving: never cut inside or before it blindly
        line = text[pos:nl]
        if blank and fence is None and not math and line[:1] not in ("", " ", "\t") \
                and pos - start >= min_chars:
            best = pos
        marker = _fence(line)
        if fence is not None:  # inside code only its closing fence counts
            if marker is not None and marker[0] == fence[0] and len(marker) >= len(fence) \
                    and not line.strip().strip(marker[0]):
                fence = None
        elif math:  # inside math only the closing $$ counts
            math = line.strip() != "$$"
        elif marker is not None:
            fence = marker
        elif line.strip() == "$$":
            math = True
        blank = line.strip() == ""
        pos = nl + 1
    # the line now arriving may already be decisive
    if blank and fence is None and not math and text[pos:pos + 1] not in ("", " ", "\t") \
            and pos - start >= min_chars:
        best = pos
    return best


__all__ = ["CHARS_PER_S", "MIN_BLOCK_CHARS", "MIN_INTERVAL_S", "Throttle", "freeze_point",
           "interval_for"]
