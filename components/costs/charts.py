"""Plotly figures for the Costs page: pure functions (frames in, figures out), no Streamlit.

Every figure takes frames the cost engine already computed; nothing is priced here.
Unpublished prices are left out of a chart and named in its subtitle, never drawn as $0.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from wafer_playground.costs import format_usd

PASS_COLOUR = "#2e7d32"
SERVERLESS_COLOUR = "#1565c0"
OTHER_COLOUR = "#757575"
# No template: Streamlit applies its own (light or dark) theme to plotly charts.
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 90, "b": 10},
           "legend": {"orientation": "h", "y": -0.22, "yanchor": "top"}}
COLOUR_KEY = "green: covered by Wafer Pass · blue: Serverless only · grey: tier not published"


def _colour(pass_included: bool, tier: str) -> str:
    if pass_included:
        return PASS_COLOUR
    return SERVERLESS_COLOUR if tier.startswith("Serverless") else OTHER_COLOUR


def _title(text: str, unpriced: list[str], why: str = "price not published",
           key: str = "") -> dict[str, object]:
    sub = f"<br><sup>{key}</sup>" if key else ""
    if unpriced:
        sub += f"<br><sup>left out ({why}): {', '.join(unpriced)}</sup>"
    return {"text": text + sub, "x": 0, "xanchor": "left"}


def monthly_by_model(plan: pd.DataFrame) -> go.Figure:
    """Horizontal bars of $/month (first month) per model, cheapest on top, Pass in green."""
    priced = plan[plan["per_month_usd"].notna()]
    unpriced = plan.loc[plan["per_month_usd"].isna(), "model"].tolist()
    priced = priced.iloc[::-1]  # plotly draws the first bar at the bottom
    fig = go.Figure(go.Bar(
        x=priced["per_month_usd"], y=priced["model"], orientation="h",
        marker_color=[_colour(p, t) for p, t in zip(priced["pass_included"], priced["tier"],
                                                    strict=True)],
        text=priced["per_month"], textposition="auto",
        customdata=priced[["tier", "price_source"]].to_numpy(),
        hovertemplate="%{y}: %{text} a month<br>%{customdata[0]}<br>%{customdata[1]}"
                      "<extra></extra>",
    ))
    fig.update_layout(title=_title("Cost per month by model", unpriced, key=COLOUR_KEY),
                      xaxis_title="US$ per month (30 days)", yaxis_title=None,
                      height=max(280, 34 * len(priced) + 150), **_LAYOUT)
    return fig


def growth_over_months(months: pd.DataFrame, *, top: int = 6) -> go.Figure:
    """Lines of $/month over the horizon with compounding growth, for the `top` cheapest."""
    order = (months[months["month"] == 1].sort_values("usd")["model"].head(top).tolist()
             if not months.empty else [])
    fig = go.Figure()
    for model in order:
        m = months[months["model"] == model]
        fig.add_trace(go.Scatter(x=m["month"], y=m["usd"], mode="lines+markers", name=model,
                                 hovertemplate=f"{model}: month %{{x}} $%{{y:,.2f}}"
                                               "<extra></extra>"))
    fig.update_layout(title=_title(f"Cost per month with growth ({len(order)} cheapest)", []),
                      xaxis_title="month", yaxis_title="US$ per month", height=380, **_LAYOUT)
    fig.update_xaxes(dtick=1)
    return fig


def cost_vs_context(plan: pd.DataFrame) -> go.Figure:
    """$/month against context window: what a bigger window costs for this workload."""
    ok = plan[plan["per_month_usd"].notna() & plan["context_length"].notna()]
    left_out = plan.loc[~plan.index.isin(ok.index), "model"].tolist()
    # Many models share a context size (1,048,576): labels there would pile up, so a point
    # whose context is shared is named on hover only.
    crowded = ok["context_length"].duplicated(keep=False)
    fig = go.Figure()
    for label, mask in (("Pass", ok["pass_included"].astype(bool)),
                        ("Serverless / other", ~ok["pass_included"].astype(bool))):
        part = ok[mask]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["context_length"].astype("float64"), y=part["per_month_usd"],
            mode="markers+text", name=label, text=part["model"].where(~crowded[mask], ""),
            customdata=part["model"], textposition="top center",
            marker={"size": 12, "color": PASS_COLOUR if label == "Pass" else SERVERLESS_COLOUR,
                    "symbol": ["circle" if f is not False else "x" for f in part["fits_context"]]},
            hovertemplate="%{customdata}<br>context %{x:,} tokens<br>$%{y:,.2f} a month"
                          "<extra></extra>",
        ))
    fig.update_layout(title=_title("Cost vs context window (x: workload does not fit)",
                                   left_out, "no price or no context length",
                                   key="models sharing a context size are named on hover"),
                      xaxis_title="context window (tokens, log scale)",
                      yaxis_title="US$ per month", height=420, **_LAYOUT)
    fig.update_xaxes(type="log")
    return fig


def reprice_by_model(per_model: pd.DataFrame, as_logged_usd: float | None) -> go.Figure:
    """What the uploaded usage costs on each model; a dashed line at what it cost as logged."""
    priced = per_model[per_model["total_usd"].notna()].iloc[::-1]
    unpriced = per_model.loc[per_model["total_usd"].isna(), "model"].tolist()
    fig = go.Figure(go.Bar(
        x=priced["total_usd"], y=priced["model"], orientation="h", text=priced["total"],
        textposition="auto",
        marker_color=[_colour(p, t) for p, t in zip(priced["pass_included"], priced["tier"],
                                                    strict=True)],
        hovertemplate="%{y}: %{text}<extra></extra>",
    ))
    key = COLOUR_KEY
    if as_logged_usd is not None:
        # the line's label lives in the subtitle: an annotation would collide with it
        fig.add_vline(x=as_logged_usd, line_dash="dash", line_color="#c62828")
        key += f"<br>red dashed line: as logged, {format_usd(as_logged_usd)}"
    fig.update_layout(title=_title("This usage priced on every model", unpriced, key=key),
                      xaxis_title="US$", height=max(300, 34 * len(priced) + 170),
                      **{**_LAYOUT, "margin": {**_LAYOUT["margin"], "t": 120}})
    return fig


def daily_usage(days: pd.DataFrame) -> go.Figure:
    """Stacked daily input/output tokens, with the estimated spend on a second axis."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=days["date"], y=days["input_tokens"], name="input tokens",
                         marker_color="#90caf9"))
    fig.add_trace(go.Bar(x=days["date"], y=days["output_tokens"], name="output tokens",
                         marker_color="#1565c0"))
    if "usd" in days and days["usd"].notna().any():
        fig.add_trace(go.Scatter(x=days["date"], y=days["usd"], name="spend (estimate)",
                                 yaxis="y2", mode="lines+markers", line_color="#c62828"))
    fig.update_layout(barmode="stack", title=_title("Daily tokens and spend", []),
                      yaxis={"title": "tokens"},
                      yaxis2={"title": "US$ (estimate)", "overlaying": "y", "side": "right",
                              "rangemode": "tozero", "tickprefix": "$", "showgrid": False},
                      height=380, **_LAYOUT)
    return fig


