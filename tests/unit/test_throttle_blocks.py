"""Freezing finished paragraphs while streaming: where markdown may be cut, and the renderer."""

from __future__ import annotations

import random

from wafer_playground.throttle import freeze_point

PARA = "word " * 60 + "end.\n\n"  # ~300 chars and a blank line


def test_no_cut_before_min_chars() -> None:
    text = PARA * 3
    assert freeze_point(text, min_chars=10_000) == 0
    assert freeze_point("no newline at all " * 200, min_chars=100) == 0


def test_cuts_at_the_last_paragraph_start() -> None:
    text = PARA * 10 + "open tail still arri"
    cut = freeze_point(text, min_chars=500)
    assert cut == len(PARA) * 10
    assert text[cut:] == "open tail still arri"
    # incremental: from an earlier cut, at least min_chars further
    first = freeze_point(text[:len(PARA) * 3 + 5], min_chars=500)
    assert first == len(PARA) * 3
    assert freeze_point(text, first, min_chars=500) == len(PARA) * 10
    assert freeze_point(text, first, min_chars=len(text)) == first


def test_never_inside_fenced_code() -> None:
    code = "```python\n" + "x = 1\n\n" * 200 + "```\n\n"
    text = PARA * 2 + code + "after the code\n"
    cut = freeze_point(text, min_chars=100)
    assert cut == len(PARA) * 2 + len(code)  # the fence's blank lines are not cuts
    unclosed = PARA * 2 + "~~~~\n" + "y\n\n" * 300 + "~~~\n\nstill code"  # ~~~ < ~~~~
    assert freeze_point(unclosed, min_chars=100) == len(PARA) * 2


def test_never_inside_display_math_or_before_indented_lines() -> None:
    math = "$$\n" + "a + b\n\n" * 100 + "$$\n\n"
    text = PARA + math + "after\n"
    assert freeze_point(text, min_chars=10) == len(PARA) + len(math)
    # every blank line here is followed by an indented line (a list item's continuation)
    listy = "- item one\n\n  continued item one\n" * 50
    assert freeze_point(listy, min_chars=10) == 0
    assert freeze_point(listy + "\nNext paragraph", min_chars=10) == len(listy) + 1


def test_random_text_cuts_are_outside_fences() -> None:
    rng = random.Random(7)
    pieces = ["Some prose here.", "", "```", "~~~", "    indented", "- a list", "$$",
              "> quote", "| a | b |", "x = 1"]
    for _ in range(200):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 120)))
        start = 0
        while True:
            cut = freeze_point(text, start, min_chars=rng.choice([0, 20, 80]))
            if cut == start:
                break
            block = text[start:cut]
            assert text[max(0, cut - 2):cut] in ("\n", "\n\n")  # after a blank line
            assert text[cut] not in " \t\n"
            # every block closes every fence it opens: fence markers pair up
            fences = [ln for ln in block.split("\n") if ln.startswith(("```", "~~~", "$$"))]
            opened: list[str] = []
            for f in fences:
                if opened and f[:3] == opened[-1][:3]:
                    opened.pop()
                elif not opened:
                    opened.append(f)
            assert not opened, (block, fences)
            start = cut


class _Slot:
    def __init__(self) -> None:
        self.draws: list[str] = []

    def markdown(self, text: str) -> None:
        self.draws.append(text)

    def empty(self) -> None:
        self.draws.append("")


class _Parent:
    def __init__(self) -> None:
        self.slots: list[_Slot] = []

    def empty(self) -> _Slot:
        self.slots.append(_Slot())
        return self.slots[-1]

    def shown(self) -> str:
        return "".join(s.draws[-1] for s in self.slots if s.draws)


def test_renderer_freezes_blocks_and_redraws_only_the_tail() -> None:
    from components.streaming import CURSOR, ThrottledText

    parent = _Parent()
    view = ThrottledText(parent)  # type: ignore[arg-type]
    text = ""
    for i in range(5000):  # 500 tok/s for 10 s, a paragraph every 40 tokens
        text += f"w{i}.\n\n" if i % 40 == 39 else f"w{i} "
        view.update(text, now=i / 500)
    live = [d for s in parent.slots for d in s.draws if d.endswith(CURSOR)]
    assert len(parent.slots) > 5  # finished paragraphs went into their own blocks
    assert max(len(d) for d in live) < 6_000  # vs ~35 KB when the whole text is redrawn
    view.final()
    assert parent.shown() == text  # blocks + final tail, in order, no cursor
    assert not parent.shown().endswith(CURSOR)


def test_renderer_restarts_when_the_final_text_is_not_a_continuation() -> None:
    from components.streaming import ThrottledText

    parent = _Parent()
    view = ThrottledText(parent)  # type: ignore[arg-type]
    view.update(PARA * 10, now=0.0)
    assert len(parent.slots) == 2
    view.final("something else entirely")
    assert parent.shown() == "something else entirely"


def test_throttled_text_draws_few_times_and_once_at_the_end() -> None:
    from components.streaming import CURSOR, ThrottledText

    parent = _Parent()
    view = ThrottledText(parent)  # type: ignore[arg-type]
    text = ""
    for i in range(5000):  # 500 tok/s for 10 s, 6 chars per token
        text += "word. "
        view.update(text, now=i / 500)
    view.final()
    assert len(parent.slots) == 1  # no paragraph break: nothing to freeze
    draws = parent.slots[0].draws
    assert 40 <= len(draws) <= 81  # vs 5,000 with one render per token
    assert all(d.endswith(CURSOR) for d in draws[:-1])
    assert draws[-1] == text  # the final render has the whole text and no cursor
