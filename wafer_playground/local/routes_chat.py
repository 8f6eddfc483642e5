"""POST /v1/chat/completions on the local engine (also the path /v1/messages runs through)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from starlette.requests import Request

from wafer_playground.local import messages as anth
from wafer_playground.local.asgi import DONE, EventStream, dumps, request_id, run_cancellable, sse
from wafer_playground.local.reqlog import RequestRecord
from wafer_playground.local.upstream import (
    NEUTRAL,
    SAMPLING_FORWARDED,
    Adapter,
    Backend,
    Ticket,
    record_usage,
)
from wafer_playground.local.validation import (
    CHAT_FIELDS,
    ApiError,
    check_fields,
    check_messages,
    check_response_format,
    check_tools,
    schema_error,
)


def chat_common(
    eng: Adapter, request: Request, body: dict[str, Any], rec: RequestRecord | None
) -> Backend:
    b = eng.resolve(body.get("model"))
    if rec:
        rec.model = b.spec.id
    eng.check_zdr(request, b)
    if not b.spec.chat_template:
        raise ApiError(
            400,
            "chat_template_missing",
            f"Model '{b.spec.id}' is a base model without a chat template, so "
            "it cannot serve chat. Use POST /v1/completions with token-ID "
            "prompts (see /v1/tokenize)",
            param="model",
        )
    return b


async def chat(eng: Adapter, request: Request, rec: RequestRecord | None) -> Any:
    assert rec is not None
    body = await eng.read_json(request)
    check_fields(body, CHAT_FIELDS, "/v1/chat/completions")
    b = chat_common(eng, request, body, rec)
    effort = body.get("reasoning_effort")
    if effort is not None and effort != "none":
        raise ApiError(
            400,
            "reasoning_not_supported",
            f"Model '{b.spec.id}' does not support reasoning "
            "(capabilities.reasoning is false); omit reasoning_effort or send "
            '"none"',
            param="reasoning_effort",
        )
    anth.check_thinking(body.get("thinking"))
    if body.get("enable_thinking") is True:
        raise ApiError(
            400,
            "reasoning_not_supported",
            "This model does not support reasoning",
            param="enable_thinking",
        )
    ctk = body.get("chat_template_kwargs") or {}
    for k, v in ctk.items():
        if k != "enable_thinking":
            raise schema_error(
                f"chat_template_kwargs.{k}", f"Unsupported chat_template_kwargs key '{k}'"
            )
        if v is not False:
            raise ApiError(
                400,
                "reasoning_not_supported",
                "This model does not support reasoning",
                param="chat_template_kwargs.enable_thinking",
            )
    if "messages" not in body:
        raise schema_error("messages", "messages is required")
    eng.check_media(check_messages(body["messages"]), b)
    names = check_tools(body.get("tools"), body.get("tool_choice"))
    if names and not b.spec.tools:
        raise ApiError(
            400,
            "model_capability_unsupported",
            f"Model '{b.spec.id}' does not support tools",
            param="tools",
        )
    if body.get("response_format") is not None:
        check_response_format(body["response_format"])
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise schema_error("top_logprobs", "top_logprobs requires logprobs: true")
    if body.get("logprobs") and body.get("tools") and body.get("stream"):
        raise ApiError(
            400,
            "unsupported_parameter_combination",
            "logprobs with tools is not supported when streaming on the local engine",
            param="logprobs",
        )
    up = _chat_upstream(body)
    requested = body.get("max_tokens")
    if requested is None:
        requested = body.get("max_completion_tokens")
    param = "max_tokens" if body.get("max_tokens") is not None else "max_completion_tokens"
    eff = eng.check_max_output(b, requested, param)
    if _prompt_token_bound(up) + eff <= b.n_ctx:
        up["max_tokens"] = eff  # provably fits: skip two round trips on the hot path
    else:
        n_prompt = await eng.count_chat_prompt(b, up)
        up["max_tokens"] = eng.resolve_max_tokens(b, requested, n_prompt, None, param)
    top_k = int(body.get("top_logprobs") or 0) if body.get("logprobs") else None
    stream = body.get("stream") is True
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    rec.streaming = stream
    ticket = eng.admit(b)
    if stream:
        up["stream"] = True
        up["stream_options"] = {"include_usage": True}  # always: the log needs usage
        return EventStream(
            _chat_stream(eng, b, up, rec, ticket, include_usage, top_k), request_id(request)
        )
    try:
        data = await run_cancellable(request, chat_once(eng, b, up, rec))
    finally:
        ticket.release()
    if top_k is not None:
        for ch in data.get("choices", []):
            _trim_chat_logprobs(ch.get("logprobs"), top_k)
    return data


# Chat fields llama-server takes under the same name and meaning. The rest of CHAT_FIELDS is
# translated in _chat_upstream, checked in chat() (reasoning: the local models have none), or
# is request plumbing. tests/engine/test_params_contract.py checks every field
# wafer_playground/params.py's SPECS can send against this split, in process and for real.
FORWARDED = (
    *SAMPLING_FORWARDED,
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
)


def _chat_upstream(body: dict[str, Any]) -> dict[str, Any]:
    up: dict[str, Any] = {"messages": body["messages"], **NEUTRAL, "cache_prompt": True}
    for k in FORWARDED:
        if body.get(k) is not None:
            up[k] = body[k]
    if body.get("top_k") is not None:
        up["top_k"] = max(0, body["top_k"])  # SGLang -1 == llama.cpp 0 == disabled
    if body.get("repetition_penalty") is not None:
        up["repeat_penalty"] = body["repetition_penalty"]  # llama.cpp's name for it
    if body.get("logprobs"):
        up["logprobs"] = True
        # llama.cpp returns no logprobs at all with top_logprobs 0; ask for 1, trim later
        up["top_logprobs"] = max(1, int(body.get("top_logprobs") or 0))
    return up


async def chat_once(
    eng: Adapter, b: Backend, up: dict[str, Any], rec: RequestRecord
) -> dict[str, Any]:
    assert b.slot is not None
    async with b.slot:
        t0 = time.perf_counter()
        data = await eng.up_json(b, "/v1/chat/completions", up)
    timings = data.pop("timings", None) or {}
    data.pop("system_fingerprint", None)
    data["model"] = b.spec.id
    for ch in data.get("choices", []):
        ch.setdefault("logprobs", None)
    record_usage(rec, data.get("usage") or {})
    if timings.get("predicted_n"):
        first = timings.get("prompt_ms", 0) + timings["predicted_ms"] / timings["predicted_n"]
        rec.ttft_ms = (t0 - rec._t0) * 1000 + first
    return data


async def _chat_stream(
    eng: Adapter,
    b: Backend,
    up: dict[str, Any],
    rec: RequestRecord,
    ticket: Ticket,
    include_usage: bool,
    top_k: int | None,
) -> AsyncGenerator[bytes, None]:
    async with eng.outcome(rec, ticket, "chat"):
        assert b.slot is not None
        async with b.slot:
            async for ev in eng.up_stream(b, "/v1/chat/completions", up):
                ev.pop("timings", None)
                ev.pop("system_fingerprint", None)
                choices = ev.get("choices")
                if not choices:
                    if ev.get("usage"):
                        record_usage(rec, ev["usage"])
                        if include_usage:
                            yield sse(ev)
                    continue
                if rec.ttft_ms is None:
                    d = choices[0].get("delta") or {}
                    if d.get("content") or d.get("tool_calls"):
                        rec.first_token()
                if top_k is not None:
                    _trim_chat_logprobs(choices[0].get("logprobs"), top_k)
                yield sse(ev)
        yield DONE


def _prompt_token_bound(up: dict[str, Any]) -> int:
    """An upper bound on the templated prompt's token count without tokenizing: a token
    covers at least one byte (byte-level BPE and byte-fallback SPM alike), plus a generous
    allowance for the chat template's own text (ChatML adds < 30 bytes per message and a
    ~70-byte default system prompt)."""
    n = 256
    for m in up["messages"]:
        c = m.get("content")
        if isinstance(c, str):
            n += len(c.encode())
        elif isinstance(c, list):
            n += sum(len(str(p.get("text", "")).encode()) for p in c if isinstance(p, dict))
        if m.get("tool_calls"):
            n += len(dumps(m["tool_calls"]))
        n += 64
    for k in ("tools", "response_format"):
        if up.get(k) is not None:
            n += 2 * len(dumps(up[k]))
    return n


def _trim_chat_logprobs(lp: Any, k: int) -> None:
    if isinstance(lp, dict):
        for e in lp.get("content") or []:
            if isinstance(e, dict) and "top_logprobs" in e:
                e["top_logprobs"] = e["top_logprobs"][:k]
