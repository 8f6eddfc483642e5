"""Usage files -> validated per-request token rows for repricing, and the account-API views.

Accepted inputs (auto-detected):

* CSV with a header (any column order, case-insensitive names, see `ALIASES`);
* JSONL / a JSON array: one object per line, either flat (same names as CSV), a chat
  completion or Anthropic message response (`model` + `usage`), or an OpenAI-style batch
  output line (`custom_id`, `response.body`, `error`);
* Wafer's `GET /v1/usage/me` JSON (per-model aggregates, `request_count` requests each);
* this app's request log (`Store.request_log_frame()`).

Token semantics follow `costs.py`: `prompt_tokens`/`input_tokens` INCLUDE cached tokens (OpenAI
and Wafer usage-me convention, spec §8). The one exception is Anthropic naming: a row that
carries `cache_read_input_tokens` is read the Anthropic way (input_tokens excludes cache reads
and writes), exactly like `Usage.from_anthropic`.

Nothing is dropped silently: every row that cannot be priced becomes a `BadRow` with its line
number (1-based; a CSV header is line 1) and a reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Model
from .costs import Usage, UsageError, cost_of

USAGE_COLUMNS = [
    "line", "model", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens",
    "requests", "ts", "status", "reported_cost_usd",
]
# canonical name -> accepted spellings (compared lower-cased, spaces/dashes as underscores)
ALIASES: dict[str, tuple[str, ...]] = {
    "model": ("model", "model_id", "model_name", "model_requested"),
    "prompt_tokens": ("prompt_tokens", "input_tokens", "prompt", "tokens_in"),
    "cached_tokens": ("cached_tokens", "cache_read_tokens", "cached_input_tokens",
                      "cache_read_input_tokens", "cache_hit_tokens"),
    "cache_write": ("cache_creation_input_tokens",),
    "completion_tokens": ("completion_tokens", "output_tokens", "completion", "tokens_out"),
    "reasoning_tokens": ("reasoning_tokens",),
    "requests": ("requests", "request_count", "count", "n_requests"),
    "ts": ("ts", "timestamp", "created_at", "time", "date", "created"),
    "status": ("status", "status_code", "http_status"),
    "reported_cost": ("estimated_cost_cents",),
}
MAX_TOKENS_PER_ROW = 10**13  # beyond float64's exact range for sums: surely a broken row
MAX_BAD_LISTED = 1000


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class ParsedUsage:
    frame: pd.DataFrame  # USAGE_COLUMNS, valid rows only
    bad: list[BadRow]
    fmt: str  # "csv" | "jsonl" | "usage-me" | "request-log"
    n_bad: int = 0  # may exceed len(bad) (the list is capped at MAX_BAD_LISTED)
    notes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    def bad_frame(self) -> pd.DataFrame:
        return pd.DataFrame([(b.line, b.reason) for b in self.bad], columns=["line", "reason"])

    def summary(self) -> str:
        text = f"{self.n_rows:,} rows read ({self.fmt})"
        if self.n_bad:
            text += f"; {self.n_bad:,} rows not priced (see the list)"
        return text


def _norm(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _canon(keys: Sequence[str]) -> dict[str, str]:
    """canonical name -> actual key present (first alias found)."""
    present = {_norm(k): k for k in keys}
    out: dict[str, str] = {}
    for canon, names in ALIASES.items():
        for n in names:
            if n in present:
                out[canon] = present[n]
                if n == "cache_read_input_tokens":
                    out["_anthropic"] = n
                break
    return out


class _Columns:
    """Raw values per canonical column, appended record by record."""

    def __init__(self) -> None:
        self.line: list[int] = []
        self.raw: dict[str, list[Any]] = {k: [] for k in ALIASES}
        self.anthropic: list[bool] = []

    def add(self, line: int, values: Mapping[str, Any], anthropic: bool = False) -> None:
        self.line.append(line)
        for k, col in self.raw.items():
            col.append(values.get(k))
        self.anthropic.append(anthropic)

    def __len__(self) -> int:
        return len(self.line)


def _numeric(raw: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64, empty mask). Strings are parsed; bools are not numbers."""
    s = pd.Series(raw, dtype=object)
    empty = s.isna().to_numpy() | s.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy()
    is_bool = s.map(lambda v: isinstance(v, bool)).to_numpy()
    vals = pd.to_numeric(s.where(~is_bool, "x"), errors="coerce").to_numpy(dtype="float64")
    return vals, empty


