"""The Model catalog page: header and price source, filters, workload, table, chart, detail.

Over 600 lines: the page's sections (filters, workload, table, chart, detail) read and
write the same query-parameter-backed state; the pure parts are already in `frame` and `chart`.

Data work lives in `frame` (pure) and the figure in `chart`; this module only
draws. Derived frames are cached per session (keyed by the fetched catalog), so a filter
click costs boolean masks, not re-parsing. Filter and workload values are mirrored into
`st.query_params` so a view can be shared as a link: never the key, never the base URL.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import streamlit as st

from components import account_views, connection, presentation
from components.catalog.chart import CHART_MODES, picked_id, price_figure, unplotted_count
from components.catalog.frame import (
    CAPABILITIES,
    CONTEXT_STEPS,
    PARAM_NAMES,
    SORTS,
    TIERS,
    WORKLOAD_LIMITS,
    Filters,
    WorkloadInput,
    apply_filters,
    compact_tokens,
    display_frame,
    dollar_format,
    filters_from_params,
    filters_to_params,
    workload_costs,
    workload_from_params,
    workload_to_params,
)
from components.errors import show_error
from components.state import select_model
from components.untrusted import NAME_LIMIT, TEXT_LIMIT, long_text, md_code, md_text, raw_json
from wafer_playground.account import SOURCE_LABELS
from wafer_playground.catalog import Model, PricePart, snapshot_note, snapshot_source
from wafer_playground.costs import (
    DAYS_PER_MONTH,
    PASS_EXPLAINER,
    format_per_million,
    format_usd,
    plan_model,
    tier_label,
)

DETAIL_KEY = "_catalog_detail"  # durable: the model whose detail panel is open
DIALOG_KEY = "_catalog_dialog"  # one run: a row or point was just picked, open its dialog
SAVED_KEY = "_catalog_saved"  # durable: filters + workload across page switches
TABLE_KEY = "_catalog_table_key"  # the live table widget's key (tests read it)
DERIVED_KEY = "_catalog_derived"
CHART_KEY = "_catalog_chart"  # (widget key, point ids per trace) of the chart last drawn
PICKS_KEY = "_catalog_picks"  # bumps on every chart pick: the table redraws with it selected
EXTRA_PARAMS = ("model", "chart")
NP = 112  # px: room for the "not published" header help and values, never truncated
# Price first (issue 16): name, id, the four prices fit 1440 px without scrolling sideways;
# measured speed right beside them (issue 17), the medians first so they fit at 1440 px too.
SPEED_COLUMNS = ["ttft_p50_ms", "tps_p50", "ttft_p90_ms", "tps_p90"]
TABLE_COLUMNS = ["display_name", "id", "input_usd_per_m", "output_usd_per_m", "per_request",
                 "per_month", *SPEED_COLUMNS, "context_length", "tier_label", "caps", "zdr",
                 "cache_read_usd_per_m", "max_output_tokens", "provider", "source"]
PRICE_W = 96  # px: "$999.99", "$30,000.00" and "not published" stay whole
SPEED_W = 80  # px: "1,250 ms", "155.0"
# One placeholder for every empty cell: a price the card does not publish (never $0) and a
# speed not measured yet read alike; each column's help says which.
EMPTY = "—"


@dataclass
class _Derived:
    """Everything computed from one fetched catalog, cached in this session."""

    ident: tuple[object, ...]
    models: list[Model]
    by_id: dict[str, Model]
    frame: pd.DataFrame
    in_max: float
    out_max: float
    costs: dict[WorkloadInput, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def workload(self, wl: WorkloadInput) -> tuple[np.ndarray, np.ndarray]:
        hit = self.costs.get(wl)
        if hit is None:
            if len(self.costs) > 8:  # a handful of recent workloads is plenty
                self.costs.clear()
            hit = self.costs[wl] = workload_costs(self.models, wl)
        return hit


def _nice_max(values: pd.Series) -> float:
    finite = values[np.isfinite(values.to_numpy(dtype="float64"))]
    top = float(finite.max()) if len(finite) else 0.0
    if top <= 0:
        return 1.0
    step = 10 ** math.floor(math.log10(top))
    return float(math.ceil(top / step) * step)


def _derived(conn: connection.Connection, models: connection.ModelList) -> _Derived:
    ident = (conn.base_url, conn.fingerprint, models.fetched_at, len(models.catalog.models))
    held: _Derived | None = st.session_state.get(DERIVED_KEY)
    if held is not None and held.ident == ident:
        return held
    ms = list(models.catalog.models)
    frame = display_frame(ms)
    d = _Derived(ident, ms, {m.id: m for m in ms}, frame,
                 _nice_max(frame["input_usd_per_m"]), _nice_max(frame["output_usd_per_m"]))
    st.session_state[DERIVED_KEY] = d
    return d


# ---- header ----------------------------------------------------------------------------


def _refresh() -> None:
    # A callback runs before the script, so the sidebar's status line sees the new list too.
    connection.load_models(refresh=True)


def _header(conn: connection.Connection, models: connection.ModelList) -> None:
    host = connection._host_label(conn.base_url) or "no URL"
    title, button = st.columns([5, 1], vertical_alignment="bottom")
    title.title("Model catalog")
    button.button("Refresh", icon=":material/refresh:", key="cat_refresh", on_click=_refresh,
                  help="Fetch /v1/models again (the list is cached for this session for "
                       f"{connection.MODELS_TTL_S // 60} minutes)", width="stretch")
    snap = snapshot_source()
    n = len(models.catalog.models)
    if not conn.ready:
        # nothing was requested: the local engine is provisioning (a normal state) or the
        # typed URL was refused; say which, not "request failed"
        if conn.engine is not None:
            st.info(f"**The local engine is not ready yet** ({conn.problem}). Showing the "
                    f"bundled **snapshot of {snap.at}** meanwhile: Wafer's models and prices, "
                    "which may be out of date. The local models appear here once it is ready.",
                    icon=":material/hourglass_top:")
        else:
            st.warning(f"**No request was sent:** {conn.problem}. Showing the bundled "
                       f"**snapshot of {snap.at}** meanwhile.", icon=":material/block:")
        st.caption(f"{n} models · prices: snapshot of {snap.at}", help=snapshot_note())
        return
    if models.error is not None:
        st.warning(
            f"**Could not load the model list from {host}.** Showing the bundled "
            f"**snapshot of {snap.at}** instead: models and prices may be out of date.",
            icon=":material/cloud_off:",
        )
        show_error(models.error, where="GET /v1/models")
        st.caption(f"{n} models · prices: snapshot of {snap.at} · tried at {models.stamp}",
                   help=snapshot_note())
        return
    filled = sum(1 for m in models.catalog.models if m.pricing.is_snapshot)
    live_at = next((m.pricing.source.at for m in models.catalog.models
                    if m.pricing.source is not None and m.pricing.source.kind == "live"), None)
    parts = [f"**{n} models** from `{host}`",
             f"fetched at {models.stamp} ({models.latency_ms:.0f} ms)"]
    if live_at:
        parts.append(f"prices live from {host} at {live_at[11:16]}")
    if filled:
        parts.append(f"{filled} priced from the snapshot of {snap.at} (their cards publish "
                     f"none; labelled *snapshot*)")
    unpublished = sum(1 for m in models.catalog.models if not m.pricing.published)
    if unpublished:
        parts.append(f"{unpublished} without a published price")
    st.caption(" · ".join(parts))


# ---- controls and URL state ------------------------------------------------------------


def _init_widgets(d: _Derived) -> None:
    """Seed widget values on (re)entry: the URL wins, then this session's last view."""
    if "cat_q" in st.session_state:
        return  # the widgets are alive: they hold the truth
    qp = st.query_params.to_dict()
    if any(k in qp for k in PARAM_NAMES + EXTRA_PARAMS):
        f, wl = filters_from_params(qp), workload_from_params(qp)
        chart = qp.get("chart") if qp.get("chart") in CHART_MODES else "context"
        if qp.get("model") in d.by_id:
            st.session_state[DETAIL_KEY] = qp["model"]
    else:
        f, wl, chart = st.session_state.get(SAVED_KEY, (Filters(), WorkloadInput(), "context"))
    st.session_state.update({
        "cat_q": f.q, "cat_caps": list(f.caps), "cat_tiers": list(f.tiers), "cat_zdr": f.zdr,
        "cat_ctx": f.min_ctx, "cat_priced": f.priced, "cat_sort": f.sort,
        "cat_in": _clamp(f.in_range, d.in_max), "cat_out": _clamp(f.out_range, d.out_max),
        "cat_wl_in": wl.input_tokens, "cat_wl_out": wl.output_tokens,
        "cat_wl_cache": wl.cache_pct, "cat_wl_rpd": wl.requests_per_day, "cat_chart": chart,
    })


