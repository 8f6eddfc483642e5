"""Spend guard: refuse a request *before* it is sent when its worst case could exceed a cap.

The worst case is the cost engine's own bound (`costs.worst_case`: no cache hits, the full
`max_tokens` generated), so the guard can never let through a request that would cost more
than the cap. It returns None (fine) or one precise sentence saying what was blocked, by how
much, and the largest `max_tokens` that would fit. Presentation mode adds hard caps on top.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from .catalog import PricePart, Pricing
from .costs import MILLION, format_per_million, format_usd, worst_case
from .params import estimate_prompt_tokens

# The one prompt estimate (params.estimate_prompt_tokens, ~4 chars per token) is typical
# English BPE; code and other scripts run denser, so the guard counts a third more on
# purpose: a guard should err high.
GUARD_MARGIN = 4 / 3


def high_estimate(body: Mapping[str, Any]) -> int:
    """The prompt tokens the guard assumes for `body`: the one estimate, erring high.
    Token-id prompts are counted exactly, with no margin."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and all(isinstance(i, int) for i in prompt):
        return len(prompt)
    return math.ceil(estimate_prompt_tokens(body) * GUARD_MARGIN)


def _per_million(pricing: Pricing, part: PricePart) -> str:
    text = format_per_million(pricing, part)
    return text if pricing.usd_per_million(part) is None else f"{text}/M"


def max_tokens_within(prompt_tokens: int, pricing: Pricing, cap: Decimal) -> int | None:
    """Largest max_tokens whose worst case fits under `cap`; None when even 1 does not fit
    or the price is not published; -1 when output is free (any max_tokens fits)."""
    out_per_m = pricing.usd_per_million("output")
    if pricing.input_cpm is None or out_per_m is None:
        return None
    prompt_cost = worst_case(prompt_tokens, 0, pricing).total
    if prompt_cost is None:
        return None
    room = cap - prompt_cost
    if room < 0:
        return None
    if out_per_m == 0:
        return -1
    per_token = out_per_m / MILLION
    n = int((room / per_token).to_integral_value(rounding=ROUND_FLOOR))
    return n if n >= 1 else None


def check(prompt_tokens_estimate: int, max_tokens: int, pricing: Pricing,
          cap: Decimal | None, *, model: str | None = None) -> str | None:
    """None when the worst case fits under `cap` (or there is no cap), else why not."""
    if cap is None:
        return None
    if cap < 0:
        return f"The cost cap must be zero or more (got {cap})."
    if prompt_tokens_estimate < 0 or max_tokens < 1:
        return (f"Cannot bound the cost: prompt tokens {prompt_tokens_estimate} and "
                f"max_tokens {max_tokens} must be non-negative and at least 1.")
    who = f" for {model}" if model else ""
    bound = worst_case(prompt_tokens_estimate, max_tokens, pricing)
    if bound.total is None:
        missing = " and ".join(bound.missing) or "token"
        return (f"Blocked before sending: the {missing} price{who} is not published, so the "
                f"worst-case cost cannot be checked against your {format_usd(cap)} cap. "
                "Remove the cap to send anyway.")
    if bound.total <= cap:
        return None
    fits = max_tokens_within(prompt_tokens_estimate, pricing, cap)
    advice = (f"Lower max_tokens to {fits:,} or raise the cap." if fits and fits > 0
              else "The prompt alone exceeds the cap: shorten it or raise the cap.")
    return (f"Blocked before sending: the worst case{who} is {format_usd(bound.total)} "
            f"({prompt_tokens_estimate:,} prompt tokens at {_per_million(pricing, 'input')} "
            f"+ {max_tokens:,} output tokens at {_per_million(pricing, 'output')}), above "
            f"your cap of {format_usd(cap)}. {advice}")


@dataclass(frozen=True)
class Caps:
    """Hard per-request limits (presentation mode): None = no limit on that axis."""

    max_tokens: int | None = None
    max_cost_usd: Decimal | None = None


PRESENTATION_CAPS = Caps(max_tokens=256, max_cost_usd=Decimal("0.02"))


def effective_cap(user_cap: Decimal | None, caps: Caps | None) -> Decimal | None:
    """The tighter of the user's cap and the hard cap."""
    limits = [c for c in (user_cap, caps.max_cost_usd if caps else None) if c is not None]
    return min(limits) if limits else None


def check_caps(max_tokens: int, caps: Caps | None) -> str | None:
    if caps is None or caps.max_tokens is None or max_tokens <= caps.max_tokens:
        return None
    return (f"Blocked before sending: max_tokens {max_tokens:,} is above the presentation "
            f"limit of {caps.max_tokens:,}. Lower it, or leave presentation mode.")


def check_request(prompt_tokens_estimate: int, max_tokens: int, pricing: Pricing, *,
                  cap: Decimal | None = None, caps: Caps | None = None,
                  model: str | None = None) -> str | None:
    """The whole pre-send check: hard caps first, then the cost bound under the tighter cap."""
    msg = check_caps(max_tokens, caps) or check(
        prompt_tokens_estimate, max_tokens, pricing, effective_cap(cap, caps), model=model)
    if msg and caps is not None and caps.max_cost_usd is not None:
        # the hard cap cannot be removed from here: say what can be done instead
        msg = msg.replace("Remove the cap to send anyway.",
                          "Presentation mode only sends to models with a published price.")
    return msg


__all__ = [
    "PRESENTATION_CAPS",
    "Caps",
    "check",
    "check_caps",
    "check_request",
    "effective_cap",
    "high_estimate",
    "max_tokens_within",
]
