"""Model catalog: `/v1/models` cards -> typed `Model`s and a pandas frame.

Tolerant by design: cards without the `wafer` block, unknown extra fields, missing or partial
pricing (kept as None = "not published", never 0) and broken cards (reported in `problems`,
not raised). Prices stay in the API's unit, US cents per million tokens; `costs.py` turns them
into dollars.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd

Tier = Literal["pass_included", "serverless_only"]
PricePart = Literal["input", "output", "cache_read"]


@dataclass(frozen=True)
class PriceSource:
    kind: Literal["live", "snapshot"]
    label: str  # "live from 127.0.0.1:8765" / "snapshot of 2026-09-02"
    at: str  # ISO time (live) or date (snapshot)

    def describe(self) -> str:
        if self.kind == "live":
            return f"live from {self.label} at {self.at}"
        return f"snapshot of {self.at} ({self.label})"


@dataclass(frozen=True)
class Pricing:
    """Cents per 1M tokens. None means not published: never priced as free."""

    input_cpm: Decimal | None = None
    output_cpm: Decimal | None = None
    cache_read_cpm: Decimal | None = None
    currency: str = "usd"
    source: PriceSource | None = None

    @property
    def published(self) -> bool:
        return self.input_cpm is not None and self.output_cpm is not None

    @property
    def is_snapshot(self) -> bool:
        return self.source is not None and self.source.kind == "snapshot"

    def usd_per_million(self, part: PricePart) -> Decimal | None:
        """Dollars per 1M tokens of `part` ("input", "output", "cache_read"), exact; None
        when not published. Every page converts a price through here."""
        return cents_to_dollars(getattr(self, f"{part}_cpm"))

    def usd_per_million_f(self, part: PricePart) -> float:
        """The same as a float for tables and charts; NaN when not published."""
        d = self.usd_per_million(part)
        return float("nan") if d is None else float(d)


@dataclass(frozen=True)
class ReasoningEffort:
    """A card's `reasoning_effort` block (docs/spec/addendum-2026-12.md §2.1): how effort is applied
    (`system_prompt` | `native_effort`), the values the model accepts, and its default."""

    control: str | None
    efforts: tuple[str, ...]
    default: str | None


# `chat_completions` flags a card may carry (docs/spec/addendum-2026-12.md §2.1); absent = not
# stated.
CHAT_FLAGS = ("supported", "streaming", "tools", "tool_streaming", "json_object",
              "json_schema", "tools_with_response_format")


@dataclass(frozen=True)
class Model:
    id: str
    display_name: str
    description: str = ""
    tier: str | None = None
    context_length: int | None = None
    max_output_tokens: int | None = None
    zdr_supported: bool = False
    vision: bool | None = None
    tools: bool | None = None
    reasoning: bool | None = None
    provider: str | None = None
    owned_by: str | None = None
    created: int | None = None
    pricing: Pricing = field(default_factory=Pricing)
    disabled_reason: str | None = None
    local: dict[str, Any] | None = None  # the local engine's extras (licence, package, ...)
    reasoning_effort: ReasoningEffort | None = None
    chat_completions: dict[str, bool] = field(default_factory=dict)  # CHAT_FLAGS stated
    has_wafer_block: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def recommended_sampling(self) -> dict[str, Any]:
        """The card's suggested sampling values (untrusted: params.model_defaults filters)."""
        block = (self.local or {}).get("recommended_sampling")
        return dict(block) if isinstance(block, dict) else {}

    @property
    def vocab_size(self) -> int | None:
        """The vocabulary size when the card states it (local engine cards do)."""
        n = (self.local or {}).get("n_vocab")
        return int(n) if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None

    @property
    def chat_template(self) -> bool:
        """False only when the card says so (local base models): chat will not work."""
        return not (self.local and self.local.get("chat_template") is False)


@dataclass
class Catalog:
    models: list[Model]
    problems: list[str] = field(default_factory=list)

    def get(self, model_id: str) -> Model | None:
        for m in self.models:
            if m.id == model_id:
                return m
        return None

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.models]


# Above $100,000 per million tokens a price is a broken card, not a price (real ones are
# below $1,000): such a value is treated as not published and reported (issue 14).
MAX_CENTS_PER_MILLION = Decimal(10) ** 7


