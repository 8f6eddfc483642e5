"""THE cost engine: one truth for every price on every page.

Over 600 lines on purpose: THE cost engine is one module so no page can price anything
another way; the exact (Decimal) and vectorised (numpy) paths sit side by side and are tested
against each other (tests/unit/test_costs.py).

Prices arrive as US cents per 1,000,000 tokens (`catalog.Pricing`); every result here is in
dollars. Display figures use exact `Decimal` arithmetic; large tables use numpy (float64 for
per-row figures, exact integer token sums + Decimal for totals, so a total never drifts).

Token accounting (the double-count traps, decided once here):

* OpenAI / Wafer chat usage: `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens`,
  and `completion_tokens` INCLUDES `completion_tokens_details.reasoning_tokens`. So
  uncached input = prompt - cached; reasoning is a breakdown of output, never added again.
* Anthropic usage: `input_tokens` EXCLUDES `cache_read_input_tokens` and
  `cache_creation_input_tokens` (Anthropic's documented semantics; Wafer's Messages surface
  is assumed to follow it [GUESS]). `Usage.from_anthropic` therefore ADDS them to get
  `prompt_tokens`. Wafer publishes no cache-write price, so cache-creation tokens are billed
  as ordinary input (they are uncached input).
* A price that is not published is `None` -> the component is `None` and so is the total:
  shown as "not published", never as $0.
* A missing cache-read price (input and output published) is not a reason to refuse a total:
  cached tokens are priced at the INPUT price (an upper bound: a cache read never costs more
  than a fresh input token), the result keeps "cache_read" in `missing` and says so in
  `notes`. With no cached tokens the cache-read price is simply not needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Literal

import numpy as np
import pandas as pd

from .catalog import CENTS_PER_DOLLAR, Model, PricePart, PriceSource, Pricing

CostKind = Literal["actual", "estimate"]
MILLION = Decimal(1_000_000)
DAYS_PER_MONTH = 30  # planner convention: a month is 30 days (stated on the page)
CACHE_FALLBACK_NOTE = ("no cache-read price published: cached tokens priced at the input "
                       "price (an upper bound)")
PASS_EXPLAINER = (
    "Wafer Pass is a flat-rate subscription metered in included requests per billing window; "
    "`pass_included` models are covered by it (a Pass key sees only these). `serverless_only` "
    "models need a pay-as-you-go Serverless key, billed per token at the prices shown. A "
    "Serverless key can use every model, at per-token prices."
)


class UsageError(ValueError):
    """Token counts that cannot describe a real request (negative, cached > prompt, ...)."""


# One request's usage beyond a billion tokens is a broken or hostile server (context windows
# end near 10M): such a usage object is refused, never priced as an "actual" cost.
MAX_REQUEST_TOKENS = 10**9


def _count(d: dict[str, Any], *path: str) -> int:
    """A token count at `path` in a usage dict; absent or null -> 0; anything else must be int."""
    cur: Any = d
    for key in path:
        if not isinstance(cur, dict):
            return 0
        cur = cur.get(key)
    if cur is None:
        return 0
    if isinstance(cur, bool) or not isinstance(cur, int | float):
        raise UsageError(f"{'.'.join(path)} is not a number: {cur!r}")
    if isinstance(cur, float):
        if not cur.is_integer():
            raise UsageError(f"{'.'.join(path)} is not a whole number: {cur!r}")
        cur = int(cur)
    if not 0 <= cur <= MAX_REQUEST_TOKENS:
        raise UsageError(f"{'.'.join(path)} is {'negative' if cur < 0 else 'implausibly large'}"
                         f" ({cur:.3g})")
    return int(cur)


@dataclass(frozen=True)
class Usage:
    """One request's billable tokens. `cached_tokens` ⊂ prompt, `reasoning_tokens` ⊂ completion."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"{name} must be an integer, got {value!r}")
            if value < 0:
                raise UsageError(f"{name} is negative ({value})")
        if self.cached_tokens > self.prompt_tokens:
            raise UsageError(f"cached_tokens ({self.cached_tokens}) exceed prompt_tokens "
                             f"({self.prompt_tokens}): cached tokens are part of the prompt")
        if self.reasoning_tokens > self.completion_tokens:
            raise UsageError(f"reasoning_tokens ({self.reasoning_tokens}) exceed "
                             f"completion_tokens ({self.completion_tokens}): reasoning is "
                             "part of the completion")

    @property
    def uncached_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens,
                     self.cached_tokens + other.cached_tokens,
                     self.reasoning_tokens + other.reasoning_tokens)

    @classmethod
    def from_openai(cls, d: dict[str, Any]) -> Usage:
        """From a chat/completions `usage` object (Wafer field names).

        SGLang may also send a top-level `reasoning_tokens`; it is used only when the
        `completion_tokens_details` breakdown is absent, never added twice.
        """
        if not isinstance(d, dict):
            raise UsageError("usage is not an object")
        reasoning = _count(d, "completion_tokens_details", "reasoning_tokens")
        if not reasoning:
            reasoning = _count(d, "reasoning_tokens")
        return cls(
            prompt_tokens=_count(d, "prompt_tokens"),
            completion_tokens=_count(d, "completion_tokens"),
            cached_tokens=_count(d, "prompt_tokens_details", "cached_tokens"),
            reasoning_tokens=reasoning,
        )

    @classmethod
    def from_anthropic(cls, d: dict[str, Any]) -> Usage:
        """From a Messages `usage` object: input_tokens EXCLUDES cache reads and writes."""
        if not isinstance(d, dict):
            raise UsageError("usage is not an object")
        cache_read = _count(d, "cache_read_input_tokens")
        cache_write = _count(d, "cache_creation_input_tokens")
        return cls(
            prompt_tokens=_count(d, "input_tokens") + cache_read + cache_write,
            completion_tokens=_count(d, "output_tokens"),
            cached_tokens=cache_read,
        )


