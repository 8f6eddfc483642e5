"""N browser sessions streaming at once through one Streamlit server; shared by the load test
(4 sessions) and benchmarks/load.py (8 sessions).

Each session streams `tokens` words at `rate` tok/s from the fake server. A session is done
when its last chat message holds every word in order plus the facts line with the *actual*
cost (the usage chunk arrived). Baseline: one session alone, in the same run.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import psutil
from playwright.sync_api import Browser, Page, expect

from tests.conftest import StreamlitServer, wait_for_app
from tests.fake_wafer import MODEL, FakeWafer, Reply, answer_stream


@dataclass
class LoadResult:
    sessions: int
    tokens: int
    rate: float
    single_s: float
    times_s: list[float]
    cpu_percent: float  # streamlit process, over the concurrent window (100 = one core)
    rss_mb: float
    complete: int

    @property
    def slowest_s(self) -> float:
        return max(self.times_s)

    def summary(self) -> str:
        ideal = self.tokens / self.rate
        return (f"{self.sessions} sessions x {self.tokens} tokens at {self.rate:g} tok/s "
                f"(ideal {ideal:.1f} s): single {self.single_s:.2f} s, concurrent slowest "
                f"{self.slowest_s:.2f} s (x{self.slowest_s / self.single_s:.2f}), median "
                f"{sorted(self.times_s)[len(self.times_s) // 2]:.2f} s; "
                f"{self.complete}/{self.sessions} complete; streamlit CPU "
                f"{self.cpu_percent:.0f}% of one core, RSS {self.rss_mb:.0f} MB")


def _open_all(browser: Browser, url: str, n: int) -> list[Page]:
    """n sessions on the chat page; the loads overlap (each page only waits at the end)."""
    first = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    # the router first: a deep link as a server's very first request skips app.py
    first.goto(url)
    wait_for_app(first, timeout=120_000)
    pages = [first] + [browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                       for _ in range(n - 1)]
    for page in pages:
        page.goto(f"{url}/chat?model={MODEL}", wait_until="commit")
    for page in pages:
        wait_for_app(page, timeout=120_000)
        page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
    return pages


def _complete(page: Page, tokens: int) -> bool:
    msgs = page.get_by_test_id("stChatMessage")
    if msgs.count() < 2:
        return False
    text = msgs.last.inner_text()
    if "actual" not in text:
        return False
    words = re.findall(r"w(\d+)\b", text)
    return [int(w) for w in words[:tokens]] == list(range(tokens))


def _send(page: Page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def _wait_all(pages: list[Page], started: list[float], tokens: int,
              timeout: float) -> list[float | None]:
    done: list[float | None] = [None] * len(pages)
    deadline = time.monotonic() + timeout
    while any(d is None for d in done) and time.monotonic() < deadline:
        for i, page in enumerate(pages):
            if done[i] is None and _complete(page, tokens):
                done[i] = time.monotonic() - started[i]
        time.sleep(0.05)
    return done


def run_load(server: StreamlitServer, fake: FakeWafer, browser: Browser, *, sessions: int,
             tokens: int = 400, rate: float = 200.0, timeout: float = 90.0) -> LoadResult:
    words = [f" w{i}" for i in range(tokens)]
    fake.script("POST", "/chat/completions", Reply(sse=answer_stream(words),
                                                   tokens_per_s=rate))
    pages = _open_all(browser, server.url, sessions)
    try:
        # baseline: one session alone
        t0 = time.monotonic()
        _send(pages[0], "baseline")
        single = _wait_all([pages[0]], [t0], tokens, timeout)[0]
        assert single is not None, "the single session never completed"
        for p in pages:
            wait_for_app(p, timeout=60_000)
        # a rerun under load may briefly show the previous run's (stale) button too
        clear = pages[0].get_by_role("button", name="Clear chat")
        expect(clear).to_have_count(1, timeout=30_000)
        clear.click()
        wait_for_app(pages[0], timeout=60_000)

        proc = psutil.Process(server.proc.pid)
        cpu0, w0 = proc.cpu_times(), time.monotonic()
        started: list[float] = []
        for i, p in enumerate(pages):
            started.append(time.monotonic())
            _send(p, f"session {i}")
        times = _wait_all(pages, started, tokens, timeout)
        cpu1, w1 = proc.cpu_times(), time.monotonic()
        cpu = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (w1 - w0) * 100
        rss = proc.memory_info().rss / 2**20
    finally:
        for p in pages:
            p.context.close()
    finished = [t for t in times if t is not None]
    return LoadResult(sessions, tokens, rate, single,
                      [t if t is not None else float("inf") for t in times], cpu, rss,
                      len(finished))
