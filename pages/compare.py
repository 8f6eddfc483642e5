"""Compare: one prompt to 2-4 models at once, streamed side by side, with a summary."""

from __future__ import annotations

import streamlit as st

from components import compare as ui
from components import connection, engine_panel, presentation, templates
from components.errors import error_markdown
from components.router import ensure_router

ensure_router()  # a first deep link (/compare?present=1) on a fresh server still goes via app.py
# the frame normally applies presentation mode; this keeps `?present=1` working here anyway
marker = presentation.ensure_applied()
try:
    conn = connection.current()
    engine_panel.gate(conn)  # the local engine still provisioning or failed: its panel instead
    models = connection.load_models(conn)
    presenting = presentation.is_presenting()

    st.title("Which model?" if presenting else "Compare models")
    if not presenting:
        st.caption("One prompt, 2–4 models, streamed at the same time. Each pane shows time to "
                   "first token, tokens/s, tokens, actual cost and finish reason; the summary "
                   "marks the best of each.")
    if models.error is not None and not models.live:
        st.warning(f"Model list unavailable ({error_markdown(models.error)}); showing the snapshot "
                   "catalog.", icon=":material/cloud_off:")

    if not presenting:  # a saved {{template}}, filled in, becomes the prompt
        templates.template_panel("cmp", on_fill=templates.into("cmp_prompt"))
    ui.render_page(conn, models.catalog, presenting=presenting)
finally:
    marker["run"] = False