def _clamp(rng: tuple[float, float] | None, hi: float) -> tuple[float, float]:
    if rng is None:
        return (0.0, hi)
    lo, top = (min(max(v, 0.0), hi) for v in rng)
    return (lo, max(lo, top))


def _fit_slider(key: str, hi: float) -> None:
    """Keep a live range slider valid when a refresh changes the catalog's top price.

    A range that reached the old top ("no limit") stretches to the new top; any other
    range is clamped (a value outside min/max would make Streamlit raise).
    """
    old_hi = st.session_state.get(f"_{key}_max", hi)
    lo, top = st.session_state[key]
    if top >= old_hi:
        top = hi
    st.session_state[key] = _clamp((lo, top), hi)
    st.session_state[f"_{key}_max"] = hi


def _range_value(key: str, hi: float) -> tuple[float, float] | None:
    lo, top = st.session_state[key]
    return None if lo <= 0 and top >= hi else (float(lo), float(top))


def _controls(d: _Derived) -> tuple[Filters, WorkloadInput]:
    """One line: search, the workload (it prices every row) and the filters, the last two in
    popovers, so the first screen is the table (issue 16: the controls used to fill it)."""
    ss = st.session_state
    with st.container(border=True, key="cat_controls"):
        c = st.columns([2.2, 2.2, 1.3], vertical_alignment="top")
        c[0].text_input("Search", key="cat_q", placeholder="id, name, provider, description…",
                        icon=":material/search:")
        # the workload prices every row; its values are the button's label, so a phone
        # opens on the table too
        label = (f"Workload · {ss['cat_wl_in']:,} in · {ss['cat_wl_out']:,} out · "
                 f"{ss['cat_wl_rpd']:,}/day")
        # expanders, not popovers: a popover's widgets remount when a dialog has been open
        # and come back at their defaults, which the next rerun would send
        with c[1].expander(label, icon=":material/calculate:"):
            st.caption("Adds $/request and $/month to every row (a month is "
                       f"{DAYS_PER_MONTH} days; estimates from the cost engine).")
            st.number_input("Input tokens / request", 0, WORKLOAD_LIMITS["input_tokens"],
                            key="cat_wl_in", step=100)
            st.number_input("Output tokens / request", 0, WORKLOAD_LIMITS["output_tokens"],
                            key="cat_wl_out", step=100)
            st.number_input("Cache hit % of input", 0, 100, key="cat_wl_cache", step=5,
                            help="Share of input tokens read from the prefix cache")
            st.number_input("Requests / day", 0, WORKLOAD_LIMITS["requests_per_day"],
                            key="cat_wl_rpd", step=100)
        active = _active_filters(d)
        with c[2].expander(f"Filters · {active}" if active else "Filters",
                           icon=":material/tune:"):
            st.multiselect("Capabilities", CAPABILITIES, key="cat_caps",
                           placeholder="any", help="Models that state every chosen capability")
            st.multiselect("Tier", list(TIERS), key="cat_tiers", format_func=TIERS.__getitem__,
                           placeholder="any", help=PASS_EXPLAINER)
            if st.session_state["cat_ctx"] not in CONTEXT_STEPS:
                st.session_state["cat_ctx"] = 0
            st.selectbox("Min context", CONTEXT_STEPS, key="cat_ctx",
                         format_func=lambda n: "any" if n == 0 else f"≥ {compact_tokens(n)}")
            _fit_slider("cat_in", d.in_max)
            _fit_slider("cat_out", d.out_max)
            st.slider("Input $ / 1M tokens", 0.0, d.in_max, key="cat_in",
                      step=max(d.in_max / 200, 0.01), format="$%.2f")
            st.slider("Output $ / 1M tokens", 0.0, d.out_max, key="cat_out",
                      step=max(d.out_max / 200, 0.01), format="$%.2f")
            st.selectbox("Sort by", list(SORTS), key="cat_sort", format_func=SORTS.__getitem__)
            st.toggle("ZDR only", key="cat_zdr",
                      help="Models that accept `Wafer-ZDR: required` (zero data retention)")
            st.toggle("Priced only", key="cat_priced",
                      help="Hide models whose price is not published")
    f = Filters(
        q=str(ss["cat_q"] or ""), caps=tuple(ss["cat_caps"]), tiers=tuple(ss["cat_tiers"]),
        zdr=bool(ss["cat_zdr"]), min_ctx=int(ss["cat_ctx"]),
        in_range=_range_value("cat_in", d.in_max), out_range=_range_value("cat_out", d.out_max),
        priced=bool(ss["cat_priced"]), sort=str(ss["cat_sort"]),
    )
    wl = WorkloadInput(int(ss["cat_wl_in"]), int(ss["cat_wl_out"]), int(ss["cat_wl_cache"]),
                       int(ss["cat_wl_rpd"]))
    return f, wl


