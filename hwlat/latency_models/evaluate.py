"""Evaluation harness: predictors judged on end-to-end latencies of networks they never saw.

The split is by architecture: a test network's model measurement is never used in training (its
pieces may be, as they are shared across networks — that is what a lookup table is for).
Every report lists the MAdds proxy beside the others, on the same held-out networks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hwlat.archs.codec import encode
from hwlat.archs.ir import ArchSpec
from hwlat.errors import MissingEntryError
from hwlat.latency_models.kinds import HOLDOUT_KINDS, make_predictor
from hwlat.latency_models.metrics import metrics
from hwlat.latency_models.training_data import TrainingData


def split_by_arch(n: int, test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of ``n`` networks, shuffled with ``seed``."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    idx = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(n * test_fraction)))
    if n - k < 2:
        raise ValueError(f"{n} measured networks are too few to split (need at least 3)")
    return np.sort(idx[k:]), np.sort(idx[:k])


def score(pred, archs: Sequence[ArchSpec], y) -> dict:
    """Metrics of ``pred`` on ``archs`` with true latencies ``y`` (ms), plus its speed."""
    t = time.perf_counter()
    p = pred.predict_many(archs)
    dt = time.perf_counter() - t
    return {**metrics(y, p), "predict_s": dt}


def holdout(
    data: TrainingData,
    kinds: Sequence[str] = HOLDOUT_KINDS,
    test_fraction: float = 0.3,
    seed: int = 0,
    test: Sequence[int] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Fit each predictor kind on the training networks, score it on the held-out ones.

    Returns (one metrics row per kind, the fitted predictors).
    """
    archs, y = data.archs(), data.latency_ms
    if test is None:
        tr, te = split_by_arch(len(archs), test_fraction, seed)
    else:
        te = np.asarray(sorted(test))
        tr = np.setdiff1d(np.arange(len(archs)), te)
    rows, fitted = [], {}
    for kind in dict.fromkeys(["madds", *kinds]):
        pred = make_predictor(kind)
        t = time.perf_counter()
        pred.fit(
            [archs[i] for i in tr],
            y[tr],
            pieces=data.pieces,
            fingerprint=data.fingerprint,
            runtime=data.runtime,
        )
        fit_s = time.perf_counter() - t
        try:
            m = score(pred, [archs[i] for i in te], y[te])
        except MissingEntryError as e:  # a lookup table without fallback meets an unmeasured piece
            m = {"error": str(e)}
        rows.append({"predictor": kind, "n_train": len(tr), "fit_s": fit_s, **m})
        fitted[kind] = pred
    return pd.DataFrame(rows), fitted


def unseen(pred, data: TrainingData) -> tuple[list[ArchSpec], np.ndarray]:
    """The networks of ``data`` that ``pred`` was not trained on, with their latencies."""
    seen = {encode(a) for a in pred.train_archs_}
    keep = [i for i, a in enumerate(data.models["arch"]) if a not in seen]
    archs = data.archs()
    return [archs[i] for i in keep], data.latency_ms[keep]


def repeat_floor(store, archs: Sequence[ArchSpec], runtime: str, device_key: str) -> dict | None:
    """The noise floor of a test set: repeat 1 of each network as the "prediction" of its repeat 0.

    Networks of ``archs`` measured at least twice on the device (``profile models --repeats R``);
    None when fewer than 2 are. What a perfect predictor could score against a single measurement.
    """
    from hwlat.profiler.storage.store import open_store

    with open_store(store, readonly=True) as st:
        raw = st.frame(runtime=runtime, granularity="model", repeats=True)
    raw = raw[(raw["device_key"] == device_key) & (raw["variant"] == "warm")]
    return repeat_against_repeat(raw, {encode(a) for a in archs})


def repeat_against_repeat(raw: pd.DataFrame, archs: set[str] | None = None) -> dict | None:
    """Metrics of repeat 1 as the "prediction" of repeat 0, over per-repeat model rows
    (``Store.frame(repeats=True)``), optionally only the networks whose codec string is in
    ``archs``; None when fewer than 2 networks have both repeats."""
    raw = raw.assign(arch=[json.loads(s).get("arch") for s in raw["spec"]])
    raw = raw[raw["arch"].notna()]  # a measured file that did not import is no network of the IR
    if archs is not None:
        raw = raw[raw["arch"].isin(archs)]
    wide = raw.pivot_table(index="arch", columns="repeat", values="latency_ms")
    if 0 not in wide.columns or 1 not in wide.columns:
        return None
    both = wide[[0, 1]].dropna()
    if len(both) < 2:
        return None
    return metrics(both[0].to_numpy(), both[1].to_numpy())
