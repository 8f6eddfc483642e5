"""Compare widgets: live panes, the polling loop, the summary table, exports, blind vote.

Over 600 lines: setup, live panes, summary and vote share the CompareSession in session state;
splitting them is left for later (the core decisions already live in wafer_playground/compare.py).

All Streamlit calls happen here on the script thread; the upstream streams run in
`wafer_playground.compare.CompareRun` worker threads and are only *read* through snapshots.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from html import escape
from typing import Any, Literal

import pandas as pd
import streamlit as st

from components import media_attach, presentation
from components.connection import Connection, get_client
from components.errors import show_error
from components.history import get_store, share_panel, shared_state
from components.model_picker import option_label
from components.streaming import yield_point
from components.untrusted import TEXT_LIMIT, md_code, md_text
from wafer_playground import grammar as grammar_mod
from wafer_playground import media as wmedia
from wafer_playground import share
from wafer_playground.catalog import Catalog, Pricing
from wafer_playground.client import WaferClient
from wafer_playground.compare import (
    DISPLAY_METRIC_COLUMN,
    KEEP_OUTPUT,
    METRICS,
    CompareRun,
    Encoder,
    PaneConfig,
    PaneResult,
    PaneSnapshot,
    PaneSpec,
    Params,
    Summary,
    Surface,
    build_specs,
    display_rows,
    pane_cost,
    pane_result,
    preflight,
    problems_of,
    prompt_estimate,
    summarize,
    summary_figure,
    timeline_figure,
    to_csv,
    to_markdown,
    with_labels,
)
from wafer_playground.costs import Cost, format_usd
from wafer_playground.errors import WaferError
from wafer_playground.guard import PRESENTATION_CAPS
from wafer_playground.runs import RequestLog
from wafer_playground.scenarios import (
    SCENARIOS,
    Readiness,
    Scenario,
    cheapest_passing,
    passes,
    readiness,
    supports_chat,
    supports_completions,
)
from wafer_playground.scenarios import get as get_scenario
from wafer_playground.store import Store
from wafer_playground.throttle import Throttle
from wafer_playground.tokenizers import TokenizerUnavailable, available_offline, tokenizer_for
from wafer_playground.tokens import IdParseError, Verdict, parse_ids, verify_output
from wafer_playground.untrusted import model_markdown

PANE_HEIGHT = 300
POLL_S = 0.04  # how often the script thread looks at the panes (renders are throttled)
TICKER_EVERY_S = 0.25
BEST_STYLE = "background-color: rgba(249, 115, 22, 0.18); font-weight: 700;"

STATUS_BADGE = {
    "pending": ":gray-badge[:material/schedule: waiting]",
    "streaming": ":orange-badge[:material/stream: streaming]",
    "done": ":green-badge[:material/check: done]",
    "stopped": ":gray-badge[:material/stop: stopped]",
    "error": ":red-badge[:material/error: error]",
}


def _secs(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} s"


def pane_badges(snap: PaneSnapshot, cost: Cost | None, *, grammar: str | None = None,
                passed: bool | None = None, blind: bool = False) -> str:
    """One line of badges: TTFT, tok/s, tokens, cost (actual/estimate), finish, grammar.

    `blind` (before the vote): no tokens and no cost, which would give the model away.
    """
    tps = "–" if snap.tokens_per_s is None else f"{snap.tokens_per_s:.1f}"
    estimated = snap.completion_source != "usage" and snap.completion_tokens > 0
    tokens = f"{snap.completion_tokens}" + ("~" if estimated else "")
    money = "–"
    if cost is not None:
        money = format_usd(cost.total) + ("" if cost.kind == "actual" else " est.")
    parts = [STATUS_BADGE[snap.status],
             f":blue-badge[TTFT {_secs(snap.ttft_s)}]",
             f":blue-badge[{tps} tok/s]"]
    if not blind:
        parts += [f":gray-badge[{tokens} tokens]", f":violet-badge[{money}]"]
    if snap.finish_reason:
        parts.append(f":gray-badge[finish: {md_text(snap.finish_reason, 80)}]")
    if grammar is not None:
        parts.append(":green-badge[:material/check: grammar]" if grammar == "ok"
                     else ":red-badge[:material/close: grammar]")
    if passed is not None:
        parts.append(":green-badge[✓ answered]" if passed else ":red-badge[✗ wrong answer]")
    return " ".join(parts)


def _timing_caption(snap: PaneSnapshot) -> str:
    """The pane's window on the shared clock (what the e2e test checks for overlap)."""
    if snap.first_token_s is None:
        return ""
    end = "…" if snap.ended_s is None else f"+{snap.ended_s:.2f}s"
    return f"window +{snap.first_token_s:.2f}s → {end}"


