"""The catalog page's data side: display frame, filters, workload columns, URL state.

No Streamlit here (so it is unit-testable and cheap to cache): the page builds the display
frame once per fetched catalog, then each rerun only applies boolean masks and one
vectorised workload pricing (`costs.row_costs`, the cost engine's own table function).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from wafer_playground.catalog import Model, format_tokens, to_frame
from wafer_playground.costs import DAYS_PER_MONTH, Workload, row_costs
from wafer_playground.untrusted import clean

CAPABILITIES = ("vision", "tools", "reasoning")
TIERS = {"pass_included": "Pass", "serverless_only": "Serverless"}
CONTEXT_STEPS = (0, 8_192, 32_768, 131_072, 200_000, 262_144, 524_288, 1_000_000)
SORTS = {
    "name": "Name",
    "input": "Input price ↑",
    "output": "Output price ↑",
    "month": "Your $/month ↑",
    "context": "Context ↓",
    "newest": "Newest",
}


def compact_tokens(n: int | float | None) -> str:
    """202752 -> '203K', 1048576 -> '1M': the core's one token-count formatter."""
    return format_tokens(n)


# ---- the display frame (built once per fetched catalog) ------------------------------


def display_frame(models: Sequence[Model]) -> pd.DataFrame:
    """`catalog.to_frame` plus what the table and filters need; one row per model."""
    frame = to_frame(models)
    # Card text is untrusted: names and providers are cut and their bidi controls shown
    # (wafer_playground/untrusted.py); a 1 MB name would otherwise go to the browser whole.
    for col in ("display_name", "provider"):
        frame[col] = [None if v is None else clean(v) for v in frame[col]]
    frame["caps"] = [[c for c in CAPABILITIES if getattr(m, c)] for m in models]
    frame["tier_label"] = frame["tier"].map(TIERS)  # unknown tiers -> NaN -> "not published"
    frame["source"] = [
        None if m.pricing.source is None
        else ("live" if m.pricing.source.kind == "live" else f"snapshot {m.pricing.source.at}")
        for m in models
    ]
    frame["created"] = pd.array([m.created for m in models], dtype="Int64")
    # One lowercase haystack per row so free-text search is a single vectorised `contains`.
    frame["haystack"] = [
        " ".join(filter(None, (m.id, m.display_name, m.provider, m.description))).lower()
        for m in models
    ]
    # Sorting by name on every rerun costs 0.15 s at 10,000 rows (arrow strings); a rank
    # computed once makes it an integer sort.
    names = frame["display_name"].astype(str).str.lower().to_numpy(dtype=object)
    frame["name_rank"] = np.argsort(np.argsort(names, kind="stable"), kind="stable")
    # plotly reads <b>, <a href>, <br> in hover text: escaped as well as cleaned
    frame["hover_name"] = [html.escape(f"{n} · {p}" if p else n)
                           for n, p in zip(frame["display_name"], frame["provider"], strict=True)]
    for cap in CAPABILITIES:
        frame[cap] = frame[cap].astype("boolean")  # None (not stated) stays <NA>, not False
    return frame


# ---- filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    q: str = ""
    caps: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    zdr: bool = False
    min_ctx: int = 0
    in_range: tuple[float, float] | None = None  # $/1M; None = no limit
    out_range: tuple[float, float] | None = None
    priced: bool = False  # only models with a published (or snapshot) price
    sort: str = "name"

    def signature(self) -> str:
        return repr(self)


def apply_filters(frame: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """Rows that pass every filter, sorted by `f.sort` (extra columns ride along)."""
    mask = np.ones(len(frame), dtype=bool)
    q = f.q.strip().lower()
    if q:
        for word in q.split():
            mask &= frame["haystack"].str.contains(word, regex=False).to_numpy()
    for cap in f.caps:
        if cap in CAPABILITIES:
            mask &= frame[cap].fillna(False).to_numpy(dtype=bool)
    if f.tiers:
        mask &= frame["tier"].isin(list(f.tiers)).to_numpy()
    if f.zdr:
        mask &= frame["zdr"].to_numpy(dtype=bool)
    if f.min_ctx > 0:
        mask &= frame["context_length"].fillna(0).to_numpy(dtype="int64") >= f.min_ctx
    for col, rng in (("input_usd_per_m", f.in_range), ("output_usd_per_m", f.out_range)):
        if rng is not None:
            vals = frame[col].to_numpy(dtype="float64")
            # NaN compares False: an unpublished price is never "within" a chosen range.
            mask &= (vals >= rng[0] - 1e-9) & (vals <= rng[1] + 1e-9)
    if f.priced:
        mask &= frame["input_usd_per_m"].notna().to_numpy()
        mask &= frame["output_usd_per_m"].notna().to_numpy()
    return sort_view(frame.loc[mask], f.sort)


def sort_view(view: pd.DataFrame, sort: str) -> pd.DataFrame:
    by, asc = {
        "input": ("input_usd_per_m", True),
        "output": ("output_usd_per_m", True),
        "month": ("per_month", True),
        "context": ("context_length", False),
        "newest": ("created", False),
    }.get(sort, ("display_name", True))
    if by not in view.columns:
        by, asc = "display_name", True
    if by == "display_name":
        if "name_rank" in view.columns:
            return view.iloc[np.argsort(view["name_rank"].to_numpy(), kind="stable")]
        key = view["display_name"].str.lower()
        return view.iloc[np.argsort(key.to_numpy(dtype=object), kind="stable")]
    return view.sort_values(by, ascending=asc, na_position="last", kind="stable")


# ---- workload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadInput:
    input_tokens: int = 2_000
    output_tokens: int = 500
    cache_pct: int = 0
    requests_per_day: int = 1_000

    def to_workload(self) -> Workload:
        return Workload(requests_per_day=self.requests_per_day, input_tokens=self.input_tokens,
                        output_tokens=self.output_tokens, cache_hit_pct=self.cache_pct)


def workload_costs(models: Sequence[Model], wl: WorkloadInput) -> tuple[np.ndarray, np.ndarray]:
    """($/request, $/month) per model, float64, NaN = not published. Month = 30 days.

    Uses the cost engine's split of the workload and its vectorised `row_costs`, so the
    table agrees with every other page to the cent.
    """
    workload = wl.to_workload()
    uncached, cached, output = workload.per_request()
    per_request = row_costs(np.array([float(uncached)]), np.array([float(cached)]),
                            np.array([float(output)]), [m.pricing for m in models])[0]
    per_month = per_request * float(workload.billed_per_day) * DAYS_PER_MONTH
    return per_request, per_month


def dollar_format(values: np.ndarray | pd.Series, *, exact: bool = False, minimum: int = 2,
                  maximum: int = 8) -> str:
    """A printf format for a column of dollar amounts.

    `exact` (list prices): the fewest decimals (>= 2) that show every value exactly, so
    $1.00 stays "$1.00" and half a cent per million shows as "$0.005". Otherwise (computed
    costs): enough decimals for three significant digits of the smallest non-zero value.
    Either way a real, tiny price never displays as "$0.00". Thousands are separated
    ("$12,345.67", sprintf-js's `,` flag in the grid), as `costs.format_usd` writes money.
    """
    arr = np.asarray(values, dtype="float64")
    positive = arr[np.isfinite(arr) & (arr > 0)]
    if positive.size == 0:
        return f"$%,.{minimum}f"
    if exact:
        for decimals in range(minimum, maximum + 1):
            scaled = positive * 10**decimals
            if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(scaled, 1)):
                return f"$%,.{decimals}f"
        return f"$%,.{maximum}f"
    smallest = float(positive.min())
    decimals = max(minimum, min(maximum, -math.floor(math.log10(smallest)) + 2))
    return f"$%,.{decimals}f"


