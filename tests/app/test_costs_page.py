"""The Costs page under AppTest: planner inputs -> table values checked by hand, share-link
restore, endpoint switch without stale prices, request-log reprice, account usage + errors."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal

import pandas as pd
import pytest
from pytest_httpx import HTTPXMock
from streamlit.testing.v1 import AppTest

from tests.app.conftest import FAKE_BASE, make_app
from wafer_playground.costs import Scenario

pytestmark = pytest.mark.httpx_mock(assert_all_responses_were_requested=False)
OTHER_BASE = "http://other.test/v1"


def card(mid: str, tier: str | None, cents: tuple[int, int, int] | None,
         ctx: int = 262_144) -> dict:
    pricing = None if cents is None else {
        "input_cents_per_million": cents[0], "output_cents_per_million": cents[1],
        "cache_read_cents_per_million": cents[2], "currency": "usd"}
    return {"id": mid, "object": "model", "owned_by": "wafer", "max_model_len": ctx,
            "wafer": {"display_name": mid, "tier": tier, "context_length": ctx,
                      "capabilities": {"vision": False, "tools": True, "reasoning": True},
                      **({"pricing": pricing} if pricing else {})}}


MODELS = {"object": "list", "data": [
    card("GLM-5.1", "pass_included", (100, 320, 10), 202_752),
    card("Kimi-K2.6", "serverless_only", (68, 315, 7)),
    card("Mystery-1", "serverless_only", None),
]}


def _serve(httpx_mock: HTTPXMock, base: str = FAKE_BASE, payload: dict = MODELS) -> None:
    httpx_mock.add_response(url=f"{base}/models", json=payload, is_reusable=True)


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _plan(at: AppTest) -> pd.DataFrame:
    tables = [d for d in at.dataframe if "per_month_usd" in d.value.columns]
    assert len(tables) == 1
    return tables[0].value.set_index("model")


def _costs_page(httpx_mock: HTTPXMock) -> AppTest:
    _serve(httpx_mock)
    return _run(make_app("pages/costs.py"))


def test_default_workload_priced_on_every_model(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    assert at.title[0].value == "Costs"
    # by default only what the endpoint serves; the headline names a served model
    assert not any(_plan(at)["listed"].str.startswith("snapshot only"))
    head = " ".join(m.value for m in at.markdown if m.value.startswith("###"))
    assert "Cheapest served here: **Kimi-K2.6**" in head
    at.toggle(key="costs_snapshot_too").set_value(True)
    _run(at)
    head = " ".join(m.value for m in at.markdown if m.value.startswith("###"))
    assert "Cheapest served here: **Kimi-K2.6**" in head  # never a snapshot-only model
    t = _plan(at)
    # 1000 req/day, 2000 in, 500 out, no cache: GLM 2000*100 + 500*320 = 360000 / 1e8 = $0.0036
    assert t.loc["GLM-5.1", "per_request"] == "$0.0036"
    assert t.loc["GLM-5.1", "per_month_usd"] == pytest.approx(108.0)
    assert t.loc["GLM-5.1", "tier"] == "Pass (covered by Wafer Pass)"
    assert t.loc["GLM-5.1", "listed"] == "listed by this endpoint"
    assert t.loc["GLM-5.1", "price_source"].startswith("live from wafer.test at ")
    # snapshot-only models are there too, labelled with their dated source
    assert t.loc["Kimi-K3", "listed"].startswith("snapshot only")
    assert t.loc["Kimi-K3", "price_source"].startswith("snapshot of 2026-09-02")
    # a live card without pricing is not published, never $0, and ranked last
    assert t.loc["Mystery-1", "per_month"] == "not published"
    assert math.isnan(t.loc["Mystery-1", "per_month_usd"])
    assert pd.isna(t.loc["Mystery-1", "rank"])
    assert list(t["rank"].dropna()) == sorted(t["rank"].dropna())
    captions = " ".join(c.value for c in at.caption)
    assert "live from wafer.test" in captions and "snapshot of 2026-09-02" in captions


def test_inputs_change_the_table_to_hand_computed_numbers(app_env: str,
                                                          httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    at.number_input(key="costs_rpd").set_value(2000)
    at.number_input(key="costs_in").set_value(1000)
    at.number_input(key="costs_out").set_value(200)
    at.number_input(key="costs_hit").set_value(50.0)
    at.number_input(key="costs_retry").set_value(10.0)
    at.number_input(key="costs_budget").set_value(100.0)
    _run(at)
    t = _plan(at)
    # GLM: 500*100 + 500*10 + 200*320 = 119000 / 1e8 = $0.00119 per request;
    # 2200 billed/day -> $2.618/day -> $78.54/month; 100 / (0.00119*1.1*30) = 2546.5
    assert t.loc["GLM-5.1", "per_request"] == "$0.00119"
    assert t.loc["GLM-5.1", "per_day_usd"] == pytest.approx(2.618)
    assert t.loc["GLM-5.1", "per_month_usd"] == pytest.approx(78.54)
    assert t.loc["GLM-5.1", "affordable_per_day"] == 2546
    # Kimi-K2.6 live price: 500*68 + 500*7 + 200*315 = 100500 -> $0.001005; $66.33/month
    assert t.loc["Kimi-K2.6", "per_month_usd"] == pytest.approx(66.33)
    assert t.loc["Kimi-K2.6", "affordable_per_day"] == 3015
    # the link carries the scenario (and nothing secret)
    assert at.query_params["rpd"] == "2000" and at.query_params["hit"] == "50"
    assert not any("key" in k for k in at.query_params)
    share = [c.value for c in at.code if "rpd=2000" in c.value]
    assert share and "budget=100" in share[0]


def test_share_link_restores_the_scenario(app_env: str, httpx_mock: HTTPXMock) -> None:
    _serve(httpx_mock)
    at = make_app("pages/costs.py")
    for k, v in {"rpd": "2000", "in": "1000", "out": "200", "hit": "50", "retry": "10",
                 "budget": "100", "turns": "1", "mode": "fixed"}.items():
        at.query_params[k] = v
    _run(at)
    assert at.number_input(key="costs_rpd").value == 2000
    t = _plan(at)
    assert t.loc["GLM-5.1", "per_month_usd"] == pytest.approx(78.54)


def test_bad_link_values_are_reported_not_raised(app_env: str, httpx_mock: HTTPXMock) -> None:
    _serve(httpx_mock)
    at = make_app("pages/costs.py")
    at.query_params["hit"] = "250"
    at.query_params["rpd"] = "lots"
    _run(at)
    assert any("were ignored" in w.value for w in at.warning)
    assert at.number_input(key="costs_hit").value == 0.0


def test_multi_turn_and_p50_p90(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    at.number_input(key="costs_rpd").set_value(100)
    at.number_input(key="costs_in").set_value(1000)
    at.number_input(key="costs_out").set_value(1000)
    at.number_input(key="costs_turns").set_value(5)
    at.toggle(key="costs_hcache").set_value(False)
    _run(at)
    # history mean (5-1)/2 * 2000 = 4000; prompt 5000 uncached: 5000*100 + 1000*320 = 820000
    assert _plan(at).loc["GLM-5.1", "per_request"] == "$0.0082"
    at.toggle(key="costs_hcache").set_value(True)
    _run(at)
    # history cached: 1000*100 + 4000*10 + 1000*320 = 460000
    assert _plan(at).loc["GLM-5.1", "per_request"] == "$0.0046"
    # the last turn is 1000 + 4*2000 + 1000 = 10000 tokens: fits 202,752
    assert bool(_plan(at).loc["GLM-5.1", "fits_context"]) is True


def test_switching_endpoint_never_keeps_stale_live_prices(app_env: str,
                                                          httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    assert _plan(at).loc["GLM-5.1", "per_request"] == "$0.0036"
    _serve(httpx_mock, OTHER_BASE, {"object": "list", "data": [
        card("GLM-5.1", "pass_included", (200, 640, 20))]})
    at.session_state["conn_custom_url"] = OTHER_BASE
    _run(at)
    at.toggle(key="costs_snapshot_too").set_value(True)
    _run(at)
    t = _plan(at)
    assert t.loc["GLM-5.1", "per_request"] == "$0.0072"
    assert t.loc["GLM-5.1", "price_source"].startswith("live from other.test")
    assert t.loc["Kimi-K2.6", "listed"].startswith("snapshot only")  # not listed there


def test_unreachable_endpoint_falls_back_to_labelled_snapshot(app_env: str,
                                                              httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", status_code=500, is_reusable=True,
                            json={"error": {"message": "boom", "type": "server_error"}})
    at = _run(make_app("pages/costs.py"))
    t = _plan(at)
    assert (t["listed"].str.startswith("snapshot only")).all()
    assert any("No live prices from this endpoint" in c.value for c in at.caption)
    # GLM-5.1 at its snapshot price (100/320/10) gives the same $0.0036
    assert t.loc["GLM-5.1", "per_request"] == "$0.0036"


def test_reprice_the_request_log(app_env: str, httpx_mock: HTTPXMock, tmp_path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from wafer_playground.store import SQLiteStore

    db = tmp_path / "log.db"
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(db))
    store = SQLiteStore(str(db))
    ok = store.log_request(model="GLM-5.1", base_url=FAKE_BASE, surface="chat", params={},
                           status="done", usage={"prompt_tokens": 1_000_000,
                                                 "completion_tokens": 500_000,
                                                 "prompt_tokens_details": {
                                                     "cached_tokens": 200_000}},
                           cost=Decimal("2.42"))
    assert ok
    store.log_request(model="GLM-5.1", base_url=FAKE_BASE, surface="chat", params={},
                      status="error", http_status=500)
    store.close()
    at = _costs_page(httpx_mock)
    at.radio(key="costs_rp_source").set_value("This app's request log")
    _run(at)
    table = next(d.value for d in at.dataframe if "mean_request_usd" in d.value.columns)
    per = table.set_index("model")
    assert per.loc["GLM-5.1", "total"] == "$2.42"  # 800k*100 + 200k*10 + 500k*320 cents/1e8
    # Kimi-K2.6: 800k*68 + 200k*7 + 500k*315 = 54.4c + 1.4c + 157.5c = $2.133
    assert per.loc["Kimi-K2.6", "total"] == "$2.13"
    assert per.loc["Kimi-K2.6", "output_usd"] == pytest.approx(1.575)
    assert per.loc["Kimi-K2.6", "vs_logged"] == pytest.approx(2.133 / 2.42)
    assert per.loc["Mystery-1", "total"] == "not published"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cost as logged (current prices)"] == "$2.42"
    assert any("1 rows could not be priced" in w.value for w in at.warning)
    bad = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert "request status: error" in bad["reason"].iloc[0]
    assert any("recorded at request time: $2.42" in c.value for c in at.caption)


USAGE_ME = {"user_id": "u", "period_start": "2026-09-01T00:00:00+00:00",
            "period_end": "2026-09-02T00:00:00+00:00",
            "days": [{"date": "2026-09-01T00:00:00+00:00", "input_tokens": 2_000_000,
                      "output_tokens": 500_000}],
            "models": [{"model": "GLM-5.1", "input_tokens": 2_000_000, "output_tokens": 500_000,
                        "cache_read_tokens": 1_000_000, "request_count": 42,
                        "estimated_cost_cents": 270}],
            "total_input_tokens": 2_000_000, "total_output_tokens": 500_000,
            "total_requests": 42, "total_estimated_cost_cents": 270}
METRICS = {"endpoint": "wafer.test", "range_minutes": 60, "queried_at": "2026-09-02T10:00:00Z",
           "summary": {"total_requests": 42, "rps": 0.0117, "ttft_p50_ms": 210.0,
                       "ttft_p90_ms": 480.0, "ttft_p99_ms": 900.0, "tps_p10": 30.0,
                       "tps_p50": 55.0, "tps_p90": 70.0, "tps_p99": 80.0,
                       "cache_hit_pct": 50.0, "count_2xx": 40, "count_4xx": 1, "count_5xx": 1,
                       "error_rate_pct": 4.8},
           "backends": [], "timeseries": [{"time": "2026-09-02T09:00:00Z", "requests": 42,
                                           "error_count": 2, "ttft_p50_ms": 210.0}]}


def test_account_usage_and_metrics(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    httpx_mock.add_response(url=f"{FAKE_BASE}/usage/me?period=7d", json=USAGE_ME)
    httpx_mock.add_response(
        url=f"{FAKE_BASE}/endpoints/metrics?endpoint=wafer.test&range_minutes=60", json=METRICS)
    at.button(key="costs_ac_fetch").click()
    _run(at)
    metrics = {m.label: (m.value, m.delta) for m in at.metric}
    # GLM: 1M uncached*100 + 1M cached*10 + 500k*320 = 270M cent-tokens = $2.70
    assert metrics["Spend (priced here)"] == ("$2.70", "Endpoint's estimate $2.70")
    assert metrics["Error rate"][0] == "4.8 %"
    pct = next(d.value for d in at.dataframe if "p50" in d.value.columns).set_index("metric")
    assert pct.loc["time to first token (ms)", "p90"] == 480.0


def test_account_403_is_a_readable_error(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    err = {"error": {"type": "permission_error", "code": "pass_key_not_allowed",
                     "message": "Pass keys cannot read account usage", "request_id": "req_1"}}
    httpx_mock.add_response(url=f"{FAKE_BASE}/usage/me?period=7d", status_code=403, json=err)
    httpx_mock.add_response(
        url=f"{FAKE_BASE}/endpoints/metrics?endpoint=wafer.test&range_minutes=60",
        status_code=403, json=err)
    at.button(key="costs_ac_fetch").click()
    _run(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and all("403" in e and "pass_key_not_allowed" in e for e in errors)


def test_p50_p90_uses_the_lognormal_mean(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    at.radio(key="costs_mode").set_value("p50p90")
    _run(at)
    at.number_input(key="costs_in").set_value(1000)
    at.number_input(key="costs_in90").set_value(4000)
    at.number_input(key="costs_out").set_value(500)
    at.number_input(key="costs_out90").set_value(500)
    _run(at)
    # sigma = ln(4)/1.28155 = 1.08173; mean = 1000*exp(sigma^2/2) = 1795.12 input tokens;
    # GLM: (1795.12*100 + 500*320) / 1e8 = $0.0033951 per request
    assert _plan(at).loc["GLM-5.1", "per_request"] == "$0.0034"  # 3 significant digits
    assert _plan(at).loc["GLM-5.1", "per_month_usd"] == pytest.approx(0.0033951188 * 30_000)
    assert at.query_params["mode"] == "p50p90" and at.query_params["in90"] == "4000"


def _demo_costs_step(httpx_mock: HTTPXMock, budget: float | None = None) -> AppTest:
    """The Costs page as the scripted demo's last step opens it (components/presentation)."""
    from components import presentation

    _serve(httpx_mock)
    at = make_app("pages/costs.py")
    at.session_state[presentation.PRESENT_KEY] = True
    at.session_state[presentation.DEMO_KEY] = at.session_state[presentation.DEMO_FIRE] = 3
    if budget is not None:
        at.session_state["_costs_scenario"] = replace(Scenario(), budget_month=budget)
    return _run(at)


