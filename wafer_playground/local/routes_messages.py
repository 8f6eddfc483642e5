"""POST /v1/messages: the Anthropic surface, translated to chat by messages.py and run
through routes_chat.py."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from starlette.requests import Request

from wafer_playground.local import messages as anth
from wafer_playground.local.asgi import EventStream, request_id, run_cancellable
from wafer_playground.local.reqlog import RequestRecord
from wafer_playground.local.routes_chat import chat_common, chat_once
from wafer_playground.local.upstream import NEUTRAL, Adapter, Backend, Ticket, record_usage
from wafer_playground.local.validation import MESSAGES_FIELDS, ApiError, check_fields, schema_error


async def messages(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    assert rec is not None
    body = await eng.read_json(request)
    check_fields(body, MESSAGES_FIELDS, "/v1/messages")
    if "max_tokens" not in body or body["max_tokens"] is None:
        raise schema_error("max_tokens", "max_tokens is required")
    if "messages" not in body:
        raise schema_error("messages", "messages is required")
    b = chat_common(eng, request, body, rec)
    conv = anth.to_openai(body)
    if conv.get("tools") and not b.spec.tools:
        raise ApiError(
            400,
            "model_capability_unsupported",
            f"Model '{b.spec.id}' does not support tools",
            param="tools",
        )
    up: dict[str, Any] = {**conv, **NEUTRAL, "cache_prompt": True, "verbose": True}
    for k in ("temperature", "top_p"):
        if body.get(k) is not None:
            up[k] = body[k]
    if body.get("top_k") is not None:
        up["top_k"] = body["top_k"]
    if body.get("stop_sequences") is not None:
        up["stop"] = body["stop_sequences"]
    n_prompt = await eng.count_chat_prompt(b, up)
    up["max_tokens"] = eng.resolve_max_tokens(b, body["max_tokens"], n_prompt, None)
    stream = body.get("stream") is True
    rec.streaming = stream
    ticket = eng.admit(b)
    if stream:
        up["stream"] = True
        up["stream_options"] = {"include_usage": True}
        return EventStream(
            _messages_stream(eng, b, up, rec, ticket, n_prompt), request_id(request), anthropic=True
        )
    try:
        data = await run_cancellable(request, chat_once(eng, b, up, rec))
    finally:
        ticket.release()
    return anth.from_openai(data, b.spec.id)


async def _messages_stream(
    eng: Adapter, b: Backend, up: dict[str, Any], rec: RequestRecord, ticket: Ticket, n_prompt: int
) -> AsyncGenerator[bytes, None]:
    tr = anth.StreamTranslator(b.spec.id, n_prompt)
    usage: dict[str, Any] = {}
    async with eng.outcome(rec, ticket, "messages"):
        assert b.slot is not None
        async with b.slot:
            yield tr.start()
            async for ev in eng.up_stream(b, "/v1/chat/completions", up):
                if ev.get("usage") and not ev.get("choices"):
                    usage = ev["usage"]
                    continue
                out = tr.feed(ev)
                if out:
                    if rec.ttft_ms is None:
                        rec.first_token()
                    yield out
        record_usage(rec, usage)
        yield tr.finish(usage)
