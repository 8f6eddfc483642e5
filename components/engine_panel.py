"""The local engine's state, drawn: a sidebar line on every page, and on the pages that need
the engine (Chat, Token & grammar, Compare) a progress panel or a failure panel in place of
the page until it is ready.

The engine itself belongs to the server (`wafer_playground.local.engine.SERVICE`); these
widgets only read its status. While it provisions they refresh themselves as fragments, and
switch to a full rerun once it is ready, so the page appears without a reload.
"""

from __future__ import annotations

import time

import streamlit as st

from components import connection
from components.connection import Connection
from wafer_playground.local.engine import SERVICE, EngineStatus

REFRESH_S = 2.0  # each refresh is a fragment run on a server that is also compiling


def _minutes(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _step_label(status: EngineStatus) -> str:
    message = status.message or "starting"
    return message[:1].upper() + message[1:]


def eta_label(status: EngineStatus, now: float | None = None) -> str:
    eta = status.eta_s(now)
    if eta is None:
        return "almost there" if status.message.startswith(("starting", "serving")) else ""
    if status.compiling and status.step >= 5:
        return f"about {_minutes(eta)} left (from the compile rate so far)"
    return f"usually {_minutes(eta)} in all on this machine (first run only; then cached)"


def _switch(kind: str) -> None:
    """on_click: move this session to another endpoint (widget state may change here)."""
    if kind == "wafer":
        typed = str(st.session_state.get("_engine_panel_key") or "").strip()
        if typed:
            st.session_state["conn_key"] = typed
    elif kind == "custom":
        st.session_state["conn_custom_url"] = str(
            st.session_state.get("_engine_panel_url") or "").strip()
    st.session_state["conn_kind"] = kind
    st.session_state["_engine_panel_switched"] = True


def _retry() -> None:
    SERVICE.retry()
    st.session_state.pop("_engine_doctor", None)


def _alternatives(conn: Connection) -> None:
    allowed = connection.allowed_kinds()
    offers = [k for k in ("wafer", "custom") if k in allowed]
    if not offers:
        return
    st.markdown("**Meanwhile, use another endpoint** (one click; the engine keeps building):")
    cols = st.columns(len(offers))
    if "wafer" in offers:
        with cols[offers.index("wafer")]:
            has_key = connection.resolve_api_key()[1] in ("secrets", "environment", "sidebar")
            if not has_key:
                st.text_input("Wafer API key", key="_engine_panel_key", type="password",
                              placeholder="wfr_…",
                              help="Kept in this browser session's memory only.")
            st.button("Use Wafer" + ("" if has_key else " with this key"),
                      key="_engine_use_wafer", on_click=_switch, args=("wafer",),
                      icon=":material/cloud:", type="primary")
    if "custom" in offers:
        with cols[offers.index("custom")]:
            st.text_input("OpenAI-compatible base URL", key="_engine_panel_url",
                          placeholder="https://my-vllm.example.com/v1")
            st.button("Use this URL", key="_engine_use_custom", on_click=_switch,
                      args=("custom",), icon=":material/link:")


def _progress_body(status: EngineStatus) -> None:
    st.subheader(":material/construction: Preparing the local engine")
    st.caption("The first start on a machine builds llama.cpp's llama-server from source and "
               "checks that it really decodes; later starts take seconds. The build belongs to "
               "the server: closing or reloading this tab does not stop it, and every visitor "
               "sees this same progress. The catalog, the cost planner and History work now.")
    st.progress(status.fraction, text=_step_label(status))
    now = time.time()
    eta = eta_label(status, now)
    st.markdown(f"Elapsed **{_minutes(status.elapsed_s(now))}**" + (f" · {eta}" if eta else ""))
    for note in status.notes:
        st.info(note, icon=":material/info:")


def _failure_body(status: EngineStatus) -> None:
    st.subheader(":material/error: The local engine could not start")
    st.error(status.reason or "wafer-local stopped without saying why.")
    st.markdown(
        "**What you can do**\n"
        "- **Retry** below: it forgets the failed build's verdict and tries again (a new "
        "build takes several minutes).\n"
        "- Use Wafer with a key, or any OpenAI-compatible URL, below: every page works "
        "with them.\n"
        "- Report it: the doctor report below (also `uv run wafer-local --doctor`) has "
        "what a bug report needs.")
    for note in status.notes:
        st.info(note, icon=":material/info:")
    st.button("Retry", key="_engine_retry", on_click=_retry, icon=":material/refresh:",
              type="primary")
    with st.expander("Log tail"):
        st.code(status.log_tail or "(no output)", language="text")
    if "_engine_doctor" not in st.session_state:
        from wafer_playground.local.doctor import report

        st.session_state["_engine_doctor"] = report()
    with st.expander("Doctor report", expanded=False):
        st.code(st.session_state["_engine_doctor"], language="text")


@st.fragment(run_every=REFRESH_S)
def _live_panel(conn: Connection) -> None:
    if st.session_state.pop("_engine_panel_switched", False):
        st.rerun(scope="app")
    status = SERVICE.status()
    if status.phase == "ready" or (status.phase == "failed"):
        st.rerun(scope="app")  # the page (or the failure panel) takes over
    _progress_body(status)
    _alternatives(conn)


def _static_failure(conn: Connection) -> None:
    if st.session_state.pop("_engine_panel_switched", False):
        st.rerun()
    status = conn.engine or SERVICE.status()
    if status.phase != "failed":
        st.rerun()
    _failure_body(status)
    _alternatives(conn)


def gate(conn: Connection) -> None:
    """On a page that needs the endpoint: draw the engine panel and stop while it is not
    ready. Other endpoints pass straight through."""
    if conn.kind != "local" or conn.ready or conn.engine is None:
        return
    if conn.engine.phase == "failed":
        _static_failure(conn)
    else:
        _live_panel(conn)
    st.stop()


@st.fragment(run_every=REFRESH_S)
def _live_sidebar_line() -> None:
    status = SERVICE.status()
    if status.phase != "provisioning":
        st.rerun(scope="app")
    pct = f" · {status.fraction:.0%}" if status.fraction else ""
    st.caption(f":material/hourglass_top: Local engine: {status.message}{pct} · "
               f"{_minutes(status.elapsed_s())}")


def sidebar_line(conn: Connection) -> bool:
    """The engine's state under the connection controls; True when it drew something."""
    if conn.kind != "local" or conn.engine is None or conn.ready:
        return False
    if conn.engine.phase == "failed":
        st.caption(f":material/error: Local engine failed: {conn.engine.reason}")
    else:
        _live_sidebar_line()
    return True