def _validate(cols: _Columns, fmt: str, pre_bad: list[BadRow]) -> ParsedUsage:
    n = len(cols)
    lines = np.asarray(cols.line, dtype="int64")
    reason = np.full(n, "", dtype=object)

    def fail(mask: np.ndarray, why: Any) -> None:
        idx = np.nonzero(mask & (reason == ""))[0]
        for i in idx:
            reason[i] = why(i) if callable(why) else why

    nums: dict[str, np.ndarray] = {}
    for name, required, default in (("prompt_tokens", True, 0), ("completion_tokens", True, 0),
                                    ("cached_tokens", False, 0), ("reasoning_tokens", False, 0),
                                    ("cache_write", False, 0), ("requests", False, 1)):
        raw = cols.raw[name]
        vals, empty = _numeric(raw)
        label = "prompt_tokens (input)" if name == "prompt_tokens" else (
            "completion_tokens (output)" if name == "completion_tokens" else name)
        if required:
            fail(empty, f"no {label}")
        vals = np.where(empty, default, vals)
        fail(np.isnan(vals), lambda i, r=raw, lb=label: f"{lb} is not a number: {r[i]!r:.40}")
        with np.errstate(invalid="ignore"):
            fail(~np.isnan(vals) & (vals < 0), lambda i, v=vals, lb=label: f"{lb} is negative "
                 f"({v[i]:g})")
            fail(~np.isnan(vals) & ~np.isinf(vals) & (np.floor(vals) != vals),
                 lambda i, v=vals, lb=label: f"{lb} is not a whole number ({v[i]:g})")
            fail(np.isinf(vals) | (vals > MAX_TOKENS_PER_ROW), f"{label} is implausibly large")
        nums[name] = np.nan_to_num(vals, nan=0.0, posinf=0.0)

    anth = np.asarray(cols.anthropic, dtype=bool)
    # Anthropic rows: input_tokens excludes cache reads and writes -> add them back.
    prompt = nums["prompt_tokens"] + np.where(anth, nums["cached_tokens"] + nums["cache_write"], 0)
    cached, completion, reasoning = (nums["cached_tokens"], nums["completion_tokens"],
                                     nums["reasoning_tokens"])
    fail(cached > prompt, lambda i: f"cached_tokens ({cached[i]:.0f}) exceed prompt_tokens "
         f"({prompt[i]:.0f}): cached tokens are part of the prompt")
    fail(reasoning > completion, lambda i: f"reasoning_tokens ({reasoning[i]:.0f}) exceed "
         f"completion_tokens ({completion[i]:.0f}): reasoning is part of the completion")
    fail(nums["requests"] < 1, "requests (request_count) is below 1")

    ok = reason == ""
    bad = list(pre_bad) + [BadRow(int(lines[i]), str(reason[i])) for i in np.nonzero(~ok)[0]]
    bad.sort(key=lambda b: b.line)
    n_bad = len(bad)

    models = pd.Series(cols.raw["model"], dtype=object).where(lambda s: s.notna(), "")
    ts = pd.to_datetime(pd.Series(cols.raw["ts"], dtype=object)[ok].reset_index(drop=True),
                        errors="coerce", utc=True, format="mixed") if n else pd.Series(
        [], dtype="datetime64[ns, UTC]")
    reported = pd.to_numeric(pd.Series(cols.raw["reported_cost"], dtype=object),
                             errors="coerce").to_numpy(dtype="float64") / 100
    frame = pd.DataFrame({
        "line": lines[ok],
        "model": models[ok].astype(str).str.strip().to_numpy(),
        "prompt_tokens": prompt[ok].astype("int64"),
        "cached_tokens": cached[ok].astype("int64"),
        "completion_tokens": completion[ok].astype("int64"),
        "reasoning_tokens": reasoning[ok].astype("int64"),
        "requests": nums["requests"][ok].astype("int64"),
        "ts": ts.to_numpy() if n else ts,
        "status": pd.Series(cols.raw["status"], dtype=object)[ok].astype("string").to_numpy(),
        "reported_cost_usd": reported[ok],
    }, columns=USAGE_COLUMNS)
    notes = []
    if int(anth.sum()):
        notes.append(f"{int(anth.sum()):,} rows use Anthropic naming (cache_read_input_tokens): "
                     "cache reads and writes were added to input_tokens")
    no_model = int((frame["model"] == "").sum())
    if no_model:
        notes.append(f"{no_model:,} rows name no model: repriced on every model, but not "
                     "priced 'as logged'")
    return ParsedUsage(frame, bad[:MAX_BAD_LISTED], fmt, n_bad, notes)


