"""Cost engine: hand-computed cases, including the cache / reasoning double-count traps."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from wafer_playground.catalog import Model, PriceSource, Pricing
from wafer_playground.costs import (
    CACHE_FALLBACK_NOTE,
    Cost,
    SessionTotal,
    Usage,
    UsageError,
    Workload,
    cost_of,
    format_usd,
    lognormal_mean,
    plan,
    plan_frame,
    price_tokens,
    reprice,
    row_costs,
    worst_case,
)

SRC = PriceSource("live", "wafer.test", "2026-09-10 14:02:00")
# GLM-5.1 in the docs: 100 / 320 / 10 cents per million (input / output / cache read)
GLM = Pricing(Decimal(100), Decimal(320), Decimal(10), source=SRC)
D = Decimal


def test_openai_usage_cached_is_subset_of_prompt_and_reasoning_of_completion() -> None:
    u = Usage.from_openai({
        "prompt_tokens": 1_000_000, "completion_tokens": 500_000, "total_tokens": 1_500_000,
        "prompt_tokens_details": {"cached_tokens": 200_000},
        "completion_tokens_details": {"reasoning_tokens": 100_000},
    })
    assert (u.prompt_tokens, u.cached_tokens, u.uncached_tokens) == (1_000_000, 200_000, 800_000)
    c = cost_of(u, GLM)
    # 800k*100c/M = 80c; 200k*10c/M = 2c; 500k*320c/M = 160c
    assert (c.input, c.cached, c.output) == (D("0.80"), D("0.02"), D("1.60"))
    assert c.total == D("2.42")
    # traps: prompt priced in full + cache again would be 2.62; reasoning added again 2.74
    assert c.total not in (D("2.62"), D("2.74"), D("2.94"))
    assert c.reasoning == D("0.32")  # a breakdown of output, not an extra charge
    assert c.kind == "actual" and c.source == SRC and c.missing == () and c.notes == ()


def test_spec_example_tiny_amounts() -> None:
    u = Usage.from_openai({"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52,
                           "prompt_tokens_details": {"cached_tokens": 0},
                           "completion_tokens_details": {"reasoning_tokens": 35}})
    c = cost_of(u, GLM)
    assert c.input == D("0.000012") and c.output == D("0.000128") and c.total == D("0.00014")
    assert format_usd(c.input) == "$0.000012"
    assert format_usd(c.total) == "$0.00014"


def test_sglang_top_level_reasoning_is_used_once() -> None:
    u = Usage.from_openai({"prompt_tokens": 10, "completion_tokens": 20, "reasoning_tokens": 15})
    assert u.reasoning_tokens == 15
    both = Usage.from_openai({"prompt_tokens": 10, "completion_tokens": 20, "reasoning_tokens": 15,
                              "completion_tokens_details": {"reasoning_tokens": 15}})
    assert both.reasoning_tokens == 15 and both.completion_tokens == 20


def test_anthropic_input_tokens_exclude_cache_reads_and_writes() -> None:
    u = Usage.from_anthropic({"input_tokens": 50, "cache_read_input_tokens": 1000,
                              "cache_creation_input_tokens": 200, "output_tokens": 30})
    assert (u.prompt_tokens, u.cached_tokens, u.uncached_tokens) == (1250, 1000, 250)
    c = cost_of(u, GLM)
    # 250*100 + 1000*10 + 30*320 = 25000 + 10000 + 9600 = 44600 cent-tokens / 1e8
    assert c.total == D("0.000446")
    # the same request reported the OpenAI way must cost the same
    same = Usage.from_openai({"prompt_tokens": 1250, "completion_tokens": 30,
                              "prompt_tokens_details": {"cached_tokens": 1000}})
    assert cost_of(same, GLM).total == c.total


def test_missing_cache_read_price_falls_back_to_input_price_and_says_so() -> None:
    p = Pricing(D(100), D(320), None, source=SRC)
    c = cost_of(Usage(1_000_000, 500_000, 200_000), p)
    assert c.cached == D("0.20") and c.total == D("2.60")
    assert c.missing == ("cache_read",) and c.notes == (CACHE_FALLBACK_NOTE,)
    # with no cached tokens the price is not needed: no note
    c0 = cost_of(Usage(1000, 10), p)
    assert c0.missing == () and c0.notes == () and c0.cached == 0


@pytest.mark.parametrize("pricing, missing", [
    (Pricing(D(100), None, D(10)), ("output",)),
    (Pricing(None, D(320), D(10)), ("input",)),
    (Pricing(), ("input", "output")),
])
def test_unpublished_price_is_never_zero(pricing: Pricing, missing: tuple[str, ...]) -> None:
    c = cost_of(Usage(1000, 1000), pricing)
    assert c.total is None and c.missing == missing
    assert format_usd(c.total) == "not published"
    assert c.label() == "not published"


def test_zero_price_is_free_not_missing() -> None:
    c = cost_of(Usage(1000, 1000, 500), Pricing(D(0), D(0), D(0)))
    assert c.total == 0 and c.missing == ()
    assert format_usd(c.total) == "$0.00"


def test_worst_case_assumes_no_cache_and_full_max_tokens() -> None:
    c = worst_case(10_000, 4_096, GLM)
    assert c.kind == "estimate"
    # 10000*100 + 4096*320 = 1_000_000 + 1_310_720 = 2_310_720 / 1e8
    assert c.total == D("0.0231072") and c.cached == 0


@pytest.mark.parametrize("bad", [
    dict(prompt_tokens=10, completion_tokens=5, cached_tokens=11),
    dict(prompt_tokens=10, completion_tokens=5, reasoning_tokens=6),
    dict(prompt_tokens=-1, completion_tokens=5),
    dict(prompt_tokens=1.5, completion_tokens=5),
])
def test_impossible_usage_is_rejected(bad: dict) -> None:
    with pytest.raises(UsageError):
        Usage(**bad)


def test_from_openai_rejects_non_numbers() -> None:
    with pytest.raises(UsageError):
        Usage.from_openai({"prompt_tokens": "12", "completion_tokens": 1})
    assert Usage.from_openai({"prompt_tokens": 12.0, "completion_tokens": None}) == Usage(12, 0)


@pytest.mark.parametrize("value, text", [
    (None, "not published"),
    (D(0), "$0.00"),
    (D("1234.565"), "$1,234.57"),
    (D("1"), "$1.00"),
    (D("0.5"), "$0.50"),
    (D("0.0123456"), "$0.0123"),
    (D("0.000012"), "$0.000012"),
    (D("0.00001234"), "$0.0000123"),
    (D("0.9999999"), "$1.00"),
    (D("-2.5"), "-$2.50"),
    (float("nan"), "not published"),
    (0.25, "$0.25"),
    (np.float64(12.5), "$12.50"),
])
def test_format_usd(value: Decimal | float | None, text: str) -> None:
    assert format_usd(value) == text


def test_session_total_keeps_actual_and_estimate_apart() -> None:
    t = SessionTotal()
    t.add(cost_of(Usage(1_000_000, 0), GLM))  # $1.00 actual
    t.add(worst_case(0, 1_000_000, GLM))  # $3.20 estimate (an aborted stream, say)
    t.add(cost_of(Usage(10, 10), Pricing()))  # unpriced
    assert (t.actual, t.estimate, t.total) == (D("1.00"), D("3.20"), D("4.20"))
    assert (t.n_actual, t.n_estimate, t.n_unpriced) == (1, 1, 1)
    assert t.describe() == ("$1.00 actual (1 requests) + $3.20 estimated (1); "
                            "1 not priced (price not published)")


def test_row_costs_match_decimal_engine() -> None:
    rng = np.random.default_rng(7)
    prompt = rng.integers(0, 200_000, 500)
    cached = (prompt * rng.random(500)).astype("int64")
    out = rng.integers(0, 30_000, 500)
    pricings = [GLM, Pricing(D(20), D(25), D(5)), Pricing(D(100), D(320), None),
                Pricing(None, D(1), D(1))]
    m = row_costs(prompt - cached, cached, out, pricings)
    assert m.shape == (500, 4)
    for i in range(0, 500, 37):
        for j, p in enumerate(pricings):
            exact = cost_of(Usage(int(prompt[i]), int(out[i]), int(cached[i])), p).total
            if exact is None:
                assert np.isnan(m[i, j])
            else:
                assert m[i, j] == pytest.approx(float(exact), rel=1e-12)


def test_row_costs_unpublished_cache_price_only_hurts_rows_with_cache() -> None:
    p = Pricing(D(100), D(320), None)
    # the row with cached tokens falls back to the input price like the Decimal engine
    m = row_costs(np.array([10, 10]), np.array([0, 5]), np.array([1, 1]), [p])
    assert m[0, 0] == pytest.approx(float(cost_of(Usage(10, 1), p).total))
    assert m[1, 0] == pytest.approx(float(cost_of(Usage(15, 1, 5), p).total))
    q = Pricing(D(100), D(320), D(10))
    none_rate = row_costs(np.array([10]), np.array([5]), np.array([1]),
                          [Pricing(None, D(320), None), q])
    assert np.isnan(none_rate[0, 0]) and not np.isnan(none_rate[0, 1])


def _model(mid: str, pricing: Pricing, tier: str | None = None, ctx: int | None = None) -> Model:
    return Model(id=mid, display_name=mid, tier=tier, context_length=ctx, pricing=pricing)


def test_planner_hand_computed() -> None:
    w = Workload(requests_per_day=1000, input_tokens=2000, output_tokens=500, cache_hit_pct=25,
                 retry_pct=10)
    rows = plan(w, [_model("GLM-5.1", GLM, "pass_included", 202_752),
                    _model("cheap", Pricing(D(20), D(25), D(5))),
                    _model("unpriced", Pricing())], budget_month=D(50))
    assert [r.model.id for r in rows] == ["cheap", "GLM-5.1", "unpriced"]
    glm = rows[1]
    # per request: 1500*100 + 500*10 + 500*320 = 150000+5000+160000 = 315000 / 1e8
    assert glm.per_request.total == D("0.00315")
    assert glm.per_day == D("3.465")  # 1100 billed requests (10% retries)
    assert glm.per_month == D("103.95")
    assert glm.affordable_per_day == 481  # 50 / (0.00315 * 1.1 * 30) = 481.0
    assert glm.fits_context is True
    assert rows[2].per_month is None and rows[2].affordable_per_day is None
    frame = plan_frame(rows)
    assert list(frame["model"]) == ["cheap", "GLM-5.1", "unpriced"]
    assert frame.loc[1, "per_month"] == "$103.95"
    assert frame.loc[2, "per_month"] == "not published" and pd.isna(frame.loc[2, "rank"])
    assert bool(frame.loc[1, "pass_included"]) is True


def test_planner_multi_turn_history_with_and_without_cache() -> None:
    # 3 turns of 100 in / 50 out: prompts 100, 250, 400 -> mean 250, mean history 150
    cached = Workload(1, 100, 50, turns=3, history_cached=True)
    assert cached.per_request() == (D(100), D(150), D(50))
    fresh = Workload(1, 100, 50, turns=3, history_cached=False, cache_hit_pct=10)
    unc, cac, out = fresh.per_request()
    assert (unc + cac, cac) == (D(250), D(25))
    assert cached.max_prompt_tokens == 450  # last prompt 400 + its 50 output tokens
    small = _model("small", GLM, ctx=400)
    assert plan(cached, [small])[0].fits_context is False


def test_planner_growth_compounds_monthly() -> None:
    w = Workload(100, 1_000_000, 0, growth_pct=10)
    row = plan(w, [_model("m", GLM)], horizon=3)[0]
    # $1.00 per request * 100/day * 30 = $3000, then +10% a month
    assert row.months == (D(3000), D("3300.0"), D("3630.00"))


def test_lognormal_mean() -> None:
    assert lognormal_mean(100, 100) == 100
    m = lognormal_mean(1000, 4000)
    # sigma = ln 4 / 1.28155 = 1.0817; mean = 1000 * exp(sigma^2/2) = 1794.6
    assert m == pytest.approx(1794.6, rel=1e-3)


def test_reprice_exact_totals_and_own_model_costs() -> None:
    frame = pd.DataFrame({
        "model": ["GLM-5.1", "glm-5.1", "cheap", "gone"],
        "prompt_tokens": [1_000_000, 0, 1_000_000, 5],
        "cached_tokens": [200_000, 0, 0, 0],
        "completion_tokens": [500_000, 1_000_000, 0, 5],
        "reasoning_tokens": [0, 0, 0, 0],
    })
    models = [_model("GLM-5.1", GLM), _model("cheap", Pricing(D(20), D(25), D(5))),
              _model("nothing", Pricing())]
    res = reprice(frame, models)
    assert res.totals == Usage(2_000_005, 1_500_005, 200_000)
    per = res.per_model.set_index("model")
    # all usage on GLM: 1_800_005*100 + 200_000*10 + 1_500_005*320 = 662_002_100 / 1e8
    assert per.loc["GLM-5.1", "_exact"] == D("6.620021")
    assert per.loc["nothing", "total"] == "not published"
    assert per.loc["GLM-5.1", "mean_request_usd"] == pytest.approx(6.620021 / 4)
    # per-row on GLM: 2.42, 3.20, 1.00, 0.0000210 -> p90 (linear) = 2.42 + 0.7*(3.20-2.42)
    assert per.loc["GLM-5.1", "p90_request_usd"] == pytest.approx(2.42 + 0.7 * 0.78)
    assert np.isnan(per.loc["nothing", "p90_request_usd"])
    assert res.requests == 4
    assert list(res.per_model["model"]) == ["cheap", "GLM-5.1", "nothing"]
    # own models: case-insensitive id match; "gone" is not in the catalog
    assert res.as_logged_rows == 3 and res.unpriced_rows == 1
    assert res.as_logged is not None
    assert res.as_logged.total == D("2.42") + D("3.20") + D("0.20")
    assert res.row_cost[1] == pytest.approx(3.2) and np.isnan(res.row_cost[3])


def test_price_tokens_accepts_fractional_means() -> None:
    c = price_tokens(D("0.5"), 0, 0, GLM, kind="estimate")
    assert c.total == D("0.0000005") and isinstance(c, Cost)


def test_reprice_aggregated_rows_have_no_per_row_spread() -> None:
    frame = pd.DataFrame({"model": ["GLM-5.1"], "prompt_tokens": [1_000_000],
                          "cached_tokens": [0], "completion_tokens": [0],
                          "reasoning_tokens": [0], "requests": [4]})
    per = reprice(frame, [_model("GLM-5.1", GLM)]).per_model.iloc[0]
    assert per["mean_request_usd"] == pytest.approx(0.25)
    assert np.isnan(per["p90_request_usd"])


def test_scenario_round_trips_through_query_params() -> None:
    from wafer_playground.costs import Scenario

    s = Scenario(requests_per_day=2500, token_mode="p50p90", input_tokens=800, input_p90=3000,
                 output_tokens=200, output_p90=900, cache_hit_pct=37.5, turns=4,
                 history_cached=False, retry_pct=2, growth_pct=15, budget_month=120)
    params = s.to_params()
    assert params["rpd"] == "2500" and params["hit"] == "37.5" and params["hcache"] == "0"
    assert all(isinstance(v, str) for v in params.values())
    back, problems = Scenario.from_params(params)
    assert back == s and problems == []
    w = back.workload()
    assert w.input_tokens == pytest.approx(lognormal_mean(800, 3000))
    assert back.budget == D(120)


def test_scenario_from_hostile_params_falls_back_and_reports() -> None:
    from wafer_playground.costs import Scenario

    s, problems = Scenario.from_params({"rpd": "nan", "hit": "150", "turns": "2.5",
                                        "mode": "evil", "in": "1e3", "key": "wfr_secret"})
    assert s.requests_per_day == Scenario().requests_per_day and s.input_tokens == 1000
    assert s.cache_hit_pct == 0 and s.turns == 1 and s.token_mode == "fixed"
    assert len(problems) == 4
    assert "key" not in s.to_params()


def test_models_for_pricing_keeps_live_cards_and_labels_snapshot_extras() -> None:
    from wafer_playground.costs import describe_sources, models_for_pricing

    snap_src = PriceSource("snapshot", "bundled", "2026-09-02")
    live = [_model("GLM-5.1", GLM)]
    snap = [_model("glm-5.1", Pricing(D(1), D(1), D(1), source=snap_src)),
            _model("Kimi-K3", Pricing(D(300), D(1500), D(30), source=snap_src)),
            _model("GLM-5.3-Flash", Pricing())]
    models, where = models_for_pricing(live, snap)
    assert [m.id for m in models] == ["GLM-5.1", "Kimi-K3", "GLM-5.3-Flash"]
    assert models[0].pricing is GLM  # the live price wins
    assert where["Kimi-K3"].startswith("snapshot only") and where["GLM-5.1"].startswith("listed")
    assert describe_sources(models) == ("live from wafer.test at 2026-09-10 14:02:00 for 1 model; "
                                        "snapshot of 2026-09-02 (bundled) for 1 model; "
                                        "1 not published")


def test_reprice_matches_a_per_row_decimal_loop_on_random_rows() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    prompt = rng.integers(0, 300_000, n)
    cached = (prompt * rng.choice([0.0, 0.3, 0.95], n)).astype("int64")
    out = rng.integers(0, 40_000, n)
    reasoning = (out * rng.random(n) * 0.5).astype("int64")
    models = [_model("GLM-5.1", GLM), _model("cheap", Pricing(D(20), D(25), D(5))),
              _model("nocache", Pricing(D(100), D(320), None)), _model("nothing", Pricing())]
    names = rng.choice(["GLM-5.1", "CHEAP", "nocache", "nothing", "unknown"], n)
    frame = pd.DataFrame({"model": names, "prompt_tokens": prompt, "cached_tokens": cached,
                          "completion_tokens": out, "reasoning_tokens": reasoning})
    res = reprice(frame, models)
    by_key = {m.id.lower(): m for m in models}
    expected = D(0)
    priced = 0
    for i in range(n):
        m = by_key.get(str(names[i]).lower())
        u = Usage(int(prompt[i]), int(out[i]), int(cached[i]), int(reasoning[i]))
        c = cost_of(u, m.pricing).total if m else None
        if c is None:
            assert np.isnan(res.row_cost[i])
            continue
        assert res.row_cost[i] == pytest.approx(float(c), rel=1e-12, abs=1e-15)
        expected += c
        priced += 1
    assert res.as_logged is not None and res.as_logged.total == expected  # exact, not approx
    assert res.as_logged_rows == priced and res.unpriced_rows == n - priced
    assert CACHE_FALLBACK_NOTE in res.as_logged.notes  # "nocache" rows were priced at input


def test_non_usd_prices_are_flagged() -> None:
    c = cost_of(Usage(1_000_000, 0), Pricing(D(100), D(320), D(10), currency="eur"))
    assert c.total == D("1.00") and c.notes == ("prices are in EUR cents, not US cents",)


def test_daily_costs_group_own_model_costs_by_utc_day() -> None:
    from wafer_playground.costs import daily_costs

    frame = pd.DataFrame({
        "model": ["GLM-5.1", "GLM-5.1", "GLM-5.1", "gone"],
        "prompt_tokens": [1_000_000, 1_000_000, 1_000_000, 5], "cached_tokens": [0, 0, 0, 0],
        "completion_tokens": [0, 0, 0, 0], "reasoning_tokens": [0, 0, 0, 0],
        "ts": pd.to_datetime(["2026-09-01T23:59:00Z", "2026-09-01T01:00:00+02:00",
                              "2026-09-02T00:00:00Z", "2026-09-02T00:00:00Z"], utc=True),
    })
    res = reprice(frame, [_model("GLM-5.1", GLM)])
    days = daily_costs(frame, res.row_cost)
    # 01:00+02:00 is 2026-08-31 23:00 UTC; the unpriced "gone" row is left out
    assert [str(d.date()) for d in days["date"]] == ["2026-08-31", "2026-09-01", "2026-09-02"]
    assert days["usd"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert days["requests"].tolist() == [1, 1, 1]


# ---- one money conversion and formatter (issue 15): cents -> dollars, then format_usd ----

def test_cents_to_dollars_is_exact_and_keeps_not_published() -> None:
    from wafer_playground.catalog import cents_to_dollars, cents_to_dollars_f

    assert cents_to_dollars(None) is None
    assert cents_to_dollars(Decimal("23.59")) == Decimal("0.2359")  # a microcents price
    assert cents_to_dollars(1) == Decimal("0.01")
    assert cents_to_dollars(Decimal("0.000001")) == Decimal("1E-8")  # no float rounding
    arr = cents_to_dollars_f(np.array([100.0, np.nan, 2359.0]))
    assert arr[0] == 1.0 and np.isnan(arr[1]) and arr[2] == pytest.approx(23.59)


def test_pricing_converts_and_formats_through_one_function() -> None:
    from wafer_playground.catalog import to_frame
    from wafer_playground.costs import format_per_million

    p = Pricing(input_cpm=Decimal("23.59"), output_cpm=Decimal(1234567), cache_read_cpm=None)
    assert p.usd_per_million("input") == Decimal("0.2359")
    assert p.usd_per_million("cache_read") is None
    assert np.isnan(p.usd_per_million_f("cache_read"))
    assert format_per_million(p, "input") == "$0.236"
    assert format_per_million(p, "output") == "$12,345.67"  # thousands separated
    assert format_per_million(p, "cache_read") == "not published"
    # the catalog frame holds the same figures as floats
    row = to_frame([Model("m", "M", pricing=p)]).iloc[0]
    assert row["input_usd_per_m"] == float(p.usd_per_million("input") or 0)
    assert row["output_usd_per_m"] == 12345.67
    assert np.isnan(row["cache_read_usd_per_m"])
