"""Session isolation: different keys and endpoints never see each other's models, chat or key.

Browser: two contexts on ONE Streamlit server at the same time, A on the Wafer endpoint
(fake server 1) with key A, B on a custom URL (fake server 2) with key B, streaming at once;
then each one's History lists only its own conversation (one SQLite file, two owners).
AppTest: inside one session the model cache is keyed by the key's fingerprint, and history
made under one key cannot be listed, reopened or written by a session holding another.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import StreamlitServer, wait_for_app
from tests.fake_wafer import CARDS, FakeWafer, Reply, answer_stream, serve
from tests.reliability.conftest import app_at, canary_key, page_text

BRAVO_CARDS = [{"id": "bravo-model", "object": "model", "owned_by": "other",
                "wafer": {"display_name": "Bravo Model", "context_length": 8192,
                          "pricing": {"input_cents_per_million": 5,
                                      "output_cents_per_million": 9}}}]
KEY_A, KEY_B = canary_key(), canary_key()


@pytest.fixture(scope="module")
def bravo() -> Iterator[FakeWafer]:
    yield from serve(BRAVO_CARDS)


def _wait(page: Page) -> None:
    time.sleep(0.3)
    wait_for_app(page, timeout=60_000)


def _type_key(page: Page, key: str) -> None:
    box = page.get_by_label("API key", exact=True)
    box.fill(key)
    box.press("Enter")
    _wait(page)


def _strip_password_inputs(html: str) -> str:
    return re.sub(r"<input[^>]*type=\"password\"[^>]*>", "", html)


def test_two_browser_sessions_stay_apart(fake_server: FakeWafer, bravo: FakeWafer,
                                         browser: Browser, app_server: StreamlitServer) -> None:
    alpha = fake_server
    alpha.reset()
    alpha.script("POST", "/chat/completions",
                 Reply(sse=answer_stream([f" ALPHA-ANSWER{i}" for i in range(40)]),
                       tokens_per_s=40))
    bravo.script("POST", "/chat/completions",
                 Reply(sse=answer_stream([f" BRAVO-ANSWER{i}" for i in range(40)]),
                       tokens_per_s=40))
    server = app_server
    ctx_a = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx_b = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        a, b = ctx_a.new_page(), ctx_b.new_page()
        for p in (a, b):
            p.goto(server.url)
            wait_for_app(p, timeout=90_000)
        _type_key(a, KEY_A)
        # B: its own endpoint and key
        b.get_by_text("Custom URL").click()
        _wait(b)
        url = b.get_by_label("Base URL", exact=True)
        url.fill(bravo.url)
        url.press("Enter")
        _wait(b)
        _type_key(b, KEY_B)
        expect(b.get_by_test_id("stSidebar").get_by_text("1 models")).to_be_visible()
        expect(a.get_by_test_id("stSidebar").get_by_text("2 models")).to_be_visible()

        # both stream at the same time on the same server process
        for p in (a, b):
            p.get_by_test_id("stPageLink-NavLink").filter(has_text="Chat").click()
            _wait(p)
            expect(p.get_by_test_id("stChatInputTextArea")).to_be_enabled(timeout=30_000)
        a.get_by_test_id("stChatInputTextArea").fill("alpha question")
        b.get_by_test_id("stChatInputTextArea").fill("bravo question")
        a.get_by_test_id("stChatInputTextArea").press("Enter")
        b.get_by_test_id("stChatInputTextArea").press("Enter")
        expect(a.get_by_text("ALPHA-ANSWER39", exact=False).first).to_be_visible(timeout=60_000)
        expect(b.get_by_text("BRAVO-ANSWER39", exact=False).first).to_be_visible(timeout=60_000)
        _wait(a)
        _wait(b)
        text_a, text_b = a.inner_text("body"), b.inner_text("body")
        assert "alpha question" in text_a and "bravo question" not in text_a
        assert "BRAVO" not in text_a and "Bravo Model" not in text_a
        assert "bravo question" in text_b and "alpha question" not in text_b
        assert "ALPHA" not in text_b and "Fake GLM" not in text_b

        # catalogs: each sees only its endpoint's models
        for p in (a, b):
            p.get_by_test_id("stPageLink-NavLink").filter(has_text="Model catalog").click()
            _wait(p)
        # the table is a canvas grid: its cells exist as hidden aria nodes, so read the DOM
        for p, name in ((a, "Fake GLM"), (b, "Bravo Model")):
            deadline = time.monotonic() + 30
            while p.get_by_text(name).count() == 0:
                assert time.monotonic() < deadline, f"{name} never listed"
                time.sleep(0.2)
        html_a, html_b = a.content(), b.content()
        assert "Fake GLM" in html_a and "Fake Tiny" in html_a
        assert "Bravo Model" in html_b
        assert "Bravo Model" not in html_a and "bravo-model" not in html_a
        assert "Fake Tiny" not in html_b and "fake-glm" not in html_b
        for p, other in ((a, KEY_B), (b, KEY_A)):
            assert other not in p.content()
        assert KEY_A not in _strip_password_inputs(a.content())

        # history: one SQLite file, and each key lists only its own conversation
        for p in (a, b):
            p.get_by_test_id("stPageLink-NavLink").filter(has_text="History").click()
            _wait(p)
        expect(a.get_by_text("alpha question").first).to_be_visible(timeout=30_000)
        expect(b.get_by_text("bravo question").first).to_be_visible(timeout=30_000)
        assert "bravo question" not in a.inner_text("body")
        assert "alpha question" not in b.inner_text("body")

        # each endpoint saw only its own session's key, only as the bearer token
        for fake, mine, theirs in ((alpha, KEY_A, KEY_B), (bravo, KEY_B, KEY_A)):
            auths = {h.key_fingerprint for h in fake.hits}
            assert _fp(mine) in auths
            assert auths <= {None, _fp(mine)}, auths
            assert all(theirs.encode() not in h.body for h in fake.hits)

        # a reload is a new session: the key was in session memory only
        a.reload()
        wait_for_app(a, timeout=60_000)
        expect(a.get_by_text("no key set")).to_be_visible()
        assert KEY_A not in a.content()
        assert KEY_A not in server.log() and KEY_B not in server.log()
    finally:
        ctx_a.close()
        ctx_b.close()


def test_model_cache_is_keyed_by_fingerprint(fake: FakeWafer, rel_env: Path) -> None:
    cards_a = {"object": "list", "data": [CARDS[0]]}
    cards_b = {"object": "list", "data": BRAVO_CARDS}
    fake.script("GET", "/models", Reply(json=cards_a), Reply(json=cards_b))
    at = app_at("pages/catalog.py", fake.url, key=KEY_A).run()
    assert not at.exception
    assert "1 models" in " ".join(c.value for c in at.sidebar.caption)
    assert at.session_state["_models_cache"]
    first = fake.requests_to("GET", "/models")
    assert [h.key_fingerprint for h in first] == [_fp(KEY_A)]
    at.session_state["conn_key"] = KEY_B
    at.run()
    hits = fake.requests_to("GET", "/models")
    assert [h.key_fingerprint for h in hits] == [_fp(KEY_A), _fp(KEY_B)]
    models = [m.id for m in at.session_state["_models_cache"][(fake.url, _fp(KEY_B))]
              .catalog.models]
    assert models == ["bravo-model"]
    # back to A within the TTL: A's own cached list, no refetch, never B's
    at.session_state["conn_key"] = KEY_A
    at.run()
    assert len(fake.requests_to("GET", "/models")) == 2
    cache = at.session_state["_models_cache"]
    assert [m.id for m in cache[(fake.url, _fp(KEY_A))].catalog.models] == ["fake-glm"]
    assert all(KEY_A not in str(k) and KEY_B not in str(k) for k in cache)


def _fp(key: str) -> str:
    from wafer_playground.client import key_fingerprint

    return key_fingerprint(key)


def test_history_is_partitioned_by_key(fake: FakeWafer, rel_env: Path) -> None:
    from wafer_playground.store import SQLiteStore

    mine = SQLiteStore(rel_env).for_owner(_fp(KEY_A))
    cid = mine.create_conversation("alpha secret plan", model="fake-glm")
    mine.start_turn(cid, "user", "alpha question")
    mine.start_turn(cid, "assistant", "ALPHA-ANSWER", status="done")

    # B's History does not list it, and asking the chat page to reopen it shows nothing
    at = app_at("pages/history.py", fake.url, key=KEY_B).run()
    assert not at.exception
    assert "alpha" not in page_text(at)
    at.session_state["chat_conversation_id"] = cid
    at.switch_page("pages/chat.py").run()
    assert not at.exception
    assert "ALPHA-ANSWER" not in page_text(at) and "alpha question" not in page_text(at)
    assert at.session_state["chat_conversation_id"] is None
    assert "not in this key's history" in page_text(at)

    # A sees it and reopens it
    at = app_at("pages/history.py", fake.url, key=KEY_A).run()
    assert "alpha secret plan" in page_text(at)
    at.session_state["chat_conversation_id"] = cid
    at.switch_page("pages/chat.py").run()
    assert "ALPHA-ANSWER" in page_text(at)
    # nothing B did touched A's rows
    assert [t.content for t in mine.list_turns(cid)] == ["alpha question", "ALPHA-ANSWER"]