class PaneView:
    """One pane's placeholders; `update()` redraws text at the throttle's pace."""

    def __init__(self, spec_label: str, subtitle: str, *, surface: str,
                 pieces: Sequence[str] = (), key: str, blind: bool = False) -> None:
        self.surface = surface
        self.blind = blind
        self.throttle = Throttle()
        self._last_text: str | None = None
        self._last_badges: str | None = None
        self._key = f"pane_{key}"
        with st.container(border=True, key=f"pane_{key}"):
            st.markdown(f"#### {md_text(spec_label)}")  # a label can carry a model id
            if subtitle:
                st.caption(md_text(subtitle))
            if pieces:
                chips = "".join(f'<span class="wp-tok">{escape(p) or "∅"}</span>'
                                for p in pieces[:80])
                more = f" … +{len(pieces) - 80}" if len(pieces) > 80 else ""
                st.html(
                    "<style>.wp-tok{display:inline-block;margin:1px 2px;padding:0 4px;"
                    "border-radius:4px;background:rgba(99,102,241,.15);font-family:monospace;"
                    "white-space:pre}</style>"
                    f'<div data-testid="wp-pieces"><b>{len(pieces)} prompt tokens</b> '
                    f"{chips}{more}</div>")
            self.badges = st.empty()
            # While streaming: a fixed box that follows the newest line. Once final: the
            # whole answer from its first line (a box left scrolled to its end made answers
            # seem to start mid-sentence, issue 16).
            self.body = st.empty()
            self.text: Any = None
            self.footer = st.empty()

    def update(self, snap: PaneSnapshot, cost: Cost | None, *, final: bool = False,
               grammar: str | None = None, passed: bool | None = None,
               grammar_detail: str = "", show_request_id: bool = True,
               show_raw: bool = False) -> None:
        now = time.perf_counter()
        text = snap.content
        if final or (text != self._last_text and self.throttle.due(now, len(text))):
            shown = text if (final or not snap.streaming) else text + "▌"
            if final:
                self.text = self.body.container(border=False, key=f"{self._key}_final")
            elif self.text is None:
                with self.body.container(height=PANE_HEIGHT, border=False, autoscroll=True):
                    self.text = st.empty()
            if not text and snap.streaming:
                self.text.caption("waiting for the first token…")
            elif self.surface == "chat":
                self.text.markdown(model_markdown(shown))
            else:
                self.text.text(shown)
            self.throttle.mark(now)
            self._last_text = text
        badges = pane_badges(snap, cost, grammar=grammar, passed=passed, blind=self.blind)
        if badges != self._last_badges:
            self.badges.markdown(badges)
            self._last_badges = badges
        if final:
            with self.footer.container():
                if snap.error is not None:
                    show_error(snap.error)
                notes = [n for n in (_timing_caption(snap), grammar_detail) if n]
                if snap.request_id and show_request_id and not presentation.is_presenting():
                    notes.append(f"request id {md_code(snap.request_id, 80)}")
                if notes:
                    st.caption(" · ".join(notes))
                if show_raw and not presentation.is_presenting():
                    # keyed "raw…": presentation CSS hides it even if a caller forgets
                    with st.container(key=f"raw_req_{snap.index}"), \
                            st.expander("Request body", icon=":material/data_object:"):
                        st.json(snap.spec.body, expanded=False)


def stream_panes(run: CompareRun, views: Sequence[PaneView], *,
                 pricing: Callable[[int], Pricing], prompt_estimate: Callable[[int], int | None],
                 ticker_slot: st.delta_generator.DeltaGenerator | None) -> list[PaneSnapshot]:
    """Poll the workers and redraw until every pane is final; returns the last snapshots.

    Each redraw is a Streamlit call, so a Stop or a rerun lands here as an exception: the
    caller cancels the run in `finally`.
    """
    last_tick = 0.0
    while True:
        done = run.done  # read before the snapshot so the final state is always drawn
        snaps = run.snapshot()
        costs = [pane_cost(s, pricing(s.index), prompt_estimate=prompt_estimate(s.index))
                 for s in snaps]
        for view, snap, cost in zip(views, snaps, costs, strict=True):
            view.update(snap, cost)
        now = time.perf_counter()
        if ticker_slot is not None and (done or now - last_tick >= TICKER_EVERY_S):
            elapsed = final_elapsed(snaps) if done else now - (run.t0 or now)
            draw_ticker(ticker_slot, snaps, costs, live=not done, elapsed_s=elapsed)
            last_tick = now
        if done:
            return snaps
        yield_point()  # a Stop lands within one poll even when nothing was redrawn
        time.sleep(POLL_S)


def draw_ticker(slot: st.delta_generator.DeltaGenerator, snaps: Sequence[PaneSnapshot],
                costs: Sequence[Cost | None], *, live: bool, elapsed_s: float) -> None:
    """Speed across the panes still streaming (all panes once done), spend so far."""
    rates = [s.tokens_per_s for s in snaps if s.tokens_per_s is not None and
             (s.status == "streaming" or not live)]
    priced = [c.total for c in costs if c is not None and c.total is not None]
    kinds = {c.kind for c in costs if c is not None}
    presentation.ticker(
        slot, tokens_per_s=sum(rates) if rates else None,
        dollars=sum(priced, Decimal(0)) if priced else None,
        tokens=sum(s.completion_tokens for s in snaps), elapsed_s=max(0.0, elapsed_s),
        live=live, dollars_kind="estimate" if "estimate" in kinds else "")


def final_elapsed(snaps: Sequence[PaneSnapshot]) -> float:
    ends = [s.ended_s for s in snaps if s.ended_s is not None]
    return max(ends) if ends else 0.0


BLIND_HIDDEN = ("Prompt tokens", "Output tokens", "Cost")  # each can name the model


