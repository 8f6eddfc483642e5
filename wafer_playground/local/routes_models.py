"""GET /v1/models, /v1/models/{id} and /health."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from wafer_playground.local.reqlog import RequestRecord
from wafer_playground.local.upstream import Adapter


async def models(eng: Adapter, request: Request, rec: RequestRecord | None) -> dict[str, Any]:
    cap = eng.config.max_output_tokens
    return {"object": "list", "data": [b.card(cap) for b in eng.backends.values()]}


async def model(eng: Adapter, request: Request, rec: RequestRecord | None) -> dict[str, Any]:
    """GET /v1/models/{id}: one card (what the openai SDK's models.retrieve reads)."""
    return eng.resolve(request.path_params["model_id"]).card(eng.config.max_output_tokens)


async def health(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    return {
        "status": "ok",
        "models": {
            b.spec.id: {"pid": b.pid, "url": b.url, "admitted": b.admitted}
            for b in eng.backends.values()
        },
    }
