"""Protocol switch: the same conversation through /v1/chat/completions and /v1/messages,
usage side by side (non-streaming, one request per surface)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from components.chat.transcript import ChatContext, turns
from components.errors import show_error
from wafer_playground.assembly import conversation_messages
from wafer_playground.costs import Usage, UsageError, cost_of, format_usd
from wafer_playground.errors import WaferError
from wafer_playground.params import build_chat_body, build_messages_body, messages_dropped_fields

RESULT = "chat_proto_compare"


def _history_for_compare() -> list[dict[str, Any]]:
    """The conversation up to (and including) the last user or tool turn."""
    ts = turns()
    end = len(ts)
    while end and ts[end - 1]["role"] == "assistant":
        end -= 1
    return conversation_messages(ts[:end])


def _run(ctx: ChatContext) -> dict[str, Any]:
    messages = _history_for_compare()
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for surface in ("chat", "messages"):
        started = time.perf_counter()
        try:
            if surface == "chat":
                res = ctx.client.chat(build_chat_body(ctx.model, messages, ctx.values))
                data = res.data or {}
                usage = Usage.from_openai(data.get("usage") or {})
                choice = (data.get("choices") or [{}])[0]
                finish = choice.get("finish_reason")
                text = (choice.get("message") or {}).get("content") or ""
            else:
                res = ctx.client.messages(build_messages_body(ctx.model, messages, ctx.values))
                data = res.data or {}
                usage = Usage.from_anthropic(data.get("usage") or {})
                finish = data.get("stop_reason")
                text = "".join(b.get("text", "") for b in data.get("content") or []
                               if isinstance(b, dict) and b.get("type") == "text")
        except (WaferError, UsageError) as exc:
            err = exc if isinstance(exc, WaferError) else WaferError(str(exc))
            errors.append({"surface": surface, "error": err})
            continue
        cost = cost_of(usage, ctx.model.pricing)
        rows.append({
            "endpoint": "/v1/chat/completions" if surface == "chat" else "/v1/messages",
            "prompt tokens": usage.prompt_tokens, "cached": usage.cached_tokens,
            "completion tokens": usage.completion_tokens, "finish": finish,
            "cost": format_usd(cost.total), "seconds": round(time.perf_counter() - started, 2),
            "request id": res.request_id, "answer": text[:200],
        })
    return {"rows": rows, "errors": errors, "model": ctx.model.id}


def protocol_compare(ctx: ChatContext) -> None:
    if not any(t["role"] == "user" for t in turns()):
        st.caption("Send a message first; then the same conversation can be run through both "
                   "protocols.")
        return
    dropped = messages_dropped_fields(ctx.values)
    st.caption("Runs the conversation up to your last message once through each endpoint "
               "(not streamed) and compares the server-reported usage."
               + (f" Not expressible on /v1/messages, so left out there: "
                  f"{', '.join(f'`{d}`' for d in dropped)}." if dropped else ""))
    if st.button("Run on both protocols", key="chat_proto_run", icon=":material/compare_arrows:"):
        with st.spinner("Running on /v1/chat/completions and /v1/messages…"):
            st.session_state[RESULT] = _run(ctx)
    result = st.session_state.get(RESULT)
    if not result:
        return
    if result["rows"]:
        # one column per endpoint; cells as text because each row mixes numbers and words
        table = pd.DataFrame(result["rows"]).set_index("endpoint").T.astype(str)
        st.dataframe(table, width="stretch")
    for item in result["errors"]:
        show_error(item["error"], where=item["surface"])


__all__ = ["protocol_compare"]
