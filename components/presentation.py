"""Presentation mode: large type, no sidebar, no keys, no raw JSON; a live speed/$ ticker.

Turned on by the sidebar toggle or by opening the app with `?present=1`. `app.py` calls
`apply_presentation()` once per run (after `set_page_config`, before `nav.run()`); pages ask
`is_presenting()` to skip raw inspectors and to apply the presentation caps.

Hiding is done twice on purpose: pages do not draw raw views when presenting, and the CSS
hides whatever slips through anywhere in the app (`st.json`, code blocks, password fields,
and any container whose key starts with `raw` or `secret`).
"""

from __future__ import annotations

from decimal import Decimal

import streamlit as st

from wafer_playground.costs import format_usd
from wafer_playground.guard import PRESENTATION_CAPS, Caps

PRESENT_KEY = "presentation_mode"  # durable (not widget-owned): survives page switches
_TOGGLE_KEY = "presentation_toggle"
_QP = "present"
_TRUE = {"1", "true", "yes", "on"}

CSS = """
<style>
/* large type: Streamlit sizes in rem, so the root size scales the whole app */
html { font-size: 20px; }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding: 1.5rem 2.5rem 3rem; }
h1 { font-size: 2.6rem !important; }
[data-testid="stMetricValue"] { font-size: 2.4rem; }
/* the sidebar (connection, key) and its open/close controls are gone */
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"], [data-testid="stSidebarCollapseButton"] {
  display: none !important; }
/* no keys, no raw payloads, no developer chrome, anywhere */
input[type="password"], [data-testid="stJson"], [data-testid="stCode"],
[class*="st-key-raw"], [class*="st-key-secret"], [class*="st-key-conn_key"],
[data-testid="stMainMenu"], [data-testid="stAppDeployButton"],
[data-testid="stDecoration"] { display: none !important; }
html body .wp-ticker b { font-size: 2.2rem; }
</style>
"""

TICKER_CSS = """
<style>
.wp-ticker { display: flex; gap: 2rem; align-items: baseline; flex-wrap: wrap;
  padding: .4rem 1rem; border-radius: .6rem; background: rgba(249, 115, 22, .08);
  border: 1px solid rgba(249, 115, 22, .30); font-variant-numeric: tabular-nums; }
.wp-ticker b { font-size: 1.5rem; }
.wp-ticker .live { color: #f97316; }
</style>
"""


def is_presenting() -> bool:
    """True while presentation mode is on (safe to call from any page)."""
    return bool(st.session_state.get(PRESENT_KEY, False))


def set_presenting(on: bool) -> None:
    st.session_state[PRESENT_KEY] = on


def caps() -> Caps | None:
    """The hard per-request caps in force (None outside presentation mode)."""
    return PRESENTATION_CAPS if is_presenting() else None


def _from_toggle() -> None:
    set_presenting(bool(st.session_state.get(_TOGGLE_KEY)))


def _exit() -> None:
    set_presenting(False)
    st.session_state[_TOGGLE_KEY] = False  # the sidebar toggle comes back switched off


def sync_query_param() -> bool:
    """`?present=1` turns the mode on when a session starts; afterwards session state
    leads and the URL follows, so a copied link reproduces the mode (and nothing else).
    Idempotent; app.py may call it before `st.navigation` to pick the menu position."""
    if "_presentation_seen_qp" not in st.session_state:
        st.session_state["_presentation_seen_qp"] = True
        if str(st.query_params.get(_QP, "")).lower() in _TRUE:
            set_presenting(True)
    want = "1" if is_presenting() else None
    have = st.query_params.get(_QP)
    if want and have != want:
        st.query_params[_QP] = want
    elif not want and have is not None:
        del st.query_params[_QP]
    return is_presenting()


_APPLIED = "_presentation_applied"  # {"run": bool}: mutated in place, also from `finally`


def apply_presentation() -> None:
    """Per-run hook for app.py: sync `?present=`, draw the toggle or the exit bar, add CSS."""
    st.session_state.setdefault(_APPLIED, {"run": False})["run"] = True
    sync_query_param()
    if not is_presenting():
        with st.sidebar:
            st.divider()
            st.session_state.setdefault(_TOGGLE_KEY, False)
            st.toggle("Presentation mode", key=_TOGGLE_KEY, on_change=_from_toggle,
                      help="Large type, no sidebar, no keys or raw JSON, demo scenario "
                           "cards and safety caps. Also opens with ?present=1.")
        return
    st.session_state[_TOGGLE_KEY] = True  # keep the toggle in step for when it returns
    st.html(CSS)
    with st.container(key="presentation_bar", horizontal=True,
                      horizontal_alignment="right", vertical_alignment="center"):
        st.caption(f"Presentation mode · caps: {PRESENTATION_CAPS.max_tokens} tokens and "
                   f"{format_usd(PRESENTATION_CAPS.max_cost_usd)} per request")
        st.button("Exit presentation", key="presentation_exit", on_click=_exit,
                  icon=":material/close_fullscreen:", type="tertiary")


def ensure_applied() -> dict[str, bool]:
    """For a page that must honour `?present=1` even if the frame did not call
    `apply_presentation()` this run. Returns the marker; the page resets it with
    `marker["run"] = False` in a `finally` (a plain dict write, legal after a Stop)."""
    marker: dict[str, bool] = st.session_state.setdefault(_APPLIED, {"run": False})
    if not marker["run"]:
        apply_presentation()
    return marker


def ticker(slot: st.delta_generator.DeltaGenerator, *, tokens_per_s: float | None,
           dollars: Decimal | None, tokens: int, elapsed_s: float, live: bool,
           dollars_kind: str = "") -> None:
    """The live "tok/s · $ spent · tokens · seconds" strip, redrawn into `slot` (st.empty)."""
    speed = "–" if tokens_per_s is None else (
        f"{tokens_per_s:,.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:.1f}")
    money = format_usd(dollars) if dollars is not None else "–"
    state = '<span class="live">● live</span>' if live else "done"
    kind = f" <small>{dollars_kind}</small>" if dollars_kind else ""
    slot.html(
        f'{TICKER_CSS}<div class="wp-ticker" data-testid="wp-ticker">'
        f"<span><b>{speed}</b> tok/s</span>"
        f"<span><b>{money}</b> spent{kind}</span>"
        f"<span><b>{tokens:,}</b> tokens</span>"
        f"<span><b>{elapsed_s:,.1f}</b> s</span>"
        f"<span>{state}</span></div>"
    )


__all__ = ["apply_presentation", "caps", "ensure_applied", "is_presenting", "set_presenting",
           "sync_query_param", "ticker"]
