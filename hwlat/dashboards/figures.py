"""Plotly figures: pure functions from the tables of :mod:`hwlat.dashboards.frames` to Figures.

Latencies on the axes are milliseconds on *this* device (one core, batch 1) unless the trace says
"Pixel-1 (paper)"; MAdds are millions (conv + FC multiply-adds); top-1 is the published ImageNet
accuracy (%), never a number trained here. Given empty or insufficient data, every function returns
a figure whose only content is a visible note saying what is missing (:func:`note_figure`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from hwlat.dashboards.frames import pareto_front

COLORS = {
    "large": "#1f77b4",
    "small": "#d62728",
    "V2": "#7f7f7f",
    "MnasNet-A1": "#9467bd",
    "Large minimalistic": "#17becf",
    "Small minimalistic": "#ff7f0e",
    "custom": "#bcbd22",
}
_MISSING_CLASS = "hwlat-note"


def note_figure(title: str, message: str) -> go.Figure:
    """An empty figure with ``message`` written in its middle (the "no data" figure)."""
    fig = go.Figure()
    fig.update_layout(
        title=title, xaxis={"visible": False}, yaxis={"visible": False}, height=300, meta={"note": message}
    )
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 15, "color": "#a33"},
    )
    return fig


def is_note(fig: go.Figure) -> bool:
    """Whether ``fig`` is a "no data" figure of :func:`note_figure`."""
    meta = fig.layout.meta
    return isinstance(meta, dict) and "note" in meta


def _hover(df: pd.DataFrame, ms_col: str) -> list[str]:
    return [
        f"{r['name']} ×{r['multiplier']:g} @{int(r['resolution'])}px<br>"
        f"{r[ms_col]:.2f} ms · {r['madds'] / 1e6:.1f} M MAdds · {r['params'] / 1e6:.2f} M params"
        + (f"<br>top-1 {r['top1']:.1f} % (published)" if pd.notna(r.get("top1")) else "")
        for r in df.to_dict("records")
    ]


def pareto(points: pd.DataFrame, device: str = "this device") -> go.Figure:
    """Published top-1 (%) against latency (ms) here: the paper's Figure 7 on this device.

    ``points`` is :func:`hwlat.dashboards.frames.pareto_points`. Traces: measured and predicted
    latency per family (V3 Large/Small), the Pareto frontier of the measured points (predicted when
    nothing is measured), reference networks, and the paper's Pixel-1 latencies (hidden; the
    buttons toggle them and pick a family).
    """
    title = f"Published ImageNet top-1 vs latency on {device}"
    if (
        points is None
        or points.empty
        or not (points["measured_ms"].notna().any() or points["predicted_ms"].notna().any())
    ):
        return note_figure(
            title,
            "No latency for any published network: the store has no model "
            "measurements of the V3 zoo grid and no predictor was given.",
        )
    fig = go.Figure()
    fams = []  # family of each trace, for the family buttons
    pixel = []  # whether each trace is a Pixel-1 (paper) trace
    v3 = points[points["family"].isin(["large", "small"])]
    for fam, g in v3.groupby("family"):
        for col, kind, sym in (("measured_ms", "measured", "circle"), ("predicted_ms", "predicted", "x")):
            h = g[g[col].notna()].sort_values(col)
            if h.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=h[col],
                    y=h["top1"],
                    mode="markers",
                    name=f"V3-{fam.title()} {kind}",
                    marker={"color": COLORS[fam], "symbol": sym, "size": 9},
                    text=_hover(h, col),
                    hoverinfo="text",
                )
            )
            fams.append(fam), pixel.append(False)
        h = g[g["pixel1_ms"].notna()].sort_values("pixel1_ms")
        fig.add_trace(
            go.Scatter(
                x=h["pixel1_ms"],
                y=h["top1"],
                mode="markers+lines",
                visible=False,
                name=f"V3-{fam.title()} Pixel-1 (paper)",
                text=_hover(h, "pixel1_ms"),
                hoverinfo="text",
                line={"dash": "dot", "color": COLORS[fam]},
                marker={"symbol": "diamond-open", "color": COLORS[fam]},
            )
        )
        fams.append(fam), pixel.append(True)
    col = "measured_ms" if v3["measured_ms"].notna().any() else "predicted_ms"
    front = v3[pareto_front(v3[col], v3["top1"])].sort_values(col)
    if not front.empty:
        fig.add_trace(
            go.Scatter(
                x=front[col],
                y=front["top1"],
                mode="lines",
                name=f"Pareto frontier ({col[:-3]})",
                line={"color": "black", "width": 2},
                hoverinfo="skip",
            )
        )
        fams.append("all"), pixel.append(False)
    refs = points[~points["family"].isin(["large", "small"])]
    for fam, g in refs.groupby("family"):
        for c, kind, vis in (
            ("measured_ms", "measured", True),
            ("predicted_ms", "predicted", True),
            ("pixel1_ms", "Pixel-1 (paper)", False),
        ):
            h = g[g[c].notna()]
            if h.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=h[c],
                    y=h["top1"],
                    mode="markers",
                    name=f"{fam} {kind}",
                    visible=vis,
                    marker={
                        "color": COLORS.get(fam, "#333"),
                        "size": 11,
                        "symbol": "star" if kind != "Pixel-1 (paper)" else "star-open",
                    },
                    text=_hover(h, c),
                    hoverinfo="text",
                )
            )
            fams.append("ref"), pixel.append(not vis)
    if not v3[["measured_ms"]].notna().any().item():
        fig.add_annotation(
            text="no measurements of the V3 grid: predicted latencies only",
            showarrow=False,
            x=0.5,
            y=1.08,
            xref="paper",
            yref="paper",
            font={"color": "#a33"},
        )

    def vis(fam: str, with_pixel: bool) -> list[bool]:
        return [
            (fam == "all" or f in (fam, "all", "ref")) and (with_pixel or not p) for f, p in zip(fams, pixel)
        ]

    buttons = [
        {"label": lab, "method": "update", "args": [{"visible": vis(f, px)}]}
        for f, px, lab in (
            ("all", False, "This device"),
            ("all", True, "+ Pixel-1 (paper)"),
            ("large", False, "Large"),
            ("small", False, "Small"),
        )
    ]
    fig.update_layout(
        title=title,
        xaxis_title="latency (ms)",
        yaxis_title="ImageNet top-1 (%, published)",
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "buttons": buttons,
                "x": 0,
                "y": 1.15,
                "xanchor": "left",
                "showactive": True,
            }
        ],
        hovermode="closest",
        height=520,
    )
    return fig


def madds_latency(model_df: pd.DataFrame, device: str = "this device") -> go.Figure:
    """MAdds (M) against measured latency (ms) of every measured network, with a least-squares line.

    Networks far from the line are where MAdds mislead: same MAdds, different latency.
    """
    title = f"MAdds vs measured latency on {device}"
    if model_df is None or len(model_df) < 2:
        return note_figure(title, "Fewer than 2 measured networks in the store: nothing to compare.")
    df = model_df.assign(madds_M=model_df["madds"] / 1e6, top1=np.nan)
    fig = go.Figure()
    for fam, g in df.groupby("family"):
        fig.add_trace(
            go.Scatter(
                x=g["madds_M"],
                y=g["latency_ms"],
                mode="markers",
                name=fam,
                marker={"color": COLORS.get(fam, "#333"), "size": 7, "opacity": 0.8},
                text=_hover(g, "latency_ms"),
                hoverinfo="text",
            )
        )
    k, b = np.polyfit(df["madds_M"], df["latency_ms"], 1)
    xs = np.linspace(df["madds_M"].min(), df["madds_M"].max(), 20)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=k * xs + b,
            mode="lines",
            name=f"fit: {k * 100:.2f} ms / 100 M MAdds",
            line={"color": "black", "dash": "dash"},
            hoverinfo="skip",
        )
    )
    fig.update_layout(title=title, xaxis_title="MAdds (M)", yaxis_title="latency (ms)", height=480)
    return fig


def layer_breakdown(
    predicted: pd.DataFrame | None, measured: pd.DataFrame | None, title: str = "Per-block latency"
) -> go.Figure:
    """Per-block latency (ms), predicted against measured.

    ``predicted`` is a predictor's ``predict_layers`` frame with an extra ``block_index`` column
    (:func:`hwlat.dashboards.frames.block_index`; without it the rows are grouped by ``block``),
    ``measured`` is :func:`hwlat.dashboards.frames.measured_blocks`. Blocks are the stem, each
    bottleneck and the head, as the profiler times them.
    """
    has_p = predicted is not None and not predicted.empty
    has_m = measured is not None and not measured.empty
    if not (has_p or has_m):
        return note_figure(
            title,
            "No per-block data: no predictor given and no block measurements of this network in the store.",
        )
    fig = go.Figure()
    labels = {}
    if has_m:
        labels = {int(i): f"{i}: {lab}" for i, lab in zip(measured["block"], measured["label"])}
        fig.add_trace(
            go.Bar(
                x=list(labels.values()),
                y=measured["latency_ms"],
                name="measured (block alone)",
                marker_color="#1f77b4",
            )
        )
    if has_p:
        key = "block_index" if "block_index" in predicted else "block"
        per = predicted.groupby(predicted[key].fillna(-1), sort=False)["latency_ms"].sum()
        x = [labels.get(int(i), str(int(i))) for i in per.index]
        fig.add_trace(
            go.Bar(
                x=x, y=per.to_numpy(), name=f"predicted (total {per.sum():.2f} ms)", marker_color="#ff7f0e"
            )
        )
    if not has_m:
        fig.add_annotation(
            text="no block measurements of this network in the store",
            showarrow=False,
            x=0.5,
            y=1.06,
            xref="paper",
            yref="paper",
            font={"color": "#a33"},
        )
    fig.update_layout(
        title=title, barmode="group", yaxis_title="latency (ms)", xaxis_tickangle=-45, height=560
    )
    return fig


def predictor_error(errors: pd.DataFrame) -> go.Figure:
    """Predicted against measured latency (ms) per predictor, with the ±10 % band and the metrics.

    ``errors`` is :func:`hwlat.dashboards.frames.predictor_errors` (include a ``madds`` predictor as
    the baseline). Each predictor's RMSPE, ±10 % accuracy and Kendall τ are in its legend entry,
    computed on the networks it was not trained on when there are at least 2 (``trained`` column),
    else on all of them and marked "training networks".
    """
    from hwlat.latency_models.metrics import metrics

    title = "Predictor error: predicted vs measured"
    if errors is None or errors.empty:
        return note_figure(
            title,
            "No predictor error to show: give a predictor file (--predictor) "
            "and a store with measured networks.",
        )
    fig = go.Figure()
    lo, hi = (
        errors[["measured_ms", "predicted_ms"]].min().min(),
        errors[["measured_ms", "predicted_ms"]].max().max(),
    )
    xs = np.array([lo * 0.9, hi * 1.1])
    fig.add_trace(
        go.Scatter(
            x=np.r_[xs, xs[::-1]],
            y=np.r_[xs * 0.9, xs[::-1] * 1.1],
            fill="toself",
            fillcolor="rgba(0,160,0,0.12)",
            line={"width": 0},
            name="±10 %",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(x=xs, y=xs, mode="lines", line={"color": "green"}, name="exact", hoverinfo="skip")
    )
    lines = []
    for label, g in errors.groupby("predictor", sort=False):
        held = g[~g["trained"].astype(bool)] if "trained" in g else g
        on, which = (held, "held-out") if len(held) >= 2 else (g, "training networks")
        try:
            m = metrics(on["measured_ms"], on["predicted_ms"])
            stat = f"RMSPE {m['rmspe']:.1f} %, ±10 % {100 * m['acc10']:.0f} %, τ {m['kendall_tau']:.2f}"
        except ValueError:
            stat = "too few networks for metrics"
        lines.append(f"<b>{label}</b>: {stat} ({which}, n={len(on)})")
        fig.add_trace(
            go.Scatter(
                x=g["measured_ms"],
                y=g["predicted_ms"],
                mode="markers",
                name=f"{label}: {stat}",
                text=[f"{n} @{r}px" for n, r in zip(g["name"], g["resolution"])],
                hovertemplate="%{text}<br>measured %{x:.2f} ms<br>predicted %{y:.2f} ms",
            )
        )
    fig.add_annotation(
        text="<br>".join(lines),
        x=0.01,
        y=0.99,
        xref="paper",
        yref="paper",
        showarrow=False,
        align="left",
        xanchor="left",
        yanchor="top",
        bgcolor="rgba(255,255,255,0.8)",
    )
    fig.update_layout(
        title=title,
        xaxis_title="measured latency (ms)",
        yaxis_title="predicted latency (ms)",
        height=520,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def search_trajectory(steps: pd.DataFrame | None, title: str = "Search trajectory") -> go.Figure:
    """NetAdapt / NAS progress from a history (:func:`hwlat.dashboards.frames.read_history`).

    Latency (ms) and accuracy per step with the proposal (layer cut) in the hover text; when the
    steps carry a ``reward`` (NAS), the reward per step and the latency-accuracy Pareto set.
    """
    if steps is None or steps.empty:
        return note_figure(
            title,
            "No search history: the runs folder is missing or holds no "
            "readable NetAdapt/NAS history (a JSON list of steps).",
        )
    if "phase" in steps and (steps["phase"] == "seed").any():
        return netadapt_trajectory(steps, title)
    from plotly.subplots import make_subplots

    has_r = steps["reward"].notna().any()
    fig = make_subplots(
        rows=1,
        cols=2 if has_r else 1,
        specs=[[{"secondary_y": True}] + ([{}] if has_r else [])],
        subplot_titles=["latency and accuracy per step"] + (["candidates: Pareto set"] if has_r else []),
    )
    hover = [f"step {s}<br>{p or ''}" for s, p in zip(steps["step"], steps["proposal"])]
    if steps["latency_ms"].notna().any():
        fig.add_trace(
            go.Scatter(
                x=steps["step"],
                y=steps["latency_ms"],
                name="latency (ms)",
                mode="lines+markers",
                text=hover,
                hovertemplate="%{text}<br>%{y:.2f} ms",
            ),
            row=1,
            col=1,
        )
    if steps["accuracy"].notna().any():
        fig.add_trace(
            go.Scatter(
                x=steps["step"],
                y=steps["accuracy"],
                name="accuracy",
                mode="lines+markers",
                text=hover,
                hovertemplate="%{text}<br>acc %{y:.3f}",
            ),
            row=1,
            col=1,
            secondary_y=True,
        )
    if has_r:
        fig.add_trace(
            go.Scatter(
                x=steps["step"],
                y=steps["reward"],
                name="reward",
                mode="markers",
                marker={"size": 4},
                text=hover,
                hovertemplate="%{text}<br>reward %{y:.3f}",
            ),
            row=1,
            col=1,
            secondary_y=True,
        )
        ok = steps["latency_ms"].notna() & steps["accuracy"].notna()
        c = steps[ok]
        fig.add_trace(
            go.Scatter(
                x=c["latency_ms"],
                y=c["accuracy"],
                mode="markers",
                name="candidates",
                marker={"color": "#bbb"},
            ),
            row=1,
            col=2,
        )
        front = c[pareto_front(c["latency_ms"], c["accuracy"])].sort_values("latency_ms")
        fig.add_trace(
            go.Scatter(
                x=front["latency_ms"],
                y=front["accuracy"],
                mode="lines+markers",
                name="Pareto set",
                line={"color": "black"},
            ),
            row=1,
            col=2,
        )
    if not fig.data:
        return note_figure(title, "The search history has no latency, accuracy or reward values.")
    fig.update_layout(title=title, height=440)
    return fig


def netadapt_trajectory(steps: pd.DataFrame, title: str = "NetAdapt") -> go.Figure:
    """Accuracy against predicted latency (ms) per NetAdapt step, seed to final, with baselines
    (e.g. uniform width scaling) beside it; measured latency in the hover text when known."""
    run = steps[steps["phase"].isin(["seed", "step", "final"])]
    fig = go.Figure()

    def hover(df):
        return [
            f"{p}<br>{lat:.3f} ms predicted" + (f", {m:.3f} ms measured" if pd.notna(m) else "")
            for p, lat, m in zip(df["proposal"], df["latency_ms"], df["measured_ms"])
        ]

    fig.add_trace(
        go.Scatter(
            x=run["latency_ms"],
            y=run["accuracy"],
            mode="lines+markers",
            name="NetAdapt",
            text=hover(run),
            hovertemplate="%{text}<br>acc %{y:.3f}",
        )
    )
    ends = run[run["phase"].isin(["seed", "final"])]
    fig.add_trace(
        go.Scatter(
            x=ends["latency_ms"],
            y=ends["accuracy"],
            mode="markers+text",
            name="seed / final",
            text=ends["phase"],
            textposition="top center",
            hoverinfo="skip",
            marker={"size": 12, "symbol": "diamond"},
        )
    )
    base = steps[~steps["phase"].isin(["seed", "step", "final"])]
    if not base.empty:
        fig.add_trace(
            go.Scatter(
                x=base["latency_ms"],
                y=base["accuracy"],
                mode="markers+text",
                name="baselines",
                text=base["proposal"],
                textposition="bottom center",
                hovertext=hover(base),
                hoverinfo="text",
                marker={"size": 12, "symbol": "square", "color": "#d62728"},
            )
        )
    fig.update_layout(title=title, xaxis_title="predicted latency (ms)", yaxis_title="accuracy", height=440)
    return fig


def ablation_deltas(abl: pd.DataFrame, device: str = "this device") -> go.Figure:
    """Latency (ms) and MAdds (M) deltas of the paper's ablations here, beside the paper's deltas.

    ``abl`` is :func:`hwlat.dashboards.frames.ablations`; deltas are variant minus V3-Large 1.0.
    """
    title = f"The paper's ablations on {device} (variant − V3-Large 1.0 @224)"
    if abl is None or abl.empty:
        return note_figure(title, "No ablation data: no ablation variants were compared.")
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=["latency delta (ms)", "MAdds delta (M)"])
    x = [f"{v}" for v in abl["variant"]]
    here = [f"{s}" for s in abl["source"]]
    fig.add_trace(
        go.Bar(
            x=x,
            y=abl["delta_ms"],
            name="this device",
            text=here,
            marker_color="#1f77b4",
            hovertemplate="%{x}: %{y:.2f} ms (%{text})",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=x, y=abl["paper_delta_ms"], name="paper (Pixel-1)", marker_color="#aaa"), row=1, col=1
    )
    fig.add_trace(
        go.Bar(x=x, y=abl["delta_madds_M"], name="MAdds here", marker_color="#2ca02c"), row=1, col=2
    )
    fig.add_trace(
        go.Bar(x=x, y=abl["paper_delta_madds_M"], name="MAdds (paper)", marker_color="#ccc"), row=1, col=2
    )
    if abl["delta_ms"].isna().all():
        fig.add_annotation(
            text="no latency here: the ablation variants are not measured and no predictor was given",
            x=0.5,
            y=1.12,
            xref="paper",
            yref="paper",
            showarrow=False,
            font={"color": "#a33"},
        )
    fig.update_layout(title=title, barmode="group", height=520)
    fig.update_xaxes(tickangle=-25)
    return fig


def task_latency(points: pd.DataFrame, tail: pd.DataFrame, device: str = "this device") -> go.Figure:
    """The paper's detection and segmentation networks: latency here (ms, log axis) against the
    published COCO mAP / Cityscapes mIOU, and the reduced-tail saving (%) here beside the paper's.

    ``points`` is :func:`hwlat.dashboards.frames.task_points`, ``tail`` :func:`~hwlat.dashboards.frames.reduced_tail`.
    Filled markers are measured here, open ones predicted, crosses predicted far outside what the
    predictor learned from (extrapolated); the hover gives the paper's phone latency.
    """
    title = f"Detection and segmentation (paper Section 6) on {device}"
    if points is None or points.empty or points["here_ms"].isna().all():
        return note_figure(
            title,
            "No latency for the detection/segmentation networks: none is measured "
            "(hwlat profile models ssdlite_mobilenetv3_large ...) and no predictor was given.",
        )
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.36, 0.36, 0.28],
        horizontal_spacing=0.07,
        subplot_titles=[
            "SSDLite, COCO (Table 6)",
            "LR-ASPP, Cityscapes (Tables 7, 8)",
            "reduced tail: latency saved (%)",
        ],
    )
    for col, task in ((1, "detection"), (2, "segmentation")):
        for src, symbol in (
            ("measured", "circle"),
            ("predicted", "circle-open"),
            ("extrapolated", "x-thin-open"),
        ):
            g = points[(points["task"] == task) & (points["source"] == src) & points["here_ms"].notna()]
            if g.empty:
                continue
            text = [
                f"{m} @{r}<br>{ms:.1f} ms here ({src})<br>{acc} {met}<br>paper: {p:.0f} ms on {d}"
                for m, r, ms, acc, met, p, d in zip(
                    g["model"],
                    g["resolution"],
                    g["here_ms"],
                    g["accuracy"],
                    g["metric"],
                    g["paper_ms"],
                    g["paper_device"],
                )
            ]
            fig.add_trace(
                go.Scatter(
                    x=g["here_ms"],
                    y=g["accuracy"],
                    mode="markers",
                    name=f"{task}, {src}",
                    marker={
                        "symbol": symbol,
                        "size": 10,
                        "color": "#1f77b4" if task == "detection" else "#2ca02c",
                    },
                    text=text,
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
    t = tail[tail["full_ms"].notna() | tail["paper_saving_pct"].notna()] if tail is not None else tail
    if t is not None and not t.empty:
        x = [
            f"{n.split('_', 1)[0]} {n.rsplit('_', 1)[1]} @{r}" for n, r in zip(t["network"], t["resolution"])
        ]
        fig.add_trace(
            go.Bar(
                x=x,
                y=t["saving_pct"],
                name="saved here",
                text=t["source"],
                marker_color="#1f77b4",
                hovertemplate="%{x}: %{y:.1f} % (%{text})",
            ),
            row=1,
            col=3,
        )
        fig.add_trace(
            go.Bar(
                x=x,
                y=t["paper_saving_pct"],
                name="saved (paper)",
                marker_color="#aaa",
                hovertemplate="%{x}: %{y:.1f} % (paper)",
            ),
            row=1,
            col=3,
        )
    fig.update_xaxes(type="log", title_text="latency here (ms)", row=1, col=1)
    fig.update_xaxes(type="log", title_text="latency here (ms)", row=1, col=2)
    fig.update_yaxes(title_text="COCO mAP (published)", row=1, col=1)
    fig.update_yaxes(title_text="mIOU % (published)", row=1, col=2)
    fig.update_layout(title=title, barmode="group", height=520, hovermode="closest")
    return fig


def op_efficiency(eff: pd.DataFrame, device: str = "this device") -> go.Figure:
    """Efficiency (GMAC/s, log axis) of every measured kernel by op type and kernel size.

    ``eff`` is :func:`hwlat.profiler.analysis.anomalies.efficiency`. Kernels at least 2× slower than expected
    for their op type and size are drawn in red: where MAdds would mislead a search.
    """
    title = f"Kernel efficiency by op type and kernel size on {device}"
    if eff is None or eff.empty:
        return note_figure(
            title,
            "No kernel measurements: run `hwlat profile kernels ...` to see "
            "which op types and kernel sizes this device runs efficiently.",
        )
    df = eff.assign(
        cls=[f"{o} k{k}" if o in ("dwconv", "convKxK") else o for o, k in zip(eff["op"], eff["kernel"])]
    )
    order = sorted(df["cls"].unique())
    fig = go.Figure()
    slow = df["slowdown"] >= 2
    for name, part, color in (
        ("kernels", df[~slow], "#1f77b4"),
        ("≥2× slower than expected for its size", df[slow], "#d62728"),
    ):
        if part.empty:
            continue
        fig.add_trace(
            go.Box(
                x=part["cls"],
                y=part["gmacs"],
                name=name,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": color, "size": 5},
                line={"color": color},
                fillcolor="rgba(0,0,0,0)",
                text=part["label"],
                hovertemplate="%{text}<br>%{y:.2f} GMAC/s<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        yaxis={"title": "GMAC/s (MAdds per second / 1e9)", "type": "log"},
        xaxis={"title": "op type and kernel size", "categoryorder": "array", "categoryarray": order},
        boxmode="overlay",
        height=420,
    )
    return fig


INSIDE_TITLE = "Inside the network, measured"
XNNPACK_NOTE = (
    "XNNPACK ran this network: it merges every layer of one op type into one profile row, so its "
    "time is known per node type only and there is no per-layer comparison with the predictor."
)


def _note_line(fig: go.Figure, text: str, y: float = 1.0) -> None:
    """A visible note under the title (red, as every "what is missing" note of the report)."""
    fig.add_annotation(
        text=text,
        showarrow=False,
        x=0.0,
        y=y,
        xref="paper",
        yref="paper",
        xanchor="left",
        yanchor="bottom",
        align="left",
        font={"color": "#a33", "size": 12},
    )


def _ms(v) -> str:
    return "–" if pd.isna(v) else f"{v:.3f}"


def inside_network(
    inside: pd.DataFrame | None,
    disagreements: pd.DataFrame | None = None,
    title: str = INSIDE_TITLE,
    predictor: str = "predictor",
) -> go.Figure:
    """Measured against predicted time (ms per run) of every layer inside one network, and the
    table of the layers the predictor gets most wrong.

    ``inside`` is the rows of one network of :func:`hwlat.dashboards.frames.inside_layers` (its
    ``unplaced`` row last), ``disagreements`` :func:`~hwlat.dashboards.frames.layer_disagreements`
    of them. Layers on x in layer order, grouped bars measured / predicted; the note states the
    unplaced share (ops on no layer: their time and why) and what the predictor could not answer.
    """
    from plotly.subplots import make_subplots

    from hwlat.profiler.analysis.op_layers import UNPLACED

    if inside is None or inside.empty:
        return note_figure(title, "No per-op times of this network: nothing to place on its layers.")
    rows = inside[inside["layer"] != UNPLACED]
    off = inside[inside["layer"] == UNPLACED]
    total = float(inside["measured_ms"].sum())
    unplaced = float(off["measured_ms"].sum())
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.62, 0.38],
        vertical_spacing=0.2,
        specs=[[{"type": "xy"}], [{"type": "table"}]],
    )
    fig.add_trace(
        go.Bar(
            x=rows["layer"],
            y=rows["measured_ms"],
            name="measured (per-op profile)",
            marker_color="#1f77b4",
            customdata=rows["kind"],
            hovertemplate="%{x} (%{customdata}): %{y:.3f} ms measured<extra></extra>",
        ),
        row=1,
        col=1,
    )
    has_pred = rows["predicted_ms"].notna().any()
    if has_pred:
        fig.add_trace(
            go.Bar(
                x=rows["layer"],
                y=rows["predicted_ms"],
                name=f"predicted ({predictor})",
                marker_color="#ff7f0e",
                customdata=rows["kind"],
                hovertemplate="%{x} (%{customdata}): %{y:.3f} ms predicted<extra></extra>",
            ),
            row=1,
            col=1,
        )
    dis = disagreements if disagreements is not None else pd.DataFrame()
    header = ["layer", "kind", "measured ms", "predicted ms", "predicted − measured ms", "%"]
    if dis.empty:
        cells = [["no layer with both a measured and a predicted time"], [""], [""], [""], [""], [""]]
    else:
        cells = [
            list(dis["layer"]),
            list(dis["kind"]),
            [_ms(v) for v in dis["measured_ms"]],
            [_ms(v) for v in dis["predicted_ms"]],
            [f"{v:+.3f}" for v in dis["diff_ms"]],
            ["–" if pd.isna(v) else f"{v:+.0f} %" for v in dis["diff_pct"]],
        ]
    fig.add_trace(
        go.Table(
            header={"values": header, "fill_color": "#eee", "align": "left"},
            cells={"values": cells, "align": "left"},
            name="largest disagreements",
        ),
        row=2,
        col=1,
    )
    runs = int(inside["runs"].iloc[0]) if "runs" in inside and len(inside) else 1
    share = 100 * unplaced / total if total > 0 else 0.0
    lines = [
        f"measured: {total:.3f} ms per run over the ops (mean of {runs} warm run{'s' if runs != 1 else ''}); "
        f"unplaced: {unplaced:.3f} ms ({share:.1f} %)"
        + (f": {off['reason'].iloc[0]}" if len(off) and isinstance(off["reason"].iloc[0], str) else "")
    ]
    missing = rows[rows["measured_ms"].isna()]
    if len(missing):
        lines.append(f"{len(missing)} layer(s) with no op in the profile: " + ", ".join(missing["layer"][:4]))
    pnote = inside["predictor_note"].dropna() if "predictor_note" in inside else pd.Series(dtype=object)
    if not has_pred:
        lines.append(f"no prediction: {pnote.iloc[0] if len(pnote) else 'the predictor gave none'}")
    elif len(pnote):
        lines.append(str(pnote.iloc[0]))
    _note_line(fig, "<br>".join(lines))
    fig.update_layout(
        title=title,
        barmode="group",
        height=820,
        margin={"t": 90 + 16 * len(lines)},
        meta={"unplaced_ms": unplaced, "total_ms": total},
    )
    fig.update_xaxes(title_text="layer (IR row)", tickangle=-45, row=1, col=1)
    fig.update_yaxes(title_text="time per run (ms)", row=1, col=1)
    return fig


def node_type_breakdown(types: pd.DataFrame | None, title: str = INSIDE_TITLE) -> go.Figure:
    """Measured time (ms per run) per node type inside one network whose ops cannot be placed on
    layers (XNNPACK), with the visible note :data:`XNNPACK_NOTE` and the same rows as a table.

    ``types`` is the rows of one network of :func:`hwlat.dashboards.frames.inside_node_types`.
    """
    from plotly.subplots import make_subplots

    if types is None or types.empty:
        return note_figure(title, "No per-op times of this network.")
    total = float(types["measured_ms"].sum())
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.62, 0.38],
        vertical_spacing=0.2,
        specs=[[{"type": "xy"}], [{"type": "table"}]],
    )
    fig.add_trace(
        go.Bar(
            x=types["node_type"],
            y=types["measured_ms"],
            name="measured per node type",
            marker_color="#1f77b4",
            hovertemplate="%{x}: %{y:.3f} ms<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Table(
            header={
                "values": ["node type", "ms per run", "share", "calls per run", "delegated"],
                "fill_color": "#eee",
                "align": "left",
            },
            cells={
                "values": [
                    list(types["node_type"]),
                    [_ms(v) for v in types["measured_ms"]],
                    [f"{100 * v / total:.1f} %" if total > 0 else "–" for v in types["measured_ms"]],
                    [f"{v:g}" for v in types["times_called"]],
                    ["yes" if d else "no" for d in types["delegated"]],
                ],
                "align": "left",
            },
            name="per node type",
        ),
        row=2,
        col=1,
    )
    _note_line(
        fig, XNNPACK_NOTE.replace(", so ", ",<br>so ") + f"<br>measured: {total:.3f} ms per run over the ops"
    )
    fig.update_layout(
        title=title,
        barmode="group",
        height=820,
        margin={"t": 150},
        meta={"xnnpack": True, "total_ms": total},
    )
    fig.update_xaxes(tickangle=-30, row=1, col=1)
    fig.update_yaxes(title_text="time per run (ms)", row=1, col=1)
    return fig