def summary_table(summary: Summary, *, blind: bool = False) -> None:
    """The summary as a real table; each column's best cell highlighted and marked ★.

    `blind` (before the vote) leaves out cost and token counts."""
    rows = display_rows(summary)
    if not rows:
        return
    frame = pd.DataFrame(rows)
    if blind:
        frame = frame.drop(columns=list(BLIND_HIDDEN))
    best_cells: set[tuple[int, str]] = set()
    for m in METRICS:
        col = DISPLAY_METRIC_COLUMN[m.key]
        if col not in frame.columns:
            continue
        for i in summary.best.get(m.key, set()):
            best_cells.add((i, col))
            frame.at[i, col] = f"★ {frame.at[i, col]}"

    def style(data: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame("", index=data.index, columns=data.columns)
        for i, col in best_cells:
            out.at[i, col] = BEST_STYLE
        return out

    st.table(frame.style.apply(style, axis=None), hide_index=True)
    st.caption("★ = best in its column among panes that finished: lowest cost, fastest "
               "first token (TTFT), highest tokens/s, quickest overall. `~` / est. = estimated "
               "from the stream (no usage reported).")


def exports(summary: Summary, *, title: str, key: str) -> None:
    cols = st.columns(2)
    cols[0].download_button("Summary as CSV", to_csv(summary), file_name="compare.csv",
                            mime="text/csv", icon=":material/table:", key=f"{key}_csv",
                            width="stretch")
    cols[1].download_button("Summary as Markdown", to_markdown(summary, title=title),
                            file_name="compare.md", mime="text/markdown",
                            icon=":material/description:", key=f"{key}_md", width="stretch")


PRESENT_FONT_PX = 18  # chart text readable from the back of the room (page text is 20 px)


def charts(summary: Summary, snaps: Sequence[PaneSnapshot], *, key: str) -> None:
    # SVG text ignores the presentation CSS's larger root font: size it here
    big = presentation.is_presenting()
    font = PRESENT_FONT_PX if big else 12
    left, right = st.columns([3, 2])
    with left:
        st.caption("Best of each metric in orange · ↓ lower is better · ↑ higher is better")
        st.plotly_chart(summary_figure(summary, font_size=font, height=380 if big else 300),
                        key=f"{key}_bars", width="stretch",
                        config={"displayModeBar": False})
    with right:
        st.caption("When each pane waited and streamed (overlap = truly concurrent)")
        st.plotly_chart(timeline_figure(snaps, font_size=font,
                                        height=180 + 56 * len(snaps) if big else None),
                        key=f"{key}_timeline",
                        width="stretch",
                        config={"displayModeBar": False})


def vote_buttons(labels: Sequence[str], *, key: str) -> str | None:
    """Blind vote: returns the chosen label, "" for no preference, None if no click yet."""
    st.markdown("**Which answer is best?** Model names are revealed after you pick.")
    cols = st.columns(len(labels) + 1)
    for col, label in zip(cols, labels, strict=False):
        if col.button(f"{label} is best", key=f"{key}_{label}", width="stretch",
                      icon=":material/thumb_up:"):
            return label
    if cols[-1].button("No preference", key=f"{key}_tie", width="stretch"):
        return ""
    return None


def scenario_cards(cards: Sequence[Scenario], ready: Sequence[Readiness], *,
                   key: str) -> str | None:
    """Pinned demo cards, checked before they are offered; returns the id clicked this run."""
    clicked = None
    cols = st.columns(len(cards))
    for col, sc, rd in zip(cols, cards, ready, strict=True):
        with col, st.container(border=True, key=f"{key}_{sc.id}", height="stretch"):
            st.markdown(f"#### {sc.icon} {sc.title}")
            st.caption(sc.blurb)
            if rd.ready:
                # names in the tooltip: the page may be in blind mode
                names = ", ".join(md_text(p.model) for p in rd.picks)
                out = md_text("; ".join(rd.left_out), 300)
                st.caption(f":green[Ready] · {len(rd.picks)} models that fit the caps",
                           help=f"Runs on {names}" + (f". Left out: {out}" if rd.left_out
                                                     else ""))
            else:
                st.caption(f":orange[Not ready here: {md_text(rd.reason, 300)}]",
                           help=md_text("; ".join(rd.left_out), 600) or None)
            if st.button("Run", key=f"{key}_run_{sc.id}", type="primary", disabled=not rd.ready,
                         icon=":material/play_arrow:", width="stretch"):
                clicked = sc.id
    return clicked


def card_readiness(sc: Scenario, catalog: Catalog) -> Readiness:
    """The card as it would run now: within the presentation caps, tokenizers on hand."""
    return readiness(sc, catalog.models, caps=PRESENTATION_CAPS,
                     tokenizer_ready=lambda m: available_offline(m.id, local=m.local is not None))


def scenario_setup(sc: Scenario, rd: Readiness) -> Setup:
    """The run a card starts, built aside: the custom form's values are never touched, so
    a card (even a failed one) cannot leave its max_tokens behind (issue 16)."""
    configs = [PaneConfig(p.model, Params(temperature=p.temperature, top_p=1.0,
                                          max_tokens=sc.max_tokens)) for p in rd.picks]
    return Setup(sc.surface, configs, sc.prompt, sc.system, None, sc.grammar or "",
                 False, None)


# --------------------------------------------------------------------------- the page flow

SESSION_KEY = "compare_session"  # the last comparison (plain key: survives page switches)
PERSIST: Literal["session"] = "session"  # values survive page switches (1.67 persist_state)
MODE_LABELS: dict[Surface, str] = {"chat": "Chat", "completions": "Token-ID completion"}


@dataclass
class CompareSession:
    """One comparison: the live run plus everything derived once it is over."""

    run: CompareRun
    specs: list[PaneSpec]
    prompt: str
    blind: bool
    base_url: str
    scenario: str | None = None
    snaps: list[PaneSnapshot] | None = None
    results: list[PaneResult] | None = None
    verdicts: list[Verdict | None] = field(default_factory=list)
    passed: list[bool | None] = field(default_factory=list)
    revealed: bool = False
    winner: str | None = None  # label voted best; "" = no preference
    notes: list[str] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)  # attachments sent (no bytes kept)

    @property
    def hidden(self) -> bool:
        return self.blind and not self.revealed

    def labels(self) -> list[str]:
        if self.blind and self.revealed:
            return [f"{s.label} · {s.model}" for s in self.specs]
        return [s.label for s in self.specs]