def _active_filters(d: _Derived) -> int:
    """How many filters narrow the view (shown on the Filters button)."""
    ss = st.session_state
    lo_in, hi_in = ss["cat_in"]
    lo_out, hi_out = ss["cat_out"]
    return sum((bool(ss["cat_caps"]), bool(ss["cat_tiers"]), bool(ss["cat_ctx"]),
                lo_in > 0 or hi_in < d.in_max, lo_out > 0 or hi_out < d.out_max,
                bool(ss["cat_zdr"]), bool(ss["cat_priced"])))


def _sync_url(f: Filters, wl: WorkloadInput, chart: str, selected: str | None) -> None:
    params = {**filters_to_params(f), **workload_to_params(wl)}
    if chart != "context":
        params["chart"] = chart
    if selected:
        params["model"] = selected
    ours = PARAM_NAMES + EXTRA_PARAMS
    current = {k: v for k, v in st.query_params.to_dict().items() if k in ours}
    if current == params:
        return  # unchanged: don't send a URL update every rerun
    for k in current:
        if k not in params:
            del st.query_params[k]
    st.query_params.update(params)


# ---- table -----------------------------------------------------------------------------


def _column_config(view: pd.DataFrame, speed_source: str = "") -> dict[str, object]:
    cc = st.column_config
    unpublished = f" {EMPTY} = not published by the card (never counted as $0)."
    measured = (f"Measured by {speed_source} (p50 = median, p90 = 9 in 10 requests at or "
                f"below). {EMPTY} = not measured yet.")
    price_fmt = dollar_format(np.concatenate([
        view[c].to_numpy(dtype="float64") for c in
        ("input_usd_per_m", "output_usd_per_m", "cache_read_usd_per_m")]), exact=True)
    return {
        "display_name": cc.TextColumn("Model", pinned=True, width=150),
        "id": cc.TextColumn("Model id", width=170,
                            help="What goes into code: select the cell and copy (Ctrl+C)"),
        "provider": cc.TextColumn("Provider"),
        "tier_label": cc.TextColumn("Tier", width=NP, help=PASS_EXPLAINER + unpublished),
        "context_length": cc.NumberColumn("Context", format="compact", width=NP,
                                          help="max_model_len: prompt + completion."
                                               + unpublished),
        "max_output_tokens": cc.NumberColumn("Max out", format="compact", width=NP,
                                             help="Most tokens one answer may have."
                                                  + unpublished),
        "caps": cc.ListColumn("Capabilities", help="As stated on the model card"),
        "zdr": cc.CheckboxColumn("ZDR", width="small",
                                 help="Accepts Wafer-ZDR: required (zero data retention)"),
        "input_usd_per_m": cc.NumberColumn("In $/1M", format=price_fmt, width=PRICE_W,
                                           help="Input tokens, $ per million." + unpublished),
        "output_usd_per_m": cc.NumberColumn("Out $/1M", format=price_fmt, width=PRICE_W,
                                            help="Output tokens, $ per million."
                                                 + unpublished),
        "cache_read_usd_per_m": cc.NumberColumn("Cache $/1M", format=price_fmt, width=NP,
                                                help="Cache-read input tokens." + unpublished),
        "per_request": cc.NumberColumn("$/request", format=dollar_format(view["per_request"]),
                                       width=PRICE_W,
                                       help="Your workload, one request (estimate)."
                                            + unpublished),
        "per_month": cc.NumberColumn("$/month", format=dollar_format(view["per_month"]),
                                     width=PRICE_W,
                                     help=f"Your workload × requests/day × {DAYS_PER_MONTH}."
                                          + unpublished),
        "ttft_p50_ms": cc.NumberColumn("TTFT p50", format="%,.0f ms", width=SPEED_W,
                                       help="Time to first token. " + measured),
        "ttft_p90_ms": cc.NumberColumn("TTFT p90", format="%,.0f ms", width=SPEED_W,
                                       help="Time to first token. " + measured),
        "tps_p50": cc.NumberColumn("tok/s p50", format="%,.1f", width=SPEED_W,
                                   help="Output tokens per second. " + measured),
        "tps_p90": cc.NumberColumn("tok/s p90", format="%,.1f", width=SPEED_W,
                                   help="Output tokens per second. " + measured),
        "source": cc.TextColumn("Price source", width=NP,
                                help="live = this endpoint's card; snapshot = the bundled "
                                     "dated catalog (the card publishes no price)."
                                     + unpublished),
    }


