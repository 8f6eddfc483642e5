"""Wafer Playground: the router. Page config, the connection sidebar, one st.navigation."""

from __future__ import annotations

import streamlit as st

from components import account_views, connection, engine_panel, heap, presentation, team

st.set_page_config(
    page_title="Wafer Playground",
    page_icon=":material/bolt:",
    layout="wide",
    initial_sidebar_state="auto",  # open on a desktop, closed on a phone (opens on content)
)

PAGES = [
    st.Page("pages/catalog.py", title="Model catalog", icon=":material/view_list:",
            url_path="models", default=True),
    # The default page is served at "/" only; this hidden twin makes /catalog a real URL
    # (a shared filter link) instead of "Page not found" (issue 16).
    st.Page("pages/catalog.py", title="Model catalog", icon=":material/view_list:",
            url_path="catalog", visibility="hidden"),
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", url_path="chat"),
    st.Page("pages/tokens.py", title="Token & grammar", icon=":material/data_array:",
            url_path="tokens"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:",
            url_path="evaluate"),
    st.Page("pages/costs.py", title="Costs", icon=":material/payments:", url_path="costs"),
    st.Page("pages/history.py", title="History", icon=":material/history:", url_path="history"),
]
if team.is_admin():  # WAFER_ADMINS on a team server with sign-in
    PAGES.append(st.Page("pages/admin.py", title="Spend (admin)", icon=":material/groups:",
                         url_path="admin"))

connection.boot()  # the local engine starts with the server when it is the starting endpoint
# ?present=1 switches presentation mode on for this session; while presenting the sidebar is
# hidden, so the page menu moves to the top (issue 16: hiding the sidebar hid the menu)
presenting = presentation.sync_query_param()
nav = st.navigation(PAGES, position="top" if presenting else "hidden")
# The menu as page links, not Streamlit's own sidebar menu: the browser redraws that menu on
# every update the page gets, once per token while an answer streams (140 of the 480
# component renders per token on Chat, benchmarks/render_cost.py, issue 20); links are
# elements, which it skips when they have not changed. Placed first, filled after the gate.
menu = st.sidebar.container(key="page_menu", gap=None)
team.gate()  # a team server with sign-in: a signed-out visitor stops here
if not presenting:
    for page in PAGES:
        if page.visibility != "hidden":
            menu.page_link(page, width="stretch")
conn = connection.sidebar()
with st.sidebar:
    engine_panel.sidebar_line(conn)
    account_views.quota_meter(conn)  # Pass quota; hidden where the endpoint answers 404
presentation.apply_presentation()
try:
    nav.run()
finally:  # also after st.stop / st.rerun: the page's modules are imported by then
    heap.freeze_after_first_run(nav.url_path)
