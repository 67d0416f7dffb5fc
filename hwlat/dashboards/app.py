"""The local interactive app (Dash): a latency budget picks the best published network under it,
and clicking a network shows its per-block latency, predicted against measured.

Latencies in milliseconds on the store's device; top-1 is the published ImageNet accuracy (%).
Bind to 127.0.0.1 (the default of ``hwlat dashboard serve``) unless you mean to expose it.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from hwlat.dashboards import figures as F
from hwlat.dashboards import frames as D
from hwlat.profiler.storage.device import DEFAULT_RUNTIME

log = logging.getLogger("hwlat")


def app_points(
    store, predictor=None, runtime: str = DEFAULT_RUNTIME, device: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(published networks with ``latency_ms`` here — measured, else predicted — , store frame);
    ``device`` (a name or key) picks one device of the store, whatever its runtime."""
    from hwlat.profiler.storage.device_select import select_device
    from hwlat.profiler.storage.store import open_store

    with open_store(store, readonly=True) as st:
        if device is None:
            frame = st.frame(runtime=runtime)
        else:
            frame = st.frame()
            frame = frame[
                frame["device_key"] == select_device(st.devices(), device, str(store))["device_key"]
            ]
    pts = D.pareto_points(D.models(frame), predictor)
    pts["latency_ms"] = pts["measured_ms"].fillna(pts["predicted_ms"])
    pts["latency_source"] = np.where(pts["measured_ms"].notna(), "measured", "predicted")
    return pts[pts["latency_ms"].notna()].reset_index(drop=True), frame


def best_under(points: pd.DataFrame, budget_ms: float) -> pd.Series | None:
    """The highest published top-1 among ``points`` with ``latency_ms <= budget_ms`` (None if none)."""
    ok = points[points["latency_ms"] <= budget_ms]
    return None if ok.empty else ok.loc[ok["top1"].idxmax()]


def budget_figure(points: pd.DataFrame, budget_ms: float, best) -> F.go.Figure:
    """Top-1 against latency with the budget line and the chosen network highlighted."""
    import plotly.graph_objects as go

    if points.empty:
        return F.note_figure(
            "Published top-1 vs latency",
            "No latency for any published network: measure the zoo grid or give a predictor.",
        )
    fig = go.Figure()
    for fam, g in points.groupby("family"):
        fig.add_trace(
            go.Scatter(
                x=g["latency_ms"],
                y=g["top1"],
                mode="markers",
                name=fam,
                customdata=[int(i) for i in g.index],
                text=[
                    f"{n} @{r}px ({s})" for n, r, s in zip(g["name"], g["resolution"], g["latency_source"])
                ],
                hovertemplate="%{text}<br>%{x:.2f} ms, top-1 %{y:.1f} %",
                marker={"size": 10, "color": F.COLORS.get(fam, "#333")},
            )
        )
    if best is not None:
        fig.add_trace(
            go.Scatter(
                x=[best["latency_ms"]],
                y=[best["top1"]],
                mode="markers",
                name="best under budget",
                customdata=[int(best.name)],
                marker={"size": 18, "symbol": "circle-open", "color": "black", "line": {"width": 3}},
                hoverinfo="skip",
            )
        )
    fig.add_vline(x=budget_ms, line_dash="dash", line_color="green")
    fig.update_layout(
        title="Published top-1 vs latency here (click a point for its blocks)",
        xaxis_title="latency (ms)",
        yaxis_title="ImageNet top-1 (%, published)",
        height=480,
    )
    return fig


def make_app(store, predictor_path=None, runtime: str = DEFAULT_RUNTIME, device: str | None = None):
    """Build the Dash app for ``store`` (read only) and an optional predictor file."""
    from dash import Dash, Input, Output, dcc, html

    from hwlat.archs import decode

    pred = None
    if predictor_path:
        from hwlat.latency_models import load

        pred = load(predictor_path)
    points, frame = app_points(store, pred, runtime, device)
    hi = float(points["latency_ms"].max()) if not points.empty else 1.0
    lo = float(points["latency_ms"].min()) if not points.empty else 0.0
    app = Dash(__name__, title="hwlat")
    app.layout = html.Div(
        [
            html.H2("hwlat: the best network under a latency budget"),
            html.Div(
                f"runtime {runtime}; {len(points)} published networks with a latency here"
                + ("" if pred is None else f"; predictor {pred.kind}"),
                id="info",
            ),
            html.Label("latency budget (ms)"),
            dcc.Slider(
                id="budget",
                min=lo,
                max=hi,
                value=(lo + hi) / 2,
                step=None if points.empty else (hi - lo) / 200,
                marks=None,
                tooltip={"placement": "bottom", "always_visible": True},
            ),
            html.Div(id="best", style={"fontWeight": "bold", "margin": "0.5em 0"}),
            dcc.Graph(id="pareto"),
            dcc.Graph(id="blocks"),
        ],
        style={"fontFamily": "sans-serif", "maxWidth": "1200px", "margin": "auto"},
    )

    @app.callback(Output("pareto", "figure"), Output("best", "children"), Input("budget", "value"))
    def _budget(budget):
        best = best_under(points, float(budget)) if budget is not None else None
        text = (
            "no published network fits this budget"
            if best is None
            else f"best under {budget:.2f} ms: {best['name']} @{best['resolution']}px, top-1 {best['top1']:.1f} % "
            f"(published), {best['latency_ms']:.2f} ms ({best['latency_source']})"
        )
        return budget_figure(points, float(budget or 0), best), text

    @app.callback(Output("blocks", "figure"), Input("pareto", "clickData"))
    def _blocks(click):
        log.debug("clickData %s", click)
        idx = (click or {}).get("points", [{}])[0].get("customdata")
        if idx is None or points.empty:
            return F.note_figure("Per-block latency", "Click a network in the plot above to see its blocks.")
        r = points.loc[int(idx)]
        arch = decode(r["arch"], name=r["name"])
        return F.layer_breakdown(
            D.predicted_blocks(pred, arch),
            D.measured_blocks(frame, arch),
            title=f"Per-block latency: {r['name']} @{r['resolution']}px",
        )

    return app