def _headlines(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown if m.value.startswith("###"))


def test_the_demo_costs_step_presets_a_budget(app_env: str, httpx_mock: HTTPXMock) -> None:
    from components.presentation import DEMO_BUDGET

    at = _demo_costs_step(httpx_mock)
    assert at.number_input(key="costs_budget").value == DEMO_BUDGET
    # the budget answer is a headline. Kimi-K2.6: 2000*68 + 500*315 = 293500 -> $0.002935
    # a request, x1000 x30 = $88.05/month; $100 / ($0.002935 x 30) = 1135.7 requests/day
    assert "$100.00 / month buys **1,135 requests/day** on **Kimi-K2.6**" in _headlines(at)
    assert at.query_params["budget"] == "100"
    # preset once: the presenter can clear it and it stays cleared
    at.number_input(key="costs_budget").set_value(0.0)
    _run(at)
    assert "requests/day" not in _headlines(at)


def test_the_demo_keeps_a_budget_already_set(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _demo_costs_step(httpx_mock, budget=250.0)
    assert at.number_input(key="costs_budget").value == 250.0
    assert "$250.00 / month buys" in _headlines(at)


def test_outside_the_demo_no_budget_is_preset(app_env: str, httpx_mock: HTTPXMock) -> None:
    at = _costs_page(httpx_mock)
    assert at.number_input(key="costs_budget").value == 0.0
    assert "requests/day" not in _headlines(at)


def test_the_demo_budget_on_free_models_says_it_is_not_the_limit(
        app_env: str, httpx_mock: HTTPXMock) -> None:
    """The local engine's models cost nothing per token: no "buys N requests/day"."""
    from components import presentation

    _serve(httpx_mock, payload={"object": "list", "data": [
        card("smol-local", None, (0, 0, 0)), card("smol-local-2", None, (0, 0, 0))]})
    at = make_app("pages/costs.py")
    at.session_state[presentation.PRESENT_KEY] = True
    at.session_state[presentation.DEMO_KEY] = at.session_state[presentation.DEMO_FIRE] = 3
    _run(at)
    head = _headlines(at)
    assert "$100.00 / month: **smol-local** has no per-token charge" in head, head
    assert "requests/day" not in head