def _decimal(value: Any, name: str = "price", issues: list[str] | None = None,
             scale: int = 0) -> Decimal | None:
    """A published price, or None; a value that is there but unusable is reported.
    `scale` 6 reads a microcents field as cents (exactly: Decimal, no float)."""
    if value is None:
        return None
    try:
        d = None if isinstance(value, bool) else Decimal(str(value)).scaleb(-scale)
    except (InvalidOperation, ValueError):
        d = None
    if d is not None and d.is_finite() and 0 <= d <= MAX_CENTS_PER_MILLION:
        return d
    if issues is not None:
        why = ("negative" if d is not None and d.is_finite() and d < 0 else
               "too large to be a price" if d is not None and d.is_finite() else
               "not a finite number")
        shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "…"
        issues.append(f"{name} {shown!r} is {why}: treated as not published")
    return None


def _int(value: Any, name: str = "", issues: list[str] | None = None,
         top: int = 10**10) -> int | None:
    """A positive count (or time); above `top` it is a broken card and is reported (a
    10^30 context would not even fit the table's integer column)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if n > top:
        if issues is not None:
            issues.append(f"{name} {str(value)[:40]!r} is too large: treated as not published")
        return None
    return n if n > 0 else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _currency(value: Any, issues: list[str] | None) -> str:
    """An ISO 4217 code, lower case; card text that is not one is reported, not shown."""
    code = str(value or "usd").strip().lower()
    if len(code) == 3 and code.isascii() and code.isalpha():
        return code
    if issues is not None:
        issues.append(f"currency {str(value)[:40]!r} is not a currency code")
    return "unknown"


def parse_pricing(block: Any, source: PriceSource | None,
                  issues: list[str] | None = None) -> Pricing:
    if not isinstance(block, dict):
        return Pricing(source=None)
    def price(key: str) -> Decimal | None:
        # the microcents field (1 microcent = 10^-6 cent) is exact where the cents field
        # is rounded (docs/spec/addendum-2026-12.md §2.1: 23 590 000 microcents vs 24 cents):
        # prefer it
        micro = key.replace("_cents_", "_microcents_")
        if block.get(micro) is not None:
            exact = _decimal(block.get(micro), micro, issues, scale=6)
            if exact is not None:
                return exact
        return _decimal(block.get(key), key, issues)

    pricing = Pricing(
        **{attr: price(key) for attr, key in (
            ("input_cpm", "input_cents_per_million"),
            ("output_cpm", "output_cents_per_million"),
            ("cache_read_cpm", "cache_read_cents_per_million"))},
        currency=_currency(block.get("currency"), issues),
        source=source,
    )
    if pricing.input_cpm is None and pricing.output_cpm is None:
        return Pricing(currency=pricing.currency, source=None)
    return pricing


_EFFORT = re.compile(r"^[a-z][a-z_]{0,19}$")


def _block(card: dict[str, Any], w: dict[str, Any], name: str) -> dict[str, Any]:
    """A card block that may sit in `wafer` (GUESS, docs/spec/addendum-2026-12.md §2.1) or at
    the top level."""
    for where in (w, card):
        value = where.get(name)
        if isinstance(value, dict):
            return value
    return {}


def parse_reasoning_effort(block: dict[str, Any]) -> ReasoningEffort | None:
    """The block, keeping only effort names that look like effort names (card text is
    untrusted); None when it lists none."""
    raw = block.get("efforts")
    efforts = tuple(dict.fromkeys(e for e in raw if isinstance(e, str) and _EFFORT.match(e))
                    ) if isinstance(raw, list) else ()
    if not efforts:
        return None
    control = block.get("control")
    default = block.get("default")
    return ReasoningEffort(
        control=control if isinstance(control, str) and _EFFORT.match(control) else None,
        efforts=efforts, default=default if default in efforts else None)


def parse_card(card: dict[str, Any], source: PriceSource | None,
               issues: list[str] | None = None) -> Model:
    model_id = card.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValueError("card has no string `id`")
    wafer = card.get("wafer")
    has_block = isinstance(wafer, dict)
    w: dict[str, Any] = wafer if isinstance(wafer, dict) else {}
    raw_caps = w.get("capabilities")
    caps: dict[str, Any] = raw_caps if isinstance(raw_caps, dict) else {}
    ctx = (_int(card.get("max_model_len"), "max_model_len", issues)
           or _int(w.get("context_length"), "context_length", issues))
    disabled = card.get("disabled_reason") or w.get("disabled_reason")
    local = card.get("local") if isinstance(card.get("local"), dict) else None
    # vision: capabilities.vision, or `supports_vision` (top level or in `wafer`; §2.1)
    vision = _bool(caps.get("vision"))
    if vision is not True and True in (card.get("supports_vision"), w.get("supports_vision")):
        vision = True
    flags = _block(card, w, "chat_completions")
    return Model(
        id=model_id,
        display_name=str(w.get("display_name") or model_id),
        description=str(w.get("description") or ""),
        tier=w.get("tier") if isinstance(w.get("tier"), str) else None,
        context_length=ctx,
        max_output_tokens=_int(w.get("max_output_tokens"), "max_output_tokens", issues),
        zdr_supported=card.get("zdr_supported") is True,
        vision=vision,
        tools=_bool(caps.get("tools")),
        reasoning=_bool(caps.get("reasoning")),
        provider=str(w["provider"]) if w.get("provider") else None,
        owned_by=str(card["owned_by"]) if card.get("owned_by") else None,
        created=_int(card.get("created"), "created", issues, top=2**40),
        reasoning_effort=parse_reasoning_effort(_block(card, w, "reasoning_effort")),
        chat_completions={k: flags[k] for k in CHAT_FLAGS if isinstance(flags.get(k), bool)},
        pricing=parse_pricing(w.get("pricing"), source, issues),
        disabled_reason=str(disabled) if disabled else None,
        local=local,
        has_wafer_block=has_block,
        raw=card,
    )


def parse_models(payload: Any, *, source: PriceSource | None) -> Catalog:
    """Parse a `/v1/models` body; a broken card becomes a problem line, not an exception."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return Catalog([], ["the model list has no `data` array"])
    models: list[Model] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, card in enumerate(payload["data"]):
        if not isinstance(card, dict):
            problems.append(f"card {i} is not an object")
            continue
        issues: list[str] = []
        try:
            model = parse_card(card, source, issues)
        except ValueError as exc:
            problems.append(f"card {i}: {exc}")
            continue
        problems.extend(f"card {i} ({model.id[:80]}): {issue}" for issue in issues)
        if model.id in seen:
            problems.append(f"card {i}: duplicate id {model.id!r}")
            continue
        seen.add(model.id)
        models.append(model)
    return Catalog(models, problems)


