"""The catalog's price chart as a pure figure builder (AppTest cannot see plotly charts).

WebGL (`Scattergl`) keeps 10,000 points cheap to draw; one trace per tier so the legend
doubles as a tier filter; only models with a published price are plotted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

CHART_MODES = {
    "context": "Your $/request vs context",
    "io": "Input vs output price",
}
TIER_STYLE = {  # label, colour
    "pass_included": ("Pass", "#7C5CFF"),
    "serverless_only": ("Serverless", "#22B8CF"),
    None: ("Tier not published", "#A0A4AE"),
}
CONTEXT_TICKS = [4096, 8192, 32768, 131072, 262144, 524288, 1048576, 2097152]
CONTEXT_LABELS = ["4K", "8K", "32K", "128K", "256K", "512K", "1M", "2M"]
# Numeric customdata only: plotly validates object arrays slowly (0.3 s at 10,000 points).
_HOVER = (
    "<b>%{text}</b><br>"
    "Context: %{customdata[0]:,.0f} tokens<br>"
    "In $%{customdata[1]:.4g} · Out $%{customdata[2]:.4g} per 1M<br>"
    "Your workload: $%{customdata[3]:.4g}/request · $%{customdata[4]:,.2f}/month"
    "<extra>%{fullData.name}</extra>"
)


def price_figure(view: pd.DataFrame, per_request: np.ndarray, per_month: np.ndarray,
                 mode: str = "context", selected_id: str | None = None
                 ) -> tuple[go.Figure, list[list[str]]]:
    """Scatter of the filtered models. `per_request`/`per_month` align with `view`'s rows.

    Also returns, per trace, the model id of each point: a click on the chart reports
    (curve_number, point_index), and this maps it back to a model on the server side.
    """
    fig = go.Figure()
    trace_ids: list[list[str]] = []
    all_ids = view["id"].to_numpy(dtype=object)
    ctx = view["context_length"].to_numpy(dtype="float64", na_value=np.nan)
    inp = view["input_usd_per_m"].to_numpy(dtype="float64")
    out = view["output_usd_per_m"].to_numpy(dtype="float64")
    if mode == "io":
        x, y = inp, out
        x_title, y_title, x_log = "Input $ per 1M tokens", "Output $ per 1M tokens", False
    else:
        x, y = ctx, per_request
        x_title, y_title, x_log = "Context window (tokens, log scale)", "Your $ per request", True
    plotted = np.isfinite(x) & np.isfinite(y)
    tiers = view["tier"].where(view["tier"].isin(["pass_included", "serverless_only"]), None)
    custom = np.column_stack([ctx, inp, out, np.asarray(per_request, dtype="float64"),
                              np.asarray(per_month, dtype="float64")])
    names = (view["hover_name"] if "hover_name" in view.columns
             else view["display_name"]).to_numpy(dtype=object)
    for tier, (label, colour) in TIER_STYLE.items():
        sel = plotted & (tiers.isna().to_numpy() if tier is None
                         else (tiers == tier).to_numpy())
        if not sel.any():
            continue
        fig.add_trace(go.Scattergl(
            x=x[sel], y=y[sel], mode="markers", name=label,
            marker={"size": 9 if sel.sum() < 500 else 5, "color": colour, "opacity": 0.85,
                    "line": {"width": 0}},
            customdata=custom[sel], hovertemplate=_HOVER, text=names[sel],
        ))
        trace_ids.append([str(i) for i in all_ids[sel]])
    if selected_id is not None:
        hit = (view["id"] == selected_id).to_numpy() & plotted
        if hit.any():
            # A ring only: a text label gets clipped at the plot's edges (WebGL has no
            # cliponaxis), and the detail panel names the model anyway.
            fig.add_trace(go.Scattergl(
                x=x[hit], y=y[hit], mode="markers", name="Selected",
                marker={"size": 18, "color": "rgba(0,0,0,0)",
                        "line": {"width": 2.5, "color": "#FFB020"}},
                hoverinfo="skip", showlegend=False,
            ))
            trace_ids.append([str(i) for i in all_ids[hit]])
    fig.update_layout(
        height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        xaxis_title=x_title, yaxis_title=y_title, hovermode="closest",
    )
    if x_log:
        fig.update_xaxes(type="log", tickvals=CONTEXT_TICKS, ticktext=CONTEXT_LABELS)
    fig.update_yaxes(tickprefix="$", rangemode="tozero")  # prices are never negative
    if mode == "io":
        fig.update_xaxes(tickprefix="$", rangemode="tozero")
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
    if mode == "io":
        ok = view["input_usd_per_m"].notna() & view["output_usd_per_m"].notna()
        return int((~ok).sum())
    ctx = view["context_length"].notna().to_numpy()
    return int((~(ctx & np.isfinite(per_request))).sum())
