"""In-memory request log of the local engine, and the account APIs computed from it.

`GET /v1/usage/me` and `GET /v1/endpoints/metrics` are answered from this log so
the app's account page works offline. Nothing here is persisted; the log is bounded.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

RANGES = (5, 15, 30, 60, 360, 1440, 10080, 43200)
# bin width in minutes per range, so every timeseries has at most ~60 points
BIN_MINUTES = {5: 1, 15: 1, 30: 1, 60: 1, 360: 6, 1440: 30, 10080: 180, 43200: 720}
PERIODS = {"1d": 1, "7d": 7, "30d": 30}


@dataclass
class RequestRecord:
    request_id: str
    endpoint: str  # "/v1/chat/completions" ...
    started: float  # time.time()
    model: str | None = None
    streaming: bool = False
    status: int = 0
    error_code: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    ttft_ms: float | None = None
    latency_ms: float | None = None
    _t0: float = 0.0  # perf_counter at start
    done: bool = False

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self._t0) * 1000

    @property
    def tps(self) -> float | None:
        if not self.output_tokens or self.latency_ms is None:
            return None
        gen_ms = self.latency_ms - (self.ttft_ms or 0.0)
        return self.output_tokens / (gen_ms / 1000) if gen_ms > 0 else None


class RequestLog:
    def __init__(self, maxlen: int = 20000) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=maxlen)
        self.inflight = 0

    def start(self, request_id: str, endpoint: str) -> RequestRecord:
        rec = RequestRecord(request_id, endpoint, time.time(), _t0=time.perf_counter())
        self.records.append(rec)
        self.inflight += 1
        return rec

    def finish(self, rec: RequestRecord, status: int, error_code: str | None = None) -> None:
        if rec.done:
            return
        rec.done = True
        rec.status = status
        rec.error_code = error_code
        rec.latency_ms = (time.perf_counter() - rec._t0) * 1000
        self.inflight -= 1

    # --- GET /v1/usage/me ---------------------------------------------------------------

    def usage_me(self, start: datetime, end: datetime) -> dict[str, Any]:
        lo, hi = start.timestamp(), end.timestamp()
        days: dict[str, dict[str, int]] = {}
        models: dict[str, dict[str, Any]] = {}
        d = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while d <= end:  # every day in the window, zeros included, like a real usage chart
            days[d.isoformat()] = {"input_tokens": 0, "output_tokens": 0}
            d += timedelta(days=1)
        total_req = 0
        for r in list(self.records):
            if not r.done or not (lo <= r.started <= hi) or r.model is None:
                continue
            if r.status >= 400:
                continue  # failed requests are not billed usage
            total_req += 1
            day = datetime.fromtimestamp(r.started, UTC).replace(
                hour=0, minute=0, second=0, microsecond=0).isoformat()
            bucket = days.setdefault(day, {"input_tokens": 0, "output_tokens": 0})
            bucket["input_tokens"] += r.input_tokens
            bucket["output_tokens"] += r.output_tokens
            m = models.setdefault(r.model, {
                "model": r.model, "input_tokens": 0, "output_tokens": 0,
                "cache_read_tokens": 0, "request_count": 0, "estimated_cost_cents": 0})
            m["input_tokens"] += r.input_tokens
            m["output_tokens"] += r.output_tokens
            m["cache_read_tokens"] += r.cached_tokens
            m["request_count"] += 1
        return {
            "user_id": "local",
            "pass_account_id": None,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "days": [{"date": k, **v} for k, v in sorted(days.items())],
            "models": sorted(models.values(), key=lambda m: m["model"]),
            "total_input_tokens": sum(m["input_tokens"] for m in models.values()),
            "total_output_tokens": sum(m["output_tokens"] for m in models.values()),
            "total_requests": total_req,
            "total_estimated_cost_cents": 0,
        }

    # --- GET /v1/endpoints/metrics ------------------------------------------------------

    def metrics(self, endpoint: str, range_minutes: int, model: str | None) -> dict[str, Any]:
        now = time.time()
        lo = now - range_minutes * 60
        recs = [r for r in list(self.records)
                if r.done and r.started >= lo and (model is None or r.model == model)]
        summary = _summary(recs, range_minutes * 60)
        summary["concurrent_requests"] = self.inflight
        for k in ("active_accounts", "engine_running_requests", "engine_queue_depth",
                  "engine_kv_cache_hit_rate_pct", "engine_kv_cache_usage_pct",
                  "engine_preemptions_in_range"):
            summary[k] = None  # fleet gauges are null for serverless scope, as on Wafer
        width = BIN_MINUTES[range_minutes] * 60
        first_bin = math.floor(lo / width) * width
        n_bins = math.ceil((now - first_bin) / width)
        bins: list[list[RequestRecord]] = [[] for _ in range(max(n_bins, 1))]
        for r in recs:
            idx = min(int((r.started - first_bin) // width), len(bins) - 1)
            bins[idx].append(r)
        series = []
        for i, b in enumerate(bins):
            s = _summary(b, width)
            series.append({
                "time": datetime.fromtimestamp(first_bin + i * width, UTC).isoformat(),
                "requests": s["total_requests"],
                "tps_p50": s["tps_p50"], "tps_p90": s["tps_p90"],
                "ttft_p50_ms": s["ttft_p50_ms"], "ttft_p90_ms": s["ttft_p90_ms"],
                "latency_p50_ms": s["latency_p50_ms"], "latency_p90_ms": s["latency_p90_ms"],
                "input_tokens": s["total_input_tokens"],
                "output_tokens": s["total_output_tokens"],
                "cache_read_tokens": s["total_cache_read_tokens"],
                "error_count": s["count_4xx"] + s["count_5xx"],
            })
        return {
            "endpoint": endpoint,
            "range_minutes": range_minutes,
            "queried_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "summary": summary,
            "backends": [],
            "timeseries": series,
        }


def _pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None when there is no data)."""
    if not values:
        return None
    vs = sorted(values)
    k = max(0, min(len(vs) - 1, math.ceil(q / 100 * len(vs)) - 1))
    return round(vs[k], 2)