def _table(d: _Derived, view: pd.DataFrame, f: Filters, wl: WorkloadInput,
           speed_source: str | None) -> str | None:
    """Draw the table; return the model id whose detail should show."""
    picks = st.session_state.get(PICKS_KEY, 0)
    # A new set or order of rows is a new widget, so stale row positions never leak. The
    # workload only changes two columns' values: same widget, so the grid keeps its scroll
    # and selection (issue 16), unless the rows are sorted by the workload's $/month.
    order_wl = wl if f.sort == "month" else None
    sig = hashlib.sha256(repr((d.ident, f, order_wl, picks)).encode()).hexdigest()[:12]
    key = f"catalog_table_{sig}"
    st.session_state[TABLE_KEY] = key
    selected: str | None = st.session_state.get(DETAIL_KEY)
    ids = view["id"].tolist()
    default = None
    if selected in ids:
        default = {"selection": {"rows": [ids.index(selected)], "columns": []}}
    # no measurement yet: no four columns of dashes pushing context and tier off the screen
    columns = TABLE_COLUMNS if speed_source else \
        [c for c in TABLE_COLUMNS if c not in SPEED_COLUMNS]
    event = st.dataframe(
        view[columns], key=key, hide_index=True, on_select="rerun",
        selection_mode="single-row", selection_default=default, lazy=False,
        column_config=_column_config(view, speed_source or ""), placeholder=EMPTY,
        height=min(38 + 35 * max(len(view), 1), 460),
    )
    rows = list(event.selection.rows)
    last: dict[str, list[int]] = st.session_state.setdefault("_catalog_rows", {})
    # Only a change of the table's own selection counts: an unchanged row must not undo a
    # model picked on the chart since.
    if rows != last.get(key, []):
        if rows and rows[0] < len(ids):
            selected = ids[rows[0]]
            st.session_state[DETAIL_KEY] = selected
            st.session_state[DIALOG_KEY] = selected  # a click opens the detail in view
        elif not rows:  # the user cleared the selection on this very view
            selected = None
            st.session_state.pop(DETAIL_KEY, None)
    st.session_state["_catalog_rows"] = {key: rows}  # only the live view matters
    # A model filtered out of view keeps its place in DETAIL_KEY and returns with it.
    return selected if selected in ids else None


