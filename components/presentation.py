"""Presentation mode: large type, no sidebar, no keys, no raw JSON; a live speed/$ ticker.

Turned on by the sidebar toggle or by opening the app with `?present=1`. `app.py` calls
`apply_presentation()` once per run (after `set_page_config`, before `nav.run()`); pages ask
`is_presenting()` to skip raw inspectors and to apply the presentation caps.

Hiding is done twice on purpose: pages do not draw raw views when presenting, and the CSS
hides whatever slips through anywhere in the app (`st.json`, code blocks, password fields,
and any container whose key starts with `raw` or `secret`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import plotly.graph_objects as go
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
[data-testid="stMainBlockContainer"] { max-width: 100%; padding: 4.2rem 2.5rem 3rem; }
h1 { font-size: 2.6rem !important; }
[data-testid="stMetricValue"] { font-size: 2.4rem; }
/* the sidebar (connection, key) and its open/close controls are gone */
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"], [data-testid="stSidebarCollapseButton"] {
  display: none !important; }
/* no keys, no raw payloads (request JSON, SSE events), no developer chrome, anywhere;
   content in code blocks (the Token page's output text and ids, the Costs share link)
   stays: raw views are keyed "raw…" and pages skip them while presenting */
input[type="password"], [data-testid="stJson"],
[class*="st-key-raw"], [class*="st-key-secret"], [class*="st-key-conn_key"],
[data-testid="stMainMenu"], [data-testid="stAppDeployButton"],
[data-testid="stDecoration"] { display: none !important; }
html body .wp-ticker b { font-size: 2.2rem; }
/* st.table is HTML and grows with the type (the data grid is a px canvas: pages draw
   their tables with st.table while presenting) */
[data-testid="stTable"] table { font-size: 1rem; }
/* the top navigation (st.navigation position="top") sized for the room */
header [data-testid="stTopNavLink"] span, header a span { font-size: 1.05rem; }
</style>
"""
FIGURE_SCALE = 1.45  # plotly text is SVG/px: it does not follow the root font size

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


def scale() -> float:
    """How much to grow chart text and markers (1.0 outside presentation mode)."""
    return FIGURE_SCALE if is_presenting() else 1.0


def style_figure(fig: go.Figure) -> go.Figure:
    """Grow a figure's type for the room while presenting; unchanged otherwise."""
    if is_presenting():
        base = fig.layout.font.size or 13
        fig.update_layout(font={"size": round(base * FIGURE_SCALE)},
                          title_font_size=round(19 * FIGURE_SCALE),
                          height=round((fig.layout.height or 380) * 1.2))
    return fig


def caps() -> Caps | None:
    """The hard per-request caps in force (None outside presentation mode)."""
    return PRESENTATION_CAPS if is_presenting() else None


def _from_toggle() -> None:
    set_presenting(bool(st.session_state.get(_TOGGLE_KEY)))


def _exit() -> None:
    set_presenting(False)
    st.session_state[DEMO_KEY] = None  # leaving presentation ends the demo
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

# ---- the scripted demo: catalog -> a chat that streams -> compare three -> costs ----------

DEMO_KEY = "_demo_step"  # durable: the step shown while the scripted demo runs
DEMO_FIRE = "_demo_fire"  # the step whose action (send the chat, run the compare) is due
DEMO_PROMPT = "In three sentences: why does streaming make a chat feel fast?"
DEMO_SCENARIO = "speed"  # wafer_playground/scenarios.py PRICE_SPEED: three models
DEMO_BUDGET = 100.0  # $/month preset on the costs step, so the budget answer is the headline


@dataclass(frozen=True)
class DemoStep:
    page: str
    title: str
    say: str  # the line the presenter reads out


DEMO_STEPS = (
    DemoStep("pages/catalog.py", "The catalog",
             "Every model this endpoint serves, price first: $ per 1M tokens in and out, and "
             "what your workload costs per request and per month."),
    DemoStep("pages/chat.py", "A chat that streams",
             "One question, streamed token by token, with time to first token, speed and "
             "the cost of the answer."),
    DemoStep("pages/compare.py", "Three models on price and speed",
             "The same prompt to the three cheapest models at once: who answers first, who "
             "streams fastest, what each answer cost."),
    DemoStep("pages/costs.py", "What it costs a month",
             "From one request to a monthly bill: the cheapest model served here, and what "
             f"${DEMO_BUDGET:,.0f} a month buys on it."),
)


