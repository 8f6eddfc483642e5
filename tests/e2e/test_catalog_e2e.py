"""The catalog in headless Chromium against the fake Wafer server on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import ROOT, wait_for_app
from tests.fake_wafer import FakeWafer, Reply, error_json, serve

FIXTURE = (Path(__file__).resolve().parent.parent / "fixtures" / "models_3.json").read_bytes()
SCREENS = ROOT / ".pytest_cache" / "screens"
pytestmark = pytest.mark.e2e


MODES = {
    "ok": Reply(body=FIXTURE, content_type="application/json"),
    "401": error_json(401, "invalid_api_key", "Invalid API key", "req_e2e401e2e401",
                      type="authentication_error"),
    "html": Reply(status=502, body=b"<!DOCTYPE html><html><h1>502 Bad Gateway</h1></html>",
                  content_type="text/html"),
}


@pytest.fixture
def fake_wafer() -> Iterator[FakeWafer]:
    """The shared fake (tests/fake_wafer.py) serving models_3.json; a test may switch mode."""
    for fake in serve():
        fake.script("GET", "/models", MODES["ok"])
        yield fake


SLOW = 90_000  # the 2-core machine may be building llama.cpp at the same time


def _open(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.set_default_timeout(SLOW)
    page.goto(url)
    wait_for_app(page, timeout=SLOW)
    page.get_by_text("Model catalog").first.wait_for()


def test_catalog_filter_select_detail(page, fake_wafer: FakeWafer,  # type: ignore[no-untyped-def]
                                      streamlit_server_factory, tmp_path: Path) -> None:
    server = streamlit_server_factory(env={"WAFER_ENDPOINT": "wafer",
                                           "WAFER_BASE_URL": fake_wafer.url,
                                           "WAFER_API_KEY": "test-key"})
    page.set_viewport_size({"width": 1500, "height": 1900})
    _open(page, server.url)
    page.get_by_text("3 of 3 models").wait_for()  # the app may report idle before its first run
    page.get_by_test_id("stDataFrame").first.wait_for()
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stDataFrame").count() == 1
    assert any(h.sent_key("test-key") for h in fake_wafer.requests_to("GET", "/models"))

    # Filter: capabilities -> vision leaves Kimi-K3 only; the URL follows.
    search = page.get_by_placeholder("id, name, provider, description…")
    search.fill("kimi")
    search.press("Enter")
    page.get_by_text("1 of 3 models").wait_for()
    wait_for_app(page, timeout=SLOW)
    assert "q=kimi" in page.url and "test-key" not in page.url

    # Select the only row: the grid is a canvas, so click the row-marker column.
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    dialog = page.locator(".st-key-cat_detail_dlg")  # the click opens the detail in view
    dialog.wait_for()
    wait_for_app(page, timeout=SLOW)
    assert "Kimi-K3" in dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    detail = page.locator(".st-key-cat_detail")  # and the side panel keeps it
    assert "Kimi-K3" in detail.inner_text()
    assert "snapshot of 2026-09-02" in detail.inner_text()
    assert "model=Kimi-K3" in page.url
    page.get_by_text("Raw card JSON").click()
    page.get_by_test_id("stPlotlyChart").first.wait_for()
    page.wait_for_timeout(800)  # let plotly finish drawing before the picture
    assert page.get_by_test_id("stException").count() == 0

    shot = tmp_path / "catalog.png"
    page.screenshot(path=str(shot), full_page=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENS / "catalog.png")

    # Clearing the search brings every model back with the selection kept.
    search.fill("")
    search.press("Enter")
    page.get_by_text("3 of 3 models").wait_for()
    wait_for_app(page, timeout=SLOW)
    assert "Kimi-K3" in page.locator(".st-key-cat_detail").inner_text()

    # A click on a chart point opens that model (plotly maps the point to page pixels).
    locate = """() => {
        const gd = document.querySelector('.js-plotly-plot');
        const t = gd && gd._fullData && gd._fullData.find(tr => tr.name === 'Pass');
        if (!t) return null;
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.getBoundingClientRect();
        return {x: r.left + xa._offset + xa.c2p(t.x[0]),
                y: r.top + ya._offset + ya.c2p(t.y[0])};
    }"""
    for attempt in range(3):  # the WebGL scatter may still be (re)drawing on a busy machine
        page.wait_for_function(f"({locate})() !== null")
        page.wait_for_timeout(1000)
        point = page.evaluate(locate)
        page.mouse.click(point["x"], point["y"])
        try:
            page.wait_for_url("**model=GLM-5.1**", timeout=20_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    wait_for_app(page, timeout=SLOW)
    assert "GLM-5.1" in page.locator(".st-key-cat_detail_dlg").inner_text()
    page.keyboard.press("Escape")
    page.locator(".st-key-cat_detail_dlg").wait_for(state="detached")
    assert "GLM-5.1" in page.locator(".st-key-cat_detail").inner_text()

    # Try in chat opens the chat page with the model in the URL.
    page.get_by_role("button", name="Try in chat").click()
    page.wait_for_url("**/chat?model=GLM-5.1")


def test_shared_link_opened_first_on_a_fresh_server(page, fake_wafer: FakeWafer,  # type: ignore[no-untyped-def]
                                                   streamlit_server_factory) -> None:
    # The very first request of the server process is a deep link with filter state.
    server = streamlit_server_factory(env={"WAFER_ENDPOINT": "wafer",
                                           "WAFER_BASE_URL": fake_wafer.url,
                                           "WAFER_API_KEY": "test-key"})
    _open(page, f"{server.url}/catalog?caps=vision&sort=output&model=Kimi-K3")
    page.get_by_text("1 of 3 models").wait_for()
    assert "Kimi-K3" in page.locator(".st-key-cat_detail").inner_text()
    assert page.get_by_test_id("stSidebar").get_by_text("Connection").count() == 1
    assert page.get_by_test_id("stException").count() == 0
    assert "caps=vision" in page.url


@pytest.mark.parametrize("mode", ["down", "401", "html"])
def test_no_traceback_when_endpoint_fails(page, fake_wafer: FakeWafer,  # type: ignore[no-untyped-def]
                                          streamlit_server_factory, mode: str,
                                          tmp_path: Path) -> None:
    base = fake_wafer.url
    if mode == "down":
        fake_wafer.stop()  # nothing listens on that port any more
    else:
        fake_wafer.script("GET", "/models", MODES[mode])
    server = streamlit_server_factory(env={"WAFER_ENDPOINT": "wafer", "WAFER_BASE_URL": base,
                                           "WAFER_API_KEY": "test-key"})
    _open(page, server.url)
    expected = {"down": "connection refused", "401": "invalid_api_key", "html": "HTML page"}
    main = page.locator("[data-testid='stMain']")
    main.get_by_text(expected[mode]).first.wait_for()
    main.get_by_test_id("stDataFrame").first.wait_for()  # the snapshot catalog is drawn
    wait_for_app(page, timeout=SLOW)
    body = main.inner_text()
    assert page.get_by_test_id("stException").count() == 0
    assert "Traceback" not in body
    assert "snapshot of 2026-09-02" in body
    assert "test-key" not in body
    page.screenshot(path=str(tmp_path / f"catalog-{mode}.png"), full_page=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / f"catalog-{mode}.png", SCREENS / f"catalog-{mode}.png")
