"""The catalog page under AppTest with the 3-model fixture (httpx mocked by pytest-httpx)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import httpx
import pandas as pd
import pytest
from pytest_httpx import HTTPXMock
from streamlit.testing.v1 import AppTest

from components.state import SELECTED_MODEL
from tests.app.conftest import FAKE_BASE, make_app

FIXTURE = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "models_3.json")
                     .read_text())
pytestmark = pytest.mark.httpx_mock(assert_all_responses_were_requested=False)


def _serve(httpx_mock: HTTPXMock, payload: object = FIXTURE) -> None:
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json=payload, is_reusable=True)


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at: AppTest) -> pd.DataFrame:
    # the one catalog grid: prices, the workload and measured speed are its columns
    assert len(at.dataframe) == 1
    return at.dataframe[0].value.set_index("id")


def _page(app_env: str, httpx_mock: HTTPXMock) -> AppTest:
    _serve(httpx_mock)
    return _run(make_app())


def test_all_models_shown_with_prices_and_sources(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    assert at.title[0].value == "Model catalog"
    t = _table(at)
    assert sorted(t.index) == ["GLM-5.1", "Kimi-K3", "Qwen3.5-397B-A17B"]
    assert t.loc["GLM-5.1", "input_usd_per_m"] == 1.0
    assert t.loc["GLM-5.1", "output_usd_per_m"] == 3.2
    assert t.loc["GLM-5.1", "cache_read_usd_per_m"] == pytest.approx(0.1)
    assert t.loc["GLM-5.1", "source"] == "live"
    assert t.loc["Kimi-K3", "source"] == "snapshot 2026-09-02"
    assert t.loc["Kimi-K3", "output_usd_per_m"] == 15.0
    # Not published: NaN (drawn as "—", the price columns' help says why), never 0.
    assert math.isnan(t.loc["Qwen3.5-397B-A17B", "input_usd_per_m"])
    assert math.isnan(t.loc["Qwen3.5-397B-A17B", "per_month"])
    assert pd.isna(t.loc["Qwen3.5-397B-A17B", "source"])
    assert t.loc["GLM-5.1", "tier_label"] == "Pass"
    assert t.loc["Kimi-K3", "tier_label"] == "Serverless"
    assert list(t.loc["Kimi-K3", "caps"]) == ["vision", "tools", "reasoning"]
    assert bool(t.loc["GLM-5.1", "zdr"]) and not bool(t.loc["Kimi-K3", "zdr"])
    caption = " ".join(c.value for c in at.caption)
    assert "3 models" in caption and "prices live from wafer.test" in caption
    assert "1 priced from the snapshot of 2026-09-02" in caption
    assert "1 without a published price" in caption
    # The detail panel waits for a selection.
    assert any("Select a row" in i.value for i in at.info)


@pytest.mark.parametrize(
    ("key", "value", "expected", "param"),
    [
        ("cat_caps", ["vision"], ["Kimi-K3"], ("caps", "vision")),
        ("cat_caps", ["tools", "reasoning"], ["GLM-5.1", "Kimi-K3"], ("caps", "tools,reasoning")),
        ("cat_tiers", ["pass_included"], ["GLM-5.1"], ("tier", "pass_included")),
        ("cat_zdr", True, ["GLM-5.1"], ("zdr", "1")),
        ("cat_q", "moonshot", ["Kimi-K3"], ("q", "moonshot")),
        ("cat_q", "qwen3.5", ["Qwen3.5-397B-A17B"], ("q", "qwen3.5")),
        ("cat_ctx", 262_144, ["Kimi-K3", "Qwen3.5-397B-A17B"], ("ctx", "262144")),
        ("cat_priced", True, ["GLM-5.1", "Kimi-K3"], ("priced", "1")),
        ("cat_sort", "output", ["GLM-5.1", "Kimi-K3", "Qwen3.5-397B-A17B"], ("sort", "output")),
        ("cat_sort", "context", ["Kimi-K3", "Qwen3.5-397B-A17B", "GLM-5.1"],
         ("sort", "context")),
    ],
)
def test_filters_and_url(app_env: str, httpx_mock: HTTPXMock, key: str, value: object,
                         expected: list[str], param: tuple[str, str]) -> None:
    at = _page(app_env, httpx_mock)
    widget = at.get_by_key(key) if hasattr(at, "get_by_key") else None
    if widget is not None and hasattr(widget, "set_value"):
        widget.set_value(value)
    else:
        at.session_state[key] = value
    _run(at)
    assert list(at.dataframe[0].value["id"]) == expected
    assert at.query_params[param[0]] == param[1]
    assert "wafer.test" not in json.dumps(dict(at.query_params))  # never the base URL


def test_price_range_excludes_unpublished_and_out_of_range(app_env: str,
                                                           httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    at.slider(key="cat_in").set_value((0.0, 2.0))
    _run(at)
    assert list(at.dataframe[0].value["id"]) == ["GLM-5.1"]
    assert at.query_params["in"] == "0-2"


def test_filters_from_shared_link(app_env: str, httpx_mock: HTTPXMock) -> None:
    _serve(httpx_mock)
    at = make_app()
    at.query_params["tier"] = "serverless_only,bogus"
    at.query_params["sort"] = "nonsense"
    at.query_params["ctx"] = "12345"  # not a step: ignored
    at.query_params["wl_in"] = "-5"  # invalid: default kept
    at.query_params["model"] = "Kimi-K3"
    _run(at)
    assert list(at.dataframe[0].value["id"]) == ["Kimi-K3"]
    assert at.session_state["cat_tiers"] == ["serverless_only"]
    assert at.session_state["cat_wl_in"] == 2000
    assert at.subheader[0].value == "Kimi-K3"  # the shared model's detail is open


def test_workload_columns_hand_computed(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    at.number_input(key="cat_wl_in").set_value(10_000)
    at.number_input(key="cat_wl_out").set_value(1_000)
    at.number_input(key="cat_wl_cache").set_value(50)
    at.number_input(key="cat_wl_rpd").set_value(1_000)
    _run(at)
    t = _table(at)
    # GLM-5.1 at $1.00 / $3.20 / $0.10 per 1M: 5,000 uncached + 5,000 cached in, 1,000 out
    # = 0.005 + 0.0005 + 0.0032 = $0.0087 per request; x 1,000/day x 30 = $261.00.
    assert t.loc["GLM-5.1", "per_request"] == pytest.approx(0.0087)
    assert t.loc["GLM-5.1", "per_month"] == pytest.approx(261.0)
    # Kimi-K3 (snapshot $3.00 / $15.00 / $0.30): 0.015 + 0.0015 + 0.015 = $0.0315; $945.00.
    assert t.loc["Kimi-K3", "per_request"] == pytest.approx(0.0315)
    assert t.loc["Kimi-K3", "per_month"] == pytest.approx(945.0)
    assert math.isnan(t.loc["Qwen3.5-397B-A17B", "per_request"])
    assert at.query_params["wl_in"] == "10000" and at.query_params["wl_cache"] == "50"
    at.selectbox(key="cat_sort").set_value("month")
    _run(at)
    assert list(at.dataframe[0].value["id"]) == ["GLM-5.1", "Kimi-K3", "Qwen3.5-397B-A17B"]


_STAT_RE = re.compile(r'opacity:0.7">([^<]+)</div><div[^>]*>([^<]+)</div>')


def _stats(at: AppTest) -> dict[str, str]:
    """The detail panel's big figures: {label: value}."""
    return {k: v for m in at.markdown for k, v in _STAT_RE.findall(m.value)}