@dataclass(frozen=True)
class Cost:
    """Dollars. A component is None when its price is not published; total then is None."""

    input: Decimal | None  # uncached input tokens
    cached: Decimal | None  # cache-read tokens
    output: Decimal | None  # completion tokens (reasoning included)
    total: Decimal | None
    kind: CostKind = "actual"
    source: PriceSource | None = None
    missing: tuple[str, ...] = ()  # price fields not published: "input" / "output" / "cache_read"
    notes: tuple[str, ...] = ()
    reasoning: Decimal | None = None  # the part of `output` spent on reasoning (a breakdown)

    @property
    def priced(self) -> bool:
        return self.total is not None

    def describe_source(self) -> str:
        return self.source.describe() if self.source else "no published price"

    def label(self) -> str:
        """"$0.0012 (actual)" / "not published"."""
        if self.total is None:
            return format_usd(None)
        return f"{format_usd(self.total)} ({self.kind})"


def _dollars(tokens: Decimal, cpm: Decimal) -> Decimal:
    # tokens * cents-per-million / 100 / 1e6: exact (Decimal division by powers of ten).
    with localcontext() as ctx:
        ctx.prec = 60
        return tokens * cpm / (CENTS_PER_DOLLAR * MILLION)


def price_tokens(uncached: Decimal | int, cached: Decimal | int, output: Decimal | int,
                 pricing: Pricing, *, kind: CostKind = "actual",
                 reasoning: Decimal | int = 0) -> Cost:
    """Price (possibly fractional, e.g. average) token counts. The one pricing formula."""
    unc, cac, out, rea = (Decimal(v) for v in (uncached, cached, output, reasoning))
    missing: list[str] = []
    notes: list[str] = []
    input_cost = None if pricing.input_cpm is None else _dollars(unc, pricing.input_cpm)
    if pricing.input_cpm is None:
        missing.append("input")
    output_cost = None if pricing.output_cpm is None else _dollars(out, pricing.output_cpm)
    reasoning_cost = None if pricing.output_cpm is None else _dollars(rea, pricing.output_cpm)
    if pricing.output_cpm is None:
        missing.append("output")
    cached_cost: Decimal | None
    if pricing.cache_read_cpm is not None:
        cached_cost = _dollars(cac, pricing.cache_read_cpm)
    elif cac == 0:
        cached_cost = Decimal(0)  # the price is not needed for zero cached tokens
    else:
        missing.append("cache_read")
        if pricing.input_cpm is not None:
            cached_cost = _dollars(cac, pricing.input_cpm)
            notes.append(CACHE_FALLBACK_NOTE)
        else:
            cached_cost = None
    if pricing.currency and pricing.currency.lower() != "usd":
        # Wafer publishes US cents; another endpoint may not. Say so rather than mislabel.
        notes.append(f"prices are in {pricing.currency.upper()} cents, not US cents")
    total: Decimal | None = None
    if input_cost is not None and cached_cost is not None and output_cost is not None:
        total = sum((input_cost, cached_cost, output_cost), Decimal(0))
    return Cost(input_cost, cached_cost, output_cost, total, kind, pricing.source,
                tuple(missing), tuple(notes), reasoning_cost)


