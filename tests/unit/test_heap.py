"""components/heap.py: the heap is frozen once per page, never again for the same page."""

from __future__ import annotations

import gc

from components import heap


def test_freezes_once_per_page() -> None:
    try:
        before = gc.get_freeze_count()
        junk = [{"n": i} for i in range(1000)]  # tracked objects that exist at the freeze
        assert heap.freeze_after_first_run("test-page-a") is True
        frozen = gc.get_freeze_count()
        assert frozen >= before + len(junk)
        assert heap.freeze_after_first_run("test-page-a") is False  # the same page: no-op
        assert gc.get_freeze_count() == frozen
        assert heap.freeze_after_first_run("test-page-b") is True
    finally:
        gc.unfreeze()


def test_wait_until_sent_outside_a_server_session_does_not_block() -> None:
    from components.streaming import wait_until_sent

    assert wait_until_sent(timeout_s=5.0, settle_s=5.0) is False  # no runtime: returns at once
