"""Wafer Playground: the router. Page config, the connection sidebar, one st.navigation."""

from __future__ import annotations

import streamlit as st

from components import (
    account_views,
    connection,
    engine_panel,
    heap,
    page_menu,
    presentation,
    team,
)

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
# The page menu (components/page_menu.py says why it is not Streamlit's own): its place comes
# first in the sidebar, its links after the gate.
menu = page_menu.slot()
team.gate()  # a team server with sign-in: a signed-out visitor stops here
if not presenting:
    page_menu.draw(menu, PAGES)
conn = connection.sidebar()
with st.sidebar:
    engine_panel.sidebar_line(conn)
    account_views.quota_meter(conn)  # Pass quota; hidden where the endpoint answers 404
presentation.apply_presentation()
try:
    nav.run()
finally:  # also after st.stop / st.rerun: the page's modules are imported by then
    heap.freeze_after_first_run(nav.url_path)
