"""The render-throttle policy: 50 ms floor, interval grows with text length."""

from __future__ import annotations

import pytest

from wafer_playground.throttle import Throttle, interval_for


def test_interval_floor_and_growth() -> None:
    assert interval_for(0) == pytest.approx(0.05)
    assert interval_for(2_000) == pytest.approx(0.05)  # 2k/40k = 0.05: still the floor
    assert interval_for(30_000) == pytest.approx(0.75)  # the research's 30 KB case
    assert interval_for(80_000) > interval_for(40_000)


def test_renders_for_5000_token_stream_are_few() -> None:
    """500 tok/s, 6 chars per token for 10 s: at most ~1 render per interval."""
    th = Throttle()
    text_len = 0
    for i in range(5000):
        now = i / 500
        text_len += 6
        if th.due(now, text_len):
            th.mark(now)
    # 30 KB answer: the research measured 60 updates with this policy
    assert 40 <= th.renders <= 80


def test_first_chunk_is_always_due_then_waits() -> None:
    th = Throttle()
    assert th.due(1.0, 5)
    th.mark(1.0)
    assert not th.due(1.02, 10)
    assert th.due(1.06, 10)
