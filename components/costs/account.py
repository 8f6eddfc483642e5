"""Costs page, "Account usage": GET /v1/usage/me and /v1/endpoints/metrics as charts.

Calls are made only when asked (a button), and the answer is held per connection (base URL +
key fingerprint) and query, so switching endpoint never shows another account's numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from components import connection
from components.costs import charts
from components.errors import show_error
from wafer_playground.account import usage_window
from wafer_playground.catalog import Model
from wafer_playground.costs import format_usd
from wafer_playground.errors import WaferError
from wafer_playground.untrusted import TEXT_LIMIT, md_text
from wafer_playground.usage import daily_spend, metrics_view, price_usage_me, usage_me_view

RANGES = {5: "5 min", 15: "15 min", 30: "30 min", 60: "1 hour", 360: "6 hours",
          1440: "1 day", 10080: "7 days", 43200: "30 days"}
_HELD = "_costs_account"
PERIODS = ("1d", "7d", "30d")


def _default_endpoint(base_url: str) -> str:
    host = urlsplit(base_url).hostname or ""
    return "pass.wafer.ai" if host.endswith("wafer.ai") or not host else host


def render_account(models: list[Model]) -> None:
    conn = connection.current()
    st.markdown("##### Your account's usage and the endpoint's metrics")
    if not conn.base_url:
        st.info("Set a base URL in the sidebar first.")
        return
    c1, c2, c3, c4 = st.columns([1, 2, 1, 1])
    period = c1.selectbox("Period", [*PERIODS, "range"], index=1, key="costs_ac_period",
                          format_func=lambda p: "date range" if p == "range" else p,
                          help="A fixed period, or a date range (`start_at` / `end_at`).")
    window: tuple[str, str] | None = None
    if period == "range":
        today = datetime.now(UTC).date()
        picked = st.date_input("Usage dates (UTC, inclusive)", key="costs_ac_dates",
                               value=(today - timedelta(days=6), today), max_value=today)
        if not isinstance(picked, tuple | list) or len(picked) != 2:
            st.caption("Pick a start and an end date.")
            return
        window = usage_window(picked[0], picked[1])
    endpoint = c2.text_input("Metrics endpoint", value=_default_endpoint(conn.base_url),
                             key="costs_ac_endpoint",
                             help="`pass.wafer.ai` for Wafer Serverless; the local engine "
                                  "answers for any name from its own request log.")
    rng = c3.selectbox("Range", list(RANGES), index=3, format_func=RANGES.__getitem__,
                       key="costs_ac_range")
    c4.write("")
    fetch = c4.button("Fetch", key="costs_ac_fetch", icon=":material/refresh:")
    ident = (conn.base_url, conn.fingerprint, period, window, endpoint, rng)
    held: dict[tuple[Any, ...], dict[str, Any]] = st.session_state.setdefault(_HELD, {})
    if fetch:
        client = connection.get_client(conn)
        answer: dict[str, Any] = {}
        start_at, end_at = window or (None, None)
        for name, call in (("usage", lambda: client.usage_me(period, start_at=start_at,
                                                             end_at=end_at)),
                           ("metrics", lambda: client.endpoint_metrics(endpoint, rng))):
            try:
                answer[name] = call().data
            except WaferError as err:
                answer[name] = err
        held[ident] = answer
    answer = held.get(ident)
    if answer is None:
        st.caption(f"Press Fetch to load usage from {conn.label}.")
        return
    _usage(answer["usage"], models)
    _metrics(answer["metrics"])


def _usage(data: Any, models: list[Model]) -> None:
    st.markdown("###### Usage")
    if isinstance(data, WaferError):
        show_error(data, where="GET /v1/usage/me")
        return
    try:
        view = usage_me_view(data)
    except ValueError as exc:
        st.error(f"The usage answer could not be read: {md_text(exc, TEXT_LIMIT)}")
        return
    priced = price_usage_me(view, models)
    for note in view.notes:  # numbers the endpoint sent that are not counts
        st.caption(f":material/warning: {md_text(note, TEXT_LIMIT)}")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Requests", f"{view.total_requests:,}")
    m2.metric("Input tokens", f"{view.total_input_tokens:,}")
    m3.metric("Output tokens", f"{view.total_output_tokens:,}")
    ours = priced["our_usd"].dropna()
    m4.metric("Spend (priced here)", format_usd(float(ours.sum())) if not ours.empty
              else "not published",
              f"Endpoint's estimate {format_usd(view.reported_cost_usd)}"
              if view.reported_cost_usd is not None else None, delta_color="off", delta_arrow="off")
    st.caption(f"Period {md_text(view.period, 40)}. Model names are Wafer's resolved "
               "backend names; a name not in the catalog is not priced here. Daily spend is "
               "an estimate at the period's average rates.")
    st.plotly_chart(charts.daily_usage(daily_spend(view, priced)), key="costs_fig_days")
    if not priced.empty:
        st.plotly_chart(charts.model_spend(priced), key="costs_fig_models")


def _metrics(data: Any) -> None:
    st.markdown("###### Endpoint metrics")
    if isinstance(data, WaferError):
        show_error(data, where="GET /v1/endpoints/metrics")
        return
    try:
        view = metrics_view(data)
    except ValueError as exc:
        st.error(f"The metrics answer could not be read: {md_text(exc, TEXT_LIMIT)}")
        return
    s = view.summary
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Requests", f"{s.get('total_requests') or 0:,}")
    m2.metric("Error rate", f"{s.get('error_rate_pct') or 0:.1f} %",
              f"{s.get('count_4xx') or 0} 4xx · {s.get('count_5xx') or 0} 5xx",
              delta_color="off", delta_arrow="off")
    hit = s.get("cache_hit_pct")
    m3.metric("Cache hit", "–" if hit is None else f"{hit:.1f} %")
    rps = s.get("rps")
    m4.metric("Requests / s", "–" if rps is None else f"{rps:.3f}")
    st.dataframe(view.percentiles, hide_index=True, key="costs_ac_pct", placeholder="—")
    st.plotly_chart(charts.metrics_series(view.timeseries), key="costs_fig_series")
