"""Readable errors: the Wafer code, message and request id; never a traceback."""

from __future__ import annotations

import streamlit as st

from components.untrusted import TEXT_LIMIT, md_code, md_text
from wafer_playground.errors import (
    APIConnectionError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    WaferError,
)

_HINTS: dict[type, str] = {
    AuthenticationError: "Check the API key in the sidebar.",
    NotFoundError: "The model or path does not exist on this endpoint; refresh the model list.",
    RateLimitError: "Wait a moment and retry.",
    APIConnectionError: "Check the endpoint in the sidebar (is the server running?).",
}


def hint_for(err: WaferError) -> str | None:
    if err.code == "model_zdr_not_supported":
        return "This model cannot serve ZDR requests: turn off ZDR or pick a ZDR model."
    if err.code == "context_length_exceeded":
        return "Shorten the conversation or lower max_tokens."
    for cls, hint in _HINTS.items():
        if isinstance(err, cls):
            return hint
    return None


def error_markdown(err: WaferError) -> str:
    """`err.human()` for a markdown sink: every field an upstream sent is drawn inert."""
    body = err.human(text=lambda v: md_text(v, TEXT_LIMIT), code=lambda v: md_code(v, 80),
                     ident=lambda v: md_code(v, 80))
    if body.startswith(f"{err.title}: "):  # no HTTP status: the box's title already says it
        body = body[len(err.title) + 2:]
    return body


def show_error(err: WaferError, *, where: str | None = None) -> None:
    """Draw one error box: title, code, message, request id and a hint."""
    title = f"**{err.title}**" + (f" — {where}" if where else "")
    lines = [title, error_markdown(err)]
    hint = hint_for(err)
    if hint:
        lines.append(f"_{hint}_")
    st.error("\n\n".join(lines), icon=":material/error:")
