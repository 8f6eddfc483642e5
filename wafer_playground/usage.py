"""Usage files -> validated per-request token rows for repricing, and the account-API views.

Over 600 lines: one module for every usage format the Costs page reprices; the formats share
the row validation and the aliases, and are tested together (tests/unit/test_usage.py).

Accepted inputs (auto-detected):

* CSV with a header (any column order, case-insensitive names, see `ALIASES`);
* JSONL / a JSON array: one object per line, either flat (same names as CSV), a chat
  completion or Anthropic message response (`model` + `usage`), or an OpenAI-style batch
  output line (`custom_id`, `response.body`, `error`);
* Wafer's `GET /v1/usage/me` JSON (per-model aggregates, `request_count` requests each);
* this app's request log (`Store.request_log_frame()`).

Token semantics follow `costs.py`: `prompt_tokens`/`input_tokens` INCLUDE cached tokens (OpenAI
and Wafer usage-me convention). The one exception is Anthropic naming: a row that
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
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Model, cents_to_dollars, cents_to_dollars_f
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


@lru_cache(maxsize=256)
def _canon_cached(keys: tuple[str, ...]) -> dict[str, str]:
    return _canon(keys)


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


def _all_str(raw: np.ndarray) -> bool:
    return bool(pd.api.types.infer_dtype(raw, skipna=False) == "string")


def _numeric(raw: list[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64, empty mask). Strings are parsed; bools are not numbers.

    Vectorised: one `type` pass (a builtin, no Python lambda per cell), then pandas.
    """
    if isinstance(raw, np.ndarray) and raw.dtype == object and _all_str(raw):
        # CSV columns: only strings, so no per-cell type checks
        empty = raw == ""
        vals = pd.to_numeric(raw, errors="coerce")
        return np.asarray(vals, dtype="float64"), np.asarray(empty, dtype=bool)
    s = pd.Series(raw, dtype=object)
    empty = s.isna().to_numpy().copy()
    types = s.map(type).to_numpy()
    is_str = types == str  # noqa: E721 - elementwise over a numpy array of types
    if is_str.any():
        blank = s[is_str].str.strip().eq("").to_numpy()
        empty[np.nonzero(is_str)[0][blank]] = True
    is_bool = types == bool  # noqa: E721 - elementwise
    if is_bool.any():
        s = s.where(~is_bool, "x")
    vals = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64")
    return vals, empty


def _timestamps(raw: list[Any]) -> pd.Series:
    """UTC timestamps; unreadable ones become NaT (a time is optional for pricing)."""
    s = pd.Series(raw, dtype=object)
    out = pd.to_datetime(s, errors="coerce", utc=True, format="ISO8601")
    retry = out.isna() & s.notna()
    if retry.any():  # not ISO 8601 ("09/02/2026 10:00", epoch objects...): slower parser
        out[retry] = pd.to_datetime(s[retry], errors="coerce", utc=True, format="mixed")
    return out


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
    ts = (_timestamps([v for v, keep in zip(cols.raw["ts"], ok, strict=True) if keep])
          if n else pd.Series([], dtype="datetime64[ns, UTC]"))
    reported = cents_to_dollars_f(pd.to_numeric(pd.Series(cols.raw["reported_cost"],
                                                          dtype=object), errors="coerce"))
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

def _header_problem(canon: dict[str, str]) -> BadRow | None:
    missing = [c for c in ("prompt_tokens", "completion_tokens") if c not in canon]
    if not missing:
        return None
    why = (f"the header has no {' or '.join(missing)} column (accepted names: "
           + "; ".join(f"{m}: {', '.join(ALIASES[m])}" for m in missing) + ")")
    return BadRow(1, why)


def _empty(fmt: str, bad: BadRow) -> ParsedUsage:
    return ParsedUsage(pd.DataFrame(columns=USAGE_COLUMNS), [bad], fmt, 1)


def _parse_csv_fast(text: str) -> ParsedUsage | None:
    """pandas' C parser for the common case; None sends the file to the exact slow path.

    Only taken when every physical line is one record (no quotes, so no multi-line fields)
    and every non-blank line has the header's field count: then line = row index + 2, and
    nothing that the slow path would reject as malformed can slip through padded.
    """
    if '"' in text:
        return None
    lines = text.splitlines()
    if len(lines) < 2:
        return None
    counts = np.fromiter((ln.count(",") for ln in lines), dtype=np.int64, count=len(lines))
    blank = np.fromiter((not ln.strip() for ln in lines), dtype=bool, count=len(lines))
    if bool((counts[1:][~blank[1:]] != counts[0]).any()):
        return None
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                         skip_blank_lines=False, skipinitialspace=True, engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    if len(df) != len(lines) - 1 - (0 if lines[-1] else 1):
        return None  # the parser saw the lines differently: do not guess line numbers
    canon = _canon(list(df.columns))
    problem = _header_problem(canon)
    if problem:
        return _empty("csv", problem)
    values = df.to_numpy(dtype=object)
    line_no = np.arange(2, len(df) + 2)
    is_blank = blank[1:len(df) + 1]
    all_empty = (values == "").all(axis=1) & ~is_blank
    pre_bad = ([BadRow(int(n), "blank line") for n in line_no[is_blank]]
               + [BadRow(int(n), "empty row") for n in line_no[all_empty]])
    keep = ~(is_blank | all_empty)
    cols = _Columns()
    cols.line = line_no[keep].tolist()
    names = list(df.columns)
    for c in cols.raw:
        key = canon.get(c)
        cols.raw[c] = (values[keep, names.index(key)] if key is not None
                       else [None] * int(keep.sum()))
    cols.anthropic = ["_anthropic" in canon] * int(keep.sum())
    return _validate(cols, "csv", pre_bad)


