"""POST /v1/files (storage in files.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from wafer_playground.local.files import check_headers
from wafer_playground.local.reqlog import RequestRecord
from wafer_playground.local.upstream import Adapter


async def upload_file(eng: Adapter, request: Request, rec: RequestRecord | None) -> dict[str, Any]:
    up = check_headers(request.headers)
    return await eng.files.save(
        eng.files_owner, up, request.headers.get("content-length"), request.stream()
    )
