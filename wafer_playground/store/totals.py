"""Totals over the request log frame (History and Costs pages)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

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
