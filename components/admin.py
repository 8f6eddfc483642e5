"""The admin spend page: everyone's spend by person, model and day from the shared request
log, with a CSV export. Drawn only for WAFER_ADMINS (components/team.is_admin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import streamlit as st

from components.history import get_store
from components.team import is_admin
from wafer_playground.budgets import team_of, teams_from_env
from wafer_playground.costs import format_usd
from wafer_playground.store import SPEND_KEYS, format_ts, spend_frame
from wafer_playground.untrusted import csv_text

PERIODS = {"Today": 0, "Last 7 days": 6, "Last 30 days": 29, "Last 90 days": 89}


def render_admin_page() -> None:
    st.title("Spend")
    if not is_admin():  # the page is not in the menu for others; a typed URL lands here
        st.error("Only the server's admins (WAFER_ADMINS) can see everyone's spend.")
        st.stop()
    left, right = st.columns([1, 2])
    period = left.selectbox("Period", list(PERIODS), index=2, key="admin_period")
    by = right.multiselect("Group by", list(SPEND_KEYS), default=["person"], key="admin_by")
    start = (datetime.now(UTC) - timedelta(days=PERIODS[period])).replace(
        hour=0, minute=0, second=0, microsecond=0)
    rows = get_store().spend_of_everyone(format_ts(start))
    teams = teams_from_env()
    df = spend_frame(rows, tuple(by), {o: team_of(o, teams) or "(no team)" for o in
                                       {r.owner for r in rows}})
    a, b, c = st.columns(3)
    a.metric("Spend", format_usd(sum((r.cost_usd for r in rows), Decimal(0))))
    b.metric("Requests", f"{sum(r.requests for r in rows):,}")
    c.metric("People", f"{len({r.owner for r in rows}):,}")
    shown = df.copy()
    if "person" in shown:
        shown["person"] = shown["person"].map(lambda o: o.split(":", 1)[-1])
    shown["cost_usd"] = shown["cost_usd"].map(format_usd)
    st.dataframe(shown, hide_index=True, key="admin_table")
    st.download_button(
        "Download CSV", csv_text(list(df.columns), [
            [*row[:-1], format(row[-1], "f")] for row in df.itertuples(index=False)]),
        file_name=f"spend-{format_ts(start)[:10]}.csv", mime="text/csv", key="admin_csv")
    st.caption(f"From {format_ts(start)[:10]} (UTC), every owner in the request log. Costs are "
               "those recorded after each request; a request without a known price adds "
               "nothing.")
