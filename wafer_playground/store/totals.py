"""Totals over the request log frame (History and Costs pages)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .records import SpendRow

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class LogTotals:
    requests: int
    errors: int
    cost_usd: Decimal | None  # None when no request in the frame had a recorded cost
    priced: int  # how many requests the cost covers


def request_log_totals(df: pd.DataFrame) -> LogTotals:
    """Totals over (a filtered view of) `request_log_frame()`; Decimal, not float, sums."""
    known = [c for c in df["cost_usd"] if isinstance(c, Decimal)]
    return LogTotals(requests=len(df), errors=int((df["status"] == "error").sum()),
                     cost_usd=sum(known, Decimal(0)) if known else None, priced=len(known))


SPEND_KEYS = ("person", "team", "model", "day")


def spend_frame(rows: list[SpendRow], by: tuple[str, ...] = SPEND_KEYS,
                teams: Mapping[str, str] | None = None) -> pd.DataFrame:
    """`spend_of_everyone()` rows grouped by any of person/team/model/day: requests, errors
    and cost in dollars (Decimal), most expensive first. `teams` maps an owner to its team
    (owners in none are "(no team)")."""
    import pandas as pd

    keys = [k for k in SPEND_KEYS if k in by] or list(SPEND_KEYS)
    requests: dict[tuple[str, ...], int] = {}
    errors: dict[tuple[str, ...], int] = {}
    cost: dict[tuple[str, ...], Decimal] = {}
    for r in rows:
        values = {"person": r.owner, "team": (teams or {}).get(r.owner, "(no team)"),
                  "model": r.model, "day": r.day}
        k = tuple(values[name] for name in keys)
        requests[k] = requests.get(k, 0) + r.requests
        errors[k] = errors.get(k, 0) + r.errors
        cost[k] = cost.get(k, Decimal(0)) + r.cost_usd
    ordered = sorted(requests, key=lambda k: (-cost[k], k))
    df = pd.DataFrame([(*k, requests[k], errors[k]) for k in ordered],
                      columns=[*keys, "requests", "errors"])
    df["cost_usd"] = pd.Series([cost[k] for k in ordered], index=df.index, dtype=object)
    return df