ROOM_ROWS = 15  # presentation mode: what a room can read; the chart shows every model


def _speed_text(v: float, fmt: str) -> str:
    return EMPTY if pd.isna(v) else fmt.format(v)


def _room_table(view: pd.DataFrame, *, speed: bool = False) -> None:
    """Presentation mode: the price-first columns as an HTML table, which grows with the
    larger type (the interactive grid is a canvas drawn in px). A chart point opens a model.
    Measured speed joins them when there is any."""
    top = view.head(ROOM_ROWS)
    speeds = {"TTFT p50": [_speed_text(v, "{:,.0f} ms") for v in top["ttft_p50_ms"]],
              "tok/s p50": [_speed_text(v, "{:,.1f}") for v in top["tps_p50"]]} if speed else {}
    st.table(pd.DataFrame({  # st.table draws cells as markdown: card text made inert
        "Model": [md_text(n) for n in top["display_name"]],
        "Model id": [md_text(i) for i in top["id"]],
        "In $/1M": [format_usd(v) for v in top["input_usd_per_m"]],
        "Out $/1M": [format_usd(v) for v in top["output_usd_per_m"]],
        "$/request": [format_usd(v) for v in top["per_request"]],
        "$/month": [format_usd(v) for v in top["per_month"]],
        **speeds,
        "Context": [compact_tokens(v) for v in top["context_length"]],
    }), hide_index=True)
    if len(view) > ROOM_ROWS:
        st.caption(f"The first {ROOM_ROWS} of {len(view)}; the chart below has them all.")


