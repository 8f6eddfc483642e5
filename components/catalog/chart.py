"""The catalog's price chart as a pure figure builder (AppTest cannot see plotly charts).

Up to LABEL_MAX points are SVG markers labelled with their model's name; beyond that WebGL
(`Scattergl`) keeps 10,000 points cheap to draw. One trace per tier so the legend doubles as
a tier filter; only models with a published price are plotted, on log axes once prices span
more than a decade.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from wafer_playground.catalog import format_tokens

CHART_MODES = {
    "context": "Your $/request vs context",
    "io": "Input vs output price",
}
TIER_STYLE = {  # label, colour
    "pass_included": ("Pass", "#7C5CFF"),
    "serverless_only": ("Serverless", "#22B8CF"),
    None: ("Tier not published", "#A0A4AE"),
}
LABEL_MAX = 40  # points labelled with their model's name (more would be unreadable)
_HOVER = (
    "<b>%{hovertext}</b><br>"
    "Context: %{customdata[0]:,.0f} tokens<br>"
    "In $%{customdata[1]:.4g} · Out $%{customdata[2]:.4g} per 1M<br>"
    "Your workload: $%{customdata[3]:.4g}/request · $%{customdata[4]:,.2f}/month"
    "<extra>%{fullData.name}</extra>"
)


def _log_wanted(values: np.ndarray) -> bool:
    """A log axis once the positive values span more than a decade: one $999.99 outlier
    must not flatten every other model to $0 (issue 16)."""
    pos = values[np.isfinite(values) & (values > 0)]
    return len(pos) > 1 and float(pos.max()) > 10 * float(pos.min())


def _axes(view: pd.DataFrame, per_request: np.ndarray, mode: str
          ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """x, y and whether each axis is logarithmic, for `mode`."""
    if mode == "io":
        x = view["input_usd_per_m"].to_numpy(dtype="float64")
        y = view["output_usd_per_m"].to_numpy(dtype="float64")
        return x, y, _log_wanted(x), _log_wanted(y)
    x = view["context_length"].to_numpy(dtype="float64", na_value=np.nan)
    y = np.asarray(per_request, dtype="float64")
    return x, y, True, _log_wanted(y)


def _plotted(x: np.ndarray, y: np.ndarray, x_log: bool, y_log: bool) -> np.ndarray:
    ok = np.isfinite(x) & np.isfinite(y)
    if x_log:
        ok &= x > 0
    if y_log:
        ok &= y > 0  # a free model has no place on a log axis; the caption counts it
    return ok


def _token_ticks() -> tuple[list[float], list[str]]:
    """Decade ticks written like every other context length (catalog.format_tokens)."""
    ticks = [10.0 ** k for k in range(2, 10)]
    return ticks, [format_tokens(t) for t in ticks]


def price_figure(view: pd.DataFrame, per_request: np.ndarray, per_month: np.ndarray,
                 mode: str = "context", selected_id: str | None = None,
                 *, scale: float = 1.0) -> tuple[go.Figure, list[list[str]]]:
    """Scatter of the filtered models. `per_request`/`per_month` align with `view`'s rows.

    Also returns, per trace, the model id of each point: a click on the chart reports
    (curve_number, point_index), and this maps it back to a model on the server side.
    `scale` grows the type (presentation mode).
    """
    fig = go.Figure()
    trace_ids: list[list[str]] = []
    all_ids = view["id"].to_numpy(dtype=object)
    ctx = view["context_length"].to_numpy(dtype="float64", na_value=np.nan)
    inp = view["input_usd_per_m"].to_numpy(dtype="float64")
    out = view["output_usd_per_m"].to_numpy(dtype="float64")
    x, y, x_log, y_log = _axes(view, per_request, mode)
    if mode == "io":
        title = "Input vs output price, $ per 1M tokens"
        x_title, y_title = "Input $ per 1M tokens", "Output $ per 1M tokens"
    else:
        title = "Your $ per request vs context window"
        x_title, y_title = "Context window (tokens)", "Your $ per request"
    scales = [a for a, log in (("x", x_log), ("y", y_log)) if log]
    if scales:
        title += f" ({' and '.join(scales)} log scale)"
    plotted = _plotted(x, y, x_log, y_log)
    labelled = int(plotted.sum()) <= LABEL_MAX
    tiers = view["tier"].where(view["tier"].isin(["pass_included", "serverless_only"]), None)
    custom = np.column_stack([ctx, inp, out, np.asarray(per_request, dtype="float64"),
                              np.asarray(per_month, dtype="float64")])
    # plotly reads <a href>, <b>, <span style> in point text: card names are escaped
    names = np.array([html.escape(n) for n in view["display_name"].astype(str)], dtype=object)
    hover = (view["hover_name"] if "hover_name" in view.columns
             else view["display_name"]).to_numpy(dtype=object)
    font = round(13 * scale)
    for tier, (label, colour) in TIER_STYLE.items():
        sel = plotted & (tiers.isna().to_numpy() if tier is None
                         else (tiers == tier).to_numpy())
        if not sel.any():
            continue
        marker = {"size": round((11 if sel.sum() < 500 else 5) * scale), "color": colour,
                  "opacity": 0.85, "line": {"width": 0}}
        if labelled:
            # SVG (not WebGL) so the names sit beside their points and stay inside the plot
            fig.add_trace(go.Scatter(
                x=x[sel], y=y[sel], mode="markers+text", name=label, marker=marker,
                text=names[sel], textposition="top center", cliponaxis=False,
                textfont={"size": font}, customdata=custom[sel], hovertext=hover[sel],
                hovertemplate=_HOVER))
        else:
            # WebGL keeps 10,000 points cheap to draw
            fig.add_trace(go.Scattergl(
                x=x[sel], y=y[sel], mode="markers", name=label, marker=marker,
                customdata=custom[sel], hovertext=hover[sel], hovertemplate=_HOVER))
        trace_ids.append([str(i) for i in all_ids[sel]])
    if selected_id is not None:
        hit = (view["id"] == selected_id).to_numpy() & plotted
        if hit.any():
            fig.add_trace(go.Scatter(
                x=x[hit], y=y[hit], mode="markers", name="Selected",
                marker={"size": round(22 * scale), "color": "rgba(0,0,0,0)",
                        "line": {"width": 2.5, "color": "#FFB020"}},
                hoverinfo="skip", showlegend=False,
            ))
            trace_ids.append([str(i) for i in all_ids[hit]])
    fig.update_layout(
        height=round(420 * scale), margin={"l": 10, "r": 30, "t": round(80 * scale), "b": 10},
        title={"text": title, "font": {"size": round(19 * scale)}, "x": 0, "xanchor": "left"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0,
                "font": {"size": font}},
        font={"size": font}, hovermode="closest",
    )
    axis_font = {"size": round(15 * scale)}
    fig.update_xaxes(title={"text": x_title, "font": axis_font}, tickfont={"size": font})
    fig.update_yaxes(title={"text": y_title, "font": axis_font}, tickfont={"size": font},
                     tickprefix="$")
    if mode == "io":
        fig.update_xaxes(tickprefix="$")
    else:
        tickvals, ticktext = _token_ticks()
        fig.update_xaxes(tickvals=tickvals, ticktext=ticktext)
    for axis, log in ((fig.update_xaxes, x_log), (fig.update_yaxes, y_log)):
        if log:
            axis(type="log", dtick=1)  # decades only: $0.01, $0.1, $1, …
        else:
            axis(rangemode="tozero")  # prices are never negative
    return fig, trace_ids


def picked_id(state: object, trace_ids: list[list[str]]) -> str | None:
    """The model a chart selection points at (first point), if the mapping still holds."""
    try:
        points = state["selection"]["points"]  # type: ignore[index]
        point = points[0]
        return trace_ids[int(point["curve_number"])][int(point["point_index"])]
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def unplotted_count(view: pd.DataFrame, per_request: np.ndarray, mode: str) -> int:
    """Models the chart leaves out: price or context not published, or free on a log axis."""
    return int((~_plotted(*_axes(view, per_request, mode))).sum())