def model_spend(priced: pd.DataFrame) -> go.Figure:
    """Per-model spend: Wafer's reported estimate next to this app's price."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=priced["model"], y=priced["reported_usd"], name="endpoint's estimate"))
    fig.add_trace(go.Bar(x=priced["model"], y=priced["our_usd"], name="priced here"))
    unpriced = priced.loc[priced["our_usd"].isna(), "model"].tolist()
    fig.update_layout(barmode="group",
                      title=_title("Spend per model", unpriced, "not priced here: not in catalog"),
                      yaxis_title="US$", height=360, **_LAYOUT)
    return fig


def metrics_series(ts: pd.DataFrame) -> go.Figure:
    """Requests and errors per time bin, TTFT p50/p90 on a second axis."""
    fig = go.Figure()
    if ts.empty or "time" not in ts:
        fig.update_layout(title=_title("No requests in this range", []), height=300, **_LAYOUT)
        return fig
    for col, name, colour in (("requests", "requests", "#1565c0"),
                              ("error_count", "errors", "#c62828")):
        if col in ts:
            fig.add_trace(go.Bar(x=ts["time"], y=ts[col], name=name, marker_color=colour))
    for col, name in (("ttft_p50_ms", "TTFT p50 (ms)"), ("ttft_p90_ms", "TTFT p90 (ms)")):
        if col in ts:
            fig.add_trace(go.Scatter(x=ts["time"], y=ts[col], name=name, yaxis="y2",
                                     mode="lines+markers", connectgaps=False))
    fig.update_layout(barmode="overlay", title=_title("Requests, errors and time to first token",
                                                      []),
                      yaxis={"title": "requests"},
                      yaxis2={"title": "ms", "overlaying": "y", "side": "right",
                              "rangemode": "tozero"},
                      height=380, **_LAYOUT)
    return fig


def daily_cost(days: pd.DataFrame) -> go.Figure:
    """Cost per day of logged usage on its own models."""
    fig = go.Figure(go.Bar(x=days["date"], y=days["usd"], marker_color=SERVERLESS_COLOUR,
                           customdata=days["requests"],
                           hovertemplate="%{x|%Y-%m-%d}: $%{y:,.4f}, %{customdata:,} requests"
                                         "<extra></extra>"))
    fig.update_layout(title=_title("Cost per day as logged (UTC days)", []),
                      yaxis={"title": "US$", "tickprefix": "$"}, height=320, **_LAYOUT)
    return fig
