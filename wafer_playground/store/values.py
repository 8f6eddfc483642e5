"""Value rules shared by every backend: timestamps, JSON text, costs, usage, checks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .records import SURFACES, TURN_STATUSES, StoreError


def now_iso() -> str:
    return format_ts(datetime.now(UTC))


def format_ts(dt: datetime) -> str:
    """One fixed timestamp format, so text order is time order and round trips are exact."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (any offset); naive values are taken as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, datetime):
        return format_ts(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    total = getattr(value, "total", None)  # accept a costs.Cost as well as a Decimal
    if total is not None or hasattr(value, "kind"):
        return _decimal(total)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise StoreError(f"cost {value!r} is not a number") from exc


def _usage_fields(usage: Any) -> dict[str, int | None]:
    """Accept costs.Usage, an OpenAI usage dict, or a flat dict of the four counts."""
    names = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    if usage is None:
        return {}
    if isinstance(usage, Mapping):
        out: dict[str, int | None] = {n: usage.get(n) for n in names}
        ptd = usage.get("prompt_tokens_details") or {}
        ctd = usage.get("completion_tokens_details") or {}
        if out["cached_tokens"] is None and isinstance(ptd, Mapping):
            out["cached_tokens"] = ptd.get("cached_tokens")
        if out["reasoning_tokens"] is None and isinstance(ctd, Mapping):
            out["reasoning_tokens"] = ctd.get("reasoning_tokens")
        if out["prompt_tokens"] is None and "input_tokens" in usage:  # Anthropic shape
            out["prompt_tokens"] = usage.get("input_tokens")
            out["completion_tokens"] = usage.get("output_tokens")
            out["cached_tokens"] = usage.get("cache_read_input_tokens")
    else:
        out = {n: getattr(usage, n, None) for n in names}
    return {k: (int(v) if v is not None else None) for k, v in out.items()}


_REQUEST_FIELDS = (
    "conversation_id", "turn_id", "http_status", "request_id", "error_code", "prompt_tokens",
    "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd", "cost_kind", "ttft_s",
    "tokens_per_s", "duration_s", "response", "status", "model", "params",
)


def _check_status(status: str) -> None:
    if status not in TURN_STATUSES:
        raise StoreError(f"unknown status {status!r} (expected one of {', '.join(TURN_STATUSES)})")


def _check_surface(surface: str) -> None:
    if surface not in SURFACES:
        raise StoreError(f"unknown surface {surface!r} (expected one of {', '.join(SURFACES)})")


def _clean_base_url(url: str) -> str:
    """Drop userinfo and query from a base URL: `https://user:key@host/v1?key=…` leaks keys."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _auto_title(content: str, limit: int = 60) -> str:
    text = " ".join(content.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
