"""Efficiency of measured kernels by op type and kernel size, and the workloads far below it.

Efficiency is multiply-adds per second (GMAC/s = MAdds / latency in seconds / 1e9, the store's ``latency_ms``) of the kernel
workloads of a store (one runtime op each: a convolution with its fused activation, a depthwise
convolution, the classifier). Small kernels are dominated by per-op overhead, so efficiency is
judged against the size: per device and op type (``conv1x1``, ``convKxK``, ``dwconv``, ``se``, ``fc``) a
line ``log ms = a + b·log MAdds`` fitted to the lower quartile (quantile regression: the efficient
frontier, which a minority of pathological kernels cannot drag up) gives the expected time of a
kernel of that size, and a kernel ``factor`` times slower than expected is an anomaly. Kernel sizes share one line, so a
7×7 depthwise convolution that runs far less efficiently than 3×3 and 5×5 ones (as LiteRT's XNNPACK
does on the host of ``benchmarks/results/predictors__litert__samples-150__seed-0__x86_64.txt``)
stands out: a real property of the device and runtime, which MAdds alone would hide from a search.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.linear_model import QuantileRegressor

EFFICIENCY_COLUMNS = [
    "device",
    "device_key",
    "runtime",
    "key",
    "label",
    "op",
    "kernel",
    "stride",
    "madds",
    "latency_ms",
    "gmacs",
    "expected_ms",
    "slowdown",
]
EXPECTED_QUANTILE = 0.25
MIN_PER_OP = 4
"""Fewer kernels of an op type than this on a device: no line, no anomalies for that type."""


def _op_class(row: dict) -> tuple[str, int, int] | None:
    """(op type, kernel size, stride) of a kernel's main row; None for kernels without MAdds."""
    main = max(row["rows"], key=lambda r: r.get("madds", 0))
    if not main.get("madds"):
        return None
    if any(str(r.get("role", "")).startswith("se") for r in row["rows"]):
        return "se", 1, 1
    op, k = main["op"], int(main.get("k", 1))
    if op == "conv":
        op = "conv1x1" if k == 1 else "convKxK"
    return op, k, int(main.get("s", 1))


def efficiency(frame: pd.DataFrame) -> pd.DataFrame:
    """Kernel workloads of a :meth:`Store.frame` (warm) with their efficiency and expected time.

    Columns :data:`EFFICIENCY_COLUMNS`; ``slowdown`` = measured / expected time (NaN where the op
    type has fewer than :data:`MIN_PER_OP` kernels on that device).
    """
    if frame is None or frame.empty:
        return pd.DataFrame(columns=EFFICIENCY_COLUMNS)
    df = frame[(frame["granularity"] == "kernel") & (frame["variant"] == "warm")]
    recs = []
    for r in df.itertuples(index=False):
        spec = json.loads(r.spec)
        cls = _op_class(spec)
        if cls is None or not r.latency_ms > 0:
            continue
        recs.append(
            {
                "device": r.device,
                "device_key": r.device_key,
                "runtime": r.runtime,
                "key": r.key,
                "label": spec.get("label", r.key),
                "op": cls[0],
                "kernel": cls[1],
                "stride": cls[2],
                "madds": int(r.madds),
                "latency_ms": float(r.latency_ms),
            }
        )
    out = pd.DataFrame(recs, columns=EFFICIENCY_COLUMNS)
    if out.empty:
        return out
    out["gmacs"] = out["madds"] / (out["latency_ms"] * 1e-3) / 1e9
    out["expected_ms"] = np.nan
    for _, g in out.groupby(["device_key", "runtime", "op"]):
        if len(g) < MIN_PER_OP or g["madds"].nunique() < 2:
            continue
        x = np.log(g["madds"].to_numpy(float)).reshape(-1, 1)
        y = np.log(g["latency_ms"].to_numpy(float))
        fit = QuantileRegressor(quantile=EXPECTED_QUANTILE, alpha=0.0, solver="highs").fit(x, y)
        out.loc[g.index, "expected_ms"] = np.exp(fit.predict(x))
    out["slowdown"] = out["latency_ms"] / out["expected_ms"]
    return out


def anomalies(frame: pd.DataFrame, factor: float = 2.0) -> pd.DataFrame:
    """The kernels at least ``factor`` times slower than expected for their op type and size on
    their device (see the module docstring), slowest first."""
    if not factor > 1:
        raise ValueError(f"anomaly factor must be > 1, got {factor!r}")
    eff = efficiency(frame)
    return eff[eff["slowdown"] >= factor].sort_values("slowdown", ascending=False).reset_index(drop=True)


def efficiency_summary(eff: pd.DataFrame) -> pd.DataFrame:
    """Median GMAC/s per device, runtime, op type and kernel size, with counts."""
    if eff.empty:
        return pd.DataFrame(columns=["device", "runtime", "op", "kernel", "kernels", "median_gmacs"])
    return (
        eff.groupby(["device", "runtime", "op", "kernel"])
        .agg(kernels=("key", "size"), median_gmacs=("gmacs", "median"))
        .reset_index()
    )
