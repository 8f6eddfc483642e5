"""Drawing untrusted text: the thin Streamlit side of `wafer_playground/untrusted.py`.

Pages and components build markdown with `md_text` / `md_code` (re-exported here) for
upstream strings, and draw model output with `model_output` and long card text with
`long_text`. The rule itself is in SECURITY.md ("Untrusted text").
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from wafer_playground.untrusted import (
    NAME_LIMIT,
    TEXT_LIMIT,
    bounded_json,
    clean,
    image_sources,
    md_code,
    md_text,
    model_markdown,
    truncated,
)

IMAGES_KEY = "_untrusted_images"  # ids of the messages whose images the user chose to load


def model_output(text: str, *, key: str, where: DeltaGenerator | None = None) -> None:
    """Model output as markdown; its remote images load only after a click, per message."""
    box = where or st
    allowed: set[str] = st.session_state.setdefault(IMAGES_KEY, set())
    sources = image_sources(text)
    box.markdown(model_markdown(text, images=key in allowed and bool(sources)))
    if sources and key not in allowed:
        hosts = sorted({_host(s) for s in sources})
        box.button(f"Load {len(sources)} image(s) from {md_text(', '.join(hosts), 120)}",
                   key=f"img_{key}", icon=":material/image:", type="tertiary",
                   on_click=allowed.add, args=(key,),
                   help="The answer links to remote images; loading them tells those servers "
                        "that you read this answer. Nothing is fetched until you click.")


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0] or "(relative URL)"


def long_text(value: Any, *, key: str, limit: int = TEXT_LIMIT, preview: bool = True,
              where: DeltaGenerator | None = None) -> None:
    """Card text shown literally; past `limit` characters cut, with a "show all" toggle.

    `preview=False`: the cut text is already on the page (a heading), only the toggle."""
    box = where or st
    shown, hidden = truncated(value, limit)
    if not hidden:
        box.markdown(md_text(shown, None, multiline=True))
        return
    if box.toggle(f"Show all ({hidden:,} more characters)", key=f"all_{key}"):
        box.code(clean(value, None), language=None, wrap_lines=True, height=300)
    elif preview:
        box.markdown(md_text(shown, None, multiline=True) + " …")


def raw_json(value: Any, *, key: str, file_name: str) -> None:
    """A raw card or event as JSON, long strings cut for display; the whole as a download."""
    shown = bounded_json(value)
    st.json(shown, expanded=True)
    if shown != value:  # something was cut or made visible: the exact JSON as a file
        full = json.dumps(value, ensure_ascii=False, indent=2)
        st.caption("Long strings are cut and control characters shown as [U+…] here.")
        st.download_button(f"Download the exact JSON ({len(full):,} characters)", full,
                           file_name=file_name, mime="application/json", key=f"dl_{key}")


__all__ = ["NAME_LIMIT", "TEXT_LIMIT", "clean", "long_text", "md_code", "md_text",
           "model_output", "raw_json"]
