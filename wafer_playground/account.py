"""Account views: the Pass quota, measured speed per model, the usage date window.

Shapes from docs/spec/addendum-2026-12.md:
- §4 `GET /v1/inference/quota` (on the inference host): NOT documented by Wafer; its fields
  come from integrations' fixtures (plan_tier, billing_model `pass_quota`, a fixed 5-hour
  window, included/remaining/overage request counts, `current_period_used_percent` on a 0-100
  scale that exceeds 100 with overage). Thresholds follow axonhub: < 80 % ok, >= 80 %
  warning, remaining <= 0 exhausted.
- §3.2 `GET /v1/endpoints/metrics?model=…`: `summary.ttft_p50_ms/ttft_p90_ms`,
  `tps_p50/tps_p90` (output tokens per second per request).
- §3.1 `GET /v1/usage/me?start_at=…&end_at=…` (ISO timestamps).

Where there is no key, the same speed columns come from this app's own request log
(`Store.request_log_frame`), labelled as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from .catalog import Model

SpeedSource = Literal["metrics", "log"]
SOURCE_LABELS = {"metrics": "Wafer metrics API", "log": "this app's request log"}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _count(v: Any) -> int | None:
    n = _num(v)
    return int(n) if n is not None and 0 <= n < 10**12 else None


# ---- the Pass quota ------------------------------------------------------------------------

@dataclass(frozen=True)
class Quota:
    plan_tier: str | None
    billing_model: str | None
    window_start: datetime | None
    window_end: datetime | None
    limit: int | None  # included_request_limit
    used: int | None  # included_request_count (or request_count)
    remaining: int | None
    overage: int | None
    used_percent: float | None  # 0-100, may exceed 100

    @property
    def level(self) -> Literal["ok", "warning", "exhausted", "unknown"]:
        if self.remaining is not None and self.remaining <= 0:
            return "exhausted"
        if self.used_percent is None:
            return "unknown"
        return "warning" if self.used_percent >= 80 else "ok"

    def resets_in(self, now: datetime | None = None) -> timedelta | None:
        if self.window_end is None:
            return None
        left = self.window_end - (now or datetime.now(UTC))
        return left if left.total_seconds() > 0 else timedelta(0)


def _dt(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _short(v: Any) -> str | None:
    return v[:40] if isinstance(v, str) and v.strip() else None


def parse_quota(data: Any) -> Quota:
    """The quota answer, tolerant: unknown or broken fields become None. ValueError when the
    answer is not an object or carries none of the quota fields."""
    if not isinstance(data, dict):
        raise ValueError("the quota answer is not a JSON object")
    limit = _count(data.get("included_request_limit"))
    used = _count(data.get("included_request_count"))
    if used is None:
        used = _count(data.get("request_count"))
    remaining = _count(data.get("remaining_included_requests"))
    if remaining is None and isinstance(data.get("remaining_included_requests"), int | float):
        remaining = 0  # a negative remainder: exhausted
    pct = _num(data.get("current_period_used_percent"))
    if pct is None and limit and used is not None:
        pct = 100.0 * used / limit
    q = Quota(_short(data.get("plan_tier")), _short(data.get("billing_model")),
              _dt(data.get("window_start")), _dt(data.get("window_end")), limit, used,
              remaining, _count(data.get("overage_request_count")),
              pct if pct is not None and 0 <= pct < 10**6 else None)
    if q.limit is None and q.used_percent is None and q.remaining is None:
        raise ValueError("the quota answer has no request counts")
    return q


# ---- measured speed --------------------------------------------------------------------------

@dataclass(frozen=True)
class Speed:
    model: str
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    tps_p50: float | None
    tps_p90: float | None
    requests: int
    source: SpeedSource


def speed_from_metrics(model_id: str, data: Any) -> Speed | None:
    """One model's speed from a `?model=` metrics answer; None when it has no requests."""
    summary = data.get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, dict):
        return None
    n = _count(summary.get("total_requests")) or 0
    if n == 0:
        return None
    return Speed(model_id, _num(summary.get("ttft_p50_ms")), _num(summary.get("ttft_p90_ms")),
                 _num(summary.get("tps_p50")), _num(summary.get("tps_p90")), n, "metrics")


def _pct(values: pd.Series, q: float) -> float | None:
    arr = values.dropna().to_numpy(dtype="float64")
    arr = arr[np.isfinite(arr) & (arr >= 0)]
    return float(np.percentile(arr, q)) if arr.size else None