# --- CSV --------------------------------------------------------------------------------------

def parse_csv(text: str) -> ParsedUsage:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return ParsedUsage(pd.DataFrame(columns=USAGE_COLUMNS), [BadRow(1, "the file is empty")],
                           "csv", 1)
    except csv.Error as exc:
        return ParsedUsage(pd.DataFrame(columns=USAGE_COLUMNS), [BadRow(1, f"bad CSV: {exc}")],
                           "csv", 1)
    canon = _canon(header)
    missing = [c for c in ("prompt_tokens", "completion_tokens") if c not in canon]
    if missing:
        why = (f"the header has no {' or '.join(missing)} column (accepted names: "
               + "; ".join(f"{m}: {', '.join(ALIASES[m])}" for m in missing) + ")")
        return ParsedUsage(pd.DataFrame(columns=USAGE_COLUMNS), [BadRow(1, why)], "csv", 1)
    index = {c: header.index(k) for c, k in canon.items() if not c.startswith("_")}
    anthropic = "_anthropic" in canon
    cols = _Columns()
    pre_bad: list[BadRow] = []
    width = len(header)
    line = 1
    try:
        for record in reader:
            line_start = line + 1
            line = reader.line_num
            if not record or all(not f.strip() for f in record):
                if record:  # a line of only commas
                    pre_bad.append(BadRow(line_start, "empty row"))
                else:
                    pre_bad.append(BadRow(line_start, "blank line"))
                continue
            if len(record) != width:
                pre_bad.append(BadRow(line_start, f"expected {width} fields, found {len(record)}"))
                continue
            cols.add(line_start, {c: record[i] for c, i in index.items()}, anthropic)
    except csv.Error as exc:
        pre_bad.append(BadRow(reader.line_num, f"bad CSV from here on: {exc}"))
    return _validate(cols, "csv", pre_bad)


# --- JSON / JSONL ---------------------------------------------------------------------------

def _flat_from_object(obj: dict[str, Any]) -> tuple[dict[str, Any], bool] | str:
    """One JSON object -> (canonical values, anthropic?) or a reason it cannot be priced."""
    if "custom_id" in obj or ("response" in obj and "error" in obj):  # batch output line
        err = obj.get("error")
        if err:
            msg = err.get("message") or err.get("code") if isinstance(err, dict) else err
            return f"batch request failed: {str(msg)[:120]}"
        resp = obj.get("response")
        if not isinstance(resp, dict):
            return "batch line has no response"
        status = resp.get("status_code")
        if isinstance(status, int) and status >= 400:
            return f"batch request returned HTTP {status}"
        body = resp.get("body")
        if not isinstance(body, dict):
            return "batch response has no body"
        parsed = _flat_from_object(body)
        if isinstance(parsed, tuple):
            parsed[0].setdefault("status", status)
        return parsed
    usage = obj.get("usage")
    if isinstance(usage, dict):  # a response object (chat completion or Anthropic message)
        try:
            u = (Usage.from_anthropic(usage) if "input_tokens" in usage
                 else Usage.from_openai(usage))
        except UsageError as exc:
            return str(exc)
        if "prompt_tokens" not in usage and "input_tokens" not in usage:
            return "usage has no prompt_tokens / input_tokens"
        return ({"model": obj.get("model"), "prompt_tokens": u.prompt_tokens,
                 "cached_tokens": u.cached_tokens, "completion_tokens": u.completion_tokens,
                 "reasoning_tokens": u.reasoning_tokens,
                 "ts": obj.get("created_at") or obj.get("created"), "status": obj.get("status")},
                False)
    if "usage" in obj:
        return "usage is not an object"
    canon = _canon(list(obj))
    values = {c: obj[k] for c, k in canon.items() if not c.startswith("_")}
    if isinstance(values.get("ts"), int | float) and not isinstance(values.get("ts"), bool):
        values["ts"] = pd.Timestamp(values["ts"], unit="s", tz="UTC")
    return values, "_anthropic" in canon


def _objects_to_usage(items: Sequence[tuple[int, Any]], fmt: str,
                      pre_bad: list[BadRow]) -> ParsedUsage:
    cols = _Columns()
    for line, obj in items:
        if not isinstance(obj, dict):
            pre_bad.append(BadRow(line, f"not a JSON object ({type(obj).__name__})"))
            continue
        parsed = _flat_from_object(obj)
        if isinstance(parsed, str):
            pre_bad.append(BadRow(line, parsed))
            continue
        values, anthropic = parsed
        cols.add(line, values, anthropic)
    return _validate(cols, fmt, pre_bad)


