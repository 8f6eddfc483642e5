"""Every page loads without an exception whatever the endpoint does: down, 401, HTML, OK."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock
from streamlit.testing.v1 import AppTest

from tests.app.conftest import FAKE_BASE, make_app

PAGES = ["pages/catalog.py", "pages/chat.py", "pages/tokens.py", "pages/compare.py",
         "pages/costs.py", "pages/history.py"]
FIXTURE = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "models_3.json")
                     .read_text())
pytestmark = pytest.mark.httpx_mock(assert_all_responses_were_requested=False,
                                    assert_all_requests_were_expected=False)


def _down(m: HTTPXMock) -> None:
    m.add_exception(httpx.ConnectError("[Errno 111] Connection refused"), is_reusable=True)


def _unauthorised(m: HTTPXMock) -> None:
    m.add_response(status_code=401, is_reusable=True, headers={"x-request-id": "req_401401401401"},
                   json={"error": {"type": "authentication_error", "code": "invalid_api_key",
                                   "message": "Invalid API key"}})


def _html(m: HTTPXMock) -> None:
    m.add_response(status_code=502, is_reusable=True, headers={"content-type": "text/html"},
                   text="<!DOCTYPE html><html><h1>502 Bad Gateway</h1></html>")


def _html_200(m: HTTPXMock) -> None:
    m.add_response(is_reusable=True, headers={"content-type": "text/html"},
                   text="<html><body>Sign in to continue</body></html>")


def _ok(m: HTTPXMock) -> None:
    m.add_response(url=f"{FAKE_BASE}/models", json=FIXTURE, is_reusable=True)


SCENARIOS: dict[str, Callable[[HTTPXMock], None]] = {
    "down": _down, "401": _unauthorised, "html-502": _html, "html-200": _html_200, "ok": _ok,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_exception(app_env: str, httpx_mock: HTTPXMock, page: str,
                                      scenario: str) -> None:
    SCENARIOS[scenario](httpx_mock)
    at: AppTest = make_app(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # The frame is there on every page: the connection sidebar with its status line.
    assert at.sidebar.radio(key="conn_kind").value == "custom"
    status = " ".join(c.value for c in at.sidebar.caption)
    expected = {"ok": "3 models", "down": "connection refused", "401": "HTTP 401",
                "html-502": "HTML page", "html-200": "not valid JSON"}[scenario]
    assert expected in status and "wafer.test" in status
    assert "Traceback" not in status


@pytest.mark.parametrize("scenario", ["down", "401", "html-502"])
def test_catalog_explains_the_failure(app_env: str, httpx_mock: HTTPXMock,
                                      scenario: str) -> None:
    SCENARIOS[scenario](httpx_mock)
    at = make_app("pages/catalog.py")
    at.run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    expected = {"down": "connection refused", "401": "invalid_api_key",
                "html-502": "HTML page"}[scenario]
    assert expected in errors
    assert any("snapshot of" in w.value for w in at.warning)
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) >= 5  # the snapshot catalog


def test_key_never_reaches_the_page(app_env: str, httpx_mock: HTTPXMock) -> None:
    # A server echoing the key in its error must not get it onto the screen.
    key = "wfr_test_SECRET_abcdef0123456789"
    httpx_mock.add_response(status_code=401, is_reusable=True,
                            json={"error": {"message": f"key {key} revoked"}})
    at = make_app("pages/catalog.py")
    at.session_state["conn_key"] = key
    at.run()
    assert not at.exception
    shown = [e.value for e in at.error] + [c.value for c in at.sidebar.caption] + \
        [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert all(key not in s for s in shown)
    assert key not in json.dumps(dict(at.query_params))