def speed_from_log(frame: pd.DataFrame, base_url: str | None = None) -> list[Speed]:
    """Per-model TTFT and tokens/s percentiles over this app's successful requests (to
    `base_url` only, when given: the same model id elsewhere is another deployment)."""
    if frame is None or frame.empty or "model" not in frame:
        return []
    if base_url and "base_url" in frame:
        frame = frame[frame["base_url"].astype(str).str.rstrip("/") == base_url.rstrip("/")]
    ok = frame[frame["status"].astype(str).isin(["done", "ok", "200", "stopped"])] \
        if "status" in frame else frame
    out = []
    for model, rows in ok.groupby("model", sort=True):
        ttft = pd.to_numeric(rows.get("ttft_s"), errors="coerce") * 1000
        tps = pd.to_numeric(rows.get("tokens_per_s"), errors="coerce")
        if ttft.notna().sum() == 0 and tps.notna().sum() == 0:
            continue
        out.append(Speed(str(model), _pct(ttft, 50), _pct(ttft, 90), _pct(tps, 50),
                         _pct(tps, 90), int(len(rows)), "log"))
    return out


SPEED_COLUMNS = ["id", "name", "input_usd_per_m", "output_usd_per_m", "ttft_p50_ms",
                 "ttft_p90_ms", "tps_p50", "tps_p90", "requests", "source"]


def speed_frame(models: Sequence[Model], speeds: Sequence[Speed]) -> pd.DataFrame:
    """Price beside measured speed, one row per catalog model (speed NaN when unmeasured)."""
    by_id = {s.model.lower(): s for s in speeds}
    rows = []
    for m in models:
        s = by_id.get(m.id.lower())
        p = m.pricing
        rows.append({
            "id": m.id, "name": m.display_name,
            "input_usd_per_m": p.usd_per_million_f("input"),
            "output_usd_per_m": p.usd_per_million_f("output"),
            "ttft_p50_ms": _nan(s.ttft_p50_ms if s else None),
            "ttft_p90_ms": _nan(s.ttft_p90_ms if s else None),
            "tps_p50": _nan(s.tps_p50 if s else None), "tps_p90": _nan(s.tps_p90 if s else None),
            "requests": s.requests if s else 0,
            "source": SOURCE_LABELS[s.source] if s else "not measured"})
    return pd.DataFrame(rows, columns=SPEED_COLUMNS)


def _nan(v: float | None) -> float:
    return float(v) if isinstance(v, float | int) else np.nan


def price_speed_figure(frame: pd.DataFrame) -> Any:
    """Output price against measured tokens/s (p50), one labelled point per measured model."""
    import plotly.graph_objects as go

    from .untrusted import clean

    pts = frame.dropna(subset=["tps_p50", "output_usd_per_m"])
    fig = go.Figure(go.Scatter(
        x=pts["tps_p50"], y=pts["output_usd_per_m"], mode="markers+text",
        text=[clean(n, 40) for n in pts["name"]], textposition="top center",
        customdata=np.stack([pts["ttft_p50_ms"].to_numpy(), pts["requests"].to_numpy()],
                            axis=-1) if len(pts) else None,
        hovertemplate="%{text}<br>%{x:.1f} tok/s (p50)<br>$%{y:.4g} per 1M output<br>"
                      "TTFT p50 %{customdata[0]:.0f} ms · %{customdata[1]} requests"
                      "<extra></extra>",
        marker={"size": 12}))
    fig.update_layout(xaxis_title="measured output tokens/s (p50; faster →)",
                      yaxis_title="$ per 1M output tokens (cheaper ↓)", height=380,
                      margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title="Price vs speed")
    return fig


# ---- the usage window ---------------------------------------------------------------------

def usage_window(start: date, end: date) -> tuple[str, str]:
    """Whole UTC days start..end (inclusive) as `start_at` / `end_at` ISO timestamps."""
    if end < start:
        raise ValueError("the end date is before the start date")
    lo = datetime.combine(start, time(0), UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), UTC)
    return lo.isoformat(), hi.isoformat()


__all__ = ["SOURCE_LABELS", "SPEED_COLUMNS", "Quota", "Speed", "parse_quota",
           "price_speed_figure", "speed_frame", "speed_from_log", "speed_from_metrics",
           "usage_window"]
