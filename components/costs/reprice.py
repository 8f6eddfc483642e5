"""Costs page, "Reprice usage": a usage file or this app's request log on every model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from components.costs import charts
from wafer_playground.catalog import Model
from wafer_playground.costs import daily_costs, format_usd, reprice
from wafer_playground.untrusted import TEXT_LIMIT, frame_csv, md_text
from wafer_playground.usage import ParsedUsage, from_request_log, parse_usage_file

FORMATS_HELP = (
    "CSV with a header (`model`, `prompt_tokens` or `input_tokens`, `cached_tokens`, "
    "`completion_tokens` or `output_tokens`, `reasoning_tokens`, `ts`), JSONL of such objects "
    "or of chat/Anthropic responses, an OpenAI-style batch output file, or Wafer's "
    "`/v1/usage/me` JSON. Cached tokens count as part of the input (Anthropic-named "
    "`cache_read_input_tokens` are added to `input_tokens`)."
)


@st.cache_data(max_entries=4, show_spinner="Reading the usage file…")
def _parse(data: bytes, name: str) -> ParsedUsage:
    return parse_usage_file(data, name)


def _request_log() -> tuple[pd.DataFrame | None, str | None]:
    """The app's request log via `components.history.get_store()`, defensively: the store
    may be missing or older than the `request_log_frame` contract."""
    try:
        from components.history import get_store

        store: Any = get_store()
        frame = store.request_log_frame()
    except (ImportError, AttributeError) as exc:
        return None, f"The request log is not available in this build ({exc})."
    except Exception as exc:  # noqa: BLE001 - a broken database must not break the page
        return None, f"Could not read the request log: {exc}"
    return frame, None


def _report(parsed: ParsedUsage) -> None:
    # an uploaded file is untrusted text: its notes can quote model names and values
    st.caption(md_text(parsed.summary(), TEXT_LIMIT))
    for note in parsed.notes:
        st.caption(f"ℹ️ {md_text(note, TEXT_LIMIT)}")
    if parsed.n_bad:
        shown = len(parsed.bad)
        more = f" (first {shown:,} listed)" if shown < parsed.n_bad else ""
        st.warning(f"{parsed.n_bad:,} rows could not be priced and are not counted{more}.",
                   icon="⚠️")
        with st.expander("Rows not priced: line and reason", expanded=parsed.n_rows == 0):
            st.dataframe(parsed.bad_frame(), hide_index=True, key="costs_rp_bad",
                         column_config={"line": st.column_config.NumberColumn("Line",
                                                                              format="%d"),
                                        "reason": st.column_config.TextColumn("Reason")})


def render_reprice(models: list[Model]) -> None:
    st.markdown("##### What did this usage cost, and what would it cost elsewhere?")
    source = st.radio("Usage from", ["Upload a file", "This app's request log"],
                      key="costs_rp_source", horizontal=True)
    recorded: Decimal | None = None
    if source == "Upload a file":
        upload = st.file_uploader("Usage file", key="costs_rp_file", help=FORMATS_HELP,
                                  type=["csv", "jsonl", "json", "ndjson", "txt"])
        st.caption(FORMATS_HELP)
        if upload is None:
            return
        parsed = _parse(upload.getvalue(), upload.name)
    else:
        log, problem = _request_log()
        if log is None:
            st.info(problem)
            return
        if log.empty:
            st.info("The request log is empty: send a few requests from Chat or Compare first.")
            return
        parsed = from_request_log(log)
        if "cost_usd" in log:
            costs = [c for c in log["cost_usd"] if isinstance(c, Decimal)]
            recorded = sum(costs, Decimal(0)) if costs else None
    _report(parsed)
    if parsed.n_rows == 0:
        return
    result = reprice(parsed.frame, models)
    t = result.totals
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Requests", f"{result.requests:,}")
    c2.metric("Input tokens", f"{t.prompt_tokens:,}", f"{t.cached_tokens:,} cached",
              delta_color="off", delta_arrow="off")
    c3.metric("Output tokens", f"{t.completion_tokens:,}", f"{t.reasoning_tokens:,} reasoning",
              delta_color="off", delta_arrow="off")
    as_logged = result.as_logged.total if result.as_logged else None
    c4.metric("Cost as logged (current prices)", format_usd(as_logged),
              f"{result.unpriced_rows:,} rows on unknown/unpriced models"
              if result.unpriced_rows else None, delta_color="off", delta_arrow="off")
    extra = []
    if recorded is not None:
        extra.append(f"recorded at request time: {format_usd(recorded)}")
    reported = parsed.frame["reported_cost_usd"].dropna()
    if not reported.empty:
        own = format_usd(float(reported.sum()))
        extra.append(f"the file's own estimate (estimated_cost_cents): {own}")
    if extra:
        st.caption("; ".join(extra))
    if result.as_logged and result.as_logged.notes:
        st.caption("ℹ️ " + md_text("; ".join(result.as_logged.notes), TEXT_LIMIT))

    per = result.per_model.drop(columns=["_exact"])
    if as_logged is not None and as_logged > 0:
        per["vs_logged"] = per["total_usd"] / float(as_logged)
    st.dataframe(per, hide_index=True, key="costs_rp_table", placeholder="—", column_config={
        "model": st.column_config.TextColumn("Model", width="medium", pinned=True),
        "tier": st.column_config.TextColumn("Pass / Serverless"),
        "pass_included": None,
        "total_usd": None,
        "total": st.column_config.TextColumn("All of it on this model"),
        "input_usd": st.column_config.NumberColumn("input $", format="$%.4f"),
        "cached_usd": st.column_config.NumberColumn("cached $", format="$%.4f"),
        "output_usd": st.column_config.NumberColumn("output $", format="$%.4f"),
        "mean_request_usd": st.column_config.NumberColumn("mean $/request", format="$%.6f"),
        "p90_request_usd": st.column_config.NumberColumn("p90 $/request", format="$%.6f"),
        "vs_logged": st.column_config.NumberColumn("× as logged", format="%.2f×"),
        "price_source": st.column_config.TextColumn("Price source"),
    })
    days = daily_costs(parsed.frame, result.row_cost)
    if len(days) > 1:
        st.plotly_chart(charts.daily_cost(days), key="costs_fig_rp_days")
    st.plotly_chart(charts.reprice_by_model(
        result.per_model, None if as_logged is None else float(as_logged)), key="costs_fig_rp")
    st.download_button("Download CSV", frame_csv(per).encode(),
                       file_name="wafer-repriced-usage.csv", mime="text/csv", key="costs_rp_csv",
                       icon=":material/download:")
