"""The page menu in the sidebar, drawn as page links.

Not Streamlit's own sidebar menu: the browser redraws that menu on every update the page gets,
once per token while an answer streams (140 of the 480 component renders per token on Chat,
benchmarks/render_cost.py, issue 20); links are elements, which it skips when they have not
changed. Streamlit's menu closed the sidebar after a tap on a phone and page links do not, so
a fixed script (no user text in it) does that one thing.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.navigation.page import StreamlitPage

KEY = "page_menu"  # the menu's container; the script below finds the links by its class
# Streamlit's sidebar starts closed at a width up to its "md" breakpoint (768 px), and its own
# menu closes it after a tap there; this does the same for the links in the sidebar.
CLOSE_ON_PHONE = f"""<script>
if (!window.__wpMenuClose) {{
  window.__wpMenuClose = true;
  document.addEventListener("click", (event) => {{
    const link = event.target.closest('[data-testid="stSidebar"] .st-key-{KEY} a');
    if (!link || window.innerWidth > 768) return;
    const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (close) close.click();
  }});
}}
</script>"""


def slot() -> DeltaGenerator:
    """The menu's place at the top of the sidebar, made before anything else draws there."""
    return st.sidebar.container(key=KEY, gap=None)


def draw(menu: DeltaGenerator, pages: Sequence[StreamlitPage]) -> None:
    for page in pages:
        if page.visibility != "hidden":
            menu.page_link(page, width="stretch")
    with menu:
        st.html(CLOSE_ON_PHONE, unsafe_allow_javascript=True)
