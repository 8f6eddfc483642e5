"""History in headless Chromium against a real `streamlit run app.py`: list, search, rename,
reload, confirmed delete, reopen; a local-engine chat that survives a reload and reopens from
History; and a kill -9 of the server mid-stream followed by a restart."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import wait_for_app
from tests.fake_wafer import Event, FakeWafer, Reply, delta_chunk
from wafer_playground.store import SQLiteStore

pytestmark = pytest.mark.e2e


def _seed(path: Path) -> dict[str, str]:
    s = SQLiteStore(path)
    paris = s.create_conversation("Paris trip", model="glm-5.2")
    s.start_turn(paris, "user", "Which museums open on Monday?")
    t = s.start_turn(paris, "assistant")
    s.update_turn(t, content="Most of them.", status="done")
    s.log_request(model="glm-5.2", base_url="https://pass.wafer.ai/v1", surface="chat",
                  params={}, status="done", conversation_id=paris, turn_id=t,
                  cost=Decimal("0.0123"))
    cooking = s.create_conversation("Cooking", model="qwen")
    s.start_turn(cooking, "user", "How long to boil an egg?")
    s.close()
    return {"paris": paris, "cooking": cooking}


def _row(page: Page, cid: str):  # type: ignore[no-untyped-def]
    # Streamlit gives keyed containers the CSS class st-key-<key>.
    return page.locator(f".st-key-hist_row_{cid}")


def test_history_flow(page: Page, streamlit_server_factory, tmp_path: Path) -> None:
    db = tmp_path / "e2e.db"
    ids = _seed(db)
    server = streamlit_server_factory(env={"WAFER_PLAYGROUND_DB": str(db),
                                           "WAFER_ENDPOINT": "custom"})
    page.goto(server.url + "/")
    wait_for_app(page)
    page.get_by_test_id("stPageLink-NavLink").filter(has_text="History").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(_row(page, ids["paris"])).to_contain_text("Paris trip")
    expect(_row(page, ids["paris"])).to_contain_text("$0.0123")
    expect(_row(page, ids["cooking"])).to_contain_text("How long to boil an egg?")

    # search matches message content
    search = page.get_by_placeholder("Search titles and messages")
    search.fill("egg")
    search.press("Enter")
    wait_for_app(page)
    expect(_row(page, ids["paris"])).to_have_count(0)
    expect(_row(page, ids["cooking"])).to_be_visible()
    search.fill("")
    search.press("Enter")
    wait_for_app(page)

    # rename
    _row(page, ids["paris"]).get_by_role("button", name="Manage").click()
    wait_for_app(page)
    title = _row(page, ids["paris"]).get_by_label("Title")
    title.fill("Rome trip")
    title.press("Enter")
    wait_for_app(page)
    _row(page, ids["paris"]).get_by_role("button", name="Rename").click()
    wait_for_app(page)
    expect(page.get_by_text("Renamed to “Rome trip”.")).to_be_visible()

    # a reload is a new session: everything comes back from the file
    page.reload()
    wait_for_app(page)
    expect(_row(page, ids["paris"])).to_contain_text("Rome trip")

    # delete needs a second, explicit click
    _row(page, ids["cooking"]).get_by_role("button", name="Manage").click()
    wait_for_app(page)
    _row(page, ids["cooking"]).get_by_role("button", name="Delete…").click()
    wait_for_app(page)
    expect(page.get_by_text("This cannot be undone.", exact=False)).to_be_visible()
    _row(page, ids["cooking"]).get_by_role("button", name="Delete for good").click()
    wait_for_app(page)
    expect(_row(page, ids["cooking"])).to_have_count(0)
    page.screenshot(path=str(tmp_path / "history.png"), full_page=True)

    check = SQLiteStore(db)
    assert check.get_conversation(ids["cooking"]) is None
    assert check.get_conversation(ids["paris"]).title == "Rome trip"  # type: ignore[union-attr]
    check.close()

    # reopen goes to the chat page
    _row(page, ids["paris"]).get_by_role("button", name="Open").click()
    wait_for_app(page)
    expect(page).to_have_url(re.compile(r"/chat(\?|$)"))
    assert "Traceback" not in server.log()


# ---- with the chat page -------------------------------------------------------------------

LOCAL_MODEL = "smollm2-135m-instruct"


def _send(page: Page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=60_000)
    box.fill(text)
    box.press("Enter")


def _open_chat(page: Page, url: str, model: str) -> None:
    page.set_viewport_size({"width": 1440, "height": 1000})
    # Load the router first so this server process is in st.navigation mode, then deep-link.
    page.goto(url + "/")
    wait_for_app(page, timeout=120_000)
    page.goto(f"{url}/chat?model={model}")
    wait_for_app(page, timeout=120_000)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled(timeout=60_000)


def _go_history(page: Page) -> None:
    page.get_by_test_id("stPageLink-NavLink").filter(has_text="History").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="History")).to_be_visible()


def test_chat_reload_reopen_from_history(page: Page, streamlit_server_factory, local_engine,
                                         tmp_path: Path) -> None:
    """A real local-engine chat survives a reload and reopens from History."""
    db = tmp_path / "chat.db"
    server = streamlit_server_factory(env={"WAFER_ENDPOINT": "local",
                                           "WAFER_LOCAL_URL": local_engine,
                                           "WAFER_PLAYGROUND_DB": str(db)})
    _open_chat(page, server.url, LOCAL_MODEL)
    question = "Name one primary colour."
    _send(page, question)
    messages = page.get_by_test_id("stChatMessage")
    facts = page.locator("[data-testid='stCaptionContainer']").filter(has_text="tok/s")
    expect(facts.first).to_be_visible(timeout=120_000)
    wait_for_app(page)
    expect(messages).to_have_count(2)
    answer = messages.nth(1).get_by_test_id("stMarkdown").first.inner_text()
    assert answer.strip()

    page.reload()  # a new session: nothing in memory
    wait_for_app(page, timeout=60_000)
    expect(page.get_by_test_id("stChatMessage")).to_have_count(0)

    _go_history(page)
    store = SQLiteStore(db)
    (conv,) = store.list_conversations()
    turns = store.list_turns(conv.id)
    store.close()
    assert [(t.role, t.status) for t in turns] == [("user", "done"), ("assistant", "done")]
    assert turns[0].content == question and turns[1].content.strip()
    row = _row(page, conv.id)
    expect(row).to_contain_text(question.rstrip("."))  # the title is the gist, no full stop
    expect(row).to_contain_text(LOCAL_MODEL)
    row.get_by_role("button", name="Open").click()
    wait_for_app(page)
    expect(page).to_have_url(re.compile(r"/chat"))
    messages = page.get_by_test_id("stChatMessage")
    expect(messages).to_have_count(2, timeout=30_000)
    expect(messages.nth(0)).to_contain_text(question)
    expect(messages.nth(1)).to_contain_text(answer.strip()[:40])
    page.screenshot(path=str(tmp_path / "reopened.png"), full_page=True)

    # the reopened conversation continues in the same stored conversation
    _send(page, "And another one?")
    expect(page.get_by_test_id("stChatMessage")).to_have_count(4, timeout=120_000)
    expect(facts).to_have_count(2, timeout=120_000)
    store = SQLiteStore(db)
    assert len(store.list_conversations()) == 1
    assert len(store.list_turns(conv.id)) == 4
    store.close()


class _SlowSSE:
    """Fault injection for the crash test: a chat endpoint whose stream is guaranteed to be
    in flight when the app is killed (the real engine may finish first on a fast machine).
    The shared fake Wafer server (tests/fake_wafer.py) streams `tokens` words at 50/s."""

    def __init__(self) -> None:
        self.tokens = 5
        self.fake = FakeWafer([{"id": "slow-model", "object": "model", "owned_by": "test",
                                "max_model_len": 32768,
                                "wafer": {"display_name": "Slow model"}}]).start()
        self.base_url = self.fake.url
        self.fake.script("POST", "/chat/completions", lambda hit: Reply(
            sse=self._stream(self.tokens), tokens_per_s=50,
            headers={"x-request-id": "req_0123456789ab"}))

    @staticmethod
    def _stream(n: int) -> list[Event]:
        words: list[Event] = [delta_chunk({"content": f" w{i}"}) for i in range(n)]
        return [*words, delta_chunk({}, "stop"),
                {"id": "c", "choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": n}},
                "[DONE]"]

    def close(self) -> None:
        self.fake.stop()


def _raw_turns(db: Path) -> list[tuple[str, str, str]]:
    """Read the file without SQLiteStore, so the test itself recovers nothing."""
    con = sqlite3.connect(db)
    try:
        return [tuple(r) for r in con.execute(
            "SELECT role, status, content FROM turns ORDER BY conversation_id, seq")]
    finally:
        con.close()


def test_kill_9_mid_stream_then_restart(page: Page, streamlit_server_factory,
                                        tmp_path: Path) -> None:
    """Start the app, finish one turn, kill -9 the server mid-stream on the next, restart:
    the finished turns are there and the cut-off answer is marked interrupted."""
    upstream = _SlowSSE()
    db = tmp_path / "crash.db"
    env = {"WAFER_ENDPOINT": "local", "WAFER_LOCAL_URL": upstream.base_url,
           "WAFER_PLAYGROUND_DB": str(db)}
    try:
        first = streamlit_server_factory(env=env)
        _open_chat(page, first.url, "slow-model")
        _send(page, "first question")
        expect(page.get_by_text("w4", exact=False).first).to_be_visible(timeout=30_000)
        wait_for_app(page)
        deadline = time.monotonic() + 20
        while [s for _, s, _ in _raw_turns(db)] != ["done", "done"]:
            assert time.monotonic() < deadline, _raw_turns(db)
            time.sleep(0.1)

        upstream.tokens = 100_000  # the second answer never ends on its own
        _send(page, "second question")
        # wait until at least one in-flight save of the partial answer reached the file
        deadline = time.monotonic() + 30
        while True:
            rows = _raw_turns(db)
            if len(rows) == 4 and rows[3][1] == "streaming" and "w20" in rows[3][2]:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.1)
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=10)
        assert first.proc.returncode == -signal.SIGKILL
        saved_partial = _raw_turns(db)[3][2]
        assert _raw_turns(db)[3][1] == "streaming"  # nobody recovered it yet

        second = streamlit_server_factory(env=env)  # restart on the same file
        page.goto(second.url + "/")
        wait_for_app(page, timeout=60_000)
        _go_history(page)
        rows = _raw_turns(db)
        assert [(r, s) for r, s, _ in rows] == [
            ("user", "done"), ("assistant", "done"),
            ("user", "done"), ("assistant", "interrupted")]
        assert rows[1][2] == " w0 w1 w2 w3 w4"
        # the partial text survived up to its last save (whole tokens: no torn write)
        assert rows[3][2] == saved_partial and rows[3][2].startswith(" w0 w1 w2")
        assert re.fullmatch(r"( w\d+)+", rows[3][2])

        # reopening shows both answers; the cut-off one is flagged
        check = SQLiteStore(db)
        (conv,) = check.list_conversations()
        check.close()
        _row(page, conv.id).get_by_role("button", name="Open").click()
        wait_for_app(page)
        messages = page.get_by_test_id("stChatMessage")
        expect(messages).to_have_count(4, timeout=30_000)
        expect(messages.nth(1)).to_contain_text("w4")
        expect(messages.nth(3)).to_contain_text("w20")
        page.screenshot(path=str(tmp_path / "after-crash.png"), full_page=True)
    finally:
        upstream.close()
