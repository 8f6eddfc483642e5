"""Evaluation statistics: pass rate with a Wilson interval, cost per passing answer, latency
percentiles, flakiness over repeats, the diff of two runs, a Bradley–Terry leaderboard from
blind votes with bootstrap intervals, and the exports (issue 18). Pure functions."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go

from .costs import format_usd
from .store.evals import EvalCell
from .store.records import Vote
from .untrusted import csv_text

Z95 = 1.959963984540054


def wilson(passes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a pass rate (sound at 0/n and n/n, unlike p ± z·se)."""
    if n <= 0:
        return (0.0, 1.0)
    p = passes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    xs = sorted(v for v in values if v is not None and math.isfinite(v))
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class ModelSummary:
    model: str
    cells: int  # finished cells that were checked
    passes: int
    errors: int
    pass_rate: float | None
    ci: tuple[float, float]
    cost: Decimal | None  # answers only; None when no cell was priced
    judge_cost: Decimal | None
    cost_per_pass: Decimal | None  # answers' cost / passes; None when nothing passed
    p50_s: float | None  # latency (request duration)
    p90_s: float | None
    ttft_p50_s: float | None
    tokens_per_s: float | None  # median


def _sum(values: Sequence[Decimal | None]) -> Decimal | None:
    got = [v for v in values if v is not None]
    return sum(got, Decimal(0)) if got else None


def summarize(cells: Sequence[EvalCell], models: Sequence[str]) -> list[ModelSummary]:
    """One summary per model, in `models` order. A cell counts once it is `done` or `error`
    (an error is a failed answer: the user paid for nothing usable)."""
    out = []
    for m in models:
        mine = [c for c in cells if c.model == m and c.status in ("done", "error")]
        checked = [c for c in mine if c.passed is not None or c.status == "error"]
        passes = sum(1 for c in checked if c.passed)
        cost = _sum([c.cost_usd for c in mine])
        out.append(ModelSummary(
            model=m, cells=len(checked), passes=passes,
            errors=sum(1 for c in mine if c.status == "error"),
            pass_rate=passes / len(checked) if checked else None,
            ci=wilson(passes, len(checked)),
            cost=cost, judge_cost=_sum([c.judge_cost_usd for c in mine]),
            cost_per_pass=(cost / passes) if cost is not None and passes else None,
            p50_s=percentile([c.duration_s for c in mine if c.duration_s is not None], 50),
            p90_s=percentile([c.duration_s for c in mine if c.duration_s is not None], 90),
            ttft_p50_s=percentile([c.ttft_s for c in mine if c.ttft_s is not None], 50),
            tokens_per_s=percentile([c.tokens_per_s for c in mine
                                     if c.tokens_per_s is not None], 50)))
    return out


def summary_rows(summaries: Sequence[ModelSummary]) -> list[dict[str, Any]]:
    """The summary as display rows (text: money is never rounded to a float)."""
    def secs(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f} s"
    rows = []
    for s in summaries:
        rate = ("—" if s.pass_rate is None else
                f"{s.pass_rate:.0%} ({s.ci[0]:.0%}–{s.ci[1]:.0%})")
        per_pass = ("—" if not s.cells else "— (none passed)" if s.cost_per_pass is None
                    else format_usd(s.cost_per_pass))
        rows.append({"model": s.model, "passed": f"{s.passes}/{s.cells}",
                     "pass rate (95% CI)": rate,
                     "total cost": format_usd(s.cost) if s.cost is not None else "—",
                     "cost per passing answer": per_pass,
                     "judge cost": format_usd(s.judge_cost) if s.judge_cost is not None else "—",
                     "p50 latency": secs(s.p50_s), "p90 latency": secs(s.p90_s),
                     "TTFT p50": secs(s.ttft_p50_s),
                     "tok/s p50": "—" if s.tokens_per_s is None else f"{s.tokens_per_s:.0f}",
                     "errors": s.errors})
    return rows


def pass_cost_figure(summaries: Sequence[ModelSummary], *, height: int = 360) -> go.Figure:
    """Pass rate (with its interval) against total cost per answer, cost on a log axis."""
    fig = go.Figure()
    for s in summaries:
        if s.pass_rate is None or s.cost is None or s.cells == 0 or s.cost <= 0:
            continue
        per = float(s.cost) / max(1, s.cells)
        fig.add_trace(go.Scatter(
            x=[per], y=[s.pass_rate * 100], mode="markers+text", name=s.model,
            text=[s.model], textposition="top center", marker={"size": 14},
            error_y={"type": "data", "symmetric": False,
                     "array": [(s.ci[1] - s.pass_rate) * 100],
                     "arrayminus": [(s.pass_rate - s.ci[0]) * 100]},
            hovertemplate=(f"{s.model}<br>pass rate %{{y:.0f}}%<br>cost per answer $%{{x:.6f}}"
                           "<extra></extra>")))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"type": "log", "title": "cost per answer (USD, log)",
                             "tickprefix": "$", "exponentformat": "e"},
                      yaxis={"title": "pass rate (%)", "range": [-8, 115]},
                      showlegend=False, title="Pass rate vs cost")
    return fig


