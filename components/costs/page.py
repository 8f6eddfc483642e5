"""The Costs page: workload planner, reprice real usage, account usage.

Draws only; every number comes from `wafer_playground.costs` / `wafer_playground.usage`.
Prices come from `connection.load_models` (keyed by endpoint + key fingerprint, so switching
endpoint never keeps another endpoint's live prices) plus the dated snapshot, each labelled.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from components import connection, presentation
from components.costs import charts
from wafer_playground.catalog import Model, load_snapshot
from wafer_playground.costs import (
    DAYS_PER_MONTH,
    PASS_EXPLAINER,
    PlanRow,
    Scenario,
    describe_sources,
    format_usd,
    models_for_pricing,
    months_frame,
    plan,
    plan_frame,
)
from wafer_playground.untrusted import TEXT_LIMIT, frame_csv, md_text
from wafer_playground.usage import parse_usage_file, token_means

# widget key -> (Scenario field, cast)
_KEYS: dict[str, tuple[str, type]] = {
    "costs_rpd": ("requests_per_day", int),
    "costs_mode": ("token_mode", str),
    "costs_in": ("input_tokens", int),
    "costs_out": ("output_tokens", int),
    "costs_in90": ("input_p90", int),
    "costs_out90": ("output_p90", int),
    "costs_hit": ("cache_hit_pct", float),
    "costs_turns": ("turns", int),
    "costs_hcache": ("history_cached", bool),
    "costs_retry": ("retry_pct", float),
    "costs_growth": ("growth_pct", float),
    "costs_budget": ("budget_month", float),
}
_DURABLE = "_costs_scenario"  # survives page switches (widget keys do not)
MODE_LABELS = {"fixed": "Fixed per request", "p50p90": "p50 / p90 (log-normal)"}


def pricing_models() -> tuple[list[Model], dict[str, str], str]:
    """(models, availability label per id, one-line price provenance) for this connection."""
    conn = connection.current()
    listing = connection.load_models(conn)
    snapshot = load_snapshot().models
    live = listing.catalog.models if listing.live and listing.error is None else []
    models, where = models_for_pricing(live, snapshot)
    note = "Prices: " + describe_sources(models) + "."
    if not live:
        why = listing.error.human() if listing.error else "the endpoint listed no models"
        note += f" No live prices from this endpoint ({why}): the bundled snapshot is used."
    return models, where, note


def _restore_scenario() -> list[str]:
    """Fill the widget keys once: from the link on first load, else from the durable copy."""
    if "costs_rpd" in st.session_state:
        return []
    problems: list[str] = []
    held = st.session_state.get(_DURABLE)
    if isinstance(held, Scenario):
        scenario = held
    else:
        scenario, problems = Scenario.from_params(st.query_params)
    for key, (name, cast) in _KEYS.items():
        st.session_state[key] = cast(getattr(scenario, name))
    return problems


def _scenario_from_widgets() -> Scenario:
    values = {name: st.session_state[key] for key, (name, _) in _KEYS.items()}
    return Scenario(**values)


def _use_file_means() -> None:
    """Uploader callback: a per-request token list sets the fixed input/output means."""
    upload = st.session_state.get("costs_token_file")
    if upload is None:
        return
    parsed = parse_usage_file(upload.getvalue(), upload.name)
    st.session_state["_costs_token_file_report"] = parsed
    means = token_means(parsed)
    if means is not None:
        st.session_state["costs_mode"] = "fixed"
        st.session_state["costs_in"] = round(means[0])
        st.session_state["costs_out"] = round(means[1])
        st.session_state["costs_hit"] = round(means[2], 1)


def _inputs() -> None:
    st.markdown("##### Workload")
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Requests per day", min_value=0, step=100, key="costs_rpd",
                    help="API requests (each turn of a conversation is one request).")
    c2.radio("Tokens per request", list(MODE_LABELS), format_func=MODE_LABELS.__getitem__,
             key="costs_mode",
             help="With p50/p90 the cost uses the log-normal MEAN, which sits above the median.")
    p50 = st.session_state["costs_mode"] == "p50p90"
    c3.number_input("Input tokens" + (" p50" if p50 else ""), min_value=0, step=100,
                    key="costs_in", help="New input per request (prompt, system, documents).")
    c4.number_input("Output tokens" + (" p50" if p50 else ""), min_value=0, step=50,
                    key="costs_out", help="Completion tokens, reasoning included.")
    if p50:
        _, _, c7, c8 = st.columns(4)
        c7.number_input("Input tokens p90", min_value=0, step=100, key="costs_in90")
        c8.number_input("Output tokens p90", min_value=0, step=50, key="costs_out90")
    d1, d2, d3, d4, d5, d6 = st.columns(6, vertical_alignment="bottom")
    d1.number_input("Cache hit %", min_value=0.0, max_value=100.0, step=5.0, key="costs_hit",
                    help="Share of input tokens read from the prefix cache (billed at the "
                         "cache-read price).")
    d2.number_input("Turns / conversation", min_value=1, max_value=1000, step=1,
                    key="costs_turns",
                    help="Multi-turn: each turn re-sends the whole history, so cost grows "
                         "quadratically with the number of turns.")
    d3.toggle("Cache history", key="costs_hcache",
              help="With automatic prefix caching the re-sent history is a cache read; off "
                   "prices it as new input.")
    d4.number_input("Retries %", min_value=0.0, max_value=1000.0, step=1.0, key="costs_retry",
                    help="Extra requests re-sent in full after failures; billed in full "
                         "(whether Wafer bills failed requests is not published).")
    d5.number_input("Growth %/month", min_value=-99.0, max_value=1000.0, step=5.0,
                    key="costs_growth")
    d6.number_input("Budget $/month", min_value=0.0, step=10.0, key="costs_budget",
                    help="0 = no cap. With a cap, each model shows how many requests a day "
                         "it affords.")
    with st.expander("Take the token means from a file (per-request counts)"):
        st.file_uploader("CSV or JSONL of per-request token counts", key="costs_token_file",
                         type=["csv", "jsonl", "json", "ndjson", "txt"],
                         on_change=_use_file_means)
        report = st.session_state.get("_costs_token_file_report")
        if report is not None:
            st.caption(f"{md_text(report.summary(), TEXT_LIMIT)}; input/output/cache-hit set "
                       "from its means.")
            if report.n_bad:
                st.dataframe(report.bad_frame(), hide_index=True, height=160)


SCOPE_KEY = "costs_snapshot_too"
SERVED = "listed by this endpoint"  # wafer_playground/costs.models_for_pricing's label


def _scope(models: list[Model], where: dict[str, str]) -> tuple[list[Model], bool]:
    """Only the models the endpoint serves, unless the toggle adds the snapshot-only ones.

    Returns (models to plan, whether the endpoint lists any). With nothing listed (down,
    provisioning) the labelled snapshot is all there is, and the headline says so.
    """
    served = [m for m in models if where.get(m.id) == SERVED]
    if not served:
        return models, False
    extra = len(models) - len(served)
    if extra:
        st.toggle(f"Include {extra} snapshot-only models", key=SCOPE_KEY,
                  help="Models of the bundled dated catalog that this endpoint does not "
                       "serve: marked 'snapshot only', never in the headline.")
    return (models if st.session_state.get(SCOPE_KEY) else served), True


def _headline(priced: pd.DataFrame, rows: list[PlanRow], scenario: Scenario, *,
              served_only: bool) -> None:
    """The answers, large: the cheapest model this endpoint serves, and what the budget buys."""
    if served_only:
        priced = priced[priced["listed"] == SERVED]
        where = "served here"
    else:
        where = "in the bundled snapshot (this endpoint lists no models)"
    with st.container(border=True, key="costs_headline"):
        if priced.empty:
            st.markdown(f"#### No priced model {where}: nothing to plan.")
            return
        best = priced.iloc[0]
        st.markdown(f"### Cheapest {where}: **{md_text(best['model'])}** · "
                    f"{best['per_month']} / month")
        if scenario.budget is not None and pd.notna(best["affordable_per_day"]):
            st.markdown(f"### {format_usd(scenario.budget)} / month buys "
                        f"**{int(best['affordable_per_day']):,} requests/day** on "
                        f"**{md_text(best['model'])}**")
        elif scenario.budget is not None and best["per_month_usd"] == 0:
            # a free model (the local engine) affords any number: say so, not "set a budget"
            st.markdown(f"### {format_usd(scenario.budget)} / month: "
                        f"**{md_text(best['model'])}** has no per-token charge, so the budget "
                        "is not the limit")
        else:
            st.caption("Set *Budget $/month* above to see how many requests a day it buys.")
        m2, m3 = st.columns(2)
        passes = priced[priced["pass_included"]]
        if not passes.empty:
            m2.metric(f"Cheapest covered by Wafer Pass: {md_text(passes.iloc[0]['model'])}",
                      f"{passes.iloc[0]['per_month']} / month",
                      help="At Serverless prices; on a Pass key it is covered within the "
                           "included requests.")
        row = next(r for r in rows if r.model.id == best["model"])
        year = sum((v for v in row.months if v is not None), Decimal(0))
        m3.metric("First 12 months with growth", format_usd(year),
                  help=f"{best['model']}, month by month with the growth rate above.")


def _plan_table(frame: pd.DataFrame, *, budget: bool, budget_usd: Decimal | None) -> None:
    """The plan as the interactive grid (sortable, scrollable)."""
    st.dataframe(
        frame, hide_index=True, key="costs_plan_table", placeholder="—",
        column_order=["rank", "model", "listed", "per_request", "per_month_usd",
                      *(["affordable_per_day"] if budget else []), "per_day_usd", "year_usd",
                      "tier", "context_length", "fits_context", "price_source", "notes"],
        column_config={
            "rank": st.column_config.NumberColumn("#", width="small"),
            "model": st.column_config.TextColumn("Model", width="medium", pinned=True),
            "listed": st.column_config.TextColumn(
                "Served here?", width=150,
                help="'listed by this endpoint', or 'snapshot only': a model of the bundled "
                     "dated catalog that the connected endpoint does not serve"),
            "tier": st.column_config.TextColumn("Pass / Serverless"),
            "per_request": st.column_config.TextColumn("$ / request"),
            "per_day_usd": st.column_config.NumberColumn("$ / day", format="$%,.2f"),
            "per_month_usd": st.column_config.NumberColumn("$ / month", format="$%,.2f"),
            "year_usd": st.column_config.NumberColumn("$ / 12 months", format="$%,.2f",
                                                      help="With monthly growth"),
            "affordable_per_day": st.column_config.NumberColumn(
                "Requests/day in budget", format="localized",
                help=f"How many requests a day {format_usd(budget_usd)} a month affords "
                     "(retries included)."),
            "context_length": st.column_config.NumberColumn("Context", format="compact"),
            "fits_context": st.column_config.CheckboxColumn(
                "Fits", help="The longest turn (history + input + output) fits the context"),
            "price_source": st.column_config.TextColumn("Price source"),
        })


def _share_link(scenario: Scenario) -> str:
    query = urlencode(scenario.to_params())
    base = st.context.url or ""
    return f"{base}?{query}" if base else f"?{query}"


def render_planner(models: list[Model], where: dict[str, str]) -> None:
    problems = _restore_scenario()
    demo = presentation.demo_budget()  # the scripted demo's costs step: a budget to answer
    if demo is not None and not st.session_state.get("costs_budget"):
        st.session_state["costs_budget"] = demo
    if problems:
        st.warning("Some values in the link were ignored: " + "; ".join(problems))
    head = st.container()  # the answers first (issue 16), computed from the inputs below
    _inputs()
    scenario = _scenario_from_widgets()
    st.session_state[_DURABLE] = scenario
    st.query_params.from_dict(scenario.to_params())  # the URL is the share link
    workload = scenario.workload()
    with head:
        models, served_only = _scope(models, where)
    rows = plan(workload, models, budget_month=scenario.budget)
    frame = plan_frame(rows)
    frame.insert(3, "listed", [where.get(m, "") for m in frame["model"]])

    unc, cac, out = workload.per_request()
    st.caption(
        f"Per request (mean): {float(unc):,.0f} uncached + {float(cac):,.0f} cached input, "
        f"{float(out):,.0f} output tokens; {float(workload.billed_per_day):,.0f} billed "
        f"requests a day with retries; a month is {DAYS_PER_MONTH} days. All figures are "
        "estimates.")
    priced = frame[frame["per_month_usd"].notna()]
    with head:
        _headline(priced, rows, scenario, served_only=served_only)
    unpriced = frame.loc[frame["per_month_usd"].isna(), "model"].tolist()
    if unpriced:
        st.caption("Not published (not priced, never counted as $0): "
                   + md_text(", ".join(unpriced), TEXT_LIMIT))

    budget = scenario.budget is not None
    if presentation.is_presenting():
        # HTML grows with the room's type (the data grid is a canvas drawn in px)
        room = frame.head(12)
        st.table(pd.DataFrame({
            "#": room["rank"].astype("string").fillna("–").tolist(),
            "Model": [md_text(m) for m in room["model"]],  # st.table cells are markdown
            "Served here?": room["listed"].tolist(),
            "$ / request": room["per_request"].tolist(),
            "$ / month": room["per_month"].tolist(),
            **({"Requests/day in budget": [f"{int(v):,}" if pd.notna(v) else "–"
                                           for v in room["affordable_per_day"]]}
               if budget else {}),
        }), hide_index=True)
    else:
        _plan_table(frame, budget=budget, budget_usd=scenario.budget)
    with st.expander("Pass vs Serverless"):
        st.markdown(PASS_EXPLAINER)
        st.caption("Rows marked 'Pass (covered by Wafer Pass)' cost nothing extra on a Pass key "
                   "within its included requests; the dollar figures are what the same traffic "
                   "costs on a pay-as-you-go Serverless key.")

    t1, t2, t3 = st.tabs(["$ / month by model", "Growth over 12 months", "Cost vs context"])
    big = presentation.style_figure  # larger chart type while presenting
    with t1:
        st.plotly_chart(big(charts.monthly_by_model(frame)), key="costs_fig_month")
    with t2:
        st.plotly_chart(big(charts.growth_over_months(months_frame(rows))),
                        key="costs_fig_growth")
    with t3:
        st.plotly_chart(big(charts.cost_vs_context(frame)), key="costs_fig_ctx")

    s1, s2 = st.columns([3, 1])
    with s1:
        st.caption("Share this scenario (the link holds the workload only, never a key):")
        st.code(_share_link(scenario), language=None, wrap_lines=True)
    with s2:
        export = frame.drop(columns=["per_request", "per_month"]).assign(
            **{f"scenario_{k}": v for k, v in scenario.to_params().items()})
        st.download_button("Download CSV", frame_csv(export).encode(),
                           file_name="wafer-cost-plan.csv", mime="text/csv",
                           key="costs_csv", icon=":material/download:")


def render_costs_page() -> None:
    st.title("Costs")
    models, where, note = pricing_models()
    st.caption(note)
    plan_tab, reprice_tab, account_tab = st.tabs(["Planner", "Reprice usage", "Account usage"])
    with plan_tab:
        render_planner(models, where)
    with reprice_tab:
        from components.costs.reprice import render_reprice

        render_reprice(models)
    with account_tab:
        from components.costs.account import render_account

        render_account(models)