@lru_cache(maxsize=1)
def _snapshot_payload() -> dict[str, Any]:
    text = resources.files("wafer_playground.data").joinpath("catalog_snapshot.json").read_text()
    return dict(json.loads(text))


def snapshot_source() -> PriceSource:
    p = _snapshot_payload()
    return PriceSource("snapshot", "Wafer public catalog, bundled", str(p["snapshot_date"]))


def snapshot_note() -> str:
    return str(_snapshot_payload()["source"])


def load_snapshot() -> Catalog:
    """The bundled, dated reference catalog (used offline and to fill unpublished prices)."""
    p = _snapshot_payload()
    src = snapshot_source()
    models: list[Model] = []
    for entry in p["models"]:
        caps = entry.get("capabilities") or {}
        models.append(
            Model(
                id=entry["id"],
                display_name=entry.get("display_name") or entry["id"],
                description=f"Snapshot entry (seen {entry.get('seen')}); not a live card.",
                tier=entry.get("tier"),
                context_length=_int(entry.get("context_length")),
                zdr_supported=entry.get("zdr_supported") is True,
                vision=_bool(caps.get("vision")),
                tools=_bool(caps.get("tools")),
                reasoning=_bool(caps.get("reasoning")),
                provider=entry.get("provider"),
                owned_by="wafer",
                pricing=parse_pricing(entry.get("pricing"), src),
                raw=entry,
            )
        )
    return Catalog(models)


