"""Usage-file parsing: every format, bad rows with line numbers and reasons, account views."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

from wafer_playground.catalog import Model, Pricing
from wafer_playground.costs import reprice
from wafer_playground.usage import (
    daily_spend,
    from_request_log,
    metrics_view,
    parse_csv,
    parse_usage_file,
    price_usage_me,
    token_means,
    usage_me_view,
)

GLM = Pricing(Decimal(100), Decimal(320), Decimal(10))


def reasons(parsed) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return {b.line: b.reason for b in parsed.bad}


def test_csv_good_rows_and_every_kind_of_bad_row() -> None:
    text = (
        "Model,Input Tokens,cached_tokens,output_tokens,reasoning_tokens,timestamp\n"  # 1
        "GLM-5.1,1000,200,50,10,2026-09-01T10:00:00Z\n"  # 2 ok
        "GLM-5.1,abc,0,5,0,\n"  # 3 not a number
        "\n"  # 4 blank
        "GLM-5.1,10,20,5,0,\n"  # 5 cached > prompt
        "GLM-5.1,10,0,5,6,\n"  # 6 reasoning > completion
        "GLM-5.1,-3,0,5,0,\n"  # 7 negative
        "GLM-5.1,10.5,0,5,0,\n"  # 8 fraction
        "GLM-5.1,10,0,5\n"  # 9 too few fields
        "GLM-5.1,,0,5,0,\n"  # 10 missing input
        '"multi\nline",7,0,3,,\n'  # 11-12 ok (quoted newline), empty reasoning = 0
        "cheap,1e3,0,2,0,2026-09-02\n"  # 13 ok (1e3 is a whole number)
    )
    p = parse_csv(text)
    assert p.fmt == "csv"
    assert list(p.frame["line"]) == [2, 11, 13]
    assert list(p.frame["prompt_tokens"]) == [1000, 7, 1000]
    assert list(p.frame["reasoning_tokens"]) == [10, 0, 0]
    r = reasons(p)
    assert set(r) == {3, 4, 5, 6, 7, 8, 9, 10}
    assert r[3] == "prompt_tokens (input) is not a number: 'abc'"
    assert r[4] == "blank line"
    assert r[5].startswith("cached_tokens (20) exceed prompt_tokens (10)")
    assert r[6].startswith("reasoning_tokens (6) exceed completion_tokens (5)")
    assert r[7] == "prompt_tokens (input) is negative (-3)"
    assert r[8] == "prompt_tokens (input) is not a whole number (10.5)"
    assert r[9] == "expected 6 fields, found 4"
    assert r[10] == "no prompt_tokens (input)"
    assert p.n_bad == 8 and "8 rows not priced" in p.summary()
    assert str(p.frame["ts"].iloc[0]) == "2026-09-01 10:00:00+00:00"


def test_csv_without_token_columns_is_one_clear_error() -> None:
    p = parse_csv("model,tokens\nx,1\n")
    assert p.n_rows == 0 and p.n_bad == 1
    assert p.bad[0].line == 1 and "no prompt_tokens or completion_tokens column" in p.bad[0].reason


def test_csv_anthropic_naming_adds_cache_reads_to_input() -> None:
    p = parse_csv("model,input_tokens,cache_read_input_tokens,cache_creation_input_tokens,"
                  "output_tokens\nm,50,1000,200,30\n")
    row = p.frame.iloc[0]
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens) == (1250, 1000, 30)
    assert any("Anthropic" in n for n in p.notes)


def test_jsonl_flat_responses_batch_lines_and_garbage() -> None:
    lines = [
        {"model": "GLM-5.1", "prompt_tokens": 100, "completion_tokens": 10, "ts": 1780000000},
        {"id": "chatcmpl-1", "model": "GLM-5.1", "usage": {
            "prompt_tokens": 12, "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 35}}},
        {"type": "message", "model": "GLM-5.1", "usage": {
            "input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 7}},
        {"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200, "body": {
            "model": "Kimi-K3", "usage": {"prompt_tokens": 1, "completion_tokens": 2}}},
         "error": None},
        {"id": "batch_req_2", "custom_id": "b", "response": None,
         "error": {"code": "batch_expired", "message": "This request could not be executed"}},
        {"id": "batch_req_3", "custom_id": "c", "response": {"status_code": 429, "body": {}},
         "error": None},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n{not json\n[1]\n\n" + json.dumps(
        {"model": "x", "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                                 "prompt_tokens_details": {"cached_tokens": 9}}}) + "\n"
    p = parse_usage_file(text.encode(), "batch_output.jsonl")
    assert p.fmt == "jsonl"
    f = p.frame
    assert list(f["line"]) == [1, 2, 3, 4]
    assert list(f["prompt_tokens"]) == [100, 12, 105, 1]
    assert list(f["cached_tokens"]) == [0, 2, 100, 0]
    assert list(f["reasoning_tokens"]) == [0, 35, 0, 0]
    assert f["model"].iloc[3] == "Kimi-K3"
    assert str(f["ts"].iloc[0]).startswith("2026-05-28")
    r = reasons(p)
    assert r[5] == "batch request failed: This request could not be executed"
    assert r[6] == "batch request returned HTTP 429"
    assert r[7].startswith("invalid JSON")
    assert r[8] == "not a JSON object (list)"
    assert r[10].startswith("cached_tokens (9) exceed prompt_tokens (3)")
    assert p.n_bad == 5


USAGE_ME = {
    "user_id": "u", "pass_account_id": None,
    "period_start": "2026-09-01T00:00:00+00:00", "period_end": "2026-09-03T00:00:00+00:00",
    "days": [{"date": "2026-09-01T00:00:00+00:00", "input_tokens": 1_500_000,
              "output_tokens": 100_000},
             {"date": "2026-09-02T00:00:00+00:00", "input_tokens": 500_000,
              "output_tokens": 400_000}],
    "models": [
        {"model": "GLM-5.1", "input_tokens": 2_000_000, "output_tokens": 500_000,
         "cache_read_tokens": 1_000_000, "request_count": 42, "estimated_cost_cents": 270},
        {"model": "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", "input_tokens": 10,
         "output_tokens": 1, "cache_read_tokens": 0, "request_count": 1,
         "estimated_cost_cents": 0},
    ],
    "total_input_tokens": 2_000_010, "total_output_tokens": 500_001, "total_requests": 43,
    "total_estimated_cost_cents": 270,
}


def test_usage_me_file_is_repriced_as_aggregates() -> None:
    p = parse_usage_file(json.dumps(USAGE_ME), "usage.json")
    assert p.fmt == "usage-me" and p.n_bad == 0
    assert list(p.frame["requests"]) == [42, 1]
    assert p.frame["reported_cost_usd"].iloc[0] == pytest.approx(2.70)
    res = reprice(p.frame, [Model(id="GLM-5.1", display_name="GLM-5.1", pricing=GLM)])
    # GLM row on GLM: 1M uncached*100 + 1M cached*10 + 500k*320 = (100M+10M+160M)/1e8 = $2.70
    assert res.as_logged is not None and res.as_logged.total == Decimal("2.70")
    assert res.unpriced_rows == 1  # the resolved Qwen backend name is not in this catalog


def test_account_usage_view_prices_and_daily_estimate() -> None:
    view = usage_me_view(USAGE_ME)
    assert view.total_requests == 43 and view.reported_cost_usd == Decimal("2.70")
    priced = price_usage_me(view, [Model(id="glm-5.1", display_name="g", pricing=GLM)])
    assert priced["our_usd"].iloc[0] == pytest.approx(2.70)
    assert priced["our_input_usd"].iloc[0] == pytest.approx(1.10)
    assert pd.isna(priced["our_usd"].iloc[1])
    days = daily_spend(view, priced)
    # input rate 1.10/2M = 5.5e-7 $/tok; output rate 1.60/500k = 3.2e-6 $/tok
    assert days["usd"].tolist() == pytest.approx([1.5e6 * 5.5e-7 + 1e5 * 3.2e-6,
                                                  5e5 * 5.5e-7 + 4e5 * 3.2e-6])
    with pytest.raises(ValueError):
        usage_me_view(["not", "a", "dict"])


def test_metrics_view_percentiles_and_series() -> None:
    v = metrics_view({"endpoint": "pass.wafer.ai", "range_minutes": 60, "summary": {
        "total_requests": 10, "ttft_p50_ms": 120.5, "ttft_p90_ms": 300, "ttft_p99_ms": None,
        "tps_p10": 20, "tps_p50": 40, "tps_p90": 55, "tps_p99": 60, "error_rate_pct": 10.0},
        "timeseries": [{"time": "2026-09-01T10:00:00+00:00", "requests": 3, "error_count": 1}]})
    ttft = v.percentiles.set_index("metric").loc["time to first token (ms)"]
    assert ttft["p50"] == 120.5 and ttft["p90"] == 300 and pd.isna(ttft["p99"])
    assert v.percentiles.set_index("metric").loc["tokens per second", "p10"] == 20
    assert v.timeseries["requests"].tolist() == [3]
    assert str(v.timeseries["time"].dt.tz) == "UTC"


def test_request_log_frame_rows_without_usage_are_reported_with_status() -> None:
    df = pd.DataFrame({
        "model": ["GLM-5.1", "GLM-5.1", "GLM-5.1"],
        "prompt_tokens": pd.array([100, None, 10], dtype="Int64"),
        "cached_tokens": pd.array([50, None, 0], dtype="Int64"),
        "completion_tokens": pd.array([10, None, 5], dtype="Int64"),
        "reasoning_tokens": pd.array([None, None, 0], dtype="Int64"),
        "ts": pd.to_datetime(["2026-09-01T10:00:00Z", "2026-09-01T11:00:00Z", None], utc=True),
        "status": ["done", "error", "stopped"],
    })
    p = from_request_log(df)
    assert list(p.frame["line"]) == [1, 3]
    assert list(p.frame["cached_tokens"]) == [50, 0]
    assert p.bad[0].line == 2 and p.bad[0].reason == (
        "no prompt_tokens (input) (request status: error)")


def test_parse_large_csv_is_vectorised_enough() -> None:
    import time

    rows = "\n".join(f"m,{i},{i // 2},{i % 100}" for i in range(200_000))
    t0 = time.perf_counter()
    p = parse_csv("model,prompt_tokens,cached_tokens,completion_tokens\n" + rows + "\n")
    assert p.n_rows == 200_000 and p.n_bad == 0
    assert time.perf_counter() - t0 < 10  # generous: shared 2-core machine


def test_token_means_for_the_planner() -> None:
    p = parse_csv("model,prompt_tokens,cached_tokens,completion_tokens\n"
                  "m,1000,500,100\nm,3000,500,300\nm,bad,0,1\n")
    assert token_means(p) == (2000.0, 200.0, 25.0)
    agg = parse_usage_file(json.dumps(USAGE_ME), "u.json")
    inp, out, hit = token_means(agg)  # type: ignore[misc]
    assert inp == pytest.approx(2_000_010 / 43) and out == pytest.approx(500_001 / 43)
    assert token_means(parse_csv("model,tokens\n")) is None


def test_csv_fast_path_matches_the_exact_path() -> None:
    from wafer_playground.usage import _parse_csv_fast

    body = ("GLM-5.1,1000,200,50,2026-09-01T10:00:00Z\n"  # 2
            "GLM-5.1,abc,0,5,\n"  # 3
            "\n"  # 4 blank
            ",,,,\n"  # 5 empty row
            "GLM-5.1,10,20,5,\n"  # 6 cached > prompt
            "x, 7,0,3,\n"  # 7 ok (leading space)
            "GLM-5.1,-1,0,1,\n")  # 8 negative
    fast = _parse_csv_fast("model,input_tokens,cached_tokens,output_tokens,ts\n" + body)
    assert fast is not None
    # a quoted header name means the same but forces the csv-module path
    slow = parse_csv('"model",input_tokens,cached_tokens,output_tokens,ts\n' + body)
    assert fast.bad == slow.bad
    assert reasons(fast)[4] == "blank line" and reasons(fast)[5] == "empty row"
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    assert list(fast.frame["line"]) == [2, 7]
    # a short row would be padded by pandas: the fast path refuses and the slow one reports it
    short = "model,input_tokens,output_tokens\nm,1,2\nm,1\n"
    assert _parse_csv_fast(short) is None
    assert reasons(parse_csv(short)) == {3: "expected 3 fields, found 2"}


HOSTILE = [
    b"", b"\x00\x01\x02", b"[" * 100_000, b"{" * 100_000,
    b"model,prompt_tokens,completion_tokens\nm,1e400,1\nm,nan,1\nm,inf,2\nm,0x10,1\n",
    b'{"models": "x", "days": 1}',
    b'{"models": [1, null, {"model": {"a": 1}, "input_tokens": true, "output_tokens": 1}]}',
    b'[{"usage": {"prompt_tokens": 1e30, "completion_tokens": 1}}]',
    b'{"usage": [], "model": 1}\n{"custom_id": 1, "response": {"status_code": "200", '
    b'"body": []}, "error": null}\n',
    "model,prompt_tokens,completion_tokens\n\u00e9\u4e2d,1,1\n".encode("utf-16"),
    b'model,prompt_tokens,completion_tokens\n"unterminated,1,2\n',
]


@pytest.mark.parametrize("name", ["x.csv", "x.json", "x.jsonl", "x"])
def test_hostile_files_never_raise(name: str) -> None:
    import random

    rnd = random.Random(7)
    cases = list(HOSTILE)
    base = b"model,prompt_tokens,cached_tokens,completion_tokens\nm,10,2,3\nm,5,0,1\n"
    for _ in range(60):
        cases.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))))
        b = bytearray(base)
        for _ in range(3):
            b[rnd.randrange(len(b))] = rnd.choice(b',"\n\r0a-. {}[]')
        cases.append(bytes(b))
    for data in cases:
        p = parse_usage_file(data, name)
        assert p.n_bad >= len(p.bad)
        assert (p.frame["prompt_tokens"] >= p.frame["cached_tokens"]).all()
        assert (p.frame[["prompt_tokens", "completion_tokens"]] >= 0).all().all()
    deep = parse_usage_file(b"[" * 100_000, name)
    assert deep.n_rows == 0 and deep.n_bad >= 1


def test_local_engine_account_answers_fit_the_views() -> None:
    """The local engine answers usage-me and metrics from its own log: same shapes."""
    from starlette.testclient import TestClient

    from wafer_playground.local import cards
    from wafer_playground.local.server import Backend, EngineConfig, LocalEngineApp

    eng = LocalEngineApp([Backend(cards.SMOLLM2, "http://127.0.0.1:9", 2048, 49152)],
                         EngineConfig())
    for i, (status, inp, out, cac) in enumerate([(200, 100, 20, 50), (200, 300, 40, 0),
                                                 (500, 10, 0, 0)]):
        rec = eng.log.start(f"r{i}", "/v1/chat/completions")
        rec.model, rec.input_tokens, rec.output_tokens, rec.cached_tokens = (
            cards.SMOLLM2.id, inp, out, cac)
        eng.log.finish(rec, status)
    with TestClient(eng.build()) as c:
        usage = c.get("/v1/usage/me", params={"period": "7d"}).json()
        metrics = c.get("/v1/endpoints/metrics",
                        params={"endpoint": "local", "range_minutes": 60}).json()
    view = usage_me_view(usage)
    assert view.total_requests == 2 and int(view.days["input_tokens"].sum()) == 400
    assert view.models.loc[0, "cache_read_tokens"] == 50
    priced = price_usage_me(view, [])
    assert priced["our_usd"].isna().all()  # a local model has no price: not published
    m = metrics_view(metrics)
    assert m.summary["error_rate_pct"] == pytest.approx(33.3)
    assert list(m.percentiles["metric"]) == ["time to first token (ms)", "latency (ms)",
                                             "tokens per second"]
    assert not m.timeseries.empty and str(m.timeseries["time"].dt.tz) == "UTC"
    parsed = parse_usage_file(json.dumps(usage), "usage.json")
    assert parsed.fmt == "usage-me" and parsed.n_rows == 1 and parsed.n_bad == 0