# --------------------------------------------------------------------------- flakiness, diff


@dataclass(frozen=True)
class Flaky:
    row: int
    model: str
    passes: int
    runs: int

    @property
    def flaky(self) -> bool:
        return 0 < self.passes < self.runs


def flakiness(cells: Sequence[EvalCell]) -> list[Flaky]:
    """Per (row, model) over repeats: how often it passed. Flaky = sometimes, not always."""
    groups: dict[tuple[int, str], list[bool]] = {}
    for c in cells:
        if c.status in ("done", "error") and (c.passed is not None or c.status == "error"):
            groups.setdefault((c.row, c.model), []).append(bool(c.passed))
    return [Flaky(r, m, sum(v), len(v)) for (r, m), v in sorted(groups.items())]


def majority(cells: Sequence[EvalCell]) -> dict[tuple[int, str], bool]:
    """(row, model) -> passed in most repeats (ties count as failed)."""
    return {(f.row, f.model): f.passes * 2 > f.runs for f in flakiness(cells)}


@dataclass(frozen=True)
class Flip:
    row: int
    model: str
    before: bool
    after: bool


def diff(a: Sequence[EvalCell], b: Sequence[EvalCell]) -> list[Flip]:
    """Rows whose verdict flipped between run A and run B, per model both runs share."""
    va, vb = majority(a), majority(b)
    return [Flip(r, m, va[(r, m)], vb[(r, m)]) for (r, m) in sorted(set(va) & set(vb))
            if va[(r, m)] != vb[(r, m)]]


# --------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class Rating:
    model: str
    appearances: int
    wins: float  # a tie is half a win for each
    win_rate: float | None
    rating: float  # Elo-like scale: 1000 + 400·log10(strength / mean strength)
    lo: float
    hi: float


def _pairs(votes: Sequence[Vote]) -> list[tuple[str, str, float]]:
    """(a, b, score of a): the winner beats each other candidate; no winner is a tie."""
    out = []
    for v in votes:
        cands = list(dict.fromkeys(v.candidates))
        for i, a in enumerate(cands):
            for b in cands[i + 1:]:
                if v.winner is None:
                    out.append((a, b, 0.5))
                elif v.winner in (a, b):
                    out.append((a, b, 1.0 if v.winner == a else 0.0))
    return out


def bradley_terry(pairs: Sequence[tuple[str, str, float]], models: Sequence[str], *,
                  prior: float = 0.5, iters: int = 200) -> dict[str, float]:
    """Strengths by Hunter's MM algorithm; `prior` pseudo-games against every other model
    (half won) keep an undefeated or winless model finite."""
    idx = {m: i for i, m in enumerate(models)}
    n = len(models)
    wins = [[0.0] * n for _ in range(n)]
    for a, b, s in pairs:
        i, j = idx[a], idx[b]
        wins[i][j] += s
        wins[j][i] += 1 - s
    if prior > 0:
        for i in range(n):
            for j in range(n):
                if i != j:
                    wins[i][j] += prior / 2
    games = [[wins[i][j] + wins[j][i] for j in range(n)] for i in range(n)]
    p = [1.0] * n
    for _ in range(iters):
        new = []
        for i in range(n):
            w = sum(wins[i])
            d = sum(games[i][j] / (p[i] + p[j]) for j in range(n) if j != i and games[i][j])
            new.append(w / d if d > 0 else p[i])
        g = math.exp(sum(math.log(x) for x in new if x > 0) / n) if n else 1.0
        new = [x / g for x in new]
        if max(abs(x - y) for x, y in zip(new, p, strict=True)) < 1e-9:
            p = new
            break
        p = new
    return {m: 1000 + 400 * math.log10(p[idx[m]]) for m in models}


