"""A hostile upstream in headless Chromium (issue 14; SECURITY.md, "Untrusted text").

One fake Wafer server serves model cards, streams and errors whose every string carries a
markdown image pointing at a second local server (the tracker), Streamlit directives and
bidi overrides; another card is 1 MB of text and another prices input at "1e400". The real
app (`streamlit run app.py`) draws the catalog, the chat, Compare and History from it.
Afterwards the tracker must have received nothing, no directive may have taken effect, the
negative-usage answer must be kept, the request-log CSV must be formula-safe and the catalog
must answer a search within 3 s with the 1 MB card in it.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import StreamlitServer, wait_for_app
from tests.fake_wafer import CARDS, FakeWafer, Reply, serve
from tests.reliability.conftest import browser_page, serve_app
from wafer_playground.store import SQLiteStore
from wafer_playground.transcript import export_json, import_json

pytestmark = pytest.mark.e2e
SHOTS = Path("/tmp/shots14")
EVIL = "evil-model"
HUGE = "huge-model"
FORMULA = '=HYPERLINK("http://127.0.0.1:9/x","click")'


@pytest.fixture(scope="module")
def tracker() -> Iterator[FakeWafer]:
    """Counts every request: the place each hostile image points at."""
    yield from serve()


def _payload(track: str, where: str) -> str:
    """One hostile string: an image, a colour, a badge, an icon, a link, a bidi override."""
    return (f"{where} ![t]({track}/{where}.png) :red[RED-{where}] :blue-badge[BADGE-{where}] "
            f":material/warning: [docs]({track}/link-{where}) \u202eRTL-{where}")


def _cards(track: str) -> list[dict[str, Any]]:
    evil = {"id": EVIL, "object": "model", "owned_by": _payload(track, "owned"),
            "max_model_len": 32768,
            "wafer": {"display_name": _payload(track, "name"),
                      "provider": _payload(track, "provider"),
                      "description": _payload(track, "desc"),
                      "tier": _payload(track, "tier"),
                      "zdr_supported": True, "capabilities": {"tools": True},
                      "pricing": {"input_cents_per_million": 100,
                                  "output_cents_per_million": 200,
                                  "currency": f"![c]({track}/currency.png)"}}}
    bomb = {"id": "price-bomb", "object": "model", "owned_by": "x", "max_model_len": 4096,
            "wafer": {"display_name": "Price bomb",
                      "pricing": {"input_cents_per_million": "1e400",
                                  "output_cents_per_million": 10}}}
    huge = {"id": HUGE, "object": "model", "owned_by": "x", "max_model_len": 8192,
            "wafer": {"display_name": "Huge " + "N" * 1_000_000,
                      "description": "D" * 1_000_000,
                      "pricing": {"input_cents_per_million": 5,
                                  "output_cents_per_million": 5}}}
    return [evil, bomb, huge, *CARDS]


def _delta(**delta: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": EVIL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def _hostile_stream(track: str) -> list[dict[str, Any] | str]:
    return [
        _delta(role="assistant"),
        _delta(reasoning_content=_payload(track, "reasoning")),
        _delta(content="Answer kept. " + _payload(track, "content")),
        _delta(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": _payload(track, "tool"), "arguments": "{}"}}]),
        {"id": "c", "object": "chat.completion.chunk", "model": EVIL,
         "choices": [{"index": 0, "delta": {}, "finish_reason": f"![f]({track}/finish.png)"}]},
        {"id": "c", "object": "chat.completion.chunk", "choices": [],
         "usage": {"prompt_tokens": 12, "completion_tokens": -7, "total_tokens": 5}},
        "[DONE]",
    ]


@pytest.fixture(scope="module")
def hostile(tracker: FakeWafer) -> Iterator[FakeWafer]:
    yield from serve(_cards(f"http://127.0.0.1:{tracker.port}"))


@pytest.fixture(scope="module")
def app(hostile: FakeWafer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitServer]:
    yield from serve_app(hostile.url, tmp_path_factory.mktemp("hostile") / "hostile.db",
                         read_timeout_s=5)


@pytest.fixture(scope="module")
def page(app: StreamlitServer, browser: Browser) -> Iterator[Page]:
    yield from browser_page(browser)


def _idle(page: Page) -> None:
    time.sleep(0.3)
    wait_for_app(page, timeout=60_000)


def _nav(page: Page, title: str) -> None:
    page.get_by_test_id("stPageLink-NavLink").filter(has_text=title).first.click()
    _idle(page)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _inert(page: Page, tracker: FakeWafer, *wheres: str) -> None:
    """Nothing reached the tracker; every directive shows as its own literal text."""
    page.wait_for_timeout(500)  # an image request would have left by now
    assert tracker.hits == [], [h.path for h in tracker.hits]
    assert page.get_by_test_id("stException").count() == 0
    text = page.inner_text("body")
    assert "Traceback" not in text
    assert "\u202e" not in text  # the override is shown as [U+202E], never applied
    for where in wheres:
        assert f":red[RED-{where}]" in text, where  # not coloured: the directive is text
        assert f":blue-badge[BADGE-{where}]" in text, where
    srcs = page.eval_on_selector_all("img", "els => els.map(e => e.src)")
    assert not [s for s in srcs if f"127.0.0.1:{tracker.port}" in s], srcs


def test_catalog_cards_are_inert_and_stay_fast(page: Page, app: StreamlitServer,
                                               tracker: FakeWafer) -> None:
    tracker.reset()
    page.goto(app.url)
    _idle(page)
    started = time.monotonic()
    page.goto(f"{app.url}/catalog?model={EVIL}")
    _idle(page)
    load_s = time.monotonic() - started
    detail = page.locator(".st-key-cat_detail")
    expect(detail.get_by_text("RED-name").first).to_be_visible(timeout=30_000)
    _shot(page, "catalog_evil_detail")
    _inert(page, tracker, "name", "provider", "owned", "desc")  # an unknown tier is not shown
    text = page.inner_text("body")
    assert "[U+202E]RTL-name" in text
    assert ":material/warning:" in text  # the icon directive is text, not an icon
    page.keyboard.press("Escape")  # close the detail dialog
    _idle(page)
    page.get_by_text("had problems").first.click()
    expect(page.get_by_text("input_cents_per_million '1e400' is too large").first
           ).to_be_visible()  # reported, no crash
    # interactive with the 1 MB card in the list: a search answers within 3 s
    search = page.get_by_placeholder("id, name, provider, description…")
    started = time.monotonic()
    search.fill("huge")
    search.press("Enter")
    _idle(page)
    search_s = time.monotonic() - started
    # then a click on its row (the grid is a canvas: the row's selection cell) opens it
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    assert box is not None
    started = time.monotonic()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)
    _idle(page)
    expect(page.get_by_text("Show all (").first).to_be_visible(timeout=10_000)
    huge_s = time.monotonic() - started
    _shot(page, "catalog_huge_detail")
    print(f"catalog: first load {load_s:.2f} s, search {search_s:.2f} s, "
          f"1 MB card's detail {huge_s:.2f} s")
    assert search_s < 3.0 and huge_s < 3.0
    assert len(page.content()) < 400_000  # the 1 MB strings never reached the page whole
    assert tracker.hits == []


def test_chat_stream_is_inert_and_a_negative_usage_keeps_the_answer(
        page: Page, app: StreamlitServer, hostile: FakeWafer, tracker: FakeWafer) -> None:
    tracker.reset()
    track = f"http://127.0.0.1:{tracker.port}"
    hostile.script("POST", "/chat/completions", Reply(sse=_hostile_stream(track)))
    page.goto(f"{app.url}/chat?model={EVIL}")
    _idle(page)
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=30_000)
    box.fill("hello")
    box.press("Enter")
    _idle(page)
    expect(page.get_by_text("Answer kept.").first).to_be_visible(timeout=30_000)
    page.get_by_text("Thinking (").first.click()  # open the reasoning too
    _idle(page)
    _shot(page, "chat_hostile_stream")
    page.get_by_test_id("stChatMessage").nth(1).screenshot(path=str(SHOTS / "chat_answer.png"))
    _inert(page, tracker, "content", "reasoning", "tool")
    text = page.inner_text("body")
    assert "usage ignored" in text and "completion_tokens is negative (-7)" in text
    assert "not loaded" in text  # the image is a placeholder naming its target
    assert f"{track}/link-content" in text  # the link shows its real target
    # the answer is kept in SQLite, finished, not left "streaming" with empty content
    store = SQLiteStore(app.db)  # type: ignore[attr-defined]
    try:
        conv = store.list_conversations()[0]
        turns = store.list_turns(conv.id)
    finally:
        store.close()
    assert turns[-1].role == "assistant" and turns[-1].status == "done"
    assert turns[-1].content.startswith("Answer kept.")
    # remote images load only when asked: one click, then the tracker sees the request
    page.get_by_role("button", name="Load 1 image(s)").first.click()
    _idle(page)
    page.wait_for_timeout(1500)
    # (the first such button is the reasoning's: each message asks for its own images)
    assert [h.path for h in tracker.hits] == ["/reasoning.png"]


def test_stream_error_and_model_list_error_are_inert(
        page: Page, app: StreamlitServer, hostile: FakeWafer, tracker: FakeWafer) -> None:
    tracker.reset()
    track = f"http://127.0.0.1:{tracker.port}"
    hostile.script("POST", "/chat/completions", Reply(sse=[
        _delta(role="assistant"), _delta(content="Partial before the error."),
        {"error": {"message": _payload(track, "streamerr"), "code": FORMULA,
                   "request_id": f"![r]({track}/rid.png)"}}]))
    page.goto(f"{app.url}/chat?model={EVIL}")  # a new session: no image was allowed in it
    _idle(page)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("again")
    box.press("Enter")
    _idle(page)
    expect(page.get_by_text("Partial before the error.").first).to_be_visible(timeout=30_000)
    _inert(page, tracker, "streamerr")
    # the sidebar's /models error shows on every page
    hostile.script("GET", "/models", Reply(status=400, json={"error": {
        "message": _payload(track, "modelserr"), "code": "bad", "type": "invalid_request_error",
        "request_id": f"![r]({track}/mrid.png)"}}))
    _nav(page, "Model catalog")
    page.get_by_role("button", name="Refresh").first.click()
    _idle(page)
    expect(page.get_by_test_id("stSidebar").get_by_text("RED-modelserr").first
           ).to_be_visible(timeout=20_000)
    _shot(page, "catalog_models_error")
    _inert(page, tracker, "modelserr")
    hostile.script("GET", "/models", Reply(default=True))
    page.get_by_role("button", name="Refresh").first.click()
    _idle(page)


def test_compare_finish_badge_is_inert(page: Page, hostile: FakeWafer,
                                       tracker: FakeWafer) -> None:
    tracker.reset()
    track = f"http://127.0.0.1:{tracker.port}"
    hostile.script("POST", "/chat/completions", Reply(sse=[
        _delta(role="assistant"), _delta(content="Compared " + _payload(track, "pane")),
        {"id": "c", "object": "chat.completion.chunk", "model": EVIL,
         "choices": [{"index": 0, "delta": {},
                      "finish_reason": f":red[RED-finish] :blue-badge[BADGE-finish] "
                                       f"![f]({track}/finish.png)"}]},
        "[DONE]"]))
    _nav(page, "Compare")
    page.get_by_label("Prompt", exact=True).fill("compare these")
    _idle(page)
    page.get_by_role("button", name="Run comparison").click()
    _idle(page)
    expect(page.get_by_text("Compared").first).to_be_visible(timeout=30_000)
    _shot(page, "compare_hostile")
    _inert(page, tracker, "pane", "finish")


def test_history_title_and_csv(page: Page, app: StreamlitServer, tracker: FakeWafer,
                               tmp_path: Path) -> None:
    tracker.reset()
    track = f"http://127.0.0.1:{tracker.port}"
    source = SQLiteStore(tmp_path / "export.db")
    try:
        cid = source.create_conversation(_payload(track, "title"), model=EVIL)
        exported = export_json(source, cid)
    finally:
        source.close()
    store = SQLiteStore(app.db)  # type: ignore[attr-defined]
    try:
        import_json(store, exported)  # an imported file: the title is the attacker's
    finally:
        store.close()
    _nav(page, "History")
    expect(page.get_by_text("RED-title").first).to_be_visible(timeout=20_000)
    _shot(page, "history_hostile")
    _inert(page, tracker, "title")
    page.get_by_role("tab", name="Request log").click()
    _idle(page)
    with page.expect_download(timeout=20_000) as dl:
        page.get_by_role("button", name="Download CSV").first.click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(), newline="")))
    codes = [r["error_code"] for r in rows if r.get("error_code")]
    assert codes and all(not c.startswith(("=", "+", "-", "@")) for c in codes), codes
    assert "'" + FORMULA in codes
    for row in rows:
        for value in row.values():
            assert not (value or "").startswith(("=", "+", "@", "\t", "\r")), row
