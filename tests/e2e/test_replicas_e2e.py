"""Two app replicas on one PostgreSQL (issue 19), in headless Chromium: a conversation saved
through replica A shows in replica B's History and reopens there; a turn that streams on A
while B is killed -9 (and a new replica starts and runs recovery) finishes untouched."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, wait_for_app
from tests.fake_wafer import FakeWafer, Reply, answer_stream, serve
from wafer_playground.client import key_fingerprint
from wafer_playground.store.postgres import PostgresStore

pytestmark = pytest.mark.e2e

KEY = "wfr_team_" + "7e57" * 6  # the operator's key, held by both replicas
SHOTS = ROOT / ".pytest_cache" / "replicas"


@pytest.fixture
def fake() -> Iterator[FakeWafer]:
    yield from serve()


def _open(page: Page, url: str, path: str = "") -> None:
    page.set_viewport_size({"width": 1440, "height": 1300})
    page.goto(url)  # the root first: a fresh server runs st.navigation once
    wait_for_app(page, timeout=120_000)
    if path:
        page.goto(url + path)
        wait_for_app(page, timeout=120_000)


def _history(page: Page) -> None:
    page.get_by_test_id("stPageLink-NavLink").filter(has_text="History").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="History")).to_be_visible()


def _send(page: Page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=60_000)
    box.fill(text)
    box.press("Enter")


def test_two_replicas_share_history(page: Page, streamlit_server_factory, postgres_url: str,
                                    fake: FakeWafer) -> None:
    env = {"WAFER_PLAYGROUND_DB": postgres_url, "WAFER_ENDPOINT": "wafer",
           "WAFER_BASE_URL": fake.url, "WAFER_API_KEY": KEY, "WAFER_ALLOWED_ENDPOINTS": "wafer"}
    a = streamlit_server_factory(env=env)
    b = streamlit_server_factory(env=env)
    SHOTS.mkdir(parents=True, exist_ok=True)

    # a chat on replica A
    _open(page, a.url, "/chat?model=fake-glm")
    _send(page, "Which museums open on Monday?")
    expect(page.get_by_text("Hello from the fake server.")).to_be_visible(timeout=30_000)
    wait_for_app(page)

    # replica B, another tab: the conversation is in its History, and reopens with the answer
    other = page.context.new_page()
    _open(other, b.url)
    _history(other)
    row = other.locator("[class*='st-key-hist_row_']").filter(
        has_text="Which museums open on Monday")
    expect(row).to_have_count(1)
    other.screenshot(path=str(SHOTS / "replica_b_history.png"), full_page=True)
    wait_for_app(other)  # a click during a rerun can land on a row being redrawn
    row.get_by_role("button", name="Open").first.click()
    wait_for_app(other, 60_000)
    expect(other.get_by_text("Hello from the fake server.")).to_be_visible(timeout=60_000)
    expect(other.get_by_text("Which museums open on Monday").first).to_be_visible()
    other.screenshot(path=str(SHOTS / "replica_b_reopened.png"), full_page=True)

    # A streams slowly; B dies (kill -9) mid-stream and a new replica C starts and draws
    # History, which runs recovery: A's turn is alive (its writer lock is held), so untouched
    words = [f" w{i}" for i in range(250)]  # 25 s: longer than a replica takes to start
    fake.script("POST", "/chat/completions",
                Reply(sse=list(answer_stream(words)), tokens_per_s=10))
    _send(page, "Count slowly")
    expect(page.get_by_text("w5", exact=False).first).to_be_visible(timeout=30_000)
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(timeout=10)
    c = streamlit_server_factory(env=env)
    _open(other, c.url)
    _history(other)
    store = PostgresStore(postgres_url, recover=False).for_owner(key_fingerprint(KEY))
    try:
        conv = store.list_conversations("Count slowly")[0]
        last = store.list_turns(conv.id)[-1]
        assert last.role == "assistant" and last.status == "streaming", last
        assert store.recover_interrupted() == 0
        expect(page.get_by_text("w249", exact=False).first).to_be_visible(timeout=60_000)
        wait_for_app(page)
        deadline = time.monotonic() + 10
        while store.get_turn(last.id).status == "streaming":  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        done = store.get_turn(last.id)
        assert done is not None and done.status == "done"
        assert done.content.strip().endswith("w249")
        assert [r.status for r in store.list_requests(conversation_id=conv.id)
                if r.turn_id == last.id] == ["done"]
    finally:
        store.close()
    page.screenshot(path=str(SHOTS / "replica_a_after_b_killed.png"), full_page=True)
    for server in (a, c):
        assert "Traceback" not in server.log()



def test_budgets_and_identity_are_shared_across_replicas(browser, streamlit_server_factory,
                                                          postgres_url: str,
                                                          fake: FakeWafer) -> None:
    """Behind a sign-in proxy (the trusted header) with a $1 daily budget per person: Alice
    spends $3 through replica A (the upstream reports 3M prompt tokens), so replica B refuses
    her next request and says why; Bob, on B, is neither refused nor shown her history."""
    env = {"WAFER_PLAYGROUND_DB": postgres_url, "WAFER_ENDPOINT": "wafer",
           "WAFER_BASE_URL": fake.url, "WAFER_API_KEY": KEY, "WAFER_ALLOWED_ENDPOINTS": "wafer",
           "WAFER_TRUSTED_HEADER": "X-Forwarded-Email", "WAFER_BUDGET_DAILY_USD": "1",
           "WAFER_ADMINS": "alice@team.example"}
    a = streamlit_server_factory(env=env)
    b = streamlit_server_factory(env=env)
    SHOTS.mkdir(parents=True, exist_ok=True)
    fake.script("POST", "/chat/completions",
                Reply(sse=list(answer_stream([" Costly", " answer."], prompt_tokens=3_000_000))),
                Reply(default=True))
    alice = browser.new_context(extra_http_headers={"X-Forwarded-Email": "alice@team.example"})
    bob = browser.new_context(extra_http_headers={"X-Forwarded-Email": "bob@team.example"})
    stranger = browser.new_context()  # not through the proxy: no header
    try:
        on_a = alice.new_page()
        _open(on_a, a.url, "/chat?model=fake-glm")
        expect(on_a.get_by_text("Signed in as")).to_contain_text("alice@team.example")
        _send(on_a, "An expensive question")
        expect(on_a.get_by_text("Costly answer.")).to_be_visible(timeout=30_000)
        wait_for_app(on_a)

        on_b = alice.new_page()
        _open(on_b, b.url, "/chat?model=fake-glm")
        _send(on_b, "One more, please")
        refusal = on_b.get_by_text("Not sent: your daily budget is $1.00", exact=False)
        expect(refusal.first).to_be_visible(timeout=30_000)
        expect(on_b.get_by_text("you have spent $3.00", exact=False).first).to_be_visible()
        on_b.screenshot(path=str(SHOTS / "replica_b_budget_refusal.png"), full_page=True)
        assert fake.count("POST", "/chat/completions") == 1  # the refused one never left

        bob_b = bob.new_page()
        _open(bob_b, b.url, "/chat?model=fake-glm")
        _send(bob_b, "Bob's first question")
        expect(bob_b.get_by_text("Hello from the fake server.")).to_be_visible(timeout=30_000)
        wait_for_app(bob_b)
        _history(bob_b)
        expect(bob_b.get_by_text("An expensive question")).to_have_count(0)
        expect(bob_b.locator("[class*='st-key-hist_row_']")).to_have_count(1)

        # Alice is an admin: the spend page on replica A shows both people, from one log
        on_a.goto(a.url + "/admin")
        wait_for_app(on_a)
        expect(on_a.get_by_role("heading", name="Spend")).to_be_visible()
        table = on_a.get_by_test_id("stDataFrame")
        expect(table).to_contain_text("alice@team.example")
        expect(table).to_contain_text("bob@team.example")
        expect(on_a.get_by_test_id("stMetric").first).to_contain_text("$3.00")
        on_a.screenshot(path=str(SHOTS / "admin_spend.png"), full_page=True)
        bob_b.goto(b.url + "/admin")  # not an admin: no such page
        wait_for_app(bob_b)
        expect(bob_b.get_by_role("heading", name="Spend")).to_have_count(0)

        nobody = stranger.new_page()
        _open(nobody, b.url)
        expect(nobody.get_by_text("Signed out", exact=False)).to_be_visible()
        expect(nobody.get_by_test_id("stChatInputTextArea")).to_have_count(0)
        nobody.screenshot(path=str(SHOTS / "signed_out.png"), full_page=True)
    finally:
        for ctx in (alice, bob, stranger):
            ctx.close()
    store = PostgresStore(postgres_url, recover=False)
    try:
        mine = store.for_owner("user:alice@team.example")
        # her refused question is kept (the chat page keeps what was typed), unanswered
        assert {c.title for c in mine.list_conversations()} == {"An expensive question",
                                                                "One more, please"}
        assert mine.spend_since("2000-01-01T00:00:00.000000Z") == Decimal("3.000004")
        refused = [r for r in mine.list_requests() if r.status != "done"]
        assert [(r.status, r.error_code, r.cost_usd) for r in refused] == [
            ("error", "budget_exceeded", None)]
        # the operator's key owns nothing: the people do
        assert store.for_owner(key_fingerprint(KEY)).list_conversations() == []
    finally:
        store.close()