# ---- detail panel ----------------------------------------------------------------------


def _badges(m: Model) -> str:
    out = []
    if m.tier in TIERS:
        out.append(f":violet-badge[{TIERS[m.tier]}]")
    for cap, icon in (("vision", "visibility"), ("tools", "build"), ("reasoning", "psychology")):
        v = getattr(m, cap)
        if v is True:
            out.append(f":green-badge[:material/{icon}: {cap}]")
        elif v is False:
            out.append(f":gray-badge[no {cap}]")
    out.append(":blue-badge[:material/shield: ZDR]" if m.zdr_supported else ":gray-badge[no ZDR]")
    if m.local:
        out.append(":orange-badge[:material/computer: local engine]")
    return " ".join(out)


def _price_source_text(m: Model) -> str:
    src = m.pricing.source
    if src is None:
        return "Price **not published** by this card (nor in the bundled snapshot)."
    if src.kind == "snapshot":
        return (f"Price from the **{src.describe()}**: this card publishes none, so the dated "
                "reference price is shown. Check before relying on it.")
    return f"Price **{src.describe()}**."


_STAT = ('<div style="line-height:1.25"><div style="font-size:0.85rem;opacity:0.7">{label}'
         '</div><div style="font-size:{size};font-weight:600">{value}</div></div>')


def _stats(items: list[tuple[str, str]]) -> None:
    """Big figures that wrap instead of truncating ("not published" must stay readable)."""
    for col, (label, value) in zip(st.columns(len(items)), items, strict=True):
        # Values come from format_usd/compact_tokens and labels are constants; escaped anyway
        # so a card field can never inject markup here.
        size = "1.55rem" if value[:1].isdigit() or value[:1] == "$" else "1.05rem"
        col.markdown(_STAT.format(label=html.escape(label), value=html.escape(value), size=size),
                     unsafe_allow_html=True)


_LOCAL_LABELS = {"engine": "Engine", "package": "PyPI package", "n_vocab": "Vocabulary",
                 "n_ctx_train": "Trained context", "n_params": "Parameters",
                 "quantization": "Quantization"}


def _local_extras(local: dict[str, object]) -> None:
    """The local engine's card extras: licence, package, endpoints, notes (raw JSON has all)."""
    lines = ["**Local engine** · runs on this machine, no per-token charge"]
    # The `local` block is card text like any other: any upstream can send one.
    licence, url = local.get("licence"), local.get("licence_url")
    if licence:
        lines.append(f"Licence: [{md_text(licence)}]({url})" if isinstance(url, str) and
                     re.fullmatch(r"https://[^\s()<>\\]{1,300}", url) else
                     f"Licence: {md_text(licence)}")
    for key, label in _LOCAL_LABELS.items():
        value = local.get(key)
        if value is not None and not isinstance(value, dict | list):
            lines.append(f"{label}: `{value:,}`" if isinstance(value, int) else
                         f"{label}: {md_code(value)}")
    if local.get("chat_template") is False:
        lines.append(":orange[No chat template: use token-ID completions]")
    endpoints = local.get("endpoints")
    if isinstance(endpoints, list) and endpoints:
        lines.append("Endpoints: " + ", ".join(md_code(e) for e in endpoints[:20]))
    st.markdown("  \n".join(lines))
    notes = local.get("notes")
    if isinstance(notes, list) and notes:
        st.caption("  \n".join(md_text(n, TEXT_LIMIT) for n in notes[:20]))


