"""Costs figures are pure: check what they draw via fig.to_dict()."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from components.costs import charts
from wafer_playground.catalog import Model, Pricing
from wafer_playground.costs import Workload, months_frame, plan, plan_frame, reprice
from wafer_playground.usage import metrics_view

D = Decimal


def arr(v: Any) -> list:  # type: ignore[type-arg]
    """A to_dict() array: plotly 6 packs numeric numpy arrays as {dtype, bdata}."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)

MODELS = [
    Model(id="GLM-5.1", display_name="GLM-5.1", tier="pass_included", context_length=202_752,
          pricing=Pricing(D(100), D(320), D(10))),
    Model(id="cheap", display_name="cheap", tier="serverless_only", context_length=1_048_576,
          pricing=Pricing(D(20), D(25), D(5))),
    Model(id="mystery", display_name="mystery", tier=None, pricing=Pricing()),
]


def _rows(growth: float = 0) -> list:  # type: ignore[type-arg]
    return plan(Workload(1000, 2000, 500, growth_pct=growth), MODELS)


def test_monthly_bars_cheapest_on_top_pass_green_unpublished_named() -> None:
    fig = charts.monthly_by_model(plan_frame(_rows())).to_dict()
    bar = fig["data"][0]
    # plotly draws bottom-up: the cheapest is last so it sits on top
    assert arr(bar["y"]) == ["GLM-5.1", "cheap"]
    assert arr(bar["x"]) == pytest.approx([108.0, 15.75])  # 0.0036*30000; 0.000525*30000
    assert arr(bar["marker"]["color"]) == [charts.PASS_COLOUR, charts.SERVERLESS_COLOUR]
    assert arr(bar["text"]) == ["$108.00", "$15.75"]
    assert "mystery" in fig["layout"]["title"]["text"]  # left out, and said so
    assert 0 not in arr(bar["x"])


def test_growth_lines_compound() -> None:
    fig = charts.growth_over_months(months_frame(_rows(growth=10))).to_dict()
    names = [t["name"] for t in fig["data"]]
    assert names == ["cheap", "GLM-5.1"]
    glm = fig["data"][1]
    assert arr(glm["x"]) == list(range(1, 13))
    assert arr(glm["y"])[0] == pytest.approx(108.0) and arr(glm["y"])[1] == pytest.approx(118.8)
    assert arr(glm["y"])[11] == pytest.approx(108.0 * 1.1**11)


def test_cost_vs_context_log_axis_and_fit_markers() -> None:
    rows = plan(Workload(10, 100_000, 1000, turns=3), MODELS)  # last turn 203,000 + 1000 tokens
    fig = charts.cost_vs_context(plan_frame(rows)).to_dict()
    assert fig["layout"]["xaxis"]["type"] == "log"
    by_name = {t["name"]: t for t in fig["data"]}
    assert arr(by_name["Pass"]["text"]) == ["GLM-5.1"]
    assert arr(by_name["Pass"]["marker"]["symbol"]) == ["x"]  # does not fit 202,752
    assert list(by_name["Serverless / other"]["marker"]["symbol"]) == ["circle"]
    assert "mystery" in fig["layout"]["title"]["text"]


def test_reprice_chart_marks_as_logged() -> None:
    frame = pd.DataFrame({"model": ["GLM-5.1"], "prompt_tokens": [1_000_000],
                          "cached_tokens": [0], "completion_tokens": [0],
                          "reasoning_tokens": [0]})
    res = reprice(frame, MODELS)
    fig = charts.reprice_by_model(res.per_model, float(res.as_logged.total)).to_dict()
    assert list(fig["data"][0]["y"]) == ["GLM-5.1", "cheap"]
    assert arr(fig["data"][0]["x"]) == pytest.approx([1.0, 0.2])
    assert fig["layout"]["shapes"][0]["x0"] == pytest.approx(1.0)
    assert "as logged, $1.00" in fig["layout"]["title"]["text"]


def test_daily_usage_and_metrics_series() -> None:
    days = pd.DataFrame({"date": pd.to_datetime(["2026-09-01", "2026-09-02"], utc=True),
                         "input_tokens": [10, 20], "output_tokens": [1, 2],
                         "usd": [0.5, 1.0]})
    fig = charts.daily_usage(days).to_dict()
    assert [t["name"] for t in fig["data"]] == ["input tokens", "output tokens",
                                                "spend (estimate)"]
    assert fig["data"][2]["yaxis"] == "y2" and fig["layout"]["barmode"] == "stack"
    v = metrics_view({"summary": {}, "timeseries": [
        {"time": "2026-09-01T10:00:00Z", "requests": 5, "error_count": 1, "ttft_p50_ms": 90}]})
    series = charts.metrics_series(v.timeseries).to_dict()
    assert [t["name"] for t in series["data"]] == ["requests", "errors", "TTFT p50 (ms)"]
    empty = charts.metrics_series(metrics_view({"summary": {}}).timeseries).to_dict()
    assert empty["data"] == [] and "No requests" in empty["layout"]["title"]["text"]


def test_cost_vs_context_names_crowded_points_on_hover_only() -> None:
    twins = MODELS + [Model(id="twin", display_name="twin", tier="serverless_only",
                            context_length=1_048_576, pricing=Pricing(D(10), D(10), D(1)))]
    fig = charts.cost_vs_context(plan_frame(plan(Workload(10, 100, 10), twins))).to_dict()
    other = next(t for t in fig["data"] if t["name"] == "Serverless / other")
    assert sorted(arr(other["customdata"])) == ["cheap", "twin"]
    assert arr(other["text"]) == ["", ""]  # same context: hover only
    pass_trace = next(t for t in fig["data"] if t["name"] == "Pass")
    assert arr(pass_trace["text"]) == ["GLM-5.1"]


def test_daily_cost_bars() -> None:
    days = pd.DataFrame({"date": pd.to_datetime(["2026-09-01", "2026-09-02"], utc=True),
                         "usd": [1.5, 0.25], "requests": [3, 1]})
    fig = charts.daily_cost(days).to_dict()
    assert arr(fig["data"][0]["y"]) == [1.5, 0.25]
    assert arr(fig["data"][0]["customdata"]) == [3, 1]
    assert fig["layout"]["yaxis"]["tickprefix"] == "$"
