"""Account views: the Pass quota meter (sidebar) and measured speed beside price (catalog).

The rules and shapes live in `wafer_playground/account.py`; this module draws and caches.
Answers are held per session and connection (base URL + key fingerprint), never shared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
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
MEASURE_DUE = "_account_speed_due"  # one run: Measure was pressed


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


@dataclass(frozen=True)
class Speeds:
    """Measured speed per catalog model (`account.speed_frame`, in the catalog's order),
    where it comes from, and the problems met measuring it."""

    frame: pd.DataFrame
    source: str  # "metrics" | "log"
    problems: list[str]
    with_key: bool

    @property
    def measured(self) -> int:
        return int((self.frame["requests"] > 0).sum())


def _ask_measure() -> None:
    # a callback runs before the page script: the table drawn in this run has the figures
    st.session_state[MEASURE_DUE] = True


def speeds(conn: connection.Connection, models: list[Model]) -> Speeds:
    """The speed columns for the catalog table; a Measure click (see `speed_section`) since
    the last run fetches them from the metrics API first."""
    with_key = bool(conn.api_key and conn.base_url)
    measure = bool(st.session_state.pop(MEASURE_DUE, False)) and with_key
    got, source, problems = _speeds(conn, models, measure=measure)
    return Speeds(account.speed_frame(models, got), source, problems, with_key)


def speed_section(sp: Speeds) -> None:
    """Under the table: where its speed columns come from, Measure, and price vs speed."""
    with st.container(key="cat_speed"):
        _speed_section(sp)


def _speed_section(sp: Speeds) -> None:
    st.markdown("##### Measured speed beside price")
    if sp.with_key:
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.caption("The table's TTFT and tok/s columns come from the Wafer metrics API "
                   "(`GET /v1/endpoints/metrics?model=…`, last 24 hours, your key's "
                   "traffic): one call per model, when you press Measure.")
        c2.button("Measure", key="cat_speed_measure", icon=":material/speed:",
                  on_click=_ask_measure)
    else:
        st.caption(":material/history: No API key: the table's TTFT and tok/s columns are "
                   "measured from **this app's own request log** (your Chat and Compare "
                   "requests), not from Wafer's metrics.")
    for p in sp.problems[:5]:  # inert already: built with error_markdown / md_code / md_text
        st.caption(f":material/warning: {p}")
    if not sp.measured:
        st.caption("No measurements yet" + (": press Measure." if sp.with_key else
                                            ": send a few requests first."))
        return
    st.caption(f"{sp.measured} model(s) measured (p50 / p90 over "
               f"{int(sp.frame['requests'].sum()):,} requests); — = not measured.")
    st.plotly_chart(account.price_speed_figure(sp.frame), key="cat_price_speed",
                    config={"displaylogo": False})


__all__ = ["Speeds", "quota_meter", "speed_section", "speeds"]