def _summary(recs: list[RequestRecord], seconds: float) -> dict[str, Any]:
    ok = [r for r in recs if r.status < 400]
    ttft = [r.ttft_ms for r in ok if r.ttft_ms is not None]
    lat = [r.latency_ms for r in ok if r.latency_ms is not None]
    tps = [t for r in ok if (t := r.tps) is not None]
    inp = sum(r.input_tokens for r in ok)
    cached = sum(r.cached_tokens for r in ok)
    c4 = sum(1 for r in recs if 400 <= r.status < 500)
    c5 = sum(1 for r in recs if r.status >= 500)
    total = len(recs)
    return {
        "total_requests": total,
        "rps": round(total / seconds, 4) if seconds else None,
        "ttft_p50_ms": _pct(ttft, 50), "ttft_p90_ms": _pct(ttft, 90),
        "ttft_p99_ms": _pct(ttft, 99),
        "tps_p10": _pct(tps, 10), "tps_p50": _pct(tps, 50), "tps_p90": _pct(tps, 90),
        "tps_p99": _pct(tps, 99),
        "latency_p50_ms": _pct(lat, 50), "latency_p90_ms": _pct(lat, 90),
        "latency_p99_ms": _pct(lat, 99),
        "cache_hit_pct": round(cached / inp * 100, 1) if inp else None,
        "total_input_tokens": inp,
        "total_output_tokens": sum(r.output_tokens for r in ok),
        "total_cache_read_tokens": cached,
        "count_2xx": sum(1 for r in recs if 200 <= r.status < 300),
        "count_4xx": c4,
        "count_5xx": c5,
        "error_rate_pct": round((c4 + c5) / total * 100, 1) if total else 0.0,
    }