def _detail(m: Model, wl: WorkloadInput, where: str = "") -> None:
    """The model's detail; `where` tells the dialog's copy ("_dlg") from the side panel's."""
    with st.container(border=True, key=f"cat_detail{where}"):
        st.subheader(md_text(m.display_name), anchor=False)
        st.code(m.id, language=None)  # the id that goes into code, with a copy button
        if len(m.display_name) > NAME_LIMIT:
            long_text(m.display_name, key=f"cat_name{where}_{m.id[:64]}", limit=NAME_LIMIT,
                      preview=False)
        st.caption("Provider "
                   + (md_text(m.provider) if m.provider else "not published")
                   + (f" · owned by {md_text(m.owned_by)}" if m.owned_by else "")
                   + (f" · created {datetime.fromtimestamp(m.created, UTC):%Y-%m-%d}"
                      if m.created else ""))
        st.markdown(_badges(m))
        if m.disabled_reason:
            st.warning(f"Disabled: {md_code(m.disabled_reason, TEXT_LIMIT)}",
                       icon=":material/block:")
        if m.description:
            long_text(m.description, key=f"cat_desc{where}_{m.id[:64]}")
        p = m.pricing
        row = plan_model(wl.to_workload(), m)
        parts: tuple[tuple[str, PricePart], ...] = (
            ("Input", "input"), ("Output", "output"), ("Cache read", "cache_read"))
        _stats([(f"{label} / 1M", format_per_million(p, part)) for label, part in parts])
        st.caption(_price_source_text(m))
        _stats([("Context", compact_tokens(m.context_length)),
                ("Max output", compact_tokens(m.max_output_tokens)),
                ("Your $/request", format_usd(row.per_request.total))])
        workload = (
            f"**Your workload:** {format_usd(row.per_month)} per month "
            f"({format_usd(row.per_request.total)} × {wl.requests_per_day:,} requests/day "
            f"× {DAYS_PER_MONTH} days, estimate)" if row.per_month is not None else
            "**Your workload:** not priced: this model's price is not published")
        facts = [workload,
                 f"**Tier:** {tier_label(m.tier)}",
                 f"**ZDR:** {'supported' if m.zdr_supported else 'not supported'}"]
        if row.fits_context is False:
            facts.append(":orange[the workload's prompt + output does not fit the context]")
        facts.extend(f"*{md_text(note, TEXT_LIMIT)}*" for note in row.per_request.notes)
        st.markdown("  \n".join(facts))
        if m.local:
            _local_extras(m.local)
        if not m.has_wafer_block:
            st.caption("This card has no `wafer` block: capabilities, tier and price are "
                       "unknown.")
        if st.button("Try in chat", type="primary", icon=":material/chat:", key=f"cat_try{where}",
                     disabled=not m.chat_template,
                     help=None if m.chat_template else "No chat template: use completions"):
            select_model(m.id)
            st.switch_page("pages/chat.py", query_params={"model": m.id})
        with st.expander("Raw card JSON"):
            raw_json(m.raw, key=f"cat_raw{where}_{m.id[:64]}", file_name="model-card.json")


# ---- the page --------------------------------------------------------------------------


