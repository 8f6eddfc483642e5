"""The real app in headless Chromium against the fault server, with a canary key.

The shared `streamlit run app.py` (Wafer endpoint = the fake server, read timeout 2 s; see
conftest) serves the module. One browser session types the canary key, then walks every
fault on the chat page and every other page; a last test scans everything the session left
behind: the page HTML and text, the Streamlit log, the SQLite file's raw bytes, downloads,
the generated code and what the fake server received (the key must be ONLY in the
Authorization header).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ROOT, StreamlitServer, wait_for_app
from tests.fake_wafer import (
    MODEL,
    FakeWafer,
    Reply,
    answer_stream,
    chunk,
    error_json,
)
from tests.reliability.conftest import browser_page, canary_key

pytestmark = pytest.mark.e2e
CANARY = canary_key()
HEALTHY = "Hello from the fake server."
OK = Reply(default=True)
SHOTS = ROOT / ".pytest_cache" / "screens"
INJECTION = ('<img id="pwn-img" src="x" onerror="document.title=\'PWNED\'">'
             '<script>document.title="PWNED2"</script><b id="pwn-b">bold?</b>')


@dataclass
class Session:
    server: StreamlitServer
    db: Path
    page: Page
    seen_html: list[str] = field(default_factory=list)
    seen_text: list[str] = field(default_factory=list)
    downloads: list[bytes] = field(default_factory=list)

    def snapshot(self) -> None:
        self.seen_html.append(self.page.content())
        self.seen_text.append(self.page.inner_text("body"))


@pytest.fixture(scope="module")
def session(app_server: StreamlitServer, browser: Browser) -> Iterator[Session]:
    for page in browser_page(browser):
        yield Session(app_server, app_server.db, page)  # type: ignore[attr-defined]


def _no_exception(page: Page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    assert "Traceback" not in page.inner_text("body")


def _send(page: Page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=30_000)
    box.fill(text)
    box.press("Enter")
    time.sleep(0.3)  # let the rerun start before waiting for idle
    wait_for_app(page, timeout=60_000)


def _nav(page: Page, title: str) -> None:
    # Sidebar links keep the session (and the typed key); page.goto would start a new one.
    page.get_by_test_id("stPageLink-NavLink").filter(has_text=title).first.click()
    time.sleep(0.3)
    wait_for_app(page, timeout=60_000)


def test_1_faults_in_the_browser(session: Session, fake_server: FakeWafer) -> None:
    fake = fake_server
    fake.reset()
    page = session.page
    # The router first: a deep link as a server's very first request runs the page through
    # Streamlit's legacy pages/ wrapper, without the sidebar (known, reported by the e2e suite).
    page.goto(session.server.url)
    wait_for_app(page, timeout=90_000)
    page.goto(f"{session.server.url}/chat?model={MODEL}")
    wait_for_app(page, timeout=90_000)
    key = page.get_by_label("API key", exact=True)
    key.fill(CANARY)
    key.press("Enter")
    time.sleep(0.3)
    wait_for_app(page)
    expect(page.get_by_text("using the key typed here")).to_be_visible()

    _send(page, "first, a normal turn")
    expect(page.get_by_text(HEALTHY).first).to_be_visible()

    # (reply script, visible needle, partial text that must stay on screen)
    faults: list[tuple[str, list[Reply], str, str | None]] = [
        ("401", [error_json(401, "invalid_api_key", "Invalid API key", "req_b401",
                            type="authentication_error")], "req_b401", None),
        ("403", [error_json(403, "permission_denied", "not a serverless key", "req_b403")],
         "req_b403", None),
        ("422-zdr", [error_json(422, "model_zdr_not_supported", "no ZDR", "req_bzdr")],
         "req_bzdr", None),
        ("500", [error_json(500, "internal_error", "boom", "req_b500")], "req_b500", None),
        ("502-html", [Reply(status=502, content_type="text/html",
                            body=b"<html><body><h1 id='gw'>502</h1>" + INJECTION.encode()
                                 + b"</body></html>")], "HTML page", None),
        ("reset", [Reply(sse=[chunk(role=True), chunk("Resetpartial"), chunk(" kept")],
                         reset=True)], "connection broke mid-stream", "Resetpartial kept"),
        ("stall", [Reply(sse=[chunk(role=True), chunk("Stallpartial"), chunk(" later")],
                         stall_after=2, stall_s=6)], "read timeout", "Stallpartial"),
        ("bad-json", [Reply(sse=[chunk(role=True), chunk("Badjsonpartial"), "{oops"])],
         "malformed JSON", "Badjsonpartial"),
        ("error-event", [Reply(sse=[chunk(role=True), chunk("Errevtpartial"),
                                    {"error": {"message": "upstream died",
                                               "code": "upstream_error",
                                               "request_id": "req_bmid"}}])],
         "req_bmid", "Errevtpartial"),
    ]
    for name, replies, needle, partial in faults:
        fake.script("POST", "/chat/completions", *replies)
        _send(page, f"fault {name}")
        alert = page.get_by_test_id("stAlert").filter(has_text=needle)
        expect(alert.first).to_be_visible(timeout=20_000)
        if partial:
            expect(page.get_by_text(partial).first).to_be_visible()
        _no_exception(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "reliability-faults.png"), full_page=True)

    # 429 with Retry-After: 1 is waited out and retried once; the user just sees the answer
    fake.script("POST", "/chat/completions",
                error_json(429, "rate_limit_exceeded", "slow down", "req_b429",
                           headers={"Retry-After": "1"}), OK)
    before = fake.count("POST", "/chat/completions")
    _send(page, "rate limited once")
    assert fake.count("POST", "/chat/completions") - before == 2
    # the answer is the last message (the first healthy one may be past the page's window)
    expect(page.get_by_test_id("stChatMessage").last).to_contain_text(HEALTHY)

    # model output and user text that carry HTML stay inert
    fake.script("POST", "/chat/completions",
                Reply(sse=answer_stream(["Here: ", INJECTION, " done"])))
    _send(page, 'user says <b id="pwn-user">hi</b><script>document.title="PWNED3"</script>')
    expect(page.get_by_text("done", exact=False).first).to_be_visible()
    for sel in ("#pwn-img", "#pwn-b", "#pwn-user", "#gw"):
        assert page.locator(sel).count() == 0, sel
    assert "PWNED" not in page.title()

    # still usable; the whole conversation is there (no turn lost to any fault)
    fake.script("POST", "/chat/completions", OK)
    _send(page, "all good now?")
    # a long conversation opens on its last turns (components/chat/transcript.py WINDOW)
    page.get_by_role("button", name="earlier turn").click()  # ~30 turns: past the window
    wait_for_app(page)
    text = page.inner_text("body")
    for name, *_ in faults:
        assert f"fault {name}" in text, name
    _no_exception(page)

    # View code for the last request: the key is $WAFER_API_KEY, never the canary
    page.get_by_text("View code").first.click()
    code = page.get_by_test_id("stCode").filter(has_text="curl").first
    expect(code).to_contain_text("WAFER_API_KEY")
    session.snapshot()


def test_2_every_page_with_the_canary(session: Session, fake_server: FakeWafer) -> None:
    page = session.page
    for title in ("Model catalog", "Token & grammar", "Compare", "Costs", "History"):
        _nav(page, title)
        _no_exception(page)
        session.snapshot()
    # history exports of the faulty conversation, and the request log
    page.get_by_role("button", name="Manage").first.click()
    time.sleep(0.3)
    wait_for_app(page)
    for label in ("Export JSON", "Export Markdown"):
        with page.expect_download(timeout=20_000) as dl:
            page.get_by_role("button", name=label).first.click()
        session.downloads.append(Path(dl.value.path()).read_bytes())
    assert b"fault 401" in session.downloads[0]  # the export is the faulty conversation
    page.get_by_role("tab", name="Request log").click()
    with page.expect_download(timeout=20_000) as dl:
        page.get_by_role("button", name="Download CSV").first.click()
    session.downloads.append(Path(dl.value.path()).read_bytes())
    session.snapshot()
    # a custom endpoint that refuses connections: readable, no traceback
    _nav(page, "Chat")
    page.get_by_text("Custom URL").click()
    wait_for_app(page)
    url = page.get_by_label("Base URL", exact=True)
    url.fill("http://127.0.0.1:9/v1")
    url.press("Enter")
    time.sleep(0.3)
    wait_for_app(page, timeout=60_000)
    expect(page.get_by_test_id("stSidebar").get_by_text("connection refused").first
           ).to_be_visible(timeout=30_000)
    _no_exception(page)
    session.snapshot()


def _strip_password_inputs(html: str) -> str:
    return re.sub(r"<input[^>]*type=\"password\"[^>]*>", "<input-password>", html)


def test_3_canary_appears_nowhere_but_the_authorization_header(
        session: Session, fake_server: FakeWafer) -> None:
    assert session.seen_html, "the session tests did not run"
    for html in session.seen_html:
        assert CANARY not in _strip_password_inputs(html)
    for text in session.seen_text:
        assert CANARY not in text
    assert session.downloads, "no export was downloaded"
    for blob in session.downloads:
        assert CANARY.encode() not in blob
    log = session.server.log()
    assert "Traceback" not in log, log[-3000:]
    assert CANARY not in log
    raw = b"".join(p.read_bytes() for p in session.db.parent.glob(session.db.name + "*"))
    assert raw, "no SQLite file written"
    assert CANARY.encode() not in raw
    # the server saw it on every request after it was typed, and only as the bearer token
    hits = fake_server.hits
    with_key = [h for h in hits if h.sent_key(CANARY)]
    posts = fake_server.requests_to("POST", "/chat/completions")
    assert len(posts) >= 14
    assert all(h.sent_key(CANARY) for h in posts)
    assert len(with_key) >= len(posts)
    for h in hits:
        assert CANARY not in h.path and CANARY not in h.query
        assert CANARY.encode() not in h.body
        for k, v in h.headers:  # every header but Authorization (logged as a fingerprint)
            assert CANARY not in v, k
    print(f"canary: {len(with_key)} requests carried it in Authorization only; "
          f"{len(session.seen_html)} page snapshots, {len(session.downloads)} downloads, "
          f"{len(log)} log bytes and {len(raw)} SQLite bytes clean")
