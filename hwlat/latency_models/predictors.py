"""Latency predictors with one scikit-learn-style interface. All latencies in milliseconds.

* :class:`MAddsProxy` — latency linear in MAdds; the baseline every predictor is reported beside.
* :class:`LookupTable` — measured latency of every piece (block or kernel) of the network, summed,
  plus a fitted network-level term. A missing entry raises (``on_missing="raise"``) or falls back
  to a per-type regression fitted on the same table (``on_missing="regression"``); never zero.
* :class:`Regression` — nn-Meter style: one scikit-learn model per piece type (stem/bneck/head or
  conv/dwconv/act/se/add/pool/fc) on layer-table features, the estimator chosen by grouped
  cross-validation; predicts configurations never measured (NetAdapt's arbitrary widths).

The network-level term (``calibration``) learns the gap between the summed pieces and the
end-to-end measurement. Pieces timed in isolation keep their weights in cache; inside a network
late weight-heavy layers read them from memory, so the gap follows the weight footprint:

* ``"none"`` — the plain sum;
* ``"offset"`` — ``sum + δ`` (per-invoke overhead);
* ``"footprint"`` — ``sum + γ·max(0, weight_MB − C) + β·n_pieces + δ``: the effective cache size
  ``C``, ``γ ≥ 0``, the per-piece invoke overhead counted once per isolated piece (``β``, usually
  negative) and ``δ``, fitted per device on relative error.

``fit(X, y, pieces=...)`` takes networks (``ArchSpec``), their measured latencies and the measured
pieces (a :class:`~hwlat.latency_models.data.TrainingData` ``pieces`` frame).
``predict(arch)`` → float; ``predict(list)`` / ``predict_many(list)`` → array;
``predict_layers(arch)`` → per-layer breakdown summing to ``predict(arch)``.
"""
from __future__ import annotations

import json
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from hwlat.archs.ir import ArchSpec
from hwlat.archs.layers import layers, summary
from hwlat.latency_models.features import NUMERIC, arch_pieces, network_features, pieces_frame
from hwlat.profiler.workloads import from_spec

CALIBRATIONS = ("none", "offset", "footprint")


def _as_list(X) -> tuple[list[ArchSpec], bool]:
    if isinstance(X, ArchSpec):
        return [X], True
    archs = list(X)
    bad = [type(a).__name__ for a in archs if not isinstance(a, ArchSpec)]
    if bad:
        raise TypeError(f"expected ArchSpec objects, got {bad[0]}")
    return archs, False