def parse_jsonl(text: str) -> ParsedUsage:
    items: list[tuple[int, Any]] = []
    bad: list[BadRow] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue  # JSONL allows a trailing newline; blank lines carry no record
        try:
            items.append((n, json.loads(raw)))
        except json.JSONDecodeError as exc:
            bad.append(BadRow(n, f"invalid JSON: {exc.msg} (column {exc.colno})"))
    return _objects_to_usage(items, "jsonl", bad)


def is_usage_me(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("models"), list) and (
        "days" in obj or "total_requests" in obj or "period_start" in obj)


def parse_usage_me(obj: dict[str, Any]) -> ParsedUsage:
    """Wafer's usage-me aggregates: one row per model (entry number as the 'line')."""
    items: list[tuple[int, Any]] = []
    for i, m in enumerate(obj.get("models") or [], start=1):
        if isinstance(m, dict):
            m = {k: v for k, v in m.items() if k != "usage"}
        items.append((i, m))
    parsed = _objects_to_usage(items, "usage-me", [])
    parsed.notes.append("usage-me rows are per-model aggregates; 'line' is the entry number in "
                        "`models`, and the model names are Wafer's resolved backend names")
    return parsed


def parse_usage_file(data: bytes | str, filename: str = "") -> ParsedUsage:
    """Detect the format (by name, then by content) and parse."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    name = filename.lower()
    stripped = text.lstrip()
    if name.endswith(".csv") or (not name.endswith((".json", ".jsonl", ".ndjson"))
                                 and not stripped.startswith(("{", "["))):
        return parse_csv(text)
    if name.endswith(".json") or stripped.startswith("["):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None  # maybe JSONL named .json
        else:
            if is_usage_me(obj):
                return parse_usage_me(obj)
            if isinstance(obj, list):
                return _objects_to_usage(list(enumerate(obj, start=1)), "json", [])
            if isinstance(obj, dict):
                return _objects_to_usage([(1, obj)], "json", [])
    return parse_jsonl(text)


def from_request_log(df: pd.DataFrame) -> ParsedUsage:
    """This app's request log (`Store.request_log_frame()`); 'line' is the row number."""
    cols = _Columns()
    records = df.to_dict("records")
    for i, r in enumerate(records, start=1):
        values = {k: r.get(k) for k in ("model", "prompt_tokens", "cached_tokens",
                                       "completion_tokens", "reasoning_tokens", "ts", "status")}
        for k in ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens"):
            if values[k] is pd.NA:
                values[k] = None
        if values["ts"] is pd.NaT:
            values["ts"] = None
        cols.add(i, values)
    parsed = _validate(cols, "request-log", [])
    statuses = {b.line: str(records[b.line - 1].get("status")) for b in parsed.bad}
    parsed.bad = [BadRow(b.line, f"{b.reason} (request status: {statuses[b.line]})")
                  for b in parsed.bad]
    return parsed


def token_means(parsed: ParsedUsage) -> tuple[float, float, float] | None:
    """(mean input tokens, mean output tokens, cache hit %) per request of a usage file, for
    the planner; None when no row was valid. Aggregate rows weigh by their request count."""
    f = parsed.frame
    n = float(f["requests"].sum()) if len(f) else 0.0
    if not n:
        return None
    prompt = float(f["prompt_tokens"].sum())
    hit = float(f["cached_tokens"].sum()) / prompt * 100 if prompt else 0.0
    return prompt / n, float(f["completion_tokens"].sum()) / n, hit


# --- account APIs (spec §7) ------------------------------------------------------------------

def _int0(v: Any) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) \
        else 0


@dataclass
class UsageMeView:
    days: pd.DataFrame  # date, input_tokens, output_tokens
    models: pd.DataFrame  # model, input/cache_read/output tokens, request_count, reported_usd
    total_requests: int
    total_input_tokens: int
    total_output_tokens: int
    reported_cost_usd: Decimal | None  # Wafer's estimate (integer cents; rounding unknown)
    period: str