def fill_from_snapshot(models: Sequence[Model]) -> list[Model]:
    """Give models whose card publishes no price the snapshot price, labelled as snapshot.

    Live prices always win; a snapshot price never masquerades as live (its source says so).
    """
    snap = {m.id.lower(): m for m in load_snapshot().models}
    out: list[Model] = []
    for m in models:
        ref = snap.get(m.id.lower())
        if not m.pricing.published and ref is not None and ref.pricing.published and not m.local:
            out.append(replace(m, pricing=ref.pricing))
        else:
            out.append(m)
    return out


def format_tokens(n: int | float | None) -> str:
    """THE way a token count (a context window, a max output) is written on every page.

    Decimal units rounded like the catalog table's compact numbers (the browser's
    `Intl.NumberFormat` compact notation): 262,144 -> "262K", 8,192 -> "8.2K",
    1,048,576 -> "1M", 512 -> "512". None or NaN -> "not published".
    """
    if n is None or n != n:  # NaN is the frame's "not published"
        return "not published"
    value = float(n)
    for unit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= unit * 0.9995:
            scaled = value / unit
            if scaled < 9.95:
                return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix
            if scaled < 999.5 or suffix == "B":
                return f"{scaled:.0f}{suffix}"
    return f"{value:.0f}"


CENTS_PER_DOLLAR = Decimal(100)


def cents_to_dollars(cents: Decimal | int | None) -> Decimal | None:
    """THE cents -> dollars conversion (prices per 1M tokens and cent amounts alike), exact:
    a shift of the decimal point, never a float division. None ("not published") stays None.
    Display goes through `costs.format_usd`."""
    return None if cents is None else Decimal(cents).scaleb(-2)


def cents_to_dollars_f(cents: Any) -> Any:
    """The same for tables: a float or a float64 array of cents -> dollars, NaN kept."""
    return np.asarray(cents, dtype="float64") / float(CENTS_PER_DOLLAR)


FRAME_COLUMNS = [
    "id", "display_name", "provider", "tier", "context_length", "max_output_tokens",
    "zdr", "vision", "tools", "reasoning", "input_usd_per_m", "output_usd_per_m",
    "cache_read_usd_per_m", "price_source", "local", "disabled_reason",
]


def to_frame(models: Sequence[Model]) -> pd.DataFrame:
    """One row per model; prices in dollars per 1M tokens; NaN where not published.

    Built column by column (a list of row dicts costs ~0.5 s at 10,000 models); each
    distinct price is converted once, since catalogs repeat the same few prices.
    """
    dollars: dict[Decimal, float] = {}

    def usd(cpm: Decimal | None) -> float:
        if cpm is None:
            return float("nan")
        hit = dollars.get(cpm)
        if hit is None:
            hit = dollars[cpm] = float(cents_to_dollars(cpm) or 0)  # cpm is not None
        return hit

    def col(values: list[Any]) -> pd.Series:
        return pd.Series(values)  # same dtype inference as the row-wise constructor

    data = {
        "id": col([m.id for m in models]),
        "display_name": col([m.display_name for m in models]),
        "provider": col([m.provider for m in models]),
        "tier": col([m.tier for m in models]),
        "context_length": pd.array([m.context_length for m in models], dtype="Int64"),
        "max_output_tokens": pd.array([m.max_output_tokens for m in models], dtype="Int64"),
        "zdr": col([m.zdr_supported for m in models]),
        "vision": col([m.vision for m in models]),
        "tools": col([m.tools for m in models]),
        "reasoning": col([m.reasoning for m in models]),
        "input_usd_per_m": np.array([usd(m.pricing.input_cpm) for m in models],
                                    dtype="float64"),
        "output_usd_per_m": np.array([usd(m.pricing.output_cpm) for m in models],
                                     dtype="float64"),
        "cache_read_usd_per_m": np.array([usd(m.pricing.cache_read_cpm) for m in models],
                                         dtype="float64"),
        "price_source": col([m.pricing.source.kind if m.pricing.source else "not published"
                              for m in models]),
        "local": col([bool(m.local) for m in models]),
        "disabled_reason": col([m.disabled_reason for m in models]),
    }
    return pd.DataFrame(data, columns=FRAME_COLUMNS)