class _Predictor(RegressorMixin, BaseEstimator):
    """Shared interface; subclasses implement ``_fit``, ``_total`` and ``_layers``."""

    kind = "base"

    def fit(self, X, y, pieces: pd.DataFrame | None = None, fingerprint: dict | None = None,
            runtime: str | None = None):
        archs, _ = _as_list(X)
        y = np.asarray(y, dtype=float)
        if len(archs) != len(y) or len(y) < 2:
            raise ValueError(f"need at least 2 networks with one latency each, got {len(archs)} and {len(y)}")
        if not np.all(np.isfinite(y) & (y > 0)):
            raise ValueError("latencies must be finite and positive (ms)")
        self.fingerprint_ = dict(fingerprint or {})
        self.runtime_ = runtime
        self._train = (archs, y, pieces)
        self._fit(archs, y, pieces)
        return self

    def predict(self, X):
        """Latency in ms of one ``ArchSpec`` (float) or of a sequence of them (array)."""
        archs, single = _as_list(X)
        out = self.predict_many(archs)
        return float(out[0]) if single else out

    def predict_many(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        """Latencies (ms) of many networks."""
        self._check_fitted()
        return np.array([self._total(a) for a in archs], dtype=float)

    def predict_layers(self, arch: ArchSpec) -> pd.DataFrame:
        """Per-layer latency (ms) of ``arch``: columns ``name, op, block, latency_ms``; sums to the total."""
        self._check_fitted()
        return self._layers(arch)

    # -- device --------------------------------------------------------------------------------
    def check_device(self, fingerprint: dict, runtime: str | None = None, strict: bool = True) -> None:
        """Raise (``strict``) or warn when used for another device or runtime than it was fitted on."""
        from hwlat.profiler.device import device_key

        self._check_fitted()
        mine = device_key(self.fingerprint_) if self.fingerprint_ else None
        theirs = device_key(fingerprint)
        problems = []
        if mine and mine != theirs:
            problems.append(f"fitted on device {mine} ({self.fingerprint_.get('cpu')}, "
                            f"{self.fingerprint_.get('runtime')} {self.fingerprint_.get('runtime_version')}), "
                            f"used for {theirs} ({fingerprint.get('cpu')}, {fingerprint.get('runtime')} "
                            f"{fingerprint.get('runtime_version')})")
        if runtime and self.runtime_ and runtime != self.runtime_:
            problems.append(f"fitted for runtime {self.runtime_!r}, used for {runtime!r}")
        if problems:
            msg = "predictor/device mismatch: " + "; ".join(problems)
            if strict:
                raise ValueError(msg)
            warnings.warn(msg, stacklevel=2)

    def _check_fitted(self) -> None:
        if not hasattr(self, "fingerprint_"):
            raise ValueError(f"{type(self).__name__} is not fitted yet; call fit() or load()")

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the config, device and training data as JSON (refitted deterministically on load)."""
        from hwlat.latency_models.persist import save

        save(self, path)


class MAddsProxy(_Predictor):
    """``latency = a · MAdds + b``, fitted by least squares on relative error."""

    kind = "madds"

    def _fit(self, archs, y, pieces) -> None:
        m = np.array([summary(a)["madds"] for a in archs], dtype=float) / 1e6
        A = np.stack([m, np.ones_like(m)], 1) / y[:, None]
        (self.ms_per_madd_, self.intercept_ms_), *_ = np.linalg.lstsq(A, np.ones_like(y), rcond=None)

    def _total(self, arch) -> float:
        return self.ms_per_madd_ * summary(arch)["madds"] / 1e6 + self.intercept_ms_

    def _layers(self, arch) -> pd.DataFrame:
        rows = layers(arch)
        madds = np.array([r.madds for r in rows], dtype=float)
        share = madds / madds.sum()
        lat = self.ms_per_madd_ * madds / 1e6 + self.intercept_ms_ * share
        return pd.DataFrame({"name": [r.name for r in rows], "op": [r.op.value for r in rows],
                             "block": [r.block for r in rows], "latency_ms": lat})


# --- per-type regression of pieces ---------------------------------------------------------------

def _log_features(X):
    return np.log1p(np.asarray(X, dtype=float))


def _candidates(random_state: int):
    logf = FunctionTransformer(_log_features)
    return {
        "ridge": make_pipeline(logf, StandardScaler(), Ridge(alpha=1e-3)),
        "forest": make_pipeline(logf, RandomForestRegressor(n_estimators=100, min_samples_leaf=1,
                                                            random_state=random_state, n_jobs=1)),
        "boosting": make_pipeline(logf, HistGradientBoostingRegressor(max_iter=200, learning_rate=0.08,
                                                                      random_state=random_state)),
    }


CALIBRATION_LOSS_SCALE = 0.03  # relative error beyond which a network counts as an outlier


def _robust_fit(A: np.ndarray, b: np.ndarray, lower) -> tuple[np.ndarray, float]:
    """``argmin_c Σ soft_l1(A·c − b)`` with lower bounds; returns (c, cost)."""
    from scipy.optimize import least_squares

    lower = np.asarray(lower, dtype=float)
    x0 = np.linalg.lstsq(A, b, rcond=None)[0]   # start inside the bounds, not on them (trf stalls)
    x0 = np.where(np.isfinite(lower), np.maximum(x0, lower + 1e-3), x0)
    r = least_squares(lambda c: A @ c - b, x0, loss="soft_l1", f_scale=CALIBRATION_LOSS_SCALE,
                      bounds=(lower, np.inf))
    return r.x, float(r.cost)


class PieceRegressor:
    """One estimator per piece type, predicting log latency; chosen by grouped cross-validation.

    ``groups`` are the pieces' input resolutions, so a candidate is judged on shapes it did not see.
    """

    def __init__(self, estimator: str = "auto", random_state: int = 0,
                 choices: dict[str, str] | None = None):
        self.estimator = estimator
        self.random_state = random_state
        self.choices = choices   # estimator per piece type chosen by an earlier fit: CV is skipped

    def fit(self, feats: pd.DataFrame, ms: np.ndarray) -> "PieceRegressor":
        self.models_, self.choice_, self.cv_rmse_ = {}, {}, {}
        y = np.log(ms)
        for typ, idx in feats.groupby("type").indices.items():
            X, yt, groups = feats.iloc[idx][NUMERIC].to_numpy(float), y[idx], feats.iloc[idx]["h"].to_numpy()
            cands = _candidates(self.random_state)
            if self.choices and self.choices.get(typ) in cands:
                names = [self.choices[typ]]
            elif self.estimator != "auto":
                names = [self.estimator]
            elif len(idx) < 10 or len(np.unique(groups)) < 3:
                names = ["ridge"] if len(idx) >= 3 else []
            else:
                names = list(cands)
            if not names:  # too few samples to learn a type: a constant (its median), stated as such
                self.models_[typ], self.choice_[typ] = float(np.median(yt)), "median"
                continue
            best, best_err = names[0], np.inf
            if len(names) > 1:
                cv = GroupKFold(n_splits=min(4, len(np.unique(groups))))
                for name in names:
                    pred = cross_val_predict(cands[name], X, yt, cv=cv, groups=groups)
                    err = float(np.sqrt(np.mean((pred - yt) ** 2)))
                    self.cv_rmse_[(typ, name)] = err
                    if err < best_err:
                        best, best_err = name, err
            self.models_[typ] = cands[best].fit(X, yt)
            self.choice_[typ] = best
        return self

    def predict(self, feats: pd.DataFrame) -> np.ndarray:
        out = np.empty(len(feats))
        for typ, idx in feats.groupby("type").indices.items():
            if typ not in self.models_:
                raise ValueError(f"no latency model covers piece type {typ!r} (it was never measured)")
            m = self.models_[typ]
            out[idx] = m if isinstance(m, float) else m.predict(feats.iloc[idx][NUMERIC].to_numpy(float))
        return np.exp(out)


class _PieceSum(_Predictor):
    """Sum of per-piece latencies + the network-level calibration term."""

    def _check_params(self) -> None:
        if self.granularity not in ("block", "kernel"):
            raise ValueError(f"granularity: expected 'block' or 'kernel', got {self.granularity!r}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {self.calibration!r}")

    def _training_pieces(self, pieces: pd.DataFrame | None) -> pd.DataFrame:
        if pieces is None or len(pieces) == 0:
            raise ValueError(f"{type(self).__name__} needs measured pieces: pass pieces=TrainingData.pieces")
        p = pieces[(pieces["granularity"] == self.granularity) & (pieces["variant"] == "warm")]
        if p.empty:
            raise ValueError(f"no measured {self.granularity}s to learn from (profile them first)")
        return p

    def _fit_regressor(self, p: pd.DataFrame) -> PieceRegressor:
        ws = [from_spec(k, json.loads(s) if isinstance(s, str) else s) for k, s in zip(p["key"], p["spec"])]
        return PieceRegressor(getattr(self, "estimator", "auto"), self.random_state,
                              getattr(self, "_preset_choices", None)).fit(
            pieces_frame(ws), p["median_ms"].to_numpy(float))

    def _fit(self, archs, y, pieces) -> None:
        self._check_params()
        self._memo = {}
        self._fit_pieces(self._training_pieces(pieces))
        self._estimate([w for a in archs for w in arch_pieces(a, self.granularity)], "training networks")
        s = np.array([self._piece_ms(a).sum() for a in archs])
        nf = np.array([[f["weight_mb"], f["n_pieces"]] for f in
                       (network_features(arch_pieces(a, self.granularity)) for a in archs)])
        self._fit_calibration(s, nf, y)

    def _fit_calibration(self, s, nf, y) -> None:
        """Fit the network term ``y − s = γ·max(0, W − C) + β·n + δ`` on relative error.

        Robust (soft-L1 loss, scale :data:`CALIBRATION_LOSS_SCALE`): an end-to-end measurement
        caught by a slow phase of the machine must not drag the term for every network. ``offset``
        fits ``δ`` alone.
        """
        self.cache_mb_, self.gamma_ms_per_mb_, self.per_piece_ms_, self.offset_ms_ = np.inf, 0.0, 0.0, 0.0
        target = (y - s) / y
        if self.calibration == "offset":
            self.offset_ms_ = float(_robust_fit((1 / y)[:, None], target, [-np.inf])[0][0])
            return
        if self.calibration != "footprint":
            return
        wmb, n = nf[:, 0], nf[:, 1]
        best = (np.inf, None)
        for c in np.unique(np.concatenate([[0.0], np.quantile(wmb, np.linspace(0, 1, 21))])):
            A = np.stack([np.maximum(0.0, wmb - c), n, np.ones_like(wmb)], 1) / y[:, None]
            # γ >= 0: more weights than the cache cannot make a network faster
            coef, cost = _robust_fit(A, target, [0.0, -np.inf, -np.inf])
            if cost < best[0]:
                best = (cost, (float(c), *map(float, coef)))
        self.cache_mb_, self.gamma_ms_per_mb_, self.per_piece_ms_, self.offset_ms_ = best[1]

    def predict_many(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        """Latencies (ms) of many networks; every distinct piece is estimated once, in one batch."""
        self._check_fitted()
        archs, _ = _as_list(archs)
        per = [arch_pieces(a, self.granularity) for a in archs]
        self._estimate([w for ps in per for w in ps], archs[0].name if len(archs) == 1 else
                       f"{len(archs)} networks")
        memo = self._memo
        return np.array([sum(memo[w.key] for w in ps) + self.network_term(a) for a, ps in zip(archs, per)])

    def _estimate(self, pieces, where: str) -> None:
        todo = {w.key: w for w in pieces if w.key not in self._memo}
        if todo:
            self._memo.update(zip(todo, self._ms_of(list(todo.values()), where)))

    def _piece_ms(self, arch) -> np.ndarray:
        pieces = arch_pieces(arch, self.granularity)
        self._estimate(pieces, arch.name)
        return np.array([self._memo[w.key] for w in pieces])

    def network_term(self, arch: ArchSpec) -> float:
        """The fitted network-level latency (ms) added to the summed pieces of ``arch``."""
        f = network_features(arch_pieces(arch, self.granularity))
        return (self.gamma_ms_per_mb_ * max(0.0, f["weight_mb"] - self.cache_mb_)
                + self.per_piece_ms_ * f["n_pieces"] + self.offset_ms_)

    def _total(self, arch) -> float:
        return float(self._piece_ms(arch).sum()) + self.network_term(arch)

    def _layers(self, arch) -> pd.DataFrame:
        pieces = arch_pieces(arch, self.granularity)
        ms = self._piece_ms(arch)
        params = np.array([w.params for w in pieces], dtype=float)
        term = self.network_term(arch)
        # the network term goes where the weights are (footprint) or evenly (offset)
        share = params / params.sum() if self.gamma_ms_per_mb_ > 0 and params.sum() else \
            np.full(len(pieces), 1 / len(pieces))
        names = {r.name: r for r in layers(arch)}
        acc: dict[str, float] = dict.fromkeys(names, 0.0)
        for w, t in zip(pieces, ms + term * share):
            weight = np.array([r.madds + r.elementwise + 1 for r in w.rows], dtype=float)
            for r, part in zip(w.rows, t * weight / weight.sum()):
                name = r.name if r.name in acc else r.name.rsplit(".", 1)[0]  # a kernel's ".act" row
                acc[name] += part
        return pd.DataFrame({"name": list(acc), "op": [names[n].op.value for n in acc],
                             "block": [names[n].block for n in acc], "latency_ms": list(acc.values())})


class LookupTable(_PieceSum):
    """Measured pieces summed (Once-for-All / FBNet style table keyed by piece config + input shape)."""

    kind = "lut"

    def __init__(self, granularity: str = "block", calibration: str = "footprint",
                 on_missing: str = "raise", random_state: int = 0):
        self.granularity = granularity
        self.calibration = calibration
        self.on_missing = on_missing
        self.random_state = random_state

    def _fit_pieces(self, p: pd.DataFrame) -> None:
        if self.on_missing not in ("raise", "regression"):
            raise ValueError(f"on_missing: expected 'raise' or 'regression', got {self.on_missing!r}")
        self.table_ = dict(zip(p["key"], p["median_ms"].astype(float)))
        self.fallback_ = self._fit_regressor(p) if self.on_missing == "regression" else None

    def _ms_of(self, pieces, where: str = "network") -> np.ndarray:
        """Latency (ms) of each piece: its table entry, or the fallback regression's estimate."""
        ms = np.array([self.table_.get(w.key, np.nan) for w in pieces])
        missing = np.isnan(ms)
        if missing.any():
            if self.fallback_ is None:
                labels = [w.label for w, m in zip(pieces, missing) if m]
                raise KeyError(f"{where}: {int(missing.sum())} {self.granularity}(s) not in the table, "
                               f"e.g. {labels[0]!r}; profile them or use on_missing='regression'")
            miss = [w for w, m in zip(pieces, missing) if m]
            ms[missing] = self.fallback_.predict(pieces_frame(miss))
        return ms

    def coverage(self, archs: Sequence[ArchSpec]) -> float:
        """Fraction of the pieces of ``archs`` that have a measured entry."""
        keys = [w.key for a in archs for w in arch_pieces(a, self.granularity)]
        return float(np.mean([k in self.table_ for k in keys])) if keys else 1.0


class Regression(_PieceSum):
    """Per-type scikit-learn models of piece latency, summed, plus the network term."""

    kind = "regression"

    def __init__(self, granularity: str = "block", calibration: str = "footprint",
                 estimator: str = "auto", random_state: int = 0):
        self.granularity = granularity
        self.calibration = calibration
        self.estimator = estimator
        self.random_state = random_state

    def _fit_pieces(self, p: pd.DataFrame) -> None:
        if self.estimator not in ("auto", "ridge", "forest", "boosting"):
            raise ValueError(f"estimator: expected auto, ridge, forest or boosting, got {self.estimator!r}")
        self.regressor_ = self._fit_regressor(p)

    def _ms_of(self, pieces, where: str = "network") -> np.ndarray:
        return self.regressor_.predict(pieces_frame(pieces))


KINDS = {
    "madds": lambda: MAddsProxy(),
    "lut": lambda: LookupTable(calibration="offset"),
    "regression": lambda: Regression(calibration="footprint"),
    "calibrated": lambda: LookupTable(calibration="footprint", on_missing="regression"),
}


def make_predictor(kind: str, **params) -> _Predictor:
    """A predictor by CLI kind: ``madds``, ``lut`` (sum + offset), ``regression``, ``calibrated``."""
    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r} (expected one of {', '.join(KINDS)})")
    return KINDS[kind]().set_params(**params)