@dataclass(frozen=True)
class _Files:
    """The file_uploader's files in the shape media_attach.split_input reads."""

    files: list[Any]
    text: str = ""


@dataclass(frozen=True)
class Setup:
    surface: Surface
    configs: list[PaneConfig]
    prompt: str
    system: str
    ids_text: str | None  # token ids typed by the user (completions), else None
    grammar: str
    blind: bool
    cap: Decimal | None
    attachments: tuple[media_attach.Picked, ...] = ()


def _pricing_for(catalog: Catalog) -> Callable[[str], Pricing]:
    def pricing(model_id: str) -> Pricing:
        m = catalog.get(model_id)
        return m.pricing if m is not None else Pricing()
    return pricing


def _options(catalog: Catalog, surface: Surface) -> list[str]:
    if surface == "chat":
        return [m.id for m in catalog.models if supports_chat(m)]
    # every enabled model may be tried; the ones known to take token ids come first
    usable = [m for m in catalog.models if m.disabled_reason is None]
    return [m.id for m in sorted(usable, key=lambda m: not supports_completions(m))]


def _fix(key: str, options: Sequence[object], default: object) -> None:
    """Keep a keyed widget's value valid when its options change (mode switch, new list)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


_RANGES: dict[str, tuple[str, float, float]] = {  # share field -> (widget key, min, max)
    "temperature": ("cmp_temp", 0.0, 2.0), "top_p": ("cmp_top_p", 0.0, 1.0),
    "max_tokens": ("cmp_max", 1, 32_768), "seed": ("cmp_seed", 0, 2**31 - 1),
}


def share_state(setup: Setup) -> share.ShareState:
    """The comparison's setup for a link: mode, models, settings, prompt (never outputs,
    votes or keys). Per-pane values travel only when per-pane parameters are on."""
    per_pane = bool(st.session_state.get("cmp_perpane"))
    first = setup.configs[0].params if setup.configs else Params()
    params: dict[str, Any] = {"top_p": first.top_p}
    if first.seed is not None:
        params["seed"] = first.seed
    if not per_pane:
        params.update(temperature=first.temperature, max_tokens=first.max_tokens)
    cfg: dict[str, Any] = {"mode": setup.surface, "models": [c.model for c in setup.configs],
                           "blind": setup.blind}
    if per_pane:
        cfg["panes"] = [{"temperature": c.params.temperature, "max_tokens": c.params.max_tokens}
                        for c in setup.configs]
    if setup.ids_text is not None:
        cfg["ids"] = setup.ids_text
    return share.ShareState(
        page="compare", model=setup.configs[0].model if setup.configs else None, params=params,
        prompt=setup.prompt if setup.ids_text is None and setup.prompt else None,
        messages=[{"role": "system", "content": setup.system}] if setup.system else [],
        grammar=setup.grammar or None, compare=cfg)


def _number(value: Any, lo: float, hi: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi


def apply_shared(state: share.ShareState, catalog: Catalog) -> list[str]:
    """Load a shared setup into the controls (before they are drawn); what was skipped."""
    ss, skipped = st.session_state, []
    cfg = state.compare or {}
    mode: Surface = "completions" if cfg.get("mode") == "completions" else "chat"
    ss["cmp_mode"] = mode
    options = _options(catalog, mode)
    wanted = [m for m in (cfg.get("models") or [state.model]) if isinstance(m, str)][:4]
    models = [m for m in wanted if m in options]
    skipped += [f"model {m} (not on this endpoint)" for m in wanted if m not in options]
    ss["cmp_n"] = min(4, max(2, len(wanted)))
    for i, m in enumerate(models):
        ss[f"cmp_model_{i}"] = m
    for name, value in state.params.items():
        if name in _RANGES and _number(value, *_RANGES[name][1:]):
            ss[_RANGES[name][0]] = int(value) if name in ("max_tokens", "seed") else float(value)
        else:
            skipped.append(name)
    panes = cfg.get("panes")
    ss["cmp_perpane"] = isinstance(panes, list) and bool(panes)
    for i, pane in enumerate(panes if isinstance(panes, list) else []):
        pane = pane if isinstance(pane, dict) else {}
        if _number(pane.get("temperature"), 0.0, 2.0):
            ss[f"cmp_temp_{i}"] = float(pane["temperature"])
        if _number(pane.get("max_tokens"), 1, 32_768):
            ss[f"cmp_max_{i}"] = int(pane["max_tokens"])
    ss["cmp_blind"] = cfg.get("blind") is True
    ss["cmp_prompt"] = state.prompt or ""
    ss["cmp_system"] = next((m["content"] for m in state.messages if m["role"] == "system"), "")
    ss["cmp_grammar"] = state.grammar or ""
    ids = cfg.get("ids")
    ss["cmp_prompt_kind"] = "ids" if mode == "completions" and isinstance(ids, str) else "text"
    if isinstance(ids, str):
        ss["cmp_ids"] = ids
    return skipped


def controls(catalog: Catalog, *, presenting: bool) -> Setup | None:
    ss = st.session_state
    ss.setdefault("cmp_mode", "chat")
    top = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    surface: Surface = top[0].segmented_control(
        "Request", list(MODE_LABELS.keys()), format_func=MODE_LABELS.__getitem__,
        key="cmp_mode",
        required=True, persist_state=PERSIST,
        help="Chat sends messages; token-ID completion sends the prompt as token ids "
             "(tokenized per model, since each model has its own vocabulary).") or "chat"
    ss.setdefault("cmp_n", 2)
    n = int(top[1].segmented_control("Panes", [2, 3, 4], key="cmp_n", required=True,
                                     persist_state=PERSIST) or 2)
    top[2].toggle("Blind", key="cmp_blind", persist_state=PERSIST,
                  help="Hide model names (and shuffle the panes) until you pick a favourite; "
                       "the vote is saved.")
    top[3].toggle("Per-pane parameters", key="cmp_perpane", persist_state=PERSIST)
    options = _options(catalog, surface)
    if not options:
        st.warning(f"No model on this endpoint supports {MODE_LABELS[surface].lower()}.")
        return None
    if surface == "chat" and len(options) < len(catalog.models):
        st.caption(f"{len(catalog.models) - len(options)} model(s) without a chat template "
                   "are only offered for token-ID completion.")
    per_pane = bool(ss.get("cmp_perpane"))
    by_id = {m.id: m for m in catalog.models}

    def label_of(model_id: str) -> str:  # display name, $ in / out per 1M, context
        m = by_id.get(model_id)
        return option_label(m) if m is not None else model_id

    def out_limit(model_id: str) -> int:  # the card's max_output_tokens bounds max_tokens
        m = by_id.get(model_id)
        return min(32_768, (m.max_output_tokens or m.context_length or 32_768) if m else 32_768)

    ss.setdefault("cmp_temp", 0.7)
    ss.setdefault("cmp_top_p", 1.0)
    ss.setdefault("cmp_max", 128)
    caps = presentation.caps() if presenting else None
    max_cap = caps.max_tokens if caps is not None else None
    cols = st.columns(n)
    configs: list[PaneConfig] = []
    for i, col in enumerate(cols):
        key = f"cmp_model_{i}"
        _fix(key, options, options[i % len(options)])
        ss.setdefault(f"cmp_temp_{i}", float(ss["cmp_temp"]))
        ss.setdefault(f"cmp_max_{i}", int(ss["cmp_max"]))
        with col:
            model = st.selectbox(f"Pane {i + 1}", options, key=key, persist_state=PERSIST,
                                 format_func=label_of)
            if per_pane:
                temp = st.slider("temperature", 0.0, 2.0, step=0.05, key=f"cmp_temp_{i}",
                                 persist_state=PERSIST)
                limit = out_limit(str(model))
                if int(ss[f"cmp_max_{i}"]) > limit:
                    ss[f"cmp_max_{i}"] = limit
                mx = st.number_input("max_tokens", 1, limit, step=16, key=f"cmp_max_{i}",
                                     persist_state=PERSIST,
                                     help=f"This model produces at most {limit:,} tokens.")
        if not per_pane:
            # widget keys already hold this run's values before the widgets are drawn
            temp, mx = float(ss["cmp_temp"]), int(ss["cmp_max"])
        configs.append(PaneConfig(str(model), Params(
            temperature=float(temp), top_p=float(ss["cmp_top_p"]), max_tokens=int(mx),
            seed=ss.get("cmp_seed"))))
    shared = st.columns(4)
    if not per_pane:
        # the smallest max_output_tokens among the panes' cards bounds the shared value
        limit = min(out_limit(c.model) for c in configs)
        if int(ss["cmp_max"]) > limit:
            ss["cmp_max"] = limit
            configs = [replace(c, params=replace(c.params, max_tokens=limit)) for c in configs]
        shared[0].slider("temperature", 0.0, 2.0, step=0.05, key="cmp_temp",
                         persist_state=PERSIST)
        shared[1].number_input("max_tokens", 1, limit, step=16, key="cmp_max",
                               persist_state=PERSIST,
                               help=(f"Presentation limit: {max_cap}. " if max_cap else "")
                               + f"The panes' models produce at most {limit:,} tokens.")
    shared[2].slider("top_p", 0.0, 1.0, step=0.05, key="cmp_top_p", persist_state=PERSIST)
    shared[3].number_input("seed", 0, 2**31 - 1, value=None, key="cmp_seed",
                           persist_state=PERSIST, placeholder="random")
    system = ""
    ids_text: str | None = None
    grammar = ""
    attachments: tuple[media_attach.Picked, ...] = ()
    if surface == "chat":
        system = st.text_input("System prompt (optional)", key="cmp_system",
                               persist_state=PERSIST)
        prompt = st.text_area("Prompt", key="cmp_prompt", height=110, persist_state=PERSIST,
                              placeholder="Ask every model the same thing…")
        files = st.file_uploader("Attach images, documents or video (vision models only, "
                                 "≤ 50 MB each)", accept_multiple_files=True, key="cmp_media")
        media_attach.settings("cmp")
        attachments = tuple(media_attach.split_input(_Files(files or []))[1]
                            + media_attach.picked_urls("cmp"))
    else:
        ss.setdefault("cmp_prompt_kind", "text")
        kind = st.segmented_control(
            "Prompt as", ["text", "ids"], key="cmp_prompt_kind", required=True,
            persist_state=PERSIST,
            format_func={"text": "Text (tokenized per model)", "ids": "Token ids"}.__getitem__)
        if kind == "ids":
            ids_text = st.text_area("Token ids (the same ids go to every pane)", key="cmp_ids",
                                    height=90, persist_state=PERSIST,
                                    placeholder="2, 651, 6037, …")
            prompt = ids_text or ""
        else:
            prompt = st.text_area("Prompt text", key="cmp_prompt", height=110,
                                  persist_state=PERSIST,
                                  placeholder="Text to continue; each pane tokenizes it "
                                              "with its model's tokenizer")
        grammar = st.text_area("EBNF grammar (optional; sent as `ebnf`, output is checked "
                               "against it)", key="cmp_grammar", height=90,
                               persist_state=PERSIST, placeholder='root ::= "yes" | "no"')
    st.number_input("Cost cap per request, $ (worst case, checked before sending)",
                    min_value=0.0, value=None, step=0.001, format="%.4f", key="cmp_cap",
                    persist_state=PERSIST, placeholder="no cap",
                    help="Blocks the run if any pane's worst case (whole prompt uncached + "
                         "all max_tokens generated) could cost more.")
    raw_cap = ss.get("cmp_cap")
    cap = Decimal(str(raw_cap)) if raw_cap is not None else None
    return Setup(surface, configs, prompt or "", system or "", ids_text, grammar or "",
                 bool(ss.get("cmp_blind")), cap, attachments)


def _encoder(client: WaferClient, catalog: Catalog) -> Callable[[str], Encoder]:
    def for_model(model_id: str) -> Encoder:
        m = catalog.get(model_id)
        tok = tokenizer_for(model_id, local=bool(m and m.local is not None), client=client)

        def encode(text: str) -> tuple[list[int], tuple[str, ...]]:
            pieces = tok.encode(text, add_special=True)
            return [p.id for p in pieces], tuple(p.text for p in pieces)
        return encode
    return for_model


def start(setup: Setup, client: WaferClient, catalog: Catalog, *, base_url: str,
          scenario: str | None = None) -> CompareSession | None:
    """Validate, guard and start a run; draws the reason and returns None if it cannot."""
    if not setup.prompt.strip():
        st.error("Enter a prompt first.", icon=":material/edit:")
        return None
    ids: list[int] | None = None
    if setup.ids_text is not None:
        try:
            ids = parse_ids(setup.ids_text)
        except IdParseError as exc:
            st.error(str(exc))
            return None
        if not ids:
            st.error("Enter at least one token id.")
            return None
    if setup.grammar.strip():
        report = grammar_mod.check(setup.grammar)
        if not report.ok:
            st.error("The grammar is not valid EBNF: " +
                     "; ".join(i.message for i in report.issues[:3]))
            return None
    entries: list[dict[str, Any]] = []
    if setup.attachments:
        # checked for every pane's model before anything is uploaded or sent
        for cfg in setup.configs:
            m = catalog.get(cfg.model)
            problem = media_attach.check(list(setup.attachments), vision=m.vision if m else None,
                                         model_name=m.display_name if m else cfg.model)
            if problem:
                st.error(f"Not sent: {problem}", icon=":material/hide_image:")
                return None
        entries, problem = media_attach.prepare(list(setup.attachments), client, "cmp")
        if problem:
            st.error(f"Not sent: {problem}", icon=":material/hide_image:")
            return None
    order = random.sample(range(len(setup.configs)), len(setup.configs)) if setup.blind else None
    try:
        with st.spinner("Tokenizing the prompt for each model…") if (
                setup.surface == "completions" and ids is None) else contextlib.nullcontext():
            specs = build_specs(setup.configs, setup.surface, prompt=setup.prompt,
                                system=setup.system, ebnf=setup.grammar, ids=ids,
                                encode=_encoder(client, catalog), blind=setup.blind,
                                order=order, parts=wmedia.parts_for(entries))
    except TokenizerUnavailable as exc:
        st.error(f"Cannot tokenize the prompt: {md_text(exc, TEXT_LIMIT)}. Switch “Prompt as” "
                 "to token ids.")
        return None
    except WaferError as exc:
        show_error(exc, where="tokenizing the prompt")
        return None
    # the same checks the Chat and Token pages make before they send (issue 15)
    invalid = [p for spec in specs for p in problems_of(spec, catalog.get(spec.model))]
    if invalid:
        st.error("Not sent: fix these first.\n\n" + "\n".join(
            f"- {md_text(p, TEXT_LIMIT)}" for p in invalid), icon=":material/error:")
        return None
    problems = preflight(specs, _pricing_for(catalog), cap=setup.cap,
                         caps=presentation.caps())
    if problems:
        st.error("\n\n".join(problems), icon=":material/block:")
        return None
    prompt_text = setup.prompt if setup.surface == "chat" or ids is None else \
        f"token ids: {setup.ids_text}"
    notes: list[str] = []
    try:
        store: Store | None = get_store()
    except Exception as exc:  # noqa: BLE001 - a broken DB must not hide the comparison
        store, notes = None, [f"Not saved to the request log: {type(exc).__name__}."]
    # each pane is logged as "streaming" when sent, and finalised when it ends (runs.py)
    group = uuid.uuid4().hex[:12]  # History groups a comparison's panes by it
    run = CompareRun(client, specs, pricing_for=_pricing_for(catalog),
                     log_for=lambda spec: RequestLog(
                         store, base_url=base_url, problems=notes, keep_output=KEEP_OUTPUT,
                         meta={"compare_run": group, "label": spec.label,
                               "blind": setup.blind}))
    sess = CompareSession(run, specs, prompt_text, setup.blind, base_url, scenario,
                          media=entries, notes=notes)
    sess.run.start()
    return sess


def finalize(sess: CompareSession, catalog: Catalog) -> None:
    """Turn the final snapshots into results once (the run path logged each pane)."""
    pricing = _pricing_for(catalog)
    snaps = sess.run.snapshot()
    sc = get_scenario(sess.scenario) if sess.scenario else None
    verdicts: list[Verdict | None] = []
    passed: list[bool | None] = []
    results: list[PaneResult] = []
    for snap in snaps:
        verdict = None
        if snap.spec.grammar and snap.status == "done":
            verdict = verify_output(snap.spec.grammar, snap.content)
        verdicts.append(verdict)
        ok = verdict.ok if verdict else None
        passed.append(passes(sc, snap.content, ok) if sc and snap.status == "done" else None)
        results.append(pane_result(snap, pricing(snap.spec.model), grammar_ok=ok,
                                   prompt_estimate=prompt_estimate(snap.spec)))
    sess.snaps, sess.verdicts, sess.passed, sess.results = snaps, verdicts, passed, results


def _subtitle(spec: PaneSpec, *, hidden: bool) -> str:
    b = spec.body
    parts = [] if hidden else [MODE_LABELS[spec.surface]]
    parts.append(f"T={b.get('temperature')}")
    parts.append(f"max {b.get('max_tokens')}")
    if b.get("seed") is not None:
        parts.append(f"seed {b['seed']}")
    if spec.grammar:
        parts.append("grammar")
    return " · ".join(parts)


def show(sess: CompareSession, catalog: Catalog, *, presenting: bool) -> None:
    """Draw a comparison: live while it runs (polling the workers), then the results."""
    pricing = _pricing_for(catalog)
    media_attach.show(sess.media, key="cmp_sent")
    ticker_slot = st.empty()
    stop_slot = st.empty()
    labels = sess.labels()
    cols = st.columns(len(sess.specs))
    views = []
    for i, (col, spec) in enumerate(zip(cols, sess.specs, strict=True)):
        with col:
            # a tokenizer's pieces (a <bos>, a split) can identify the model: not while blind
            views.append(PaneView(labels[i], _subtitle(spec, hidden=sess.hidden),
                                  surface=spec.surface,
                                  pieces=() if sess.hidden else spec.prompt_pieces,
                                  key=str(i), blind=sess.hidden))
    if sess.results is None:
        if not sess.run.done:
            stop_slot.button("Stop", key="cmp_stop", icon=":material/stop_circle:")
            try:
                stream_panes(sess.run, views,
                             pricing=lambda i: pricing(sess.specs[i].model),
                             prompt_estimate=lambda i: prompt_estimate(sess.specs[i]),
                             ticker_slot=ticker_slot)
            finally:
                # Stop / rerun lands here as an exception: only plain Python from now on
                if not sess.run.done:
                    sess.run.cancel()
            stop_slot.empty()
        finalize(sess, catalog)
    assert sess.snaps is not None and sess.results is not None
    costs = []
    for i, (view, snap) in enumerate(zip(views, sess.snaps, strict=True)):
        verdict = sess.verdicts[i] if i < len(sess.verdicts) else None
        cost = pane_cost(snap, pricing(snap.spec.model),
                         prompt_estimate=prompt_estimate(snap.spec))
        costs.append(cost)
        view.update(snap, cost, final=True,
                    grammar=None if verdict is None else ("ok" if verdict.ok else "bad"),
                    passed=sess.passed[i] if i < len(sess.passed) else None,
                    grammar_detail="" if verdict is None or verdict.ok else
                    f"grammar: {verdict.summary}",
                    show_request_id=not sess.hidden,  # an id could hint at the model
                    show_raw=not sess.hidden and not presenting)
    draw_ticker(ticker_slot, sess.snaps, costs, live=False,
                elapsed_s=final_elapsed(sess.snaps))
    for note in sess.notes:
        st.caption(note)
    results = with_labels(sess.results, labels, hide_models=sess.hidden)
    summary = summarize(results)
    _scenario_banner(sess, summary)
    if sess.hidden:
        choice = vote_buttons(labels, key="cmp_vote")
        if choice is not None:
            _vote(sess, choice)
            st.rerun()
    elif sess.blind:
        _reveal_banner(sess)
    st.subheader("Summary")
    summary_table(summary, blind=sess.hidden)
    if sess.hidden:
        st.caption("Cost, tokens, the exports and the charts appear after your vote: they "
                   "would give the models away.")
        return
    exports(summary, title=f"Compare: {sess.prompt[:60]}", key="cmp_export")
    charts(summary, sess.snaps, key="cmp_chart")


def _vote(sess: CompareSession, choice: str) -> None:
    labels = [s.label for s in sess.specs]
    winner = sess.specs[labels.index(choice)].model if choice else None
    try:
        get_store().record_vote(
            sess.prompt, [s.model for s in sess.specs], winner, blind=True,
            meta={"labels": labels, "winner_label": choice or None,
                  "surface": sess.specs[0].surface,
                  "params": [{k: s.body.get(k) for k in ("temperature", "max_tokens", "top_p")}
                             for s in sess.specs]})
    except Exception as exc:  # noqa: BLE001 - reveal anyway; say the vote was not kept
        sess.notes.append(f"The vote could not be saved ({type(exc).__name__}).")
    sess.revealed = True
    sess.winner = choice


def _reveal_banner(sess: CompareSession) -> None:
    mapping = ", ".join(f"**{md_text(s.label)}** = {md_text(s.model)}" for s in sess.specs)
    if sess.winner:
        st.success(f"You picked **{sess.winner}**. Revealed: {mapping}. Vote saved.",
                   icon=":material/how_to_vote:")
    else:
        st.info(f"No preference recorded. Revealed: {mapping}.", icon=":material/how_to_vote:")


def _scenario_banner(sess: CompareSession, summary: Summary) -> None:
    sc = get_scenario(sess.scenario) if sess.scenario else None
    if sc is None:
        return
    results = summary.results
    if sc.id == "cheapest":
        idx = cheapest_passing(results, sess.passed)
        if idx is None:
            st.warning("No model answered correctly this time.", icon=":material/help:")
        else:
            r = results[idx]
            st.success(f"Cheapest model that answered correctly: **{md_text(r.label)}** "
                       f"({format_usd(r.cost_usd)}, first token in {_secs(r.ttft_s)}).",
                       icon=":material/savings:")
    elif sc.id == "json":
        ok = sum(1 for v in sess.verdicts if v is not None and v.ok)
        total = sum(1 for v in sess.verdicts if v is not None)
        if total and ok == total:
            st.success(f"{ok} of {total} outputs match the grammar: valid JSON by "
                       "construction.", icon=":material/data_object:")
        else:
            st.warning(f"{ok} of {total} finished outputs match the grammar.",
                       icon=":material/data_object:")
    elif sc.id == "speed":
        done = [r for r in results if r.status == "done"]
        fast = min((r for r in done if r.ttft_s is not None), key=lambda r: r.ttft_s or 0.0,
                   default=None)
        cheap = min((r for r in done if r.cost_usd is not None),
                    key=lambda r: r.cost_usd or Decimal(0), default=None)
        if fast is not None and cheap is not None:
            st.success(f"Fastest first token: **{md_text(fast.label)}** ({_secs(fast.ttft_s)}) · "
                       f"cheapest answer: **{md_text(cheap.label)}** "
                       f"({format_usd(cheap.cost_usd)}).", icon=":material/speed:")
    elif sc.id == "xray":
        counts = ", ".join(f"**{md_text(r.label)}**: {r.prompt_tokens} tokens" for r in results)
        st.info(f"The same sentence costs a different number of tokens per model — {counts}.",
                icon=":material/biotech:")


def render_page(conn: Connection, catalog: Catalog, *, presenting: bool) -> None:
    client = get_client(conn)
    ready = [card_readiness(sc, catalog) for sc in SCENARIOS]
    if presenting:
        clicked = scenario_cards(SCENARIOS, ready, key="scn")
    else:
        with st.expander("Demo scenarios (one click each)", icon=":material/slideshow:"):
            clicked = scenario_cards(SCENARIOS, ready, key="scn")
    clicked = clicked or presentation.demo_scenario()  # the scripted demo's compare step
    incoming = shared_state("compare")
    if incoming is not None:
        skipped = apply_shared(incoming, catalog)
        if skipped:
            st.caption("Some shared settings were not applied: " + ", ".join(skipped))
    sc = get_scenario(clicked) if clicked else None
    card = card_readiness(sc, catalog) if sc is not None else None
    if sc is not None and card is not None and not card.ready:
        st.warning(f"“{sc.title}” is not ready here: {md_text(card.reason, 300)}.")
        sc = card = None
    box = st.expander("Custom comparison", icon=":material/tune:", expanded=False) \
        if presenting else st.container()
    with box:
        setup = controls(catalog, presenting=presenting)
        with st.container(horizontal=True, vertical_alignment="center"):
            run_clicked = st.button("Run comparison", type="primary",
                                    icon=":material/play_arrow:", key="cmp_run",
                                    disabled=setup is None)
            if setup is not None and not presenting:
                share_panel(share_state(setup), key="cmp_share")
    if sc is not None and card is not None:
        run: Setup | None = scenario_setup(sc, card)
    else:
        run = setup if run_clicked else None
    if run is not None:
        sess = start(run, client, catalog, base_url=conn.base_url,
                     scenario=sc.id if sc else None)
        if sess is not None:
            old = st.session_state.get(SESSION_KEY)
            if old is not None and not old.run.done:
                old.run.cancel()
            st.session_state[SESSION_KEY] = sess
    sess = st.session_state.get(SESSION_KEY)
    if sess is not None:
        st.divider()
        show(sess, catalog, presenting=presenting)


__all__ = [
    "CompareSession",
    "PaneView",
    "card_readiness",
    "controls",
    "render_page",
    "show",
    "start",
    "charts",
    "draw_ticker",
    "exports",
    "final_elapsed",
    "pane_badges",
    "scenario_cards",
    "scenario_setup",
    "stream_panes",
    "summary_table",
    "vote_buttons",
]
