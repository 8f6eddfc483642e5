"""Account views in headless Chromium against the fake Wafer server: the Pass quota meter in
the sidebar (and hidden where the endpoint answers 404), measured speed beside price in the
catalog (metrics API `model` filter with a key; this app's request log without one), and
the usage date range on Costs. Screenshots go to /tmp/shots17/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from components.catalog.page import PRICE_W, SPEED_W
from tests.conftest import wait_for_app
from tests.e2e.test_media_e2e import open_chat, open_page, shot, wafer_app
from tests.fake_wafer import CARDS_WITH_VISION, FakeWafer, Reply, serve

pytestmark = pytest.mark.e2e
METRICS = {"endpoint": "127.0.0.1", "range_minutes": 1440, "summary": {
    "total_requests": 42, "rps": 0.01, "ttft_p50_ms": 410.0, "ttft_p90_ms": 1250.0,
    "tps_p10": 52.0, "tps_p50": 92.0, "tps_p90": 155.0}, "backends": [], "timeseries": []}
USAGE = {"user_id": "u", "pass_account_id": None,
         "period_start": "2026-11-28T00:00:00+00:00", "period_end": "2026-12-05T00:00:00+00:00",
         "days": [{"date": "2026-12-01T00:00:00+00:00", "input_tokens": 1200,
                   "output_tokens": 300}],
         "models": [{"model": "fake-glm", "input_tokens": 1200, "output_tokens": 300,
                     "cache_read_tokens": 0, "request_count": 4, "estimated_cost_cents": 1}],
         "total_input_tokens": 1200, "total_output_tokens": 300, "total_requests": 4,
         "total_estimated_cost_cents": 1}


def grid_has_speed(page: Page, *values: str) -> None:
    """The catalog grid (the page's only one) has the speed columns right after $/month, the
    medians inside the grid at 1440 px with no sideways scrolling, and these raw values in
    its cells (the grid's accessible table, which carries values, not the drawn "410 ms")."""
    grid = page.get_by_test_id("stDataFrame")
    expect(grid).to_have_count(1)
    expect(grid.locator("th[role='columnheader']").filter(has_text="$/month")).to_have_count(
        1, timeout=30_000)  # the accessible table is filled after the canvas is drawn
    # the grid before Measure has $/month too: wait for the run that adds the speed columns
    expect(grid.locator("th[role='columnheader']").filter(has_text="TTFT p50")).to_have_count(
        1, timeout=30_000)
    heads = grid.locator("th[role='columnheader']").all_inner_texts()
    at = heads.index("$/month")
    assert heads[at + 1:at + 5] == ["TTFT p50", "tok/s p50", "TTFT p90", "tok/s p90"], heads
    box = grid.bounding_box()
    # selection marker + Model + Model id + 4 prices + the 2 medians inside the grid
    assert box is not None and box["width"] >= 33 + 150 + 170 + 4 * PRICE_W + 2 * SPEED_W, box
    cells = grid.locator("td").all_inner_texts()
    for value in values:
        assert value in cells, cells[:60]


@pytest.fixture
def fake() -> Iterator[FakeWafer]:
    yield from serve(CARDS_WITH_VISION)


def test_quota_speed_and_usage_window_with_a_key(
        page: Page, streamlit_server_factory, fake: FakeWafer, tmp_path: Path) -> None:
    end = (datetime.now(UTC) + timedelta(hours=2, minutes=5)).isoformat()
    fake.script("GET", "/inference/quota", Reply(json={
        "billing_model": "pass_quota", "plan_tier": "pro", "window_end": end,
        "included_request_limit": 5000, "included_request_count": 4100,
        "remaining_included_requests": 900, "current_period_used_percent": 82.0}))
    fake.script("GET", "/endpoints/metrics", Reply(json=METRICS))
    fake.script("GET", "/usage/me", Reply(json=USAGE))
    server = wafer_app(streamlit_server_factory, fake, tmp_path / "a.db")
    open_page(page, server.url, "/", height=2200)
    meter = page.locator(".st-key-pass_quota")
    expect(meter).to_contain_text("Pass quota", timeout=30_000)
    expect(meter).to_contain_text("undocumented")
    expect(meter).to_contain_text("4,100 of 5,000 requests")
    expect(meter).to_contain_text("window resets in 2 h")
    # measured speed beside price: one metrics call per model, filtered by `model`; the
    # figures are columns of the catalog grid, right after $/month
    page.get_by_role("button", name="Measure").click()
    wait_for_app(page)
    speed = page.locator(".st-key-cat_speed")
    expect(speed).to_contain_text(f"{len(CARDS_WITH_VISION)} model(s) measured",
                                  timeout=30_000)
    expect(page.get_by_text("Price vs speed")).to_be_visible()
    asked = sorted(h.query for h in fake.requests_to("GET", "/endpoints/metrics"))
    assert len(asked) == len(CARDS_WITH_VISION)
    assert all("range_minutes=1440" in q and "model=" in q for q in asked)
    assert speed.get_by_test_id("stDataFrame").count() == 0  # no second table
    grid_has_speed(page, "410", "1250", "92", "155")
    shot(page, "account_catalog_speed")
    # usage over a date range on Costs
    open_page(page, server.url, "/costs", height=2200)
    page.get_by_role("tab", name="Account usage").click()
    wait_for_app(page)
    page.locator(".st-key-costs_ac_period").click()
    page.get_by_role("option", name="date range").click()
    wait_for_app(page)
    page.get_by_role("button", name="Fetch").click()
    wait_for_app(page)
    hit = fake.requests_to("GET", "/usage/me")[-1]
    assert "start_at=" in hit.query and "end_at=" in hit.query and "period" not in hit.query
    usage = page.locator("[data-testid='stMetric']:visible").filter(has_text="Input tokens")
    expect(usage.first).to_contain_text("1,200")
    shot(page, "account_costs_range")


def test_without_a_key_speed_comes_from_the_request_log_and_no_quota(
        page: Page, streamlit_server_factory, fake: FakeWafer, tmp_path: Path) -> None:
    server = streamlit_server_factory(env={
        "WAFER_ENDPOINT": "local", "WAFER_LOCAL_URL": fake.url,
        "WAFER_PLAYGROUND_DB": str(tmp_path / "b.db")})
    open_chat(page, server.url, "fake-glm")
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("hello")
    box.press("Enter")
    expect(page.get_by_test_id("stChatMessage").nth(1)).to_contain_text(
        "Hello from the fake server.", timeout=30_000)
    wait_for_app(page)
    open_page(page, server.url, "/", height=2200)
    expect(page.get_by_text("this app's own request log")).to_be_visible(timeout=30_000)
    expect(page.locator(".st-key-cat_speed")).to_contain_text("1 model(s) measured")
    grid_has_speed(page)
    assert page.locator(".st-key-pass_quota").count() == 0  # no key: no quota call at all
    assert not fake.requests_to("GET", "/endpoints/metrics")
    page.get_by_text("Measured speed beside price").scroll_into_view_if_needed()
    shot(page, "account_catalog_speed_log")


@pytest.mark.parametrize("size", [(1440, 900), (1920, 1080)], ids=["1440", "1920"])
def test_catalog_first_screen_with_speed_columns(
        page: Page, streamlit_server_factory, fake: FakeWafer, tmp_path: Path,
        size: tuple[int, int]) -> None:
    """What a person sees after Measure: price and speed in one grid on the first screen."""
    fake.script("GET", "/endpoints/metrics", Reply(json=METRICS))
    server = wafer_app(streamlit_server_factory, fake, tmp_path / "c.db")
    open_page(page, server.url, "/", height=size[1])
    page.set_viewport_size({"width": size[0], "height": size[1]})
    wait_for_app(page)
    page.get_by_role("button", name="Measure").click()
    wait_for_app(page)
    grid_has_speed(page, "410", "92")
    # back to the top (pressing Measure scrolled down to it): the first screen
    page.get_by_role("heading", name="Model catalog").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = page.get_by_test_id("stDataFrame").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] < size[1], box
    page.wait_for_timeout(600)
    Path("/tmp/shots").mkdir(exist_ok=True)
    page.screenshot(path=f"/tmp/shots/catalog_speed_{size[0]}.png")
