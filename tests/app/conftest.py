"""AppTest helpers: run the real app.py against a mocked or fake endpoint."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

FAKE_BASE = "http://wafer.test/v1"


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the app at a custom endpoint (httpx is mocked by pytest-httpx) with no key."""
    monkeypatch.setenv("WAFER_ENDPOINT", "custom")
    monkeypatch.delenv("WAFER_API_KEY", raising=False)
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(ROOT / ".pytest_cache" / "apptest.db"))
    return FAKE_BASE


def make_app(page: str | None = None, *, base_url: str = FAKE_BASE) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["conn_kind"] = "custom"
    at.session_state["conn_custom_url"] = base_url
    if page:
        at.switch_page(page)
    return at
