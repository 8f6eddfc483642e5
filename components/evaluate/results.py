"""Evaluate's results: the summary, the pass-rate/cost chart, the rows × models grid with
each cell's request and response, flakiness, exports, the blind A/B vote and the diff of two
runs. Draws only; the numbers come from wafer_playground/eval_stats.py."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from components import presentation
from components.history import get_store, share_panel
from components.untrusted import md_text
from wafer_playground import eval_stats as stats
from wafer_playground import share
from wafer_playground.costs import format_usd
from wafer_playground.evals import EvalSetup, TestSetError
from wafer_playground.store.evals import EvalCell, EvalRun, EvalStore
from wafer_playground.untrusted import TEXT_LIMIT, clean

K = "ev_"  # the Evaluate page's session-state prefix (components/evaluate/page.py)


def _estore() -> EvalStore:
    return EvalStore(get_store())


def share_state(setup: EvalSetup) -> share.ShareState:
    """The setup only: template, rows, models, checks. Never outputs, never a key."""
    d = setup.to_json()
    d.pop("template_version", None)
    return share.ShareState(page="evaluate", evaluate=d)


# --------------------------------------------------------------------------- results


def _mark(c: EvalCell) -> str:
    """Words, not emoji: headless Chromium and many servers lack an emoji font."""
    if c.status not in ("done", "error"):
        return "…"
    if c.status == "error":
        return "error"
    return "—" if c.passed is None else ("✓ pass" if c.passed else "✗ fail")


def grid_frame(setup: EvalSetup, cells: list[EvalCell]) -> pd.DataFrame:
    """Rows × models: the verdict(s) and the (first repeat's) answer, cost, TTFT, tok/s."""
    first_var = setup.tests.variables[0] if setup.tests.variables else None
    by_key: dict[tuple[int, str], list[EvalCell]] = {}
    for c in cells:  # one pass: the grid is redrawn while a run of 1,000s of cells goes on
        by_key.setdefault((c.row, c.model), []).append(c)
    out = []
    for row in setup.tests.rows:
        rec: dict[str, Any] = {"row": row.index + 1}
        if first_var:
            rec[first_var] = clean(row.values.get(first_var, ""), 60)
        for m in setup.models:
            mine = by_key.get((row.index, m), [])
            first = mine[0] if mine else None
            rec[f"{m} ✓"] = " ".join(_mark(c) for c in mine)
            rec[f"{m} answer"] = clean(first.output, 80) if first else ""
            rec[f"{m} $"] = (format_usd(first.cost_usd) if first and first.cost_usd is not None
                             else "")
            rec[f"{m} TTFT"] = (f"{first.ttft_s:.2f} s" if first and first.ttft_s is not None
                                else "")
            rec[f"{m} tok/s"] = (f"{first.tokens_per_s:.0f}" if first and
                                 first.tokens_per_s is not None else "")
        out.append(rec)
    return pd.DataFrame(out)


def _cells_frame(cells: list[EvalCell]) -> pd.DataFrame:
    return pd.DataFrame([{"row": c.row + 1, "model": c.model, "repeat": c.repeat + 1,
                          "result": _mark(c), "answer": clean(c.output, 120),
                          "why": clean("; ".join(c.reasons) or (c.error or ""), 160),
                          "cost": format_usd(c.cost_usd) if c.cost_usd is not None else ""}
                         for c in cells])


def _inspect(cell: EvalCell) -> None:
    """A cell's request and response, from the request log."""
    rec = get_store().get_request(cell.request_row_id) if cell.request_row_id else None
    st.markdown(f"**Row {cell.row + 1} · {md_text(cell.model)} · repeat {cell.repeat + 1}** "
                f"{_mark(cell)}")
    if cell.reasons:
        st.caption(md_text("; ".join(cell.reasons), TEXT_LIMIT))
    c = st.columns(2)
    with c[0]:
        st.caption("Request (as logged)")
        st.json(rec.params if rec else {}, expanded=False)
    with c[1]:
        st.caption("Response")
        st.code(cell.output[:TEXT_LIMIT] or (cell.error or ""), language=None,
                wrap_lines=True)
        if rec is not None:
            st.json({"status": rec.status, "http_status": rec.http_status,
                     "request_id": rec.request_id, "prompt_tokens": rec.prompt_tokens,
                     "completion_tokens": rec.completion_tokens,
                     "cost_usd": None if rec.cost_usd is None else format(rec.cost_usd, "f"),
                     "ttft_s": rec.ttft_s, "tokens_per_s": rec.tokens_per_s,
                     "duration_s": rec.duration_s, "response": rec.response}, expanded=False)


def results(run: EvalRun, *, presenting: bool) -> None:
    try:
        setup = EvalSetup.from_json(run.setup)
    except TestSetError as exc:
        st.error(f"This run's setup cannot be read: {md_text(exc, TEXT_LIMIT)}")
        return
    cells = _estore().cells(run.id)
    sums = stats.summarize(cells, list(setup.models))
    st.subheader("Summary per model")
    st.dataframe(pd.DataFrame(stats.summary_rows(sums)), hide_index=True, width="stretch",
                 key=K + "summary")
    fig = presentation.style_figure(stats.pass_cost_figure(sums))
    st.plotly_chart(fig, key=K + "chart", width="stretch")
    if presenting:
        return
    st.subheader("Results: rows × models")
    st.dataframe(grid_frame(setup, cells), hide_index=True, width="stretch", key=K + "grid")
    st.caption("Select a cell below to open its request and response.")
    picked = st.dataframe(_cells_frame(cells), hide_index=True, width="stretch",
                          key=K + "cells", on_select="rerun", selection_mode="single-row",
                          height=240)
    sel = picked.selection.rows if picked is not None else []
    if sel:
        _inspect(cells[sel[0]])
    if setup.repeats > 1:
        flaky = [f for f in stats.flakiness(cells) if f.flaky]
        st.subheader("Flaky rows")
        if flaky:
            st.dataframe(pd.DataFrame([{"row": f.row + 1, "model": f.model,
                                        "passed": f"{f.passes}/{f.runs}"} for f in flaky]),
                         hide_index=True, key=K + "flaky")
        else:
            st.caption("No row changed its verdict across repeats.")
    _exports(setup, run, cells, sums)
    _pairwise(setup, run, cells)


def _exports(setup: EvalSetup, run: EvalRun, cells: list[EvalCell],
             sums: list[stats.ModelSummary]) -> None:
    rows = {r.index: r.values for r in setup.tests.rows}
    c = st.columns([1, 1, 1, 3])
    c[0].download_button("CSV", stats.cells_csv(cells, lambda i: rows.get(i, {}),
                                               list(setup.tests.variables)),
                         file_name="evaluation.csv", mime="text/csv", key=K + "csv",
                         icon=":material/download:")
    c[1].download_button("JSON", stats.run_json(run.setup, cells, sums),
                         file_name="evaluation.json", mime="application/json",
                         key=K + "json", icon=":material/download:")
    with c[2]:
        share_panel(share_state(setup), key=K + "share")


def _pairwise(setup: EvalSetup, run: EvalRun, cells: list[EvalCell]) -> None:
    """A blind A/B vote on one row's answers from two models (feeds the leaderboard)."""
    if len(setup.models) < 2:
        return
    by_row: dict[int, list[EvalCell]] = {}
    for c in cells:
        if c.repeat == 0 and c.status == "done":
            by_row.setdefault(c.row, []).append(c)
    pairs = [(i, cs) for i, cs in sorted(by_row.items()) if len(cs) >= 2]
    if not pairs:
        return
    with st.expander("Blind vote on answers (feeds the leaderboard)",
                     icon=":material/how_to_vote:"):
        n = st.session_state.get(K + "vote_i", 0) % len(pairs)
        row, cs = pairs[n]
        a, b = cs[0], cs[1]
        if (row + n) % 2:
            a, b = b, a
        st.caption(md_text(setup.prompt_for(setup.tests.rows[row]), 300))
        cols = st.columns(2)
        for col, label, c in ((cols[0], "A", a), (cols[1], "B", b)):
            col.markdown(f"**{label}**")
            col.code(c.output[:2000], language=None, wrap_lines=True)
        v = st.columns(3)
        for col, label, winner in ((v[0], "A is better", a.model), (v[1], "B is better",
                                   b.model), (v[2], "Tie", None)):
            if col.button(label, key=K + f"vote_{label}"):
                get_store().record_vote(setup.prompt_for(setup.tests.rows[row]),
                                     [a.model, b.model], winner, blind=True,
                                     meta={"template": setup.template_name,
                                           "evaluation": run.id, "row": row})
                st.session_state[K + "vote_i"] = n + 1
                st.toast("Vote saved.")
                st.rerun()


def diff_view(runs: list[EvalRun]) -> None:
    if len(runs) < 2:
        st.caption("Run at least twice (for example two versions of a template) to compare.")
        return
    labels = {r.id: f"{clean(r.name, 50) or 'run'} · {r.ts[:16].replace('T', ' ')}"
              for r in runs}
    c = st.columns(2)
    a = c[0].selectbox("Run A", list(labels), index=1, format_func=labels.__getitem__,
                       key=K + "diff_a")
    b = c[1].selectbox("Run B", list(labels), index=0, format_func=labels.__getitem__,
                       key=K + "diff_b")
    es = _estore()
    flips = stats.diff(es.cells(str(a)), es.cells(str(b)))
    if not flips:
        st.success("No row flipped between A and B.", icon=":material/check:")
        return
    frame = pd.DataFrame([{"row": f.row + 1, "model": f.model,
                           "A": "✓ pass" if f.before else "✗ fail",
                           "B": "✓ pass" if f.after else "✗ fail",
                           "change": "fixed" if f.after else "broke"} for f in flips])
    st.dataframe(frame.style.apply(
        lambda r: ["background-color: #fde2e1" if r["change"] == "broke"
                   else "background-color: #e0f5e6"] * len(r), axis=1),
        hide_index=True, key=K + "diff")


__all__ = ["diff_view", "grid_frame", "results", "share_state"]