# ---- URL state (st.query_params) ---------------------------------------------------------
# Only filter and workload values ever go in the URL: never the key, never the base URL.

PARAM_NAMES = ("q", "caps", "tier", "zdr", "ctx", "in", "out", "priced", "sort",
               "wl_in", "wl_out", "wl_cache", "wl_rpd")


def _int_param(value: Any, lo: int, hi: int) -> int | None:
    try:
        n = int(str(value))
    except ValueError:
        return None
    return n if lo <= n <= hi else None


def _range_param(value: Any) -> tuple[float, float] | None:
    try:
        lo_s, hi_s = str(value).split("-", 1)
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi < lo:
        return None
    return (lo, hi)


def _fmt_num(x: float) -> str:
    return f"{x:g}"


def filters_to_params(f: Filters) -> dict[str, str]:
    out: dict[str, str] = {}
    if f.q.strip():
        out["q"] = f.q.strip()
    if f.caps:
        out["caps"] = ",".join(f.caps)
    if f.tiers:
        out["tier"] = ",".join(f.tiers)
    if f.zdr:
        out["zdr"] = "1"
    if f.min_ctx:
        out["ctx"] = str(f.min_ctx)
    if f.in_range is not None:
        out["in"] = f"{_fmt_num(f.in_range[0])}-{_fmt_num(f.in_range[1])}"
    if f.out_range is not None:
        out["out"] = f"{_fmt_num(f.out_range[0])}-{_fmt_num(f.out_range[1])}"
    if f.priced:
        out["priced"] = "1"
    if f.sort != Filters.sort:
        out["sort"] = f.sort
    return out


def filters_from_params(params: Mapping[str, Any]) -> Filters:
    """Parse user-controlled URL values; anything invalid falls back to the default."""
    f = Filters()
    q = str(params.get("q", ""))[:200]
    caps = tuple(c for c in str(params.get("caps", "")).split(",") if c in CAPABILITIES)
    tiers = tuple(t for t in str(params.get("tier", "")).split(",") if t in TIERS)
    ctx = _int_param(params.get("ctx", 0), 0, 100_000_000) or 0
    sort = str(params.get("sort", f.sort))
    return replace(
        f, q=q, caps=caps, tiers=tiers, zdr=params.get("zdr") == "1",
        min_ctx=ctx if ctx in CONTEXT_STEPS else 0,
        in_range=_range_param(params["in"]) if "in" in params else None,
        out_range=_range_param(params["out"]) if "out" in params else None,
        priced=params.get("priced") == "1", sort=sort if sort in SORTS else f.sort,
    )


def workload_to_params(wl: WorkloadInput) -> dict[str, str]:
    default = WorkloadInput()
    names = {"input_tokens": "wl_in", "output_tokens": "wl_out", "cache_pct": "wl_cache",
             "requests_per_day": "wl_rpd"}
    return {names[fl.name]: str(getattr(wl, fl.name)) for fl in fields(WorkloadInput)
            if getattr(wl, fl.name) != getattr(default, fl.name)}


WORKLOAD_LIMITS = {"input_tokens": 10_000_000, "output_tokens": 10_000_000, "cache_pct": 100,
                   "requests_per_day": 100_000_000}


def workload_from_params(params: Mapping[str, Any]) -> WorkloadInput:
    wl = WorkloadInput()
    names = {"wl_in": "input_tokens", "wl_out": "output_tokens", "wl_cache": "cache_pct",
             "wl_rpd": "requests_per_day"}
    changes: dict[str, int] = {}
    for param, attr in names.items():
        if param in params:
            n = _int_param(params[param], 0, WORKLOAD_LIMITS[attr])
            if n is not None:
                changes[attr] = n
    return replace(wl, **changes)
