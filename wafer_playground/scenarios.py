"""Demo scenario cards for presentation mode: one click sets up and runs a comparison.

A scenario is data (prompt, surface, grammar, limits) plus a rule for picking models from
whatever catalog the current endpoint serves, so the same cards work on Wafer and offline on
the local engine. Every scenario stays inside the presentation caps (guard.PRESENTATION_CAPS).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .catalog import Model
from .compare import MAX_PANES, PaneResult, Surface
from .costs import format_usd
from .guard import Caps, check_request, high_estimate

Pick = Literal["cheapest_chat", "completions", "chat_and_completions"]

# Documented as supporting tokenized completions; Wafer cards do not say which do.
DOCUMENTED_COMPLETION_MODELS = ("GLM-5.1",)


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    blurb: str  # one line for the card
    icon: str
    surface: Surface
    prompt: str
    pick: Pick
    max_tokens: int
    temperature: float = 0.0
    system: str = ""
    grammar: str | None = None
    expect: str | None = None  # regex an answer must match to "pass" (case-insensitive)
    show_tokens: bool = False  # show how each model's tokenizer splits the prompt
    panes: int = MAX_PANES  # how many models at most


JSON_GRAMMAR = r'''root ::= "{" ws "\"name\":" ws string "," ws "\"born\":" ws year "," ws
    "\"field\":" ws string ws "}"
string ::= "\"" [A-Za-z .,'-]{1,40} "\""
year ::= [12] [0-9] [0-9] [0-9]
ws ::= [ ]?'''

# The scripted demo's comparison (components/presentation.py): three models, price and speed.
PRICE_SPEED = Scenario(
    id="speed",
    title="Price and speed",
    blurb="The same short answer from the three cheapest chat models: time to first token, "
          "tokens per second and what each answer cost.",
    icon=":material/speed:",
    surface="chat",
    system="Answer in two sentences.",
    prompt="Why is the sky blue?",
    pick="cheapest_chat",
    max_tokens=96,
    panes=3,
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        id="cheapest",
        title="Cheapest model that answers this",
        blurb="One factual question to the cheapest chat models; the summary names the "
              "cheapest one that got it right.",
        icon=":material/savings:",
        surface="chat",
        system="Answer with the city name only.",
        prompt="What is the capital of France?",
        pick="cheapest_chat",
        max_tokens=24,
        expect=r"\bparis\b",
    ),
    Scenario(
        id="json",
        title="JSON out of a grammar",
        blurb="A token-ID completion constrained by an EBNF grammar: every model must "
              "return valid JSON, checked on arrival.",
        icon=":material/data_object:",
        surface="completions",
        prompt="Ada Lovelace, English mathematician, 1815. As a JSON record:",
        pick="completions",
        max_tokens=64,
        grammar=JSON_GRAMMAR,
    ),
    Scenario(
        id="xray",
        title="Token X-ray",
        blurb="The same sentence through each model's tokenizer: how many tokens, where "
              "the splits fall, and what that does to the bill.",
        icon=":material/biotech:",
        surface="completions",
        prompt="Tokenizers split unbelievably long words like antidisestablishmentarianism "
               "into",
        pick="completions",
        max_tokens=24,
        show_tokens=True,
    ),
)


def get(scenario_id: str) -> Scenario | None:
    return next((s for s in (*SCENARIOS, PRICE_SPEED) if s.id == scenario_id), None)


def _price_key(m: Model) -> tuple[Decimal, Decimal, str]:
    big = Decimal("1e12")  # unpublished prices sort last, never as free
    p = m.pricing
    return (p.output_cpm if p.output_cpm is not None else big,
            p.input_cpm if p.input_cpm is not None else big, m.id)


def supports_chat(m: Model) -> bool:
    return m.disabled_reason is None and m.chat_template


def supports_completions(m: Model) -> bool:
    if m.disabled_reason is not None:
        return False
    if m.local is not None:
        endpoints = m.local.get("endpoints")
        return not isinstance(endpoints, list) or "/v1/completions" in endpoints
    return m.id in DOCUMENTED_COMPLETION_MODELS


@dataclass(frozen=True)
class PanePick:
    model: str
    temperature: float


def pick_models(scenario: Scenario, models: Sequence[Model]) -> list[PanePick]:
    """Up to four panes for this scenario, cheapest first.

    With only one suitable model the scenario still compares something real: the same
    model at temperature 0 and 1 (sampling changes the answer, not the price).
    """
    ok = supports_chat if scenario.surface == "chat" else supports_completions
    usable = [m for m in models if ok(m)]
    # priced models only when there are any: a demo's cost cap cannot bound an unknown price
    priced = [m for m in usable if m.pricing.published]
    chosen = sorted(priced or usable, key=_price_key)[:min(scenario.panes, MAX_PANES)]
    if not chosen:
        return []
    if len(chosen) == 1:
        return [PanePick(chosen[0].id, scenario.temperature), PanePick(chosen[0].id, 1.0)]
    return [PanePick(m.id, scenario.temperature) for m in chosen]


@dataclass(frozen=True)
class Readiness:
    """Whether a card can run here and now, with the models it would use.

    `left_out` says which models were swapped out and why (over the cap, no tokenizer
    without a download); `reason` is set when the card cannot run at all.
    """

    picks: list[PanePick]
    left_out: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def ready(self) -> bool:
        return self.reason is None


def readiness(scenario: Scenario, models: Sequence[Model], *, caps: Caps | None,
              tokenizer_ready: Callable[[Model], bool] | None = None) -> Readiness:
    """Check a card before it is offered (issue 16: all three demo cards failed on click).

    A model whose worst case breaks the caps, or (token-ID cards) whose tokenizer is not
    available without a download, is swapped for the next cheapest one that fits; with no
    model left the card says why it is not ready.
    """
    ok = supports_chat if scenario.surface == "chat" else supports_completions
    usable = [m for m in models if ok(m)]
    if not usable:
        kind = "chat" if scenario.surface == "chat" else "token-ID completion"
        return Readiness([], reason=f"no model on this endpoint supports {kind}")
    left_out: list[str] = []
    if scenario.surface == "completions" and tokenizer_ready is not None:
        have = [m for m in usable if tokenizer_ready(m)]
        left_out += [f"{m.id}: its tokenizer needs a download" for m in usable
                     if m not in have]
        usable = have
    if caps is not None:
        estimate = high_estimate({"messages": [{"role": "system", "content": scenario.system},
                                               {"role": "user", "content": scenario.prompt}]})
        fits = [m for m in usable if m.pricing.published and check_request(
            estimate, scenario.max_tokens, m.pricing, caps=caps, model=m.id) is None]
        left_out += [f"{m.id}: over the {format_usd(caps.max_cost_usd)} cap"
                     if m.pricing.published else f"{m.id}: price not published"
                     for m in usable if m not in fits]
        usable = fits
    picks = pick_models(scenario, usable)
    if not picks:
        causes = dict.fromkeys(why.split(": ", 1)[1] for why in left_out)
        return Readiness([], tuple(left_out),
                         "every suitable model is left out (" + "; ".join(causes) + ")")
    return Readiness(picks, tuple(left_out))


def passes(scenario: Scenario, text: str, grammar_ok: bool | None) -> bool | None:
    """Did this answer do the job? None when the scenario has no pass rule."""
    if scenario.grammar is not None:
        return grammar_ok
    if scenario.expect is not None:
        return re.search(scenario.expect, text, flags=re.IGNORECASE) is not None
    return None


def cheapest_passing(results: Sequence[PaneResult], passed: Sequence[bool | None]) -> int | None:
    """Index of the cheapest finished pane that passed (ties: the faster first token)."""
    best: tuple[Decimal, float, int] | None = None
    for i, (r, ok) in enumerate(zip(results, passed, strict=True)):
        if not ok or r.status != "done" or r.cost_usd is None:
            continue
        key = (r.cost_usd, r.ttft_s if r.ttft_s is not None else float("inf"), i)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


__all__ = [
    "PRICE_SPEED",
    "SCENARIOS",
    "PanePick",
    "Readiness",
    "Scenario",
    "cheapest_passing",
    "get",
    "passes",
    "pick_models",
    "readiness",
    "supports_chat",
    "supports_completions",
]
