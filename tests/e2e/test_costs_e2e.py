"""Costs page in headless Chromium: workload -> ranking + chart, share link in a fresh page,
usage upload with bad rows. The fake Wafer server (tests/fake_wafer.py) serves the models,
usage and metrics on 127.0.0.1."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT, wait_for_app
from tests.fake_wafer import Reply, serve

pytestmark = pytest.mark.e2e
SCREENS = ROOT / ".pytest_cache" / "screens"

MODELS = {"object": "list", "data": [
    {"id": "GLM-5.1", "object": "model", "owned_by": "wafer", "max_model_len": 202752,
     "wafer": {"display_name": "GLM-5.1", "tier": "pass_included", "context_length": 202752,
               "capabilities": {"vision": False, "tools": True, "reasoning": True},
               "pricing": {"input_cents_per_million": 100, "output_cents_per_million": 320,
                           "cache_read_cents_per_million": 10, "currency": "usd"}}},
    {"id": "Kimi-K2.6", "object": "model", "owned_by": "wafer", "max_model_len": 262144,
     "wafer": {"display_name": "Kimi-K2.6", "tier": "serverless_only", "context_length": 262144,
               "capabilities": {"vision": True, "tools": True, "reasoning": True},
               "pricing": {"input_cents_per_million": 68, "output_cents_per_million": 315,
                           "cache_read_cents_per_million": 7, "currency": "usd"}}},
]}


USAGE_ME = {
    "user_id": "u", "pass_account_id": None, "period_start": "2026-09-01T00:00:00+00:00",
    "period_end": "2026-09-07T00:00:00+00:00",
    "days": [{"date": f"2026-09-0{d}T00:00:00+00:00", "input_tokens": 300_000 * d,
              "output_tokens": 40_000 * d} for d in range(1, 8)],
    "models": [{"model": "GLM-5.1", "input_tokens": 6_000_000, "output_tokens": 800_000,
                "cache_read_tokens": 2_000_000, "request_count": 900,
                "estimated_cost_cents": 682},
               {"model": "Kimi-K2.6", "input_tokens": 2_400_000, "output_tokens": 320_000,
                "cache_read_tokens": 0, "request_count": 300, "estimated_cost_cents": 264}],
    "total_input_tokens": 8_400_000, "total_output_tokens": 1_120_000, "total_requests": 1200,
    "total_estimated_cost_cents": 946}
METRICS = {
    "endpoint": "127.0.0.1", "range_minutes": 60, "queried_at": "2026-09-07T10:00:00+00:00",
    "summary": {"total_requests": 120, "rps": 0.0333, "ttft_p50_ms": 220.0, "ttft_p90_ms": 510.0,
                "ttft_p99_ms": 930.0, "tps_p10": 28.0, "tps_p50": 51.0, "tps_p90": 66.0,
                "tps_p99": 71.0, "latency_p50_ms": 2100.0, "latency_p90_ms": 4800.0,
                "latency_p99_ms": 9100.0, "cache_hit_pct": 23.8, "count_2xx": 114,
                "count_4xx": 4, "count_5xx": 2, "error_rate_pct": 5.0},
    "backends": [],
    "timeseries": [{"time": f"2026-09-07T09:{m:02d}:00+00:00", "requests": 2 + m % 5,
                    "error_count": 1 if m % 17 == 0 else 0, "ttft_p50_ms": 200.0 + 3 * m,
                    "ttft_p90_ms": 480.0 + 4 * m} for m in range(0, 60, 3)]}
ROUTES = {"/v1/models": MODELS, "/v1/usage/me": USAGE_ME, "/v1/endpoints/metrics": METRICS}


@pytest.fixture
def fake_wafer() -> Iterator[str]:
    for fake in serve(MODELS["data"]):
        for path, payload in ROUTES.items():
            fake.script("GET", path.removeprefix("/v1"), Reply(json=payload))
        yield fake.url


def _set_number(page, label: str, value: str) -> None:  # type: ignore[no-untyped-def]
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_app(page)


def _metric(page, label: str) -> str:  # type: ignore[no-untyped-def]
    m = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return str(m.locator("[data-testid='stMetricValue']").inner_text()).strip()


def _shot(page, tmp_path: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENS / f"{name}.png")
    return path


def test_planner_share_link_and_upload(streamlit_server_factory, fake_wafer: str, browser,
                                       tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = streamlit_server_factory(env={"WAFER_ENDPOINT": "wafer",
                                           "WAFER_BASE_URL": fake_wafer,
                                           "WAFER_API_KEY": "test"})
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server.url}/costs")
    wait_for_app(page)
    page.get_by_text("live from 127.0.0.1").first.wait_for()

    _set_number(page, "Requests per day", "2000")
    _set_number(page, "Input tokens", "1000")
    _set_number(page, "Output tokens", "200")
    _set_number(page, "Cache hit %", "50")
    _set_number(page, "Budget $/month", "100")

    # Only what this endpoint serves (issue 16). Kimi-K2.6 (live 68/315/7): 500*68 + 500*7
    # + 200*315 = 100500 -> $0.001005 a request, x 2000/day x 30 = $60.30 a month; $100 a
    # month buys floor(100 / 30 / 0.001005) = 3,316 requests a day.
    head = page.locator(".st-key-costs_headline")
    expect(head).to_contain_text("Cheapest served here: Kimi-K2.6 · $60.30 / month")
    expect(head).to_contain_text("$100.00 / month buys 3,316 requests/day on Kimi-K2.6")
    # GLM-5.1 (live, Pass): 500*100 + 500*10 + 200*320 = 119000 -> $71.40 a month
    assert _metric(page, "covered by Wafer Pass: GLM-5.1") == "$71.40 / month"
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    assert "DeepSeek-V4-Flash-0731-Fast" not in page.locator(".js-plotly-plot").first.inner_text()
    # the snapshot-only models on request: in the table and chart, never in the headline.
    # DeepSeek-V4-Flash (snapshot 20/25/5) would be $10.50 a month, cheaper than any served.
    page.get_by_text(re.compile(r"Include \d+ snapshot-only models")).click()
    wait_for_app(page)
    page.locator(".js-plotly-plot").first.wait_for()
    expect(page.locator(".js-plotly-plot").first).to_contain_text("DeepSeek-V4-Flash-0731-Fast")
    expect(head).to_contain_text("Cheapest served here: Kimi-K2.6")
    assert "not published" in page.locator("body").inner_text()
    _shot(page, tmp_path, "costs_planner")
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    _shot(page, tmp_path, "costs_chart")
    for tab, name in (("Growth over 12 months", "costs_growth"),
                      ("Cost vs context", "costs_context")):
        page.get_by_role("tab", name=tab).click()
        panel = page.get_by_role("tabpanel", name=tab)
        panel.locator(".js-plotly-plot").wait_for()
        panel.scroll_into_view_if_needed()
        _shot(page, tmp_path, name)

    link = page.locator("[data-testid='stCode']").filter(has_text="rpd=").first.inner_text()
    link = link.strip()
    assert link.startswith(server.url) and "rpd=2000" in link and "test" not in link.split("?")[1]

    fresh = browser.new_context().new_page()  # a new browser session: nothing carried over
    fresh.set_viewport_size({"width": 1400, "height": 1100})
    fresh.goto(link)
    wait_for_app(fresh)
    fresh.get_by_text("live from 127.0.0.1").first.wait_for()
    # widgets can land a moment after the text on a loaded 2-core machine: wait for them
    expect(fresh.get_by_label("Requests per day", exact=True)).to_have_value("2000",
                                                                             timeout=30_000)
    expect(fresh.get_by_label("Cache hit %", exact=True)).to_have_value("50.00")
    expect(fresh.locator(".st-key-costs_headline")).to_contain_text(
        "Cheapest served here: Kimi-K2.6 · $60.30 / month")
    assert _metric(fresh, "covered by Wafer Pass: GLM-5.1") == "$71.40 / month"
    expect(fresh.get_by_test_id("stSidebar").get_by_text("Connection")).to_be_visible()
    _shot(fresh, tmp_path, "costs_shared")

    # the planner's token means can come from a per-request file
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("model,prompt_tokens,cached_tokens,completion_tokens\n"
                      "m,1000,500,100\nm,3000,500,300\nm,bad,0,1\n")
    fresh.get_by_text("Take the token means from a file").click()
    fresh.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        str(tokens))
    wait_for_app(fresh)
    expect(fresh.get_by_label("Input tokens", exact=True)).to_have_value("2000", timeout=30_000)
    expect(fresh.get_by_label("Output tokens", exact=True)).to_have_value("200")
    expect(fresh.get_by_label("Cache hit %", exact=True)).to_have_value("25.00")
    fresh.get_by_text("1 rows not priced").first.wait_for()

    # Reprice: a CSV with two bad rows, reported with line numbers
    usage = tmp_path / "usage.csv"
    usage.write_text("model,prompt_tokens,cached_tokens,completion_tokens\n"
                     "GLM-5.1,1000000,200000,500000\n"
                     "GLM-5.1,12,oops,3\n"
                     "Kimi-K2.6,1000,2000,5\n"
                     "Kimi-K2.6,0,0,1000000\n")
    page.get_by_role("tab", name="Reprice usage").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").last.set_input_files(str(usage))
    wait_for_app(page)
    page.get_by_text("2 rows could not be priced").wait_for()
    # GLM row: $2.42; Kimi row: 1M * 315c = $3.15 -> $5.57 as logged
    assert _metric(page, "Cost as logged") == "$5.57"
    page.get_by_text("Rows not priced: line and reason").click()
    page.locator("[data-testid='stDataFrame']").nth(1).wait_for()
    _shot(page, tmp_path, "costs_reprice")
    reprice_panel = page.get_by_role("tabpanel", name="Reprice usage")
    reprice_panel.locator(".js-plotly-plot").scroll_into_view_if_needed()
    _shot(page, tmp_path, "costs_reprice_chart")

    # Account usage from the same endpoint: charts, Wafer's estimate next to ours
    page.get_by_role("tab", name="Account usage").click()
    page.get_by_role("button", name="Fetch").click()
    wait_for_app(page)
    # GLM: 4M*100 + 2M*10 + 800k*320 = 676M -> $6.76; Kimi: 2.4M*68 + 320k*315 = 264M -> $2.64
    assert _metric(page, "Spend (priced here)") == "$9.40"
    page.get_by_text("Endpoint metrics").wait_for()
    assert _metric(page, "Error rate") == "5.0 %"
    page.locator(".js-plotly-plot").last.wait_for()
    _shot(page, tmp_path, "costs_account")
