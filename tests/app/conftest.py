"""AppTest helpers: run the real app.py against a mocked or fake endpoint."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from components.chat.params import TAB
from tests.conftest import ROOT

FAKE_BASE = "http://wafer.test/v1"


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the app at a custom endpoint (httpx is mocked by pytest-httpx) with no key."""
    monkeypatch.setenv("WAFER_ENDPOINT", "custom")
    monkeypatch.delenv("WAFER_API_KEY", raising=False)
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(ROOT / ".pytest_cache" / "apptest.db"))
    return FAKE_BASE


@pytest.fixture(autouse=True)
def _no_engine_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest runs the app in this process: with no key and no WAFER_ENDPOINT, app.py
    would start a real local engine here (components/connection.boot). These tests choose
    their endpoint in session state; the starting endpoint is a custom one."""
    if not os.environ.get("WAFER_ENDPOINT"):
        monkeypatch.setenv("WAFER_ENDPOINT", "custom")


def make_app(page: str | None = None, *, base_url: str = FAKE_BASE) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["conn_kind"] = "custom"
    at.session_state["conn_custom_url"] = base_url
    if page:
        at.switch_page(page)
    return at


def open_params_tab(at: AppTest, label: str) -> AppTest:
    """Open one tab of the chat parameter panel and rerun: only the open tab's controls are
    drawn (components/chat/params.py), and AppTest cannot click a tab."""
    at.session_state[TAB] = label
    return at.run()