def cost_of(usage: Usage, pricing: Pricing, *, kind: CostKind = "actual") -> Cost:
    """What `usage` costs at `pricing` (actual when usage came from the server)."""
    return price_tokens(usage.uncached_tokens, usage.cached_tokens, usage.completion_tokens,
                        pricing, kind=kind, reasoning=usage.reasoning_tokens)


def worst_case(prompt_tokens: int, max_tokens: int, pricing: Pricing) -> Cost:
    """Pre-send upper bound: no cache hits and the full `max_tokens` generated."""
    return cost_of(Usage(prompt_tokens, max_tokens), pricing, kind="estimate")


def format_usd(d: Decimal | float | None) -> str:
    """"$1,234.57", "$0.0123", "$0.000012"; None -> "not published" (never "$0")."""
    if d is None:
        return "not published"
    if not isinstance(d, Decimal):  # float, numpy float: shortest repr, no binary noise
        f = float(d)
        if math.isnan(f):
            return "not published"
        d = Decimal(repr(f))
    if d == 0:
        return "$0.00"
    sign = "-" if d < 0 else ""
    a = abs(d)
    if a >= 1:
        q = a.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return f"{sign}${q:,.2f}"
    # Below a dollar keep three significant digits (at least cents): $0.50, $0.0123, $0.000012
    exponent = a.adjusted()  # 0.0123 -> -2
    places = max(2, -exponent + 2)
    q = a.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{q:.{places}f}"
    if places > 2:
        text = text.rstrip("0")
        if len(text.split(".")[1]) < 2:
            text = f"{q:.2f}"
    return f"{sign}${text}"


def format_per_million(pricing: Pricing, part: PricePart) -> str:
    """A list price as every page writes it: "$0.60" per 1M tokens, or "not published"."""
    return format_usd(pricing.usd_per_million(part))


@dataclass
class SessionTotal:
    """Running total of a session: actual and estimated dollars kept apart, unpriced counted."""

    actual: Decimal = Decimal(0)
    estimate: Decimal = Decimal(0)
    n_actual: int = 0
    n_estimate: int = 0
    n_unpriced: int = 0
    notes: set[str] = field(default_factory=set)

    def add(self, cost: Cost) -> None:
        if cost.total is None:
            self.n_unpriced += 1
            return
        if cost.kind == "actual":
            self.actual += cost.total
            self.n_actual += 1
        else:
            self.estimate += cost.total
            self.n_estimate += 1
        self.notes.update(cost.notes)

    @property
    def total(self) -> Decimal:
        return self.actual + self.estimate

    def describe(self) -> str:
        parts = [f"{format_usd(self.actual)} actual ({self.n_actual} requests)"]
        if self.n_estimate:
            parts.append(f"{format_usd(self.estimate)} estimated ({self.n_estimate})")
        if self.n_unpriced:
            parts.append(f"{self.n_unpriced} not priced (price not published)")
        return " + ".join(parts[:2]) + ("; " + parts[2] if len(parts) > 2 else "")


# --- vectorised pricing -------------------------------------------------------------------

def usd_per_token(pricing: Pricing) -> tuple[float, float, float]:
    """(uncached input, cached, output) dollars per token as floats; NaN = not published.

    The cached rate falls back to the input rate exactly as `price_tokens` does.
    """
    def f(cpm: Decimal | None) -> float:
        return float("nan") if cpm is None else float(cpm) / 1e8

    cached = pricing.cache_read_cpm if pricing.cache_read_cpm is not None else pricing.input_cpm
    return f(pricing.input_cpm), f(cached), f(pricing.output_cpm)


