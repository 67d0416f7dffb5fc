"""The report's section of a device imported from a table (measured end to end elsewhere).

Such a device has only whole-network latencies: no blocks, no published top-1 of its networks. Its
section shows what the predictors of :mod:`hwlat.latency_models.e2e` and
:mod:`~hwlat.latency_models.transfer` make of it:

* measured against predicted latency (ms) for every given predictor of this device, with the MAdds
  proxy fitted here as the baseline, networks the predictor was trained on drawn apart;
* the error against N: Spearman and acc10 on held-out networks of the device when ``transfer``
  (from the sources of this device's ``transfer`` predictor, else from the given predictors of
  other devices that answer its networks without extrapolating), ``e2e`` and the MAdds proxy learn
  from N of its networks (computed here, seeded).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from hwlat.dashboards.figures import note_figure
from hwlat.errors import HwlatError

CURVE_NS = (5, 10, 20, 50, 100)
CURVE_TEST = 500
MAX_POINTS = 1500


def _networks(frame: pd.DataFrame) -> tuple[list, np.ndarray]:
    from hwlat.archs.codec import decode

    m = frame[(frame["granularity"] == "model") & (frame["variant"] == "warm")]
    m = m[["arch" in json.loads(s) for s in m["spec"]]]  # a measured file that did not import
    specs = [json.loads(s) for s in m["spec"]]
    archs = [decode(s["arch"], name=s.get("name", "custom")) for s in specs]
    return archs, m["latency_ms"].to_numpy(float)


def _device_key(pred) -> str | None:
    from hwlat.profiler.storage.device import device_key

    return device_key(pred.fingerprint_) if getattr(pred, "fingerprint_", None) else None


def measured_vs_predicted(points: pd.DataFrame, device: str) -> go.Figure:
    """Scatter of predicted against measured ms per predictor; ``points``: ``predictor,
    measured_ms, predicted_ms, trained``."""
    title = f"Measured vs predicted latency on {device}"
    if points.empty:
        return note_figure(
            title,
            "No predictor of this device was given (hwlat fit --kind e2e "
            "--device ... -o PRED; dashboard build --predictor PRED).",
        )
    fig = go.Figure()
    for (label, trained), g in points.groupby(["predictor", "trained"], sort=False):
        fig.add_trace(
            go.Scattergl(
                x=g["measured_ms"],
                y=g["predicted_ms"],
                mode="markers",
                name=f"{label} ({'trained on' if trained else 'held out'})",
                marker={"size": 4, "opacity": 0.35 if trained else 0.7},
            )
        )
    lo, hi = float(points["measured_ms"].min()), float(points["measured_ms"].max())
    xs = [lo, hi]
    fig.add_trace(go.Scatter(x=xs, y=xs, mode="lines", name="exact", line={"color": "black", "width": 1}))
    for f, dash in ((1.1, "dot"), (0.9, "dot")):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[v * f for v in xs],
                mode="lines",
                showlegend=f > 1,
                name="±10 %",
                line={"color": "gray", "width": 1, "dash": dash},
            )
        )
    fig.update_layout(title=title, xaxis_title="measured (ms)", yaxis_title="predicted (ms)", height=520)
    return fig


def error_vs_n(curve: pd.DataFrame, device: str, note: str = "") -> go.Figure:
    """Spearman and acc10 on held-out networks against N (log axis), one line per method."""
    title = f"Error against N measured networks on {device}"
    if curve.empty:
        return note_figure(title, note or "Too few networks of this device for a learning curve.")
    fig = go.Figure()
    for metric, dash in (("spearman", "solid"), ("acc10", "dash")):
        for method, g in curve.groupby("method", sort=False):
            fig.add_trace(
                go.Scatter(
                    x=g["n"],
                    y=g[metric],
                    mode="lines+markers",
                    name=f"{method} · {metric}",
                    line={"dash": dash},
                )
            )
    fig.update_layout(
        title=title + (f"<br><sup>{note}</sup>" if note else ""),
        xaxis_title="N (networks measured on the device)",
        xaxis_type="log",
        yaxis_title="Spearman (solid) / acc10 (dashed), held out",
        yaxis_range=[0, 1.02],
        height=480,
    )
    return fig


def learning_curve(archs, y, sources, ns=CURVE_NS, test=CURVE_TEST, seed=0) -> pd.DataFrame:
    """``method, n, spearman, acc10`` of transfer (from ``sources``), e2e and the MAdds proxy
    fitted on N networks and scored on ``test`` others (one seeded split)."""
    from hwlat.latency_models import EndToEnd, MAddsProxy, Transfer
    from hwlat.latency_models.metrics import metrics

    if len(y) < 10:
        return pd.DataFrame(columns=["method", "n", "spearman", "acc10"])
    perm = np.random.default_rng(seed).permutation(len(y))
    k = min(test, len(y) // 2)
    te, pool = perm[:k], perm[k:]
    A = lambda idx: [archs[i] for i in idx]  # noqa: E731
    rows = []
    for n in (n for n in ns if n <= len(pool)):
        tr = pool[:n]
        fits = {"MAdds proxy": MAddsProxy(), "e2e": EndToEnd()}
        if sources:
            fits["transfer"] = Transfer(sources=sources)
        for method, p in fits.items():
            m = metrics(y[te], p.fit(A(tr), y[tr]).predict_many(A(te)))
            rows.append({"method": method, "n": n, "spearman": m["spearman"], "acc10": m["acc10"]})
    return pd.DataFrame(rows)


def imported_figures(frame: pd.DataFrame, fingerprint: dict, device: str, preds: dict) -> list[go.Figure]:
    """The figures of an imported device's section (module docstring)."""
    from hwlat.latency_models import MAddsProxy
    from hwlat.profiler.storage.device import device_key

    key = device_key(fingerprint)
    archs, y = _networks(frame)
    mine = {lab: p for lab, p in preds.items() if _device_key(p) == key}
    others = [p for p in preds.values() if _device_key(p) not in (key, None)]
    transfer = next((p for p in mine.values() if p.kind == "transfer"), None)
    skipped = []
    if transfer is not None:
        sources = list(transfer.sources_)
    else:  # another device's predictor is a source where it answers these networks without extrapolating
        sources = [p for p in others if _answers(p, archs[:20]) or skipped.append(_label(p))]
    show = np.random.default_rng(0).permutation(len(y))[:MAX_POINTS]
    pts = []
    if len(y) >= 2:
        base = MAddsProxy().fit(archs, y)
        for label, p in {**mine, "MAdds proxy (fitted here on all)": base}.items():
            sub = [archs[i] for i in show]
            trained = _trained(p, sub) if p is not base else np.ones(len(sub), bool)
            pts.append(
                pd.DataFrame(
                    {
                        "predictor": label,
                        "measured_ms": y[show],
                        "predicted_ms": p.predict_many(sub),
                        "trained": trained,
                    }
                )
            )
    points = (
        pd.concat(pts)
        if pts
        else pd.DataFrame(columns=["predictor", "measured_ms", "predicted_ms", "trained"])
    )
    note = (
        ("transfer from " + ", ".join(_label(p) for p in sources))
        if sources
        else "no predictor of another device that answers these networks: transfer is not shown"
    )
    if skipped:
        note += f" (not {', '.join(skipped)}: they extrapolate on these networks)"
    curve = learning_curve(archs, y, sources)
    return [measured_vs_predicted(points, device), error_vs_n(curve, device, note)]


def _answers(pred, archs) -> bool:
    """Whether ``pred`` predicts ``archs`` without an error or an extrapolation warning."""
    import warnings

    from hwlat.errors import ExtrapolationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        try:
            pred.predict_many(archs)
        except (ExtrapolationWarning, ValueError, KeyError, HwlatError):
            return False
    return True


def _trained(pred, archs) -> np.ndarray:
    """Whether each of ``archs`` is one of the networks ``pred`` was fitted on."""
    from hwlat.archs.codec import encode

    seen = {encode(a) for a in pred.train_archs_}
    return np.array([encode(a) in seen for a in archs], dtype=bool)


def _label(pred) -> str:
    from hwlat.latency_models.transfer import source_label

    return source_label(pred)