def usage_me_view(data: Any) -> UsageMeView:
    if not isinstance(data, dict):
        raise ValueError("the usage response is not a JSON object")
    days = pd.DataFrame([{"date": d.get("date"), "input_tokens": _int0(d.get("input_tokens")),
                          "output_tokens": _int0(d.get("output_tokens"))}
                         for d in data.get("days") or [] if isinstance(d, dict)],
                        columns=["date", "input_tokens", "output_tokens"])
    days["date"] = pd.to_datetime(days["date"], errors="coerce", utc=True, format="mixed")
    models = pd.DataFrame([{
        "model": str(m.get("model") or "?"), "input_tokens": _int0(m.get("input_tokens")),
        "cache_read_tokens": _int0(m.get("cache_read_tokens")),
        "output_tokens": _int0(m.get("output_tokens")),
        "request_count": _int0(m.get("request_count")),
        "reported_usd": (_int0(m.get("estimated_cost_cents")) / 100
                         if m.get("estimated_cost_cents") is not None else float("nan")),
    } for m in data.get("models") or [] if isinstance(m, dict)], columns=[
        "model", "input_tokens", "cache_read_tokens", "output_tokens", "request_count",
        "reported_usd"])
    cents = data.get("total_estimated_cost_cents")
    return UsageMeView(
        days, models, _int0(data.get("total_requests")), _int0(data.get("total_input_tokens")),
        _int0(data.get("total_output_tokens")),
        Decimal(cents) / 100 if isinstance(cents, int) and not isinstance(cents, bool) else None,
        f"{data.get('period_start', '?')} → {data.get('period_end', '?')}")


def price_usage_me(view: UsageMeView, models: Sequence[Model]) -> pd.DataFrame:
    """Per-model spend: our price for each entry (exact), next to Wafer's reported estimate.

    Adds `our_usd` (NaN when the resolved model name is not in the catalog or unpriced) and
    its input side (uncached + cache reads) and output side, used for daily estimates.
    """
    by_key = {m.id.strip().lower(): m for m in models}
    out = view.models.copy()
    cols: dict[str, list[float]] = {"our_usd": [], "our_input_usd": [], "our_output_usd": []}
    for r in view.models.itertuples(index=False):
        model = by_key.get(str(r.model).strip().lower())
        cached = min(int(r.cache_read_tokens), int(r.input_tokens))
        cost = None if model is None else cost_of(
            Usage(int(r.input_tokens), int(r.output_tokens), cached), model.pricing)
        if cost is None or cost.total is None:
            for v in cols.values():
                v.append(float("nan"))
            continue
        cols["our_usd"].append(float(cost.total))
        cols["our_input_usd"].append(float(cost.input + cost.cached))  # type: ignore[operator]
        cols["our_output_usd"].append(float(cost.output))  # type: ignore[arg-type]
    for k, v in cols.items():
        out[k] = pd.Series(v, index=out.index, dtype="float64")
    return out


def daily_spend(view: UsageMeView, priced: pd.DataFrame) -> pd.DataFrame:
    """Estimated spend per day (`usd`, NaN when nothing is priced).

    Usage-me days carry no model split, so each day's input and output tokens are priced at
    the period's average input and output rate over the priced models: an estimate.
    """
    days = view.days.copy()
    ok = priced.dropna(subset=["our_usd"])
    tot_in, tot_out = float(ok["input_tokens"].sum()), float(ok["output_tokens"].sum())
    if ok.empty or days.empty:
        days["usd"] = float("nan")
        return days
    in_rate = float(ok["our_input_usd"].sum()) / tot_in if tot_in else 0.0
    out_rate = float(ok["our_output_usd"].sum()) / tot_out if tot_out else 0.0
    days["usd"] = days["input_tokens"] * in_rate + days["output_tokens"] * out_rate
    return days


@dataclass
class MetricsView:
    summary: dict[str, Any]
    percentiles: pd.DataFrame  # metric, p10, p50, p90, p99
    timeseries: pd.DataFrame


def metrics_view(data: Any) -> MetricsView:
    if not isinstance(data, dict):
        raise ValueError("the metrics response is not a JSON object")
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    rows = []
    for label, prefix, unit in (("time to first token", "ttft", "_ms"),
                                ("latency", "latency", "_ms"),
                                ("tokens per second", "tps", "")):
        rows.append({"metric": label + (" (ms)" if unit else ""),
                     **{p: summary.get(f"{prefix}_{p}{unit}") for p in ("p10", "p50", "p90",
                                                                           "p99")}})
    pct = pd.DataFrame(rows, columns=["metric", "p10", "p50", "p90", "p99"])
    for p in ("p10", "p50", "p90", "p99"):
        pct[p] = pd.to_numeric(pct[p], errors="coerce").astype("float64")
    ts = pd.DataFrame([t for t in data.get("timeseries") or [] if isinstance(t, dict)])
    if "time" in ts:
        ts["time"] = pd.to_datetime(ts["time"], errors="coerce", utc=True, format="mixed")
    return MetricsView(summary, pct, ts)