def _rate_matrix(pricings: Sequence[Pricing]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rates with NaN zeroed (m, 3), model unpriced mask, cached-rate-missing mask)."""
    rates = np.array([usd_per_token(p) for p in pricings], dtype="float64").reshape(-1, 3)
    unpriced = np.isnan(rates[:, 0]) | np.isnan(rates[:, 2])
    cache_missing = np.isnan(rates[:, 1]) & ~unpriced
    return np.nan_to_num(rates, nan=0.0), unpriced, cache_missing


def row_costs(uncached: np.ndarray, cached: np.ndarray, output: np.ndarray,
              pricings: Sequence[Pricing], *, transposed: bool = False) -> np.ndarray:
    """Per-row dollars for every pricing at once: shape (rows, len(pricings)), float64
    ((len(pricings), rows) with `transposed`, contiguous per model for fast quantiles).

    One matrix product. NaN where a needed price is not published; cached rates fall back
    to input rates (see module doc), so a missing cached rate only matters for rows that
    have cached tokens and a model with no input price either.
    """
    clean, unpriced, cache_missing = _rate_matrix(pricings)
    tokens = np.stack([np.asarray(uncached, dtype="float64"), np.asarray(cached, "float64"),
                       np.asarray(output, "float64")])  # (3, n)
    out = clean @ tokens  # (m, n)
    out[unpriced, :] = np.nan
    if cache_missing.any():
        out[np.ix_(cache_missing, tokens[1] > 0)] = np.nan
    return out if transposed else out.T


# --- the planner ----------------------------------------------------------------------------

def lognormal_mean(p50: float, p90: float) -> float:
    """Mean of a log-normal with this median and 90th percentile (token counts are skewed).

    Cost is linear in tokens, so a workload's expected cost needs the MEAN tokens, which for a
    right-skewed distribution sits above the median.
    """
    if p50 <= 0:
        return 0.0
    if p90 <= p50:
        return float(p50)
    sigma = (math.log(p90) - math.log(p50)) / 1.2815515655446004  # z(0.90)
    return float(math.exp(math.log(p50) + sigma * sigma / 2))


def _dec(x: float | int | Decimal) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


@dataclass(frozen=True)
class Workload:
    """A traffic scenario. Token counts are per request (means; may be fractional).

    Multi-turn: a conversation of `turns` turns re-sends its history each turn, so turn k's
    prompt is `input_tokens` (new) + (k-1) * (input_tokens + output_tokens) (history). Every
    turn is one request; `requests_per_day` counts requests (turns), not conversations. With
    `history_cached` the re-sent history is a cache read (automatic prefix caching), otherwise
    it is billed like new input (subject to `cache_hit_pct` like any input).
    Retries re-send the whole request and are billed in full (conservative: whether Wafer
    bills failed requests is not published).
    """

    requests_per_day: float
    input_tokens: float
    output_tokens: float
    cache_hit_pct: float = 0.0
    turns: int = 1
    history_cached: bool = True
    retry_pct: float = 0.0
    growth_pct: float = 0.0  # monthly growth of requests/day, compounding

    def __post_init__(self) -> None:
        if self.requests_per_day < 0 or self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError("requests and token counts cannot be negative")
        if not 0 <= self.cache_hit_pct <= 100:
            raise ValueError("cache hit % must be between 0 and 100")
        if self.turns < 1:
            raise ValueError("a conversation has at least one turn")
        if self.retry_pct < 0 or self.growth_pct < -100:
            raise ValueError("retry % cannot be negative; growth cannot be below -100%")

    @property
    def history_tokens(self) -> Decimal:
        """Mean history re-sent per request: (turns-1)/2 * (input + output)."""
        return (Decimal(self.turns - 1) / 2) * (_dec(self.input_tokens) + _dec(self.output_tokens))

    def per_request(self) -> tuple[Decimal, Decimal, Decimal]:
        """Mean (uncached input, cached input, output) tokens per request."""
        hit = _dec(self.cache_hit_pct) / 100
        new = _dec(self.input_tokens)
        hist = self.history_tokens
        cached = new * hit + (hist if self.history_cached else hist * hit)
        uncached = new + hist - cached
        return uncached, cached, _dec(self.output_tokens)

    @property
    def billed_per_day(self) -> Decimal:
        return _dec(self.requests_per_day) * (1 + _dec(self.retry_pct) / 100)

    @property
    def max_prompt_tokens(self) -> int:
        """Largest prompt (last turn) plus its output: what must fit in the context window."""
        per_turn = self.input_tokens + self.output_tokens
        last_prompt = self.input_tokens + (self.turns - 1) * per_turn
        return math.ceil(last_prompt + self.output_tokens)

    def growth_factor(self, month: int) -> Decimal:
        """Requests multiplier in month `month` (1 = the first month)."""
        return (1 + _dec(self.growth_pct) / 100) ** (month - 1)


@dataclass(frozen=True)
class PlanRow:
    model: Model
    per_request: Cost  # estimate of the mean request
    per_day: Decimal | None
    per_month: Decimal | None  # first month
    months: tuple[Decimal | None, ...]  # month 1..horizon with growth
    affordable_per_day: int | None  # under the budget cap (first month), None = unpriced/no cap
    fits_context: bool | None


def plan_model(workload: Workload, model: Model, *, budget_month: Decimal | None = None,
               horizon: int = 12) -> PlanRow:
    unc, cac, out = workload.per_request()
    cost = price_tokens(unc, cac, out, model.pricing, kind="estimate")
    per_day = per_month = None
    months: tuple[Decimal | None, ...] = (None,) * horizon
    affordable: int | None = None
    if cost.total is not None:
        per_day = cost.total * workload.billed_per_day
        per_month = per_day * DAYS_PER_MONTH
        months = tuple(per_month * workload.growth_factor(m) for m in range(1, horizon + 1))
        if budget_month is not None:
            per_req_month = cost.total * (1 + _dec(workload.retry_pct) / 100) * DAYS_PER_MONTH
            affordable = (int(budget_month / per_req_month) if per_req_month > 0 else None)
    fits = None if model.context_length is None else (
        workload.max_prompt_tokens <= model.context_length)
    return PlanRow(model, cost, per_day, per_month, months, affordable, fits)


def plan(workload: Workload, models: Iterable[Model], *, budget_month: Decimal | None = None,
         horizon: int = 12) -> list[PlanRow]:
    """Price the workload on every model, cheapest first; unpublished prices last."""
    rows = [plan_model(workload, m, budget_month=budget_month, horizon=horizon) for m in models]
    return sorted(rows, key=lambda r: (r.per_month is None, r.per_month or 0, r.model.id.lower()))


def tier_label(tier: str | None) -> str:
    labels = {"pass_included": "Pass (covered by Wafer Pass)",
              "serverless_only": "Serverless only (pay per token)"}
    return labels.get(tier or "", "tier not published")


def plan_frame(rows: Sequence[PlanRow]) -> pd.DataFrame:
    """The ranked planner table: floats for sorting/charts, formatted strings for display."""
    def f(d: Decimal | None) -> float:
        return float("nan") if d is None else float(d)

    records = []
    for rank, r in enumerate(rows, start=1):
        src = r.model.pricing.source
        records.append({
            "rank": rank if r.per_month is not None else None,
            "model": r.model.id,
            "tier": tier_label(r.model.tier),
            "pass_included": r.model.tier == "pass_included",
            "per_request_usd": f(r.per_request.total),
            "per_day_usd": f(r.per_day),
            "per_month_usd": f(r.per_month),
            # with a per-month price every month is priced (plan_model)
            "year_usd": (f(sum((v for v in r.months if v is not None), Decimal(0)))
                         if r.per_month is not None else float("nan")),
            "per_request": format_usd(r.per_request.total),
            "per_month": format_usd(r.per_month),
            "affordable_per_day": r.affordable_per_day,
            "context_length": r.model.context_length,
            "fits_context": r.fits_context,
            "price_source": src.describe() if src else "not published",
            "notes": "; ".join(r.per_request.notes),
        })
    frame = pd.DataFrame.from_records(records, columns=[
        "rank", "model", "tier", "pass_included", "per_request_usd", "per_day_usd",
        "per_month_usd", "year_usd", "per_request", "per_month", "affordable_per_day",
        "context_length", "fits_context", "price_source", "notes"])
    for col in ("rank", "affordable_per_day", "context_length"):
        frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
    return frame


def months_frame(rows: Sequence[PlanRow]) -> pd.DataFrame:
    """Long frame (model, month, usd) of the growth projection, priced models only."""
    recs = [{"model": r.model.id, "month": i, "usd": float(v)}
            for r in rows for i, v in enumerate(r.months, start=1) if v is not None]
    return pd.DataFrame.from_records(recs, columns=["model", "month", "usd"])


# --- repricing real usage -------------------------------------------------------------------

TOKEN_COLUMNS = ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens")


@dataclass(frozen=True)
class RepriceResult:
    per_model: pd.DataFrame  # one row per catalog model: what ALL the usage would cost there
    as_logged: Cost | None  # each row on its own model (None when no row's model is priced)
    as_logged_rows: int  # rows priced on their own model
    unpriced_rows: int  # rows whose own model is unknown or has no published price
    row_cost: np.ndarray  # per-row dollars on the row's own model (NaN = not priced)
    totals: Usage  # summed tokens
    requests: int = 0  # requests the rows stand for (usage-me rows are aggregates)


def _model_key(s: str) -> str:
    return s.strip().lower()


def reprice(frame: pd.DataFrame, models: Sequence[Model]) -> RepriceResult:
    """Price usage rows (columns `TOKEN_COLUMNS` + `model`) on their own and every model.

    Totals are exact: integer token sums are priced with `cost_of` (cost is linear in tokens).
    Per-row costs are float64 (for tables and charts). Rows must already be validated
    (`usage.py` does that and reports bad rows).
    """
    tok = {c: frame[c].to_numpy(dtype="int64", na_value=0) if c in frame else
           np.zeros(len(frame), dtype="int64") for c in TOKEN_COLUMNS}
    prompt, cached = tok["prompt_tokens"], tok["cached_tokens"]
    completion = tok["completion_tokens"]
    uncached = prompt - cached
    totals = Usage(int(prompt.sum()), int(completion.sum()), int(cached.sum()),
                   int(tok["reasoning_tokens"].sum()))

    n_requests = (int(frame["requests"].sum()) if "requests" in frame else len(frame))
    # Per-request spread on every model needs every row priced on every model (a float
    # matrix); meaningful only when each row is one request (not usage-me aggregates).
    p90: dict[str, float] = {}
    single = "requests" not in frame or bool((frame["requests"] == 1).all())
    priced_models = [m for m in models if m.pricing.published]
    if single and len(frame) and priced_models:
        matrix = row_costs(uncached, cached, completion, [m.pricing for m in priced_models],
                           transposed=True)
        q = np.quantile(matrix, 0.9, axis=1)
        del matrix
        p90 = {m.id: float(v) for m, v in zip(priced_models, q, strict=True)}

    per_model = []
    for m in models:
        c = cost_of(totals, m.pricing, kind="estimate")
        mean = (float(c.total) / n_requests if c.total is not None and n_requests
                else float("nan"))
        src = m.pricing.source
        per_model.append({
            "model": m.id, "tier": tier_label(m.tier), "pass_included": m.tier == "pass_included",
            "total_usd": float("nan") if c.total is None else float(c.total),
            "total": format_usd(c.total),
            "input_usd": float("nan") if c.input is None else float(c.input),
            "cached_usd": float("nan") if c.cached is None else float(c.cached),
            "output_usd": float("nan") if c.output is None else float(c.output),
            "mean_request_usd": mean, "p90_request_usd": p90.get(m.id, float("nan")),
            "price_source": src.describe() if src else "not published",
            "notes": "; ".join(c.notes), "_exact": c.total,
        })
    per = pd.DataFrame.from_records(per_model, columns=[
        "model", "tier", "pass_included", "total_usd", "total", "input_usd", "cached_usd",
        "output_usd", "mean_request_usd", "p90_request_usd", "price_source", "notes", "_exact"])
    per = per.sort_values(["total_usd", "model"], na_position="last").reset_index(drop=True)

    # Each row on its own model: per-row rates gathered by model code (one pass), and exact
    # per-model token sums (bincount is exact while sums stay below 2**53 tokens).
    by_key = {_model_key(m.id): m for m in models}
    names = frame["model"].astype("string").fillna("") if "model" in frame else pd.Series(
        [""] * len(frame), dtype="string")
    codes, uniques = pd.factorize(names.str.strip().str.lower(), sort=False)
    own = [by_key.get(str(key)) for key in uniques]
    own_priced = [m for m in own if m is not None and m.pricing.published]
    row_cost = np.full(len(frame), np.nan)
    logged_cost: Cost | None = None
    parts: list[Cost] = []
    priced_rows = 0
    if own_priced:
        pricing_of_code = [m.pricing if m is not None and m.pricing.published else Pricing()
                           for m in own]
        clean, unpriced, cache_missing = _rate_matrix(pricing_of_code)
        r = clean[codes]  # (n, 3) per-row rates
        row_cost = uncached * r[:, 0] + cached * r[:, 1] + completion * r[:, 2]
        row_cost[unpriced[codes] | (cache_missing[codes] & (cached > 0))] = np.nan
        k = len(uniques)
        exact = max(totals.prompt_tokens, totals.completion_tokens) < 2**53
        sums = {}
        for name, arr in (("p", prompt), ("c", cached), ("o", completion),
                          ("r", tok["reasoning_tokens"])):
            if exact:
                sums[name] = np.bincount(codes, weights=arr, minlength=k).astype("int64")
            else:  # astronomically large files: exact int64 sums per model instead
                sums[name] = np.array([int(arr[codes == i].sum()) for i in range(k)])
        counts = np.bincount(codes, minlength=k)
        for i, own_model in enumerate(own):
            if own_model is None or not own_model.pricing.published:
                continue
            sub = Usage(int(sums["p"][i]), int(sums["o"][i]), int(sums["c"][i]),
                        int(sums["r"][i]))
            parts.append(cost_of(sub, own_model.pricing, kind="actual"))
            priced_rows += int(counts[i])
    if parts:
        logged_cost = _sum_costs(parts)
    return RepriceResult(per, logged_cost, priced_rows, len(frame) - priced_rows, row_cost, totals,
                         n_requests)


def _sum_costs(costs: Sequence[Cost]) -> Cost:
    def add(vals: Iterable[Decimal | None]) -> Decimal | None:
        vs = list(vals)
        present = [v for v in vs if v is not None]
        return None if len(present) != len(vs) else sum(present, Decimal(0))

    sources = {c.source for c in costs}
    return Cost(add(c.input for c in costs), add(c.cached for c in costs),
                add(c.output for c in costs), add(c.total for c in costs),
                "actual" if all(c.kind == "actual" for c in costs) else "estimate",
                sources.pop() if len(sources) == 1 else None,
                tuple(sorted({m for c in costs for m in c.missing})),
                tuple(sorted({n for c in costs for n in c.notes})),
                add(c.reasoning for c in costs))


# --- a planner scenario <-> URL query parameters ----------------------------------------------

TokenMode = Literal["fixed", "p50p90"]


@dataclass(frozen=True)
class Scenario:
    """Everything the planner's inputs hold; round-trips through short query parameters.

    In "p50p90" mode `input_tokens`/`output_tokens` are the medians and `*_p90` the 90th
    percentiles; the workload uses the log-normal means. Nothing here is secret.
    """

    requests_per_day: float = 1000
    token_mode: TokenMode = "fixed"
    input_tokens: float = 2000
    output_tokens: float = 500
    input_p90: float = 6000
    output_p90: float = 1500
    cache_hit_pct: float = 0
    turns: int = 1
    history_cached: bool = True
    retry_pct: float = 0
    growth_pct: float = 0
    budget_month: float = 0  # 0 = no budget cap

    def workload(self) -> Workload:
        if self.token_mode == "p50p90":
            inp = lognormal_mean(self.input_tokens, self.input_p90)
            out = lognormal_mean(self.output_tokens, self.output_p90)
        else:
            inp, out = self.input_tokens, self.output_tokens
        return Workload(self.requests_per_day, inp, out, self.cache_hit_pct, self.turns,
                        self.history_cached, self.retry_pct, self.growth_pct)

    @property
    def budget(self) -> Decimal | None:
        return _dec(self.budget_month) if self.budget_month > 0 else None

    def to_params(self) -> dict[str, str]:
        def num(x: float) -> str:
            return f"{x:g}" if float(x) != int(x) else str(int(x))

        p = {"rpd": num(self.requests_per_day), "mode": self.token_mode,
             "in": num(self.input_tokens), "out": num(self.output_tokens),
             "hit": num(self.cache_hit_pct), "turns": str(self.turns),
             "hcache": "1" if self.history_cached else "0", "retry": num(self.retry_pct),
             "growth": num(self.growth_pct), "budget": num(self.budget_month)}
        if self.token_mode == "p50p90":
            p.update({"in90": num(self.input_p90), "out90": num(self.output_p90)})
        return p

    @classmethod
    def from_params(cls, params: Any) -> tuple[Scenario, list[str]]:
        """Read what a link carries; a bad or out-of-range value falls back to the default
        and is reported, never raised."""
        d = cls()
        problems: list[str] = []
        values: dict[str, Any] = {}
        spec: dict[str, tuple[str, float, float, type]] = {
            # the planner's inputs take whole requests and tokens: a fraction is reported
            "rpd": ("requests_per_day", 0, 1e12, int), "in": ("input_tokens", 0, 1e9, int),
            "out": ("output_tokens", 0, 1e9, int), "in90": ("input_p90", 0, 1e9, int),
            "out90": ("output_p90", 0, 1e9, int), "hit": ("cache_hit_pct", 0, 100, float),
            "turns": ("turns", 1, 1000, int), "retry": ("retry_pct", 0, 1000, float),
            "growth": ("growth_pct", -99, 1000, float), "budget": ("budget_month", 0, 1e12, float),
        }
        for key, (name, lo, hi, typ) in spec.items():
            raw = params.get(key) if hasattr(params, "get") else None
            if raw is None:
                continue
            try:
                v = float(str(raw))
            except ValueError:
                problems.append(f"{key}={raw!r} is not a number")
                continue
            if not math.isfinite(v) or not lo <= v <= hi:
                problems.append(f"{key}={raw!r} is out of range ({lo:g}..{hi:g})")
                continue
            if typ is int and not v.is_integer():
                problems.append(f"{key}={raw!r} is not a whole number")
                continue
            values[name] = int(v) if typ is int else v
        mode = params.get("mode") if hasattr(params, "get") else None
        if mode in ("fixed", "p50p90"):
            values["token_mode"] = mode
        elif mode is not None:
            problems.append(f"mode={mode!r} is not fixed or p50p90")
        hc = params.get("hcache") if hasattr(params, "get") else None
        if hc in ("0", "1"):
            values["history_cached"] = hc == "1"
        s = Scenario(**{**d.__dict__, **values})
        if s.token_mode == "p50p90" and (s.input_p90 < s.input_tokens
                                         or s.output_p90 < s.output_tokens):
            problems.append("a p90 below its p50 was raised to the p50")
            s = Scenario(**{**s.__dict__, "input_p90": max(s.input_p90, s.input_tokens),
                            "output_p90": max(s.output_p90, s.output_tokens)})
        return s, problems


def models_for_pricing(live: Sequence[Model], snapshot: Sequence[Model],
                       ) -> tuple[list[Model], dict[str, str]]:
    """The endpoint's models first, then snapshot models it does not list, with a label each.

    A snapshot entry never replaces a listed model (the connection's own card wins; its
    price may itself be snapshot-filled by `catalog.fill_from_snapshot`, and says so).
    """
    listed = {m.id.lower() for m in live}
    out = list(live)
    where = {m.id: "listed by this endpoint" for m in live}
    for m in snapshot:
        if m.id.lower() not in listed:
            out.append(m)
            where[m.id] = "snapshot only (not listed by this endpoint)"
    return out, where


def describe_sources(models: Sequence[Model]) -> str:
    """'live from host at 14:02 for 5 models; snapshot of 2026-09-02 for 7; 2 not published'."""
    counts: dict[str, int] = {}
    unpublished = 0
    for m in models:
        src = m.pricing.source
        if src is None or not m.pricing.published:
            unpublished += 1
            continue
        counts[src.describe()] = counts.get(src.describe(), 0) + 1
    parts = [f"{label} for {n} model{'s' if n != 1 else ''}" for label, n in counts.items()]
    if unpublished:
        parts.append(f"{unpublished} not published")
    return "; ".join(parts) if parts else "no prices"


def daily_costs(frame: pd.DataFrame, row_cost: np.ndarray) -> pd.DataFrame:
    """Per-day totals of the rows' own-model cost (UTC days; rows without a time or a price
    are left out). Columns: date, usd, requests."""
    if "ts" not in frame or not len(frame):
        return pd.DataFrame(columns=["date", "usd", "requests"])
    ts = pd.to_datetime(frame["ts"], errors="coerce", utc=True)
    ok = ts.notna().to_numpy() & ~np.isnan(row_cost)
    if not ok.any():
        return pd.DataFrame(columns=["date", "usd", "requests"])
    days = ts[ok].dt.floor("D")
    reqs = frame["requests"].to_numpy()[ok] if "requests" in frame else np.ones(int(ok.sum()))
    out = (pd.DataFrame({"date": days.to_numpy(), "usd": row_cost[ok], "requests": reqs})
           .groupby("date", as_index=False).sum())
    return out
