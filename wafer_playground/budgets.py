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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .catalog import Pricing
from .client import Result, Stream, WaferClient
from .costs import format_usd, worst_case
from .errors import WaferError
from .guard import high_estimate

ENV_DAILY = "WAFER_BUDGET_DAILY_USD"
ENV_MONTHLY = "WAFER_BUDGET_MONTHLY_USD"
# Teams: "eng=ann@corp.example,bo@corp.example; sales=cy@corp.example", each with the
# team budget below (the sum of its members' spend).
ENV_TEAMS = "WAFER_TEAMS"
ENV_TEAM_DAILY = "WAFER_TEAM_BUDGET_DAILY_USD"
ENV_TEAM_MONTHLY = "WAFER_TEAM_BUDGET_MONTHLY_USD"
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
    def from_env(cls, env: Mapping[str, str] = os.environ, daily: str = ENV_DAILY,
                 monthly: str = ENV_MONTHLY) -> Budget | None:
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

        budget = cls(read(daily), read(monthly))
        return budget if budget.daily_usd is not None or budget.monthly_usd is not None else None


def team_budget(env: Mapping[str, str] = os.environ) -> Budget | None:
    return Budget.from_env(env, ENV_TEAM_DAILY, ENV_TEAM_MONTHLY)


def teams_from_env(env: Mapping[str, str] = os.environ) -> dict[str, frozenset[str]]:
    """WAFER_TEAMS as {team: owners} (owners as the store spells signed-in people)."""
    teams: dict[str, frozenset[str]] = {}
    for part in env.get(ENV_TEAMS, "").split(";"):
        name, sep, members = part.partition("=")
        if not part.strip():
            continue
        if not sep or not name.strip():
            raise ValueError(f"{ENV_TEAMS}: {part.strip()!r} is not team=email,email")
        teams[name.strip()] = frozenset(f"user:{m.strip().lower()}"
                                        for m in members.split(",") if m.strip())
    return teams


def team_of(owner: str, teams: Mapping[str, frozenset[str]]) -> str | None:
    """The first team (by name) `owner` belongs to."""
    return next((name for name in sorted(teams) if owner in teams[name]), None)


@dataclass(frozen=True)
class Limit:
    """One budget to check: whose it is (for the sentence) and how to read its spend."""

    whose: str  # "your", "your team eng's"
    budget: Budget
    spent: Callable[[datetime], Decimal]


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """Start of the UTC day and of the UTC month containing `now`."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def estimate(body: Mapping[str, Any], pricing: Pricing | None,
             model_max_tokens: int | None = None) -> Decimal:
    """Worst-case dollars for `body`: no cache hits, every allowed output token generated.
    Unpublished prices count as zero (the actual cost is recorded after, if any)."""
    if pricing is None:
        return Decimal(0)
    prompt_tokens = high_estimate(body)  # token ids are counted exactly
    max_tokens = (body.get("max_completion_tokens") or body.get("max_tokens")
                  or model_max_tokens or DEFAULT_MAX_TOKENS)
    total = worst_case(prompt_tokens, int(max_tokens), pricing).total
    return total or Decimal(0)


def refusal(budget: Budget, spent_today: Decimal, spent_month: Decimal,
            cost: Decimal, whose: str = "your") -> str | None:
    """None when the request fits; else the sentence that says which budget it would pass."""
    for label, limit, spent, when in (
        ("daily", budget.daily_usd, spent_today, "at 00:00 UTC"),
        ("monthly", budget.monthly_usd, spent_month, "on the 1st (UTC)"),
    ):
        # a used-up budget stops even a request priced at zero up front (prices unpublished)
        if limit is not None and (spent + cost > limit or spent >= limit):
            spender = "you have" if whose == "your" else "it has"
            return (f"Not sent: {whose} {label} budget is {format_usd(limit)} and {spender} "
                    f"spent {format_usd(spent)}; this request could cost up to "
                    f"{format_usd(cost)}. "
                    f"Lower max_tokens, or wait until the budget resets {when}.")
    return None


class BudgetedClient(WaferClient):
    """A WaferClient that checks its budgets (the person's, their team's) before each
    generation request.

    Each `Limit.spent(since)` returns recorded spend since a UTC time (the shared request log,
    so every replica sees the same figure); `model_info(model)` returns its pricing and
    output limit, or (None, None) when unknown.
    """

    def __init__(self, *args: Any, limits: Sequence[Limit],
                 model_info: Callable[[str], tuple[Pricing | None, int | None]],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits, self._model_info, self._now = list(limits), model_info, now

    def check(self, body: Mapping[str, Any]) -> None:
        pricing, model_max = self._model_info(str(body.get("model") or ""))
        cost = estimate(body, pricing, model_max)
        day, month = period_starts(self._now())
        for limit in self._limits:
            reason = refusal(limit.budget, limit.spent(day), limit.spent(month), cost,
                             limit.whose)
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
