"""The account APIs from the engine's own request log: GET /v1/usage/me and
/v1/endpoints/metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request

from wafer_playground.local.reqlog import PERIODS, RANGES, RequestRecord
from wafer_playground.local.upstream import Adapter
from wafer_playground.local.validation import ApiError


async def usage_me(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    q = request.query_params
    now = datetime.now(UTC)
    if q.get("start_at") or q.get("end_at"):
        try:
            start = _parse_dt(q["start_at"])
            end = _parse_dt(q["end_at"])
        except (KeyError, ValueError):
            raise ApiError(
                400,
                "invalid_window",
                "start_at and end_at must both be ISO timestamps",
                param="start_at",
            ) from None
        if end <= start:
            raise ApiError(400, "invalid_window", "end_at must be after start_at", param="end_at")
    else:
        period = q.get("period", "7d")
        if period not in PERIODS:
            raise ApiError(400, "invalid_window", "period must be 1d, 7d or 30d", param="period")
        end, start = now, now - timedelta(days=PERIODS[period])
    return eng.log.usage_me(start, end)


async def endpoint_metrics(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    q = request.query_params
    endpoint = q.get("endpoint")
    if not endpoint:
        raise ApiError(422, "schema_validation_failed", "endpoint is required", param="endpoint")
    try:
        rng = int(q.get("range_minutes", "60"))
    except ValueError:
        rng = -1
    if rng not in RANGES:
        raise ApiError(
            422,
            "schema_validation_failed",
            f"range_minutes must be one of {', '.join(map(str, RANGES))}",
            param="range_minutes",
        )
    model = q.get("model")
    if model is not None:
        model = eng.resolve(model).spec.id
    return eng.log.metrics(endpoint, rng, model)


def _parse_dt(s: str) -> datetime:
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