def leaderboard(votes: Sequence[Vote], *, bootstrap: int = 200, seed: int = 0) -> list[Rating]:
    """Win rate and Bradley–Terry rating per model, with a 95% bootstrap interval (votes
    resampled with replacement). Best first."""
    models = sorted({m for v in votes for m in v.candidates})
    if len(models) < 2:
        return []
    app = {m: 0 for m in models}
    won = {m: 0.0 for m in models}
    for v in votes:
        for m in set(v.candidates):
            app[m] += 1
            if v.winner is None:
                won[m] += 0.5
            elif v.winner == m:
                won[m] += 1
    point = bradley_terry(_pairs(votes), models)
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(bootstrap):
        pick = [votes[rng.randrange(len(votes))] for _ in votes]
        r = bradley_terry(_pairs(pick), models, iters=100)
        for m in models:
            samples[m].append(r[m])
    out = []
    for m in models:
        lo = percentile(samples[m], 2.5) if bootstrap else None
        hi = percentile(samples[m], 97.5) if bootstrap else None
        out.append(Rating(m, app[m], won[m], won[m] / app[m] if app[m] else None, point[m],
                          point[m] if lo is None else lo, point[m] if hi is None else hi))
    return sorted(out, key=lambda r: -r.rating)


def filter_votes(votes: Sequence[Vote], *, since: str | None = None, until: str | None = None,
                 template: str | None = None) -> list[Vote]:
    """Votes in [since, until] (ISO dates or timestamps) and, if given, of one template
    (meta["template"], as an evaluation's pairwise view records it)."""
    out = []
    for v in votes:
        if since and v.ts < since:
            continue
        if until and v.ts[: len(until)] > until:
            continue
        if template and (v.meta or {}).get("template") != template:
            continue
        out.append(v)
    return out


def leaderboard_figure(ratings: Sequence[Rating], *, height: int = 320,
                       font_size: int = 12) -> go.Figure:
    rs = list(reversed(ratings))
    fig = go.Figure(go.Scatter(
        x=[r.rating for r in rs], y=[r.model for r in rs], mode="markers",
        marker={"size": 12},
        error_x={"type": "data", "symmetric": False, "array": [r.hi - r.rating for r in rs],
                 "arrayminus": [r.rating - r.lo for r in rs]},
        hovertemplate="%{y}: %{x:.0f}<extra></extra>"))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "Bradley–Terry rating (95% bootstrap interval)"},
                      font={"size": font_size}, title="Leaderboard")
    return fig


# --------------------------------------------------------------------------- exports


CELL_COLUMNS = ("row", "model", "repeat", "status", "passed", "reasons", "output", "cost_usd",
                "judge_cost_usd", "ttft_s", "tokens_per_s", "duration_s", "request_row_id",
                "error")


def _cell_values(c: EvalCell, row_values: Mapping[str, str] | None) -> list[Any]:
    vals: list[Any] = [c.row + 1, c.model, c.repeat + 1, c.status,
                       "" if c.passed is None else ("pass" if c.passed else "fail"),
                       "; ".join(c.reasons), c.output,
                       "" if c.cost_usd is None else format(c.cost_usd, "f"),
                       "" if c.judge_cost_usd is None else format(c.judge_cost_usd, "f"),
                       c.ttft_s, c.tokens_per_s, c.duration_s, c.request_row_id, c.error]
    return vals + list((row_values or {}).values())


def cells_csv(cells: Sequence[EvalCell],
              row_values: Callable[[int], Mapping[str, str]] | None = None,
              variables: Sequence[str] = ()) -> str:
    """Every cell as formula-safe CSV (untrusted.csv_text), 1-based rows and repeats."""
    return csv_text([*CELL_COLUMNS, *variables],
                    [_cell_values(c, row_values(c.row) if row_values else None) for c in cells])


def run_json(setup: Mapping[str, Any], cells: Sequence[EvalCell],
             summaries: Sequence[ModelSummary]) -> str:
    """The run as JSON: its setup (never a key: the setup holds none), cells and summary."""
    return json.dumps({
        "format": "wafer-playground/evaluation", "setup": dict(setup),
        "summary": [{"model": s.model, "cells": s.cells, "passes": s.passes,
                     "pass_rate": s.pass_rate, "ci95": list(s.ci),
                     "cost_usd": None if s.cost is None else format(s.cost, "f"),
                     "cost_per_pass_usd": (None if s.cost_per_pass is None
                                           else format(s.cost_per_pass, "f")),
                     "judge_cost_usd": None if s.judge_cost is None else format(s.judge_cost, "f"),
                     "p50_s": s.p50_s, "p90_s": s.p90_s} for s in summaries],
        "cells": [dict(zip(CELL_COLUMNS, _cell_values(c, None), strict=True)) for c in cells],
    }, indent=2, ensure_ascii=False)


__all__ = [
    "CELL_COLUMNS", "Flaky", "Flip", "ModelSummary", "Rating", "bradley_terry", "cells_csv",
    "diff", "filter_votes", "flakiness", "leaderboard", "leaderboard_figure", "majority",
    "pass_cost_figure", "percentile", "run_json", "summarize", "summary_rows", "wilson",
]
