"""Evaluate: a prompt template over a test set on 1–4 models; what a passing answer costs."""

from __future__ import annotations

import streamlit as st

from components import connection, engine_panel, presentation
from components import evaluate as ui
from components.errors import error_markdown
from components.router import ensure_router

ensure_router()  # a first deep link (/evaluate?…) on a fresh server still goes via app.py
marker = presentation.ensure_applied()
try:
    conn = connection.current()
    engine_panel.gate(conn)  # the local engine still provisioning or failed: its panel instead
    models = connection.load_models(conn)
    presenting = presentation.is_presenting()
    st.title("Leaderboard" if presenting else "Evaluate")
    if not presenting:
        st.caption("A prompt template over a test set, on up to four models, with checks per "
                   "row: pass rate, cost per passing answer, latency. Runs go on in the "
                   "background; a closed tab or a restarted server resumes without paying "
                   "twice for a finished answer.")
    if models.error is not None and not models.live:
        st.warning(f"Model list unavailable ({error_markdown(models.error)}); showing the "
                   "snapshot catalog.", icon=":material/cloud_off:")
    if presenting:
        from components.evaluate import leaderboard

        leaderboard.render(presenting=True)
    else:
        ui.render_page(conn, models.catalog, presenting=False)
finally:
    marker["run"] = False
