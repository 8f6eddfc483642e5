"""History: saved conversations, completion runs, the request log, import."""

from __future__ import annotations

import streamlit as st

from components.history import get_store, render_history_page
from components.router import ensure_router
from wafer_playground.store import StoreError

ensure_router()  # a deep link opened first on a fresh server still goes through app.py
st.title("History")
try:
    store = get_store()
except StoreError as exc:  # e.g. a DB file written by a newer version
    st.error(str(exc))
    st.stop()
render_history_page(store)
