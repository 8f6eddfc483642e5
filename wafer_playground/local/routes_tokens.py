"""The token extensions: POST /tokenize, /detokenize and /apply-template (also under /v1)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from wafer_playground.local.reqlog import RequestRecord
from wafer_playground.local.upstream import Adapter
from wafer_playground.local.validation import (
    ApiError,
    check_fields,
    check_messages,
    check_token_ids,
    check_tools,
    schema_error,
)


async def tokenize(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    body = await eng.read_json(request)
    check_fields(
        body,
        {
            "model": _str,
            "content": _str,
            "add_special": _bool,
            "with_pieces": _bool,
            "parse_special": _bool,
        },
        "/tokenize",
    )
    b = eng.resolve(body.get("model"), default=True)
    if not isinstance(body.get("content"), str):
        raise schema_error("content", "content (a string) is required")
    up = {
        k: body[k]
        for k in ("content", "add_special", "with_pieces", "parse_special")
        if body.get(k) is not None
    }
    return await eng.up_json(b, "/tokenize", up)


async def detokenize(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    body = await eng.read_json(request)
    check_fields(body, {"model": _str, "tokens": _any}, "/detokenize")
    b = eng.resolve(body.get("model"), default=True)
    if body.get("tokens") is None:
        raise schema_error("tokens", "tokens (an array of token ids) is required")
    # llama-server does not range-check ids here; an out-of-vocab id must never reach it
    ids = check_token_ids(body["tokens"], b.n_vocab, "tokens")
    return await eng.up_json(b, "/detokenize", {"tokens": ids})


async def apply_template(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    body = await eng.read_json(request)
    check_fields(body, {"model": _str, "messages": _any, "tools": _any}, "/apply-template")
    b = eng.resolve(body.get("model"), default=True)
    if not b.spec.chat_template:
        raise ApiError(
            400, "chat_template_missing", f"Model '{b.spec.id}' has no chat template", param="model"
        )
    if "messages" not in body:
        raise schema_error("messages", "messages is required")
    eng.check_media(check_messages(body["messages"]), b)
    up: dict[str, Any] = {"messages": body["messages"]}
    if body.get("tools") is not None:
        check_tools(body["tools"], None)
        up["tools"] = body["tools"]
    data = await eng.up_json(b, "/apply-template", up)
    return {"prompt": data["prompt"], "model": b.spec.id}


def _str(v: Any, p: str) -> None:
    if not isinstance(v, str):
        raise schema_error(p, f"{p} must be a string")


def _bool(v: Any, p: str) -> None:
    if not isinstance(v, bool):
        raise schema_error(p, f"{p} must be a boolean")


def _any(v: Any, p: str) -> None:
    return None
