"""Account views: the Pass quota meter (sidebar) and measured speed beside price (catalog).

The rules and shapes live in `wafer_playground/account.py`; this module draws and caches.
Answers are held per session and connection (base URL + key fingerprint), never shared.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from components import connection
from components.errors import error_markdown
from components.untrusted import md_code, md_text
from wafer_playground import account
from wafer_playground.catalog import Model
from wafer_playground.errors import WaferError

QUOTA_TTL_S = 60
_QUOTA = "_account_quota"
_SPEED = "_account_speed"
METRICS_RANGE = 1440  # the last day


def _quota(conn: connection.Connection) -> account.Quota | str | None:
    """The parsed quota, a one-line problem, or None (no quota here: hidden)."""
    held: dict[tuple[str, str], tuple[float, Any]] = st.session_state.setdefault(_QUOTA, {})
    ident = (conn.base_url, conn.fingerprint)
    hit = held.get(ident)
    if hit is not None and time.time() - hit[0] < QUOTA_TTL_S:
        return hit[1]
    value: Any
    try:
        value = account.parse_quota(connection.get_client(conn).inference_quota().data)
    except WaferError as err:
        # 404: this endpoint (or key) has no Pass quota -> nothing to show
        value = None if err.status in (404, 405) else f"unavailable: {error_markdown(err)}"
    except ValueError as exc:
        value = f"unreadable: {md_text(exc, 200)}"
    held[ident] = (time.time(), value)
    return value


def quota_meter(conn: connection.Connection) -> None:
    """Pass quota in the sidebar: requests used in the current 5-hour window. Only on the
    Wafer endpoint with a key (a custom URL or the local engine has no Pass)."""
    if conn.kind != "wafer" or not conn.base_url or not conn.api_key:
        return
    q = _quota(conn)
    if q is None:
        return
    with st.container(key="pass_quota"):
        label = ":small[:material/speed: **Pass quota** · :gray[undocumented endpoint]]"
        if isinstance(q, str):
            st.caption(f"{label}  \n{q}")  # already inert (error_markdown / md_text)
            return
        pct = q.used_percent or 0.0
        colour = {"ok": "green", "warning": "orange", "exhausted": "red"}.get(q.level, "gray")
        counts = (f"{q.used:,} of {q.limit:,} requests" if q.used is not None and q.limit
                  else f"{pct:.0f} % used")
        st.progress(min(pct, 100.0) / 100, text=f"{label}  \n:{colour}[{counts} · {pct:.0f} %]")
        notes = []
        if q.plan_tier:
            notes.append(f"plan {md_text(q.plan_tier, 40)}")
        left = q.resets_in(datetime.now(UTC))
        if left is not None:
            h, m = divmod(int(left.total_seconds()) // 60, 60)
            notes.append(f"window resets in {h} h {m:02d} min")
        if q.overage:
            notes.append(f":orange[{q.overage:,} over the included requests]")
        if notes:
            st.caption(" · ".join(notes))


def _speeds(conn: connection.Connection, models: list[Model], *, measure: bool
            ) -> tuple[list[account.Speed], str, list[str]]:
    """Speeds, what they come from, and problems. With a key: the metrics API's `model`
    filter, one call per model, only when asked. Without: this app's request log."""
    problems: list[str] = []
    if conn.api_key and conn.base_url:
        held: dict[tuple[str, str], tuple[list[account.Speed], list[str]]] = \
            st.session_state.setdefault(_SPEED, {})
        ident = (conn.base_url, conn.fingerprint)
        if measure:
            client = connection.get_client(conn)
            endpoint = _metrics_endpoint(conn.base_url)
            got: list[account.Speed] = []
            for m in models:
                try:
                    data = client.endpoint_metrics(endpoint, METRICS_RANGE, model=m.id).data
                except WaferError as err:
                    problems.append(f"{md_code(m.id)}: {error_markdown(err)}")
                    continue
                s = account.speed_from_metrics(m.id, data)
                if s is not None:
                    got.append(s)
            held[ident] = (got, problems)
        speeds, problems = held.get(ident, ([], []))
        return speeds, "metrics", problems
    try:
        from components.history import get_store

        store: Any = get_store()
        frame = store.request_log_frame()
    except Exception as exc:  # noqa: BLE001 - a broken database must not break the page
        return [], "log", [f"could not read the request log: {md_text(exc, 300)}"]
    return account.speed_from_log(frame, conn.base_url), "log", problems


def _metrics_endpoint(base_url: str) -> str:
    from urllib.parse import urlsplit

    host = urlsplit(base_url).hostname or ""
    return "pass.wafer.ai" if host.endswith("wafer.ai") or not host else host


def speed_section(conn: connection.Connection, models: list[Model]) -> None:
    """Measured p50/p90 TTFT and tokens/s per model beside its price, and a chart."""
    with st.container(key="cat_speed"):
        _speed_section(conn, models)


def _speed_section(conn: connection.Connection, models: list[Model]) -> None:
    st.markdown("##### Measured speed beside price")
    with_key = bool(conn.api_key and conn.base_url)
    measure = False
    if with_key:
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.caption("From the Wafer metrics API (`GET /v1/endpoints/metrics?model=…`, last "
                   "24 hours, your key's traffic): one call per model, when you press "
                   "Measure.")
        measure = c2.button("Measure", key="cat_speed_measure", icon=":material/speed:")
    speeds, source, problems = _speeds(conn, models, measure=measure)
    if not with_key:
        st.caption(":material/history: No API key: measured from **this app's own request "
                   "log** (your Chat and Compare requests), not from Wafer's metrics.")
    frame = account.speed_frame(models, speeds)
    measured = frame[frame["requests"] > 0]
    for p in problems[:5]:  # inert already: built with error_markdown / md_code / md_text
        st.caption(f":material/warning: {p}")
    if measured.empty:
        st.caption("No measurements yet" + (": press Measure." if with_key and source ==
                                            "metrics" else ": send a few requests first."))
        return
    cc = st.column_config
    st.dataframe(
        frame.sort_values("requests", ascending=False), hide_index=True, key="cat_speed_df",
        column_order=["name", "input_usd_per_m", "output_usd_per_m", "ttft_p50_ms",
                      "ttft_p90_ms", "tps_p50", "tps_p90", "requests", "source"],
        column_config={
            "name": cc.TextColumn("Model"),
            "input_usd_per_m": cc.NumberColumn("$ in / 1M", format="$%.4g"),
            "output_usd_per_m": cc.NumberColumn("$ out / 1M", format="$%.4g"),
            "ttft_p50_ms": cc.NumberColumn("TTFT p50", format="%.0f ms"),
            "ttft_p90_ms": cc.NumberColumn("TTFT p90", format="%.0f ms"),
            "tps_p50": cc.NumberColumn("tok/s p50", format="%.1f"),
            "tps_p90": cc.NumberColumn("tok/s p90", format="%.1f"),
            "requests": cc.NumberColumn("Requests"),
            "source": cc.TextColumn("Measured by")},
        placeholder="—")
    st.plotly_chart(account.price_speed_figure(frame), key="cat_price_speed",
                    config={"displaylogo": False})


__all__ = ["quota_meter", "speed_section"]
