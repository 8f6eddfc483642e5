"""Saved prompt templates in Chat and Compare: load one, fill its `{{variables}}` in a
form, and hand the filled text to the page (issue 18). Templates are written and versioned
on the Evaluate page (wafer_playground/store/evals.py); filling is store/templates.render."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from components.history import get_store
from components.untrusted import md_text
from wafer_playground.store import prompt_variables, render
from wafer_playground.untrusted import TEXT_LIMIT, clean


def into(widget_key: str) -> Callable[[str], None]:
    """An `on_fill` that puts the text in a page's prompt widget (e.g. Compare's)."""
    def put(text: str) -> None:
        st.session_state[widget_key] = text
    return put


def send_to_chat(text: str) -> None:
    """An `on_fill` for Chat: the filled text is sent as the next message."""
    from components import chat

    chat.on_submit_prompt(text)
    chat.request_action()


def template_panel(key: str, *, on_fill: Callable[[str], None],
                   label: str = "Use a template") -> None:
    """An expander: pick a saved template, fill its variables, then `on_fill(text)` runs as
    the button's callback (before the page draws, so it may set widget state)."""
    try:
        prompts = get_store().list_prompts()
    except Exception:  # noqa: BLE001 - no store, no templates: the page works without
        return
    if not prompts:
        return
    with st.expander(label, icon=":material/description:"):
        by_name = {p.name: p for p in prompts}
        name = st.selectbox("Template", list(by_name), key=f"{key}_tpl_pick",
                            format_func=lambda n: clean(n, 80))
        text = by_name[str(name)].text
        names = prompt_variables(text)
        values = {v: st.text_area(v, key=f"{key}_tpl_var_{name}_{v}", height=68)
                  for v in names}
        filled = render(text, {k: v for k, v in values.items() if v})
        st.caption("Preview")
        st.code(filled.text[:TEXT_LIMIT], language=None, wrap_lines=True)
        if filled.missing:
            st.caption("Fill " + ", ".join(f"`{md_text(m)}`" for m in filled.missing) + ".")
        st.button("Use this prompt", key=f"{key}_tpl_use", icon=":material/input:",
                  disabled=bool(filled.missing), on_click=on_fill, args=(filled.text,))


__all__ = ["into", "send_to_chat", "template_panel"]