def parse_csv(text: str) -> ParsedUsage:
    fast = _parse_csv_fast(text)
    if fast is not None:
        return fast
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    try:
        header = next(reader)
    except StopIteration:
        return _empty("csv", BadRow(1, "the file is empty"))
    except csv.Error as exc:
        return _empty("csv", BadRow(1, f"bad CSV: {exc}"))
    canon = _canon(header)
    problem = _header_problem(canon)
    if problem:
        return _empty("csv", problem)
    index = {c: header.index(k) for c, k in canon.items() if not c.startswith("_")}
    anthropic = "_anthropic" in canon
    pre_bad: list[BadRow] = []
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    line = 1
    try:
        # Lean loop on purpose (1M rows): keep good records, classify the rest.
        for record in reader:
            start = line + 1
            line = reader.line_num
            if len(record) == width and any(record):
                rows.append(record)
                lines.append(start)
            elif not record:
                pre_bad.append(BadRow(start, "blank line"))
            elif not any(f.strip() for f in record):
                pre_bad.append(BadRow(start, "empty row"))
            else:
                pre_bad.append(BadRow(start, f"expected {width} fields, found {len(record)}"))
    except csv.Error as exc:
        pre_bad.append(BadRow(reader.line_num, f"bad CSV from here on: {exc}"))
    cols = _Columns()
    cols.line = lines
    for c in cols.raw:
        if c in index:
            i = index[c]
            cols.raw[c] = [r[i] for r in rows]
        else:
            cols.raw[c] = [None] * len(rows)
    cols.anthropic = [anthropic] * len(rows)
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
    canon = _canon_cached(tuple(obj))  # JSONL rows repeat the same keys: map them once
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
        except RecursionError:
            bad.append(BadRow(n, "invalid JSON: nested too deeply"))
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
        except RecursionError:
            return _empty("json", BadRow(1, "invalid JSON: nested too deeply"))
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


# --- account APIs ---------------------------------------------------------------------------

MAX_ACCOUNT_COUNT = 10**15  # tokens or requests in one account answer: beyond it, broken


def _int0(v: Any, where: str = "", notes: list[str] | None = None) -> int:
    """A count from an account answer; missing -> 0. A negative, fractional, non-finite or
    absurd one is counted as 0 and, with `notes`, said so (the answer is the server's)."""
    if v is None:
        return 0
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if ok and 0 <= v <= MAX_ACCOUNT_COUNT and float(v).is_integer():
        return int(v)
    if notes is not None and len(notes) < 20:
        notes.append(f"{where} {str(v)[:40]!r} is not a count: counted as 0")
    return 0


@dataclass
class UsageMeView:
    days: pd.DataFrame  # date, input_tokens, output_tokens
    models: pd.DataFrame  # model, input/cache_read/output tokens, request_count, reported_usd
    total_requests: int
    total_input_tokens: int
    total_output_tokens: int
    reported_cost_usd: Decimal | None  # Wafer's estimate (integer cents; rounding unknown)
    period: str
    notes: list[str] = field(default_factory=list)  # values refused (see _int0)


def usage_me_view(data: Any) -> UsageMeView:
    if not isinstance(data, dict):
        raise ValueError("the usage response is not a JSON object")
    notes: list[str] = []

    def n(d: dict[str, Any], key: str, where: str) -> int:
        return _int0(d.get(key), f"{where}.{key}", notes)

    days = pd.DataFrame([{"date": d.get("date"), "input_tokens": n(d, "input_tokens", "days"),
                          "output_tokens": n(d, "output_tokens", "days")}
                         for d in data.get("days") or [] if isinstance(d, dict)],
                        columns=["date", "input_tokens", "output_tokens"])
    days["date"] = pd.to_datetime(days["date"], errors="coerce", utc=True, format="mixed")
    models = pd.DataFrame([{
        "model": str(m.get("model") or "?"), "input_tokens": n(m, "input_tokens", "models"),
        "cache_read_tokens": n(m, "cache_read_tokens", "models"),
        "output_tokens": n(m, "output_tokens", "models"),
        "request_count": n(m, "request_count", "models"),
        "reported_usd": (float(cents_to_dollars_f(n(m, "estimated_cost_cents", "models")))
                         if m.get("estimated_cost_cents") is not None else float("nan")),
    } for m in data.get("models") or [] if isinstance(m, dict)], columns=[
        "model", "input_tokens", "cache_read_tokens", "output_tokens", "request_count",
        "reported_usd"])
    cents = data.get("total_estimated_cost_cents")
    reported = (cents_to_dollars(cents) if isinstance(cents, int)
                and not isinstance(cents, bool) and 0 <= cents <= MAX_ACCOUNT_COUNT else None)
    if cents is not None and reported is None:
        notes.append(f"total_estimated_cost_cents {str(cents)[:40]!r} is not a cost: not shown")
    return UsageMeView(
        days, models, n(data, "total_requests", "usage"), n(data, "total_input_tokens", "usage"),
        n(data, "total_output_tokens", "usage"), reported,
        f"{data.get('period_start', '?')} → {data.get('period_end', '?')}", notes)


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
        # a priced total means every part is priced (costs.price_tokens)
        if (cost is None or cost.total is None or cost.input is None or cost.cached is None
                or cost.output is None):
            for v in cols.values():
                v.append(float("nan"))
            continue
        cols["our_usd"].append(float(cost.total))
        cols["our_input_usd"].append(float(cost.input + cost.cached))
        cols["our_output_usd"].append(float(cost.output))
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
    raw_summary = data.get("summary")
    summary: dict[str, Any] = raw_summary if isinstance(raw_summary, dict) else {}
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
