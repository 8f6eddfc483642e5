""""View code" tabs and the raw wire inspector (request JSON, response headers, SSE events)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from components.media_attach import uploaded_files
from wafer_playground.codegen import (
    LABELS,
    PATHS,
    UPLOAD_LABELS,
    Surface,
    request_headers,
    snippets,
    upload_snippets,
    uploads_for,
)
from wafer_playground.sse import ServerSentEvent

_LANG = {"curl": "bash", "python_openai": "python", "python_httpx": "python",
         "python_anthropic": "python", "javascript": "javascript", "upload_curl": "bash",
         "upload_python_httpx": "python", "upload_python_openai": "python"}
MAX_EVENTS_SHOWN = 200  # every rerun re-sends this block: the last 200 keep it light


def _event_text(ev: ServerSentEvent | Mapping[str, Any] | str) -> str:
    if isinstance(ev, str):
        return ev
    if isinstance(ev, ServerSentEvent):
        head = f"event: {ev.event}\n" if ev.event else ""
        return f"{head}data: {ev.data}"
    head = f"event: {ev.get('event')}\n" if ev.get("event") else ""
    return f"{head}data: {ev.get('data')}"


def code_view(surface: Surface, base_url: str, body: dict[str, Any], *, zdr: bool,
              response_headers: Mapping[str, str] | None = None,
              events: Sequence[ServerSentEvent | Mapping[str, Any] | str] | None = None,
              note: str | None = None) -> None:
    """Snippet tabs for exactly `body`, plus a "Raw" tab when a response was received."""
    if note:
        st.caption(note)
    codes = snippets(surface, base_url, body, zdr=zdr)
    labels = dict(LABELS)
    uploads = uploads_for(body, uploaded_files()) if surface == "chat" else []
    if uploads:
        # media referenced by id: show how to upload one's own copy (POST /v1/files)
        unknown = sum(1 for u in uploads if not u.known)
        st.caption(f"This request references {len(uploads)} uploaded file(s) by `file_id`. "
                   "The **Upload** tabs send your own copy with `POST /v1/files` (raw bytes, "
                   "`X-Wafer-Purpose`) and print the new id to use in its place."
                   + (f" {unknown} of them were not uploaded in this session: their tabs "
                      "use a stand-in file name and type." if unknown else ""))
        codes = {**codes, **upload_snippets(base_url, uploads, zdr=zdr)}
        labels.update(UPLOAD_LABELS)
    names = [labels[k] for k in codes] + ["Raw request/response"]
    tabs = st.tabs(names)
    for tab, (key, code) in zip(tabs, codes.items(), strict=False):
        with tab:
            st.code(code, language=_LANG[key], wrap_lines=False)
    with tabs[-1]:
        url = base_url.rstrip("/") + PATHS[surface]
        headers = {"Authorization": "Bearer $WAFER_API_KEY",
                   **request_headers(surface, zdr=zdr, stream=bool(body.get("stream")))}
        st.markdown(f"**POST** `{url}`")
        st.code("\n".join(f"{k}: {v}" for k, v in headers.items()), language="http")
        st.markdown("**Request body (exactly as sent)**")
        st.code(json.dumps(body, indent=2, ensure_ascii=False), language="json")
        if response_headers:
            st.markdown("**Response headers**")
            st.code("\n".join(f"{k}: {v}" for k, v in response_headers.items()),
                    language="http")
        if events is not None:
            shown = list(events)[-MAX_EVENTS_SHOWN:]
            extra = len(events) - len(shown)
            st.markdown(f"**SSE events received** ({len(events)})"
                        + (f", last {len(shown)} shown" if extra else ""))
            st.code("\n\n".join(_event_text(e) for e in shown) or "(none)", language="text",
                    height=320)


__all__ = ["code_view"]
