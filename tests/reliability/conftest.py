"""Reliability fixtures: one fake Wafer server per session, reset before each test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, StreamlitServer, free_port
from tests.fake_wafer import FakeWafer, serve


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeWafer]:
    yield from serve()


def serve_app(base_url: str, db: Path, *, read_timeout_s: int = 2) -> Iterator[StreamlitServer]:
    """`streamlit run app.py` on the Wafer endpoint `base_url`: no ambient key, a short read
    timeout, its own SQLite file (`server.db`); stopped afterwards."""
    server = StreamlitServer(env={"WAFER_ENDPOINT": "wafer", "WAFER_BASE_URL": base_url,
                                  "WAFER_API_KEY": "", "WAFER_READ_TIMEOUT_S": str(read_timeout_s),
                                  "WAFER_PLAYGROUND_DB": str(db)})
    server.db = db  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


def browser_page(browser: Browser) -> Iterator[Page]:
    """One page in its own context (1440×1000, downloads on), closed afterwards."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000},
                                  accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def app_server(fake_server: FakeWafer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitServer]:
    """One `streamlit run app.py` for every browser test here: the Wafer endpoint is the fake
    server, a 2 s read timeout (stall tests), a private SQLite file."""
    yield from serve_app(fake_server.url, tmp_path_factory.mktemp("app") / "reliability.db")


@pytest.fixture
def fake(fake_server: FakeWafer) -> FakeWafer:
    fake_server.reset()
    return fake_server


@pytest.fixture
def rel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A custom endpoint, no ambient key, a private SQLite file."""
    db = tmp_path / "rel.db"
    monkeypatch.setenv("WAFER_ENDPOINT", "custom")
    monkeypatch.delenv("WAFER_API_KEY", raising=False)
    monkeypatch.delenv("WAFER_READ_TIMEOUT_S", raising=False)
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(db))
    return db


def canary_key() -> str:
    return "wfr_CANARY" + secrets.token_hex(12)


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/v1"


def app_at(page: str, base_url: str, *, key: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["conn_kind"] = "custom"
    at.session_state["conn_custom_url"] = base_url
    if key:
        at.session_state["conn_key"] = key
    at.switch_page(page)
    return at


def page_text(at: AppTest) -> str:
    """Everything AppTest can read off the page (for leak and traceback checks)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "code",
                 "text", "title", "header", "subheader", "json", "exception"):
        for el in getattr(at, kind, []):
            parts.append(str(getattr(el, "value", "")))
    for el in at.sidebar.caption:
        parts.append(str(el.value))
    return "\n".join(parts)