def render_catalog_page() -> None:
    conn = connection.current()
    models = connection.load_models(conn)
    _header(conn, models)
    if conn.zdr:
        st.caption(":material/shield: The sidebar requires ZDR: models without ZDR reject "
                   "your requests (HTTP 422 `model_zdr_not_supported`). Turn on *ZDR only*.")
    d = _derived(conn, models)
    if not d.models:
        st.info("No models to show.")
        _problems(models.catalog.problems)
        return
    _init_widgets(d)
    f, wl = _controls(d)
    per_request, per_month = d.workload(wl)
    # measured TTFT and tok/s, one row per model in the frame's order (account.speed_frame)
    sp = account_views.speeds(conn, d.models)
    speed = {c: sp.frame[c].to_numpy(dtype="float64") for c in SPEED_COLUMNS}
    view = apply_filters(d.frame.assign(per_request=per_request, per_month=per_month,
                                        **speed), f)
    shown = f"**{len(view)}** of {len(d.frame)} models"
    st.markdown(shown if len(view) else shown + " match: loosen a filter.")
    _chart_pick(d)
    if presentation.is_presenting():
        # the chart's key follows the rows shown, as with the grid (see _table)
        rows_sig = hashlib.sha256("\n".join(view["id"]).encode()).hexdigest()[:12]
        st.session_state[TABLE_KEY] = f"catalog_room_{rows_sig}"
        _room_table(view, speed=bool(sp.measured))
        selected = st.session_state.get(DETAIL_KEY)
        selected = selected if selected in set(view["id"]) else None
    else:
        selected = _table(d, view, f, wl, SOURCE_LABELS.get(sp.source, sp.source)
                          if sp.measured else None)
    chart_col, detail_col = st.columns([3, 2])
    with chart_col:
        mode = st.radio("Chart", list(CHART_MODES), key="cat_chart", horizontal=True,
                        format_func=CHART_MODES.__getitem__, label_visibility="collapsed")
        pr = view["per_request"].to_numpy(dtype="float64")
        fig, trace_ids = price_figure(view, pr, view["per_month"].to_numpy(dtype="float64"),
                                      mode, selected, scale=presentation.scale())
        # Keyed by the view (like the table), so a stale point index never maps to a model.
        chart_key = f"cat_plot_{st.session_state[TABLE_KEY][-12:]}_{mode}"
        st.session_state[CHART_KEY] = (chart_key, trace_ids)
        st.plotly_chart(fig, key=chart_key, config={"displaylogo": False},
                        on_select="rerun", selection_mode="points")
        st.caption("Click a point to open its model.")
        missing = unplotted_count(view, pr, mode)
        if missing:
            st.caption(f"{missing} model(s) not plotted: price or context not published.")
    with detail_col:
        if selected is None:
            where = ("Click a point on the chart" if presentation.is_presenting() else
                     "Select a row in the table")
            st.info(f"{where} to see the model's details, all its prices and its raw card.",
                    icon=":material/touch_app:")
        else:
            _detail(d.by_id[selected], wl)
    opened = st.session_state.pop(DIALOG_KEY, None)
    if opened is not None and opened == selected:
        _detail_dialog(d.by_id[selected], wl)
    if not presentation.is_presenting():
        account_views.speed_section(sp)  # where the speed columns come from; price vs speed
    _problems(models.catalog.problems)
    st.session_state[SAVED_KEY] = (f, wl, mode)
    _sync_url(f, wl, mode, selected)


@st.dialog("Model details", width="large")
def _detail_dialog(m: Model, wl: WorkloadInput) -> None:
    """Opens where the click was (the side panel below the chart keeps the same detail)."""
    _detail(m, wl, "_dlg")


def _chart_pick(d: _Derived) -> None:
    """A point clicked on last run's chart opens that model (before the table is drawn)."""
    held = st.session_state.get(CHART_KEY)
    if held is None:
        return
    chart_key, trace_ids = held
    # Read the widget state dict-style: works for the live PlotlyState and for tests.
    model_id = picked_id(st.session_state.get(chart_key), trace_ids)
    seen = st.session_state.get("_catalog_pick_seen")
    if model_id is None or (chart_key, model_id) == seen:
        return
    st.session_state["_catalog_pick_seen"] = (chart_key, model_id)
    if model_id in d.by_id and model_id != st.session_state.get(DETAIL_KEY):
        st.session_state[DETAIL_KEY] = model_id
        st.session_state[DIALOG_KEY] = model_id
        st.session_state[PICKS_KEY] = st.session_state.get(PICKS_KEY, 0) + 1


def _problems(problems: list[str]) -> None:
    if problems:
        with st.expander(f":material/warning: {len(problems)} model card(s) had problems "
                         "and were skipped or read partially"):
            st.markdown("\n".join(f"- {md_text(p, TEXT_LIMIT)}" for p in problems[:200]))
