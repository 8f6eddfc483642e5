"""The operator's key, the endpoint lock and typed URLs, with real servers (SECURITY.md,
"Endpoints"): an operator key never reaches a URL a visitor typed, a locked instance offers
no Custom URL or local engine, and internal hosts are refused by default."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import wait_for_app
from tests.fake_wafer import FakeWafer, serve
from tests.reliability.conftest import app_at, canary_key, page_text
from wafer_playground.client import key_fingerprint

CHAT = "pages/chat.py"


@pytest.fixture
def visitor_server() -> Iterator[FakeWafer]:
    """A second, independent server: the URL a visitor types."""
    yield from serve()


def _keys_seen(server: FakeWafer) -> set[str | None]:
    """Fingerprints of the bearer keys the server saw (None: no key)."""
    return {hit.key_fingerprint for hit in server.hits}


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeWafer) -> str:
    key = canary_key()
    monkeypatch.setenv("WAFER_API_KEY", key)
    monkeypatch.setenv("WAFER_BASE_URL", fake.url)
    monkeypatch.delenv("WAFER_ENDPOINT", raising=False)
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(tmp_path / "lock.db"))
    return key


def test_operator_key_goes_to_wafer_and_never_to_a_typed_url(
        fake: FakeWafer, visitor_server: FakeWafer, operator_env: str) -> None:
    # the visitor leaves the key box empty and picks a custom URL
    at = app_at(CHAT, visitor_server.url).run()
    at.chat_input[0].set_value("where does my key go?").run()
    assert visitor_server.count("GET", "/models") >= 1
    assert visitor_server.count("POST", "/chat/completions") == 1
    assert _keys_seen(visitor_server) == {None}  # not the operator's key, not any key
    assert "server's key only ever goes to its Wafer URL" in page_text(at)
    # the same session on Wafer: the operator's key, at the operator's base URL
    at.sidebar.radio(key="conn_kind").set_value("wafer").run()
    assert key_fingerprint(operator_env) in _keys_seen(fake)
    # a key the visitor types goes where the visitor points it
    at.sidebar.radio(key="conn_kind").set_value("custom").run()
    at.sidebar.text_input(key="conn_key").set_value("sk-visitor-own").run()
    at.chat_input[0].set_value("and mine?").run()
    assert key_fingerprint("sk-visitor-own") in _keys_seen(visitor_server)
    assert key_fingerprint(operator_env) not in _keys_seen(visitor_server)


def test_the_lock_removes_custom_and_local_for_every_visitor(
        fake: FakeWafer, visitor_server: FakeWafer, operator_env: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAFER_ALLOWED_ENDPOINTS", "wafer")
    at = app_at(CHAT, visitor_server.url).run()  # a session that asks for custom anyway
    assert not at.exception
    assert not at.sidebar.radio  # no endpoint choice at all
    assert "Endpoint: **Wafer** (set by this server)" in [c.value for c in at.sidebar.caption]
    assert visitor_server.hits == []  # the typed URL was never contacted
    at.chat_input[0].set_value("locked").run()
    assert visitor_server.hits == [] and fake.count("POST", "/chat/completions") == 1


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:8501/_stcore/health", "loopback address"),
    ("http://169.254.169.254/latest/meta-data", "link-local address"),
    ("http://10.0.0.7/v1", "private address"),
    ("https://api.example.com/v1?x=", "cannot carry a query"),
    ("file:///etc/passwd", "must start with http:// or https://"),
])
def test_internal_and_malformed_urls_are_refused_before_any_request(
        fake: FakeWafer, operator_env: str, monkeypatch: pytest.MonkeyPatch,
        url: str, why: str) -> None:
    monkeypatch.delenv("WAFER_ALLOW_PRIVATE_URLS", raising=False)
    at = app_at("pages/catalog.py", url).run()
    assert not at.exception
    text = page_text(at)
    assert why in text
    assert "Traceback" not in text


def test_lock_seen_in_chromium(fake: FakeWafer, streamlit_server_factory, browser,
                               tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shots = Path(__file__).resolve().parents[2] / ".pytest_cache" / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    key = canary_key()
    open_server = streamlit_server_factory(env={
        "WAFER_API_KEY": key, "WAFER_BASE_URL": fake.url, "WAFER_ENDPOINT": "",
        "WAFER_ALLOW_PRIVATE_URLS": "", "WAFER_PLAYGROUND_DB": str(tmp_path / "a.db")})
    locked = streamlit_server_factory(env={
        "WAFER_API_KEY": key, "WAFER_BASE_URL": fake.url, "WAFER_ENDPOINT": "",
        "WAFER_ALLOWED_ENDPOINTS": "wafer", "WAFER_PLAYGROUND_DB": str(tmp_path / "b.db")})
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    # an open instance: Custom URL exists, but its own health endpoint is refused
    page.goto(open_server.url)
    wait_for_app(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Custom URL").click()
    wait_for_app(page)
    box = page.get_by_label("Base URL", exact=True)
    box.fill(f"{open_server.url}/_stcore/health")
    box.press("Enter")
    time.sleep(0.3)
    wait_for_app(page)
    expect(sidebar.get_by_text("loopback address").first).to_be_visible(timeout=20_000)
    page.screenshot(path=str(shots / "lock_refused_url.png"))
    # a locked instance: no endpoint choice, the Wafer endpoint only
    page.goto(locked.url)
    wait_for_app(page)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("set by this server")).to_be_visible()
    assert sidebar.get_by_text("Custom URL").count() == 0
    assert sidebar.get_by_text("Local engine", exact=True).count() == 0
    page.screenshot(path=str(shots / "lock_wafer_only.png"))
    page.close()
