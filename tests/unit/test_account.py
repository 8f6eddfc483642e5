"""Account views' core (wafer_playground/account.py) and the client calls behind them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import pytest

from tests.fake_wafer import FakeWafer, Hit, Reply, error_json
from wafer_playground import account
from wafer_playground.catalog import Model, Pricing
from wafer_playground.client import WaferClient

# the union of the integrations' fixtures (docs/spec/addendum-2026-12.md §4)
PRO = {"endpoint": "pass.wafer.ai", "billing_model": "pass_quota", "plan_tier": "pro",
       "window_start": "2026-04-25T00:00:00+00:00", "window_end": "2026-04-25T05:00:00+00:00",
       "seconds_to_window_end": 16449, "request_count": 58, "included_request_limit": 5000,
       "included_request_count": 58, "remaining_included_requests": 4942,
       "overage_request_count": 0, "current_period_used_percent": 1.2,
       "input_tokens": 2468184, "output_tokens": 12148, "total_tokens": 2480332}


def test_quota_levels() -> None:
    q = account.parse_quota(PRO)
    assert (q.plan_tier, q.billing_model, q.limit, q.used, q.remaining) == (
        "pro", "pass_quota", 5000, 58, 4942)
    assert q.used_percent == 1.2 and q.level == "ok"
    assert q.resets_in(datetime(2026, 4, 25, 4, 0, tzinfo=UTC)) == timedelta(hours=1)
    assert q.resets_in(datetime(2026, 4, 26, tzinfo=UTC)) == timedelta(0)
    warn = account.parse_quota({**PRO, "current_period_used_percent": 85.0})
    assert warn.level == "warning"
    over = account.parse_quota({**PRO, "current_period_used_percent": 101.0,
                                "overage_request_count": 50, "remaining_included_requests": 0})
    assert over.level == "exhausted" and over.used_percent == 101.0 and over.overage == 50
    negative = account.parse_quota({**PRO, "remaining_included_requests": -3})
    assert negative.remaining == 0 and negative.level == "exhausted"
    # percent derived when absent; hostile values ignored
    derived = account.parse_quota({"included_request_limit": 1000,
                                   "included_request_count": 250,
                                   "plan_tier": "<b>x</b>" * 20,
                                   "window_end": "not a date"})
    assert derived.used_percent == 25.0 and derived.window_end is None
    assert derived.plan_tier is not None and len(derived.plan_tier) == 40
    for bad in ([], {"plan_tier": "pro"}, {"current_period_used_percent": float("nan")}):
        with pytest.raises(ValueError):
            account.parse_quota(bad)


def model(mid: str, cin: str | None, cout: str | None) -> Model:
    return Model(mid, mid.upper(), pricing=Pricing(
        Decimal(cin) if cin else None, Decimal(cout) if cout else None))


def test_speed_from_metrics_and_frame() -> None:
    data = {"summary": {"total_requests": 42, "ttft_p50_ms": 410.0, "ttft_p90_ms": 1250.0,
                        "tps_p50": 92.0, "tps_p90": 155.0}}
    s = account.speed_from_metrics("glm", data)
    assert s == account.Speed("glm", 410.0, 1250.0, 92.0, 155.0, 42, "metrics")
    assert account.speed_from_metrics("glm", {"summary": {"total_requests": 0}}) is None
    assert account.speed_from_metrics("glm", {"summary": "x"}) is None
    partial = account.speed_from_metrics("glm", {"summary": {"total_requests": 3,
                                                             "ttft_p50_ms": None}})
    assert partial is not None and partial.ttft_p50_ms is None
    frame = account.speed_frame([model("GLM", "100", "320"), model("kimi", None, None)], [s])
    row = frame.set_index("id").loc["GLM"]
    assert row["output_usd_per_m"] == 3.2 and row["tps_p50"] == 92.0
    assert row["source"] == "Wafer metrics API"
    other = frame.set_index("id").loc["kimi"]
    assert np.isnan(other["tps_p50"]) and other["source"] == "not measured"
    fig = account.price_speed_figure(frame)
    assert list(fig.data[0].x) == [92.0] and list(fig.data[0].text) == ["GLM"]


def test_speed_from_the_request_log() -> None:
    log = pd.DataFrame({
        "model": ["a", "a", "a", "b", "a", "c"],
        "status": ["done", "done", "stopped", "done", "error", "done"],
        "base_url": ["http://x/v1"] * 5 + ["http://other/v1"],
        "ttft_s": [0.1, 0.2, 0.3, 1.0, 9.0, 0.5],
        "tokens_per_s": [10.0, 20.0, 30.0, np.nan, 99.0, 5.0]})
    speeds = {s.model: s for s in account.speed_from_log(log, "http://x/v1/")}
    assert set(speeds) == {"a", "b"}  # c went to another endpoint
    a = speeds["a"]
    assert a.requests == 3 and a.source == "log"  # the error row is left out
    assert a.ttft_p50_ms == pytest.approx(200.0) and a.tps_p50 == pytest.approx(20.0)
    assert a.tps_p90 == pytest.approx(28.0)
    assert speeds["b"].tps_p50 is None and speeds["b"].ttft_p50_ms == pytest.approx(1000.0)
    assert account.speed_from_log(pd.DataFrame()) == []


def test_usage_window() -> None:
    lo, hi = account.usage_window(date(2026, 12, 1), date(2026, 12, 3))
    assert (lo, hi) == ("2026-12-01T00:00:00+00:00", "2026-12-04T00:00:00+00:00")
    with pytest.raises(ValueError):
        account.usage_window(date(2026, 12, 3), date(2026, 12, 1))


def test_client_account_calls() -> None:
    fake = FakeWafer()  # tests/fake_wafer.py, through its MockTransport face
    for path in ("/usage/me", "/endpoints/metrics"):
        fake.script("GET", path, Reply(json={"ok": True}))
    fake.script("GET", "/inference/quota", error_json(404, "not_found", "x", "req_quota"))
    seen = fake.requests

    def params(hit: Hit) -> dict[str, str]:
        return dict(parse_qsl(hit.query))

    c = WaferClient("https://pass.wafer.ai/v1", api_key="wfr_k",
                    transport=fake.transport(), max_retries=0)
    c.usage_me(start_at="2026-12-01T00:00:00+00:00", end_at="2026-12-04T00:00:00+00:00")
    assert seen[-1].header("host") == "api.wafer.ai"
    assert params(seen[-1]) == {"start_at": "2026-12-01T00:00:00+00:00",
                                         "end_at": "2026-12-04T00:00:00+00:00"}
    c.usage_me("30d")
    assert params(seen[-1]) == {"period": "30d"}
    c.endpoint_metrics("pass.wafer.ai", 1440, model="Kimi-K3")
    assert params(seen[-1]) == {"endpoint": "pass.wafer.ai", "range_minutes": "1440",
                                         "model": "Kimi-K3"}
    with pytest.raises(Exception) as exc:
        c.inference_quota()
    assert getattr(exc.value, "status", None) == 404
    assert seen[-1].header("host") == "pass.wafer.ai" and seen[-1].path == "/v1/inference/quota"
    assert json.loads(seen[0].body or b"null") is None  # GETs carry no body