def demo_step() -> int | None:
    step = st.session_state.get(DEMO_KEY)
    return step if isinstance(step, int) and 0 <= step < len(DEMO_STEPS) else None


def _due(step: int) -> bool:
    """True once for the step's action, on its own page (then it is spent)."""
    if demo_step() == step and st.session_state.get(DEMO_FIRE) == step:
        st.session_state[DEMO_FIRE] = None
        return True
    return False


def demo_chat_prompt() -> str | None:
    """The chat step's message, once: the Chat page sends it as if typed."""
    return DEMO_PROMPT if _due(1) else None


def demo_scenario() -> str | None:
    """The compare step's scenario id, once: the Compare page runs it as if clicked."""
    return DEMO_SCENARIO if _due(2) else None


def demo_budget() -> float | None:
    """The costs step's budget ($/month), once: the Costs page presets it unless a budget
    is already set (the presenter's own figure wins)."""
    return DEMO_BUDGET if _due(3) else None


def _goto(step: int | None) -> None:
    if step is None or not 0 <= step < len(DEMO_STEPS):
        st.session_state[DEMO_KEY] = st.session_state[DEMO_FIRE] = None
        return
    set_presenting(True)
    st.session_state[DEMO_KEY] = st.session_state[DEMO_FIRE] = step
    st.switch_page(DEMO_STEPS[step].page)


def _demo_bar() -> None:
    """Where the demo is, what to say, and the one button that moves it on."""
    step = demo_step()
    if step is None:
        return
    here = DEMO_STEPS[step]
    with st.container(key="demo_bar", border=True):
        cols = st.columns([6, 1.2, 1.6, 1.2], vertical_alignment="center")
        cols[0].markdown(f"**Demo {step + 1} of {len(DEMO_STEPS)} · {here.title}**  \n"
                         f":gray[{here.say}]")
        if cols[1].button("Back", key="demo_back", icon=":material/arrow_back:",
                          disabled=step == 0, width="stretch"):
            _goto(step - 1)
        last = step == len(DEMO_STEPS) - 1
        nxt = "Finish" if last else f"Next: {DEMO_STEPS[step + 1].title}"
        if cols[2].button(nxt, key="demo_next", type="primary", width="stretch",
                          icon=":material/check:" if last else ":material/arrow_forward:"):
            _goto(None if last else step + 1)
            st.rerun()
        if cols[3].button("End demo", key="demo_end", width="stretch",
                          icon=":material/stop:"):
            _goto(None)
            st.rerun()


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
            if st.button("Start the demo", key="demo_start", icon=":material/slideshow:",
                         help="Presentation mode, then catalog → a chat that streams → "
                              "three models on price and speed → costs, one click a step"):
                _goto(0)
        return
    st.session_state[_TOGGLE_KEY] = True  # keep the toggle in step for when it returns
    st.html(CSS)
    with st.container(key="presentation_bar", horizontal=True,
                      horizontal_alignment="right", vertical_alignment="center"):
        st.caption(f"Presentation mode · caps: {PRESENTATION_CAPS.max_tokens} tokens and "
                   f"{format_usd(PRESENTATION_CAPS.max_cost_usd)} per request")
        if demo_step() is None and st.button("Start the demo", key="demo_start_bar",
                                             icon=":material/slideshow:", type="tertiary"):
            _goto(0)
        st.button("Exit presentation", key="presentation_exit", on_click=_exit,
                  icon=":material/close_fullscreen:", type="tertiary")
    _demo_bar()


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


__all__ = ["DEMO_BUDGET", "DEMO_STEPS", "apply_presentation", "caps", "demo_budget",
           "demo_chat_prompt", "demo_scenario",
           "demo_step", "ensure_applied", "is_presenting", "scale", "set_presenting",
           "style_figure", "sync_query_param", "ticker"]
