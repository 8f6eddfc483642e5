"""Leaderboard: blind votes (Compare, an evaluation's A/B view) as win rates and
Bradley–Terry ratings with bootstrap intervals, filterable by date and template (issue 18).
The maths is wafer_playground/eval_stats.py; this draws it, larger while presenting."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from components import presentation
from components.history import get_store
from wafer_playground import eval_stats as stats
from wafer_playground.untrusted import clean

K = "lb_"
ALL = "(all templates)"


def render(*, presenting: bool = False) -> None:
    try:
        votes = get_store().list_votes(limit=100_000)
    except Exception as exc:  # noqa: BLE001 - a broken database must not break the page
        st.error(f"The votes could not be read ({type(exc).__name__}).")
        return
    if not presenting:
        st.caption("From blind votes: Compare's “which is better?” and the evaluation's A/B "
                   "view. A tie counts half a win for each. Ratings are Bradley–Terry on an "
                   "Elo-like scale, with 95% bootstrap intervals.")
    templates = sorted({str(v.meta.get("template")) for v in votes if v.meta.get("template")})
    c = st.columns([2, 2])
    today = date.today()
    span = c[0].date_input("Votes between", (today - timedelta(days=90), today),
                           key=K + "dates")
    tpl = c[1].selectbox("Template", [ALL, *templates], key=K + "tpl")
    since = until = None
    if isinstance(span, tuple) and len(span) == 2:
        since, until = span[0].isoformat(), span[1].isoformat()
    picked = stats.filter_votes(votes, since=since, until=until,
                                template=None if tpl == ALL else tpl)
    board = stats.leaderboard(picked)
    if not board:
        st.info(f"{len(picked)} vote(s) in this range: at least one vote between two models "
                "is needed.", icon=":material/how_to_vote:")
        return
    st.dataframe(pd.DataFrame([{
        "model": clean(r.model, 80), "rating": round(r.rating),
        "95% interval": f"{r.lo:.0f} – {r.hi:.0f}", "votes": r.appearances,
        "win rate": "—" if r.win_rate is None else f"{r.win_rate:.0%}"} for r in board]),
        hide_index=True, width="stretch", key=K + "table")
    scale = presentation.scale()
    fig = stats.leaderboard_figure(board, font_size=round(12 * scale))
    st.plotly_chart(presentation.style_figure(fig), key=K + "chart", width="stretch")
    st.caption(f"{len(picked)} vote(s)." + (" With this few votes the intervals say little."
                                             if len(picked) < 20 else ""))


__all__ = ["render"]
