"""Keep every page behind the app.py router, even on a server's very first deep link.

A folder named `pages/` next to app.py makes Streamlit start each server process in its
legacy multipage mode, until the first `st.navigation` call turns that off for good. If the
first visitor opens a deep link (`/chat?model=…`, a share link), the legacy mode runs the page
file directly: no connection sidebar, and the mode sticks for later sessions. Each page calls
`ensure_router()` first; in legacy mode it switches the flag off and reruns, so app.py (and its
st.navigation) handles the same URL.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_router() -> None:
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
