"""Per-person spend budgets on a team server: dollars per day and per month (UTC), from the
cost engine. Before a request is sent its worst case (costs.worst_case) is added to what the
person has already spent according to the shared request log (actual costs, recorded after
each request); a request that would pass a budget is refused, with a sentence saying so.

`WAFER_BUDGET_DAILY_USD` / `WAFER_BUDGET_MONTHLY_USD` set them (per owner: a signed-in person,
or a key fingerprint). Unset: no budget, no check. `BudgetedClient` applies them to every
request any page sends (Chat, Token & grammar, Compare).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .catalog import Pricing
from .client import Result, Stream, WaferClient
from .costs import format_usd, worst_case
from .errors import WaferError
from .guard import estimate_prompt_tokens

ENV_DAILY = "WAFER_BUDGET_DAILY_USD"
ENV_MONTHLY = "WAFER_BUDGET_MONTHLY_USD"
GENERATION_PATHS = ("/chat/completions", "/completions", "/messages")
# Worst case for a request that sets no max_tokens: the model's own limit, else this.
DEFAULT_MAX_TOKENS = 4096


class BudgetExceeded(WaferError):
    """Refused before sending: the request could take this person past a budget."""

    @property
    def title(self) -> str:
        return "Budget reached"


@dataclass(frozen=True)
class Budget:
    daily_usd: Decimal | None = None
    monthly_usd: Decimal | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Budget | None:
        """The configured budget, or None when neither setting is on."""
        def read(name: str) -> Decimal | None:
            raw = env.get(name, "").strip()
            if not raw:
                return None
            try:
                value = Decimal(raw)
            except InvalidOperation:
                raise ValueError(f"{name}={raw!r} is not a dollar amount") from None
            if not value.is_finite() or value < 0:
                raise ValueError(f"{name}={raw!r} must be zero or more dollars")
            return value

        budget = cls(read(ENV_DAILY), read(ENV_MONTHLY))
        return budget if budget.daily_usd is not None or budget.monthly_usd is not None else None


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """Start of the UTC day and of the UTC month containing `now`."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def _texts(body: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p.get("text", "") for p in content if isinstance(p, Mapping)]
    if isinstance(body.get("system"), str):
        out.append(body["system"])
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        out.append(prompt)
    return out


def estimate(body: Mapping[str, Any], pricing: Pricing | None,
             model_max_tokens: int | None = None) -> Decimal:
    """Worst-case dollars for `body`: no cache hits, every allowed output token generated.
    Unpublished prices count as zero (the actual cost is recorded after, if any)."""
    if pricing is None:
        return Decimal(0)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        prompt_tokens = len(prompt)  # token ids: counted exactly
    else:
        prompt_tokens = estimate_prompt_tokens(*_texts(body))
    max_tokens = (body.get("max_completion_tokens") or body.get("max_tokens")
                  or model_max_tokens or DEFAULT_MAX_TOKENS)
    total = worst_case(prompt_tokens, int(max_tokens), pricing).total
    return total or Decimal(0)


def refusal(budget: Budget, spent_today: Decimal, spent_month: Decimal,
            cost: Decimal) -> str | None:
    """None when the request fits; else the sentence that says which budget it would pass."""
    for label, limit, spent, when in (
        ("daily", budget.daily_usd, spent_today, "at 00:00 UTC"),
        ("monthly", budget.monthly_usd, spent_month, "on the 1st (UTC)"),
    ):
        # a used-up budget stops even a request priced at zero up front (prices unpublished)
        if limit is not None and (spent + cost > limit or spent >= limit):
            return (f"Not sent: your {label} budget is {format_usd(limit)} and you have spent "
                    f"{format_usd(spent)}; this request could cost up to {format_usd(cost)}. "
                    f"Lower max_tokens, or wait until the budget resets {when}.")
    return None


class BudgetedClient(WaferClient):
    """A WaferClient that checks the budget before each generation request.

    `spent(since)` returns the owner's recorded spend since a UTC time (the shared request
    log, so every replica sees the same figure); `model_info(model)` returns its pricing and
    output limit, or (None, None) when unknown.
    """

    def __init__(self, *args: Any, budget: Budget,
                 spent: Callable[[datetime], Decimal],
                 model_info: Callable[[str], tuple[Pricing | None, int | None]],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._budget, self._spent, self._model_info, self._now = budget, spent, model_info, now

    def check(self, body: Mapping[str, Any]) -> None:
        pricing, model_max = self._model_info(str(body.get("model") or ""))
        cost = estimate(body, pricing, model_max)
        day, month = period_starts(self._now())
        reason = refusal(self._budget, self._spent(day), self._spent(month), cost)
        if reason:
            raise BudgetExceeded(reason, code="budget_exceeded")

    # Every generation request (chat, completions, messages; streamed or not) goes through
    # one of the client's two senders: checking there covers today's methods and later ones.
    def _json(self, method: str, path: str, body: dict[str, Any] | None = None,
              **kwargs: Any) -> Result:
        if body is not None and path in GENERATION_PATHS:
            self.check(body)
        return super()._json(method, path, body, **kwargs)

    def _stream(self, path: str, body: dict[str, Any], **kwargs: Any) -> Stream:
        if path in GENERATION_PATHS:
            self.check(body)
        return super()._stream(path, body, **kwargs)