def _select(at: AppTest, row: int) -> AppTest:
    key = at.session_state["_catalog_table_key"]
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return _run(at)


def test_selection_opens_detail_panel(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    ids = list(at.dataframe[0].value["id"])
    _select(at, ids.index("GLM-5.1"))
    assert at.subheader[0].value == "GLM-5.1"
    metrics = _stats(at)
    assert metrics["Input / 1M"] == "$1.00"
    assert metrics["Output / 1M"] == "$3.20"
    assert metrics["Cache read / 1M"] == "$0.10"
    assert metrics["Context"] == "203K"
    assert metrics["Max output"] == "not published"
    # default workload 2,000 in / 500 out / 0% / 1,000 per day: (0.002 + 0.0016) x 30,000
    assert metrics["Your $/request"] == "$0.0036"
    text = " ".join(m.value for m in at.markdown)
    assert "$108.00 per month" in text
    assert "Pass (covered by Wafer Pass)" in text and "ZDR:** supported" in text
    assert "live from wafer.test" in " ".join(c.value for c in at.caption)
    assert at.json[0].value and json.loads(at.json[0].value)["id"] == "GLM-5.1"
    assert at.query_params["model"] == "GLM-5.1"


def test_detail_of_snapshot_and_unpublished_models(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    ids = list(at.dataframe[0].value["id"])
    _select(at, ids.index("Kimi-K3"))
    captions = " ".join(c.value for c in at.caption)
    assert "snapshot of 2026-09-02" in captions and "publishes none" in captions
    _select(at, ids.index("Qwen3.5-397B-A17B"))
    metrics = _stats(at)
    assert metrics["Input / 1M"] == "not published"
    assert metrics["Your $/request"] == "not published"
    assert "$0" not in " ".join(str(v) for v in metrics.values())
    assert "no `wafer` block" in " ".join(c.value for c in at.caption)


def test_selection_survives_filter_change(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    ids = list(at.dataframe[0].value["id"])
    _select(at, ids.index("Kimi-K3"))
    old_key = at.session_state["_catalog_table_key"]
    at.multiselect(key="cat_caps").set_value(["vision"])
    _run(at)
    # A new view is a new table widget: the old row position cannot pick another model.
    assert at.session_state["_catalog_table_key"] != old_key
    assert list(at.dataframe[0].value["id"]) == ["Kimi-K3"]
    assert at.subheader[0].value == "Kimi-K3"
    # Filtered out of view: the panel closes; back in view: it returns.
    at.multiselect(key="cat_tiers").set_value(["pass_included"])
    _run(at)
    assert not at.subheader and any("Select a row" in i.value for i in at.info)
    at.multiselect(key="cat_tiers").set_value([])
    _run(at)
    assert at.subheader[0].value == "Kimi-K3"


def test_try_in_chat_switches_page(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    ids = list(at.dataframe[0].value["id"])
    _select(at, ids.index("Kimi-K3"))
    at.button(key="cat_try").click()
    _run(at)
    assert at.session_state[SELECTED_MODEL] == "Kimi-K3"
    # The chat page runs now: none of the catalog's widgets are drawn.
    assert "cat_q" not in [w.key for w in at.text_input]
    assert all(t.value != "Model catalog" for t in at.title)
    assert at.query_params.get("model") == "Kimi-K3"


def test_filters_survive_a_page_round_trip(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    at.multiselect(key="cat_caps").set_value(["vision"])
    _run(at)
    at.switch_page("pages/history.py")
    _run(at)
    at.switch_page("pages/catalog.py")
    _run(at)
    assert list(at.dataframe[0].value["id"]) == ["Kimi-K3"]


def test_endpoint_down_shows_snapshot_with_banner(app_env: str, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("[Errno 111] Connection refused"),
                             is_reusable=True)
    at = _run(make_app())
    assert any("snapshot of 2026-09-02" in w.value for w in at.warning)
    assert any("Connection failed" in e.value or "connection refused" in e.value
               for e in at.error)
    t = _table(at)
    assert "GLM-5.1" in t.index and len(t) >= 5
    assert set(t["source"].dropna()) == {"snapshot 2026-09-02"}


def test_problem_cards_listed(app_env: str, httpx_mock: HTTPXMock) -> None:
    payload = json.loads(json.dumps(FIXTURE))
    payload["data"] += [{"object": "model"}, "junk", payload["data"][0]]
    _serve(httpx_mock, payload)
    at = _run(make_app())
    assert len(_table(at)) == 3
    assert any("3 model card(s) had problems" in e.label for e in at.expander)
    assert "duplicate id 'GLM-5.1'" in " ".join(m.value for m in at.markdown)


def test_refresh_refetches(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    n = len(httpx_mock.get_requests())
    at.button(key="cat_refresh").click()
    _run(at)
    assert len(httpx_mock.get_requests()) == n + 1


def test_failed_fetch_is_retried_after_a_short_ttl(app_env: str, httpx_mock: HTTPXMock) -> None:
    for _ in range(3):  # one GET and its two retries
        httpx_mock.add_exception(httpx.ConnectError("[Errno 111] Connection refused"))
    _serve(httpx_mock)
    at = _run(make_app())
    assert any("snapshot of" in w.value for w in at.warning)
    _run(at)  # within the error TTL: still the cached failure, no new request
    assert len(httpx_mock.get_requests()) == 3
    for entry in at.session_state["_models_cache"].values():
        entry.fetched_at -= 31  # the endpoint came up half a minute later
    _run(at)
    assert not at.warning
    assert sorted(_table(at).index) == ["GLM-5.1", "Kimi-K3", "Qwen3.5-397B-A17B"]


def test_refresh_with_a_pricier_model_keeps_sliders_valid(app_env: str,
                                                          httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json=FIXTURE)
    bigger = json.loads(json.dumps(FIXTURE))
    card = json.loads(json.dumps(bigger["data"][0]))
    card["id"] = "GLM-9-Ultra"
    card["wafer"]["pricing"]["input_cents_per_million"] = 700
    bigger["data"].append(card)
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json=bigger, is_reusable=True)
    at = _run(make_app())
    assert at.slider(key="cat_in").value == (0.0, 3.0)  # full range: no limit
    at.slider(key="cat_out").set_value((0.0, 5.0))  # a real limit on output
    _run(at)
    at.button(key="cat_refresh").click()
    _run(at)
    assert at.slider(key="cat_in").value == (0.0, 7.0)  # "no limit" followed the new top
    assert at.slider(key="cat_out").value == (0.0, 5.0)  # a chosen limit stays
    assert sorted(at.dataframe[0].value["id"]) == ["GLM-5.1", "GLM-9-Ultra"]


def test_empty_model_list(app_env: str, httpx_mock: HTTPXMock) -> None:
    _serve(httpx_mock, {"object": "list", "data": []})
    at = _run(make_app())
    assert any("No models to show" in i.value for i in at.info)
    assert not at.dataframe


def test_zdr_required_hint(app_env: str, httpx_mock: HTTPXMock) -> None:
    _serve(httpx_mock)
    at = make_app()
    at.session_state["conn_zdr"] = True
    _run(at)
    assert any("requires ZDR" in c.value for c in at.caption)
    assert httpx_mock.get_request().headers["Wafer-ZDR"] == "required"  # type: ignore[union-attr]


def test_host_label_drops_userinfo() -> None:
    from components.connection import _host_label

    assert _host_label("http://alice:hunter2@wafer.test:8080/v1") == "wafer.test:8080"
    assert _host_label("https://pass.wafer.ai/v1") == "pass.wafer.ai"
    assert _host_label("http://[::1]:9/v1") == "[::1]:9"
    assert "hunter2" not in _host_label("alice:hunter2@")


def test_chart_click_opens_the_model(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _page(app_env, httpx_mock)
    ids = list(at.dataframe[0].value["id"])
    _select(at, ids.index("GLM-5.1"))
    chart_key, trace_ids = at.session_state["_catalog_chart"]
    curve = next(i for i, t in enumerate(trace_ids) if t == ["Kimi-K3"])
    at.session_state[chart_key] = {"selection": {
        "points": [{"curve_number": curve, "point_index": 0}], "point_indices": [0],
        "box": [], "lasso": []}}
    _run(at)
    assert at.subheader[0].value == "Kimi-K3"
    # The table was redrawn with the picked model selected, and the URL follows.
    key = at.session_state["_catalog_table_key"]
    assert at.session_state[key]["selection"]["rows"] == [ids.index("Kimi-K3")]
    assert at.query_params["model"] == "Kimi-K3"
    _run(at)  # a plain rerun keeps the pick
    assert at.subheader[0].value == "Kimi-K3"
    _select(at, ids.index("Qwen3.5-397B-A17B"))  # and the table still works after a pick
    assert at.subheader[0].value == "Qwen3.5-397B-A17B"


METRICS = {"summary": {"total_requests": 42, "ttft_p50_ms": 410.0, "ttft_p90_ms": 1250.0,
                       "tps_p50": 92.0, "tps_p90": 155.0}}


def test_measured_speed_is_columns_of_the_catalog_grid(app_env: str,
                                                       httpx_mock: HTTPXMock) -> None:
    """Issue 17: TTFT and tok/s per model beside price, in the grid itself; Measure fills
    them in the same run (its callback runs before the table is drawn)."""
    _serve(httpx_mock)
    httpx_mock.add_response(url=re.compile(r".*/endpoints/metrics\?.*model=GLM-5\.1.*"),
                            json=METRICS, is_reusable=True)
    httpx_mock.add_response(url=re.compile(r".*/endpoints/metrics\?.*"),
                            json={"summary": {"total_requests": 0}}, is_reusable=True)
    at = make_app()
    at.session_state["conn_key"] = "wfr_apptest_key"
    _run(at)
    # nothing measured yet: no empty speed columns, the section says how to measure
    assert "tps_p50" not in _table(at).columns
    assert any("press Measure" in c.value for c in at.caption)
    at.button(key="cat_speed_measure").click()
    _run(at)
    t = _table(at)
    assert {"ttft_p50_ms", "ttft_p90_ms", "tps_p50", "tps_p90"} <= set(t.columns)
    assert t.loc["GLM-5.1", "ttft_p50_ms"] == 410.0 and t.loc["GLM-5.1", "tps_p90"] == 155.0
    assert math.isnan(t.loc["Kimi-K3", "tps_p50"])  # not measured: empty, never 0
    # the prices stay first, the speed right after them
    cols = list(t.reset_index().columns)
    assert cols.index("per_month") + 1 == cols.index("ttft_p50_ms")
    assert cols.index("ttft_p50_ms") + 1 == cols.index("tps_p50")  # the medians first
    assert any("1 model(s) measured" in c.value for c in at.caption)
    # measured once, kept for this session: a rerun asks nothing again
    asked = len([r for r in httpx_mock.get_requests() if "/endpoints/metrics" in str(r.url)])
    assert asked == 3
    _run(at)
    assert _table(at).loc["GLM-5.1", "tps_p50"] == 92.0
    assert len([r for r in httpx_mock.get_requests()
                if "/endpoints/metrics" in str(r.url)]) == asked
