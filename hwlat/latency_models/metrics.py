"""Predictor accuracy metrics (nn-Meter's definitions) on end-to-end latencies in milliseconds.

* ``rmse`` — root mean squared error (ms); ``rmspe`` — root mean squared *relative* error (%).
* ``acc5`` / ``acc10`` — fraction of networks with ``|pred − true| / true`` ≤ 5 % / 10 %.
* ``kendall_tau`` / ``spearman`` — rank correlations: does the predictor order networks right?
* ``worst_pct`` — largest relative error (%); ``mape`` — mean absolute relative error (%).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def metrics(y_true, y_pred) -> dict[str, float]:
    """All metrics of the module docstring for arrays of true and predicted latencies (ms)."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape or t.ndim != 1 or len(t) < 2:
        raise ValueError(f"need two equal 1-D arrays of at least 2 latencies, got {t.shape} and {p.shape}")
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise ValueError("true latencies must be finite and positive")
    rel = (p - t) / t
    return {
        "n": int(len(t)),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "rmspe": float(100 * np.sqrt(np.mean(rel**2))),
        "mape": float(100 * np.mean(np.abs(rel))),
        "acc5": float(np.mean(np.abs(rel) <= 0.05)),
        "acc10": float(np.mean(np.abs(rel) <= 0.10)),
        "kendall_tau": float(stats.kendalltau(t, p).statistic),
        "spearman": float(stats.spearmanr(t, p).statistic),
        "worst_pct": float(100 * np.max(np.abs(rel))),
    }


def noise_floor(repeats) -> float:
    """Median coefficient of variation (%) over groups of repeated measurements of one network.

    ``repeats`` is an iterable of arrays, each the repeated latencies (ms) of one network.
    """
    cvs = [np.std(r, ddof=1) / np.mean(r) for r in map(np.asarray, repeats) if len(r) > 1]
    if not cvs:
        raise ValueError("noise floor needs at least one network measured twice")
    return float(100 * np.median(cvs))
