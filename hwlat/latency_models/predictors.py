"""The MAdds proxy, lookup tables and per-type regressions (interface: :mod:`.base`). Milliseconds.

* :class:`MAddsProxy` — latency linear in MAdds (slope ≥ 0); the baseline every predictor is
  reported beside.
* :class:`LookupTable` — measured latency of every piece (block or kernel) of the network, summed,
  plus a fitted network-level term. A missing entry raises (``on_missing="raise"``) or is predicted
  (``on_missing="regression"``): the table is the truth at the widths it holds and a per-type
  regression supplies the shape between them (:meth:`LookupTable._between`); never zero.
* :class:`Regression` — nn-Meter style: one scikit-learn model per piece type (stem/bneck/head or
  conv/dwconv/act/se/add/pool/fc) on layer-table features, the estimator chosen by grouped
  cross-validation; predicts configurations never measured (NetAdapt's arbitrary widths).

**Monotone in width.** With everything else fixed, fewer channels in any layer never predict
slower, for every kind: the regressions are monotone in the features that grow with width
(:data:`~hwlat.latency_models.features.INCREASING`; ``monotonic_cst`` for the trees, non-negative
coefficients for the linear model), the table is made monotone where its measurements contradict
each other (``n_adjusted_`` entries), and the network term grows with the weights (``γ ≥ 0``).
Changes of structure are not width changes: a cut that makes an expansion width equal its input
(the 1×1 expansion disappears) or adds a residual connection changes the network.

The network-level term (``calibration``) learns the gap between the summed pieces and the
end-to-end measurement. Pieces timed in isolation keep their weights in cache; inside a network
late weight-heavy layers read them from memory, so the gap follows the weight footprint:

* ``"none"`` — the plain sum;
* ``"offset"`` — ``sum + δ`` (per-invoke overhead);
* ``"footprint"`` — ``sum + γ·max(0, weight_MB − C) + β·n_pieces + δ``: the effective cache size
  ``C``, ``γ ≥ 0``, the per-piece invoke overhead counted once per isolated piece (``β``, usually
  negative) and ``δ``, fitted per device on relative error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import attrgetter

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from hwlat.archs.ir import Act, ArchSpec
from hwlat.archs.layers import layers
from hwlat.archs.pieces import Workload, blocks, from_spec, kernels
from hwlat.errors import MissingEntryError
from hwlat.latency_models.base import FAR_OUTSIDE, Predictor
from hwlat.latency_models.features import (
    INCREASING,
    NUMERIC,
    SUM_GRANULARITIES,
    PieceGroup,
    network_madds,
    piece_groups,
    pieces_frame,
    width_signature,
)

CALIBRATIONS = ("none", "offset", "footprint")
ESTIMATORS = ("ridge", "forest", "boosting")
CALIBRATION_LOSS_SCALE = 0.03  # relative error beyond which a network counts as an outlier
_PARAMS = attrgetter("params")


class MAddsProxy(Predictor):
    """``latency = a · MAdds + b`` with ``a ≥ 0``, fitted by least squares on relative error."""

    kind = "madds"

    def _fit(self, archs, y, pieces) -> None:
        from scipy.optimize import lsq_linear

        m = network_madds(archs) / 1e6
        self.madds_range_ = (float(m.min()), float(m.max()))
        A = np.stack([m, np.ones_like(m)], 1) / y[:, None]
        r = lsq_linear(A, np.ones_like(y), bounds=([0.0, -np.inf], [np.inf, np.inf]))
        self.ms_per_madd_, self.intercept_ms_ = map(float, r.x)

    def _predict(self, archs) -> np.ndarray:
        m = network_madds(archs) / 1e6
        lo, hi = self.madds_range_
        far = m[(m < lo / FAR_OUTSIDE) | (m > hi * FAR_OUTSIDE)]
        if len(far):
            self.warn_extrapolation(
                f"{far.min():.1f}-{far.max():.1f} M MAdds is far outside the "
                f"training networks' {lo:.1f}-{hi:.1f} M"
            )
        return self.ms_per_madd_ * m + self.intercept_ms_

    def _layers(self, arch) -> pd.DataFrame:
        rows = layers(arch)
        madds = np.array([r.madds for r in rows], dtype=float)
        share = madds / madds.sum()
        lat = self.ms_per_madd_ * madds / 1e6 + self.intercept_ms_ * share
        return pd.DataFrame(
            {
                "name": [r.name for r in rows],
                "op": [r.op.value for r in rows],
                "block": [r.block for r in rows],
                "latency_ms": lat,
            }
        )


# --- per-type regression of pieces ---------------------------------------------------------------


def _candidates(random_state: int) -> dict:
    """The estimators grouped CV chooses from, each monotone (non-decreasing) in :data:`INCREASING`."""
    inc = [NUMERIC.index(c) for c in INCREASING]
    other = [i for i in range(len(NUMERIC)) if i not in inc]
    cst = [1 if c in INCREASING else 0 for c in NUMERIC]
    return {
        # log-linear: non-negative weights on the log sizes; kernel, stride, SE, activation one-hot
        "ridge": make_pipeline(
            ColumnTransformer(
                [
                    ("size", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()), inc),
                    ("kind", OneHotEncoder(handle_unknown="ignore", sparse_output=False), other),
                ]
            ),
            Ridge(alpha=1e-3, positive=True),
        ),
        "forest": make_pipeline(
            FunctionTransformer(np.log1p),
            RandomForestRegressor(
                n_estimators=100, min_samples_leaf=1, random_state=random_state, n_jobs=1, monotonic_cst=cst
            ),
        ),
        "boosting": make_pipeline(
            FunctionTransformer(np.log1p),
            HistGradientBoostingRegressor(
                max_iter=200, learning_rate=0.08, random_state=random_state, monotonic_cst=cst
            ),
        ),
    }


def _robust_fit(A: np.ndarray, b: np.ndarray, lower) -> tuple[np.ndarray, float]:
    """``argmin_c Σ soft_l1(A·c − b)`` with lower bounds; returns (c, cost)."""
    from scipy.optimize import least_squares

    lower = np.asarray(lower, dtype=float)
    x0 = np.linalg.lstsq(A, b, rcond=None)[0]  # start inside the bounds, not on them (trf stalls)
    x0 = np.where(np.isfinite(lower), np.maximum(x0, lower + 1e-3), x0)
    r = least_squares(
        lambda c: A @ c - b, x0, loss="soft_l1", f_scale=CALIBRATION_LOSS_SCALE, bounds=(lower, np.inf)
    )
    return r.x, float(r.cost)


_THREADS = None


def _one_thread():
    """A context running OpenMP (gradient boosting) on one thread: these models are small, and on
    a busy machine OpenMP's thread team costs many times the fit itself."""
    global _THREADS
    if _THREADS is None:
        from threadpoolctl import ThreadpoolController

        _THREADS = ThreadpoolController()
    return _THREADS.limit(limits=1, user_api="openmp")


class PieceRegressor:
    """One estimator per piece type, predicting log latency, monotone in width.

    ``estimator``: ``"auto"`` (grouped cross-validation chooses among :data:`ESTIMATORS` per
    type), one of them for every type, or a dict ``{piece type: name}`` (``"median"``: a
    constant); types not in the dict are chosen by CV. CV ``groups`` are the pieces' input
    resolutions, so a candidate is judged on shapes it did not see.
    """

    def __init__(self, estimator: str | dict = "auto", random_state: int = 0):
        self.estimator = estimator
        self.random_state = random_state

    def _preset(self, typ: str) -> str | None:
        if isinstance(self.estimator, dict):
            return self.estimator.get(typ)
        return None if self.estimator == "auto" else self.estimator

    def fit(self, feats: pd.DataFrame, ms: np.ndarray) -> PieceRegressor:
        with _one_thread():
            return self._fit(feats, ms)

    def _fit(self, feats: pd.DataFrame, ms: np.ndarray) -> PieceRegressor:
        self.models_, self.choice_, self.cv_rmse_, self.domain_ = {}, {}, {}, {}
        y = np.log(ms)
        for typ, idx in feats.groupby("type").indices.items():
            f = feats.iloc[idx]
            X, yt, groups = f[NUMERIC].to_numpy(float), y[idx], f["h"].to_numpy()
            self.domain_[typ] = {
                **{c: frozenset(f[c].astype(int)) for c in ("k", "stride", "se", "act")},
                **{c: (int(f[c].min()), int(f[c].max())) for c in ("h", "cin", "cexp", "cout")},
            }
            cands = _candidates(self.random_state)
            preset = self._preset(typ)
            if preset is not None:
                names = [preset]
            elif len(idx) < 10 or len(np.unique(groups)) < 3:
                names = ["ridge"] if len(idx) >= 3 else ["median"]
            else:
                names = list(cands)
            if names == ["median"]:  # too few samples to learn a type: a constant, stated as such
                self.models_[typ], self.choice_[typ] = float(np.median(yt)), "median"
                continue
            if any(n not in cands for n in names):
                raise ValueError(
                    f"estimator for {typ!r}: expected auto, median or one of "
                    f"{', '.join(ESTIMATORS)}, got {names[0]!r}"
                )
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
        """Latency (ms) of each row of ``feats``."""
        out = np.empty(len(feats))
        with _one_thread():
            for typ, idx in feats.groupby("type").indices.items():
                if typ not in self.models_:
                    raise MissingEntryError(
                        f"no latency model covers piece type {typ!r} (it was never measured)"
                    )
                m = self.models_[typ]
                out[idx] = m if isinstance(m, float) else m.predict(feats.iloc[idx][NUMERIC].to_numpy(float))
        return np.exp(out)

    def outside(self, feats: pd.DataFrame) -> list[tuple]:
        """Per row of ``feats``: what lies outside the measured pieces, as ``(type, feature, value)``
        findings (a kernel, stride, SE or activation never measured; a size or width more than
        :data:`~hwlat.latency_models.base.FAR_OUTSIDE` times beyond the measured range)."""
        notes: list[list] = [[] for _ in range(len(feats))]
        for typ, idx in feats.groupby("type").indices.items():
            d = self.domain_.get(typ)
            if d is None:
                continue
            f = feats.iloc[idx]
            for c in ("k", "stride", "se", "act"):
                v = f[c].to_numpy(int)
                for i in np.flatnonzero(~np.isin(v, list(d[c]))):
                    notes[idx[i]].append((typ, c, int(v[i])))
            for c in ("h", "cin", "cexp", "cout"):
                lo, hi = d[c]
                v = f[c].to_numpy()
                for i in np.flatnonzero((v < lo / FAR_OUTSIDE) | (v > hi * FAR_OUTSIDE)):
                    notes[idx[i]].append((typ, c, int(v[i])))
        return [tuple(n) for n in notes]

    def describe(self, findings) -> str:
        """One phrase per (type, feature) of :meth:`outside` findings."""
        acts = list(Act)
        labels = {
            "k": "kernel",
            "stride": "stride",
            "se": "squeeze-excite",
            "act": "activation",
            "h": "input size",
            "cin": "input width",
            "cexp": "width",
            "cout": "output width",
        }
        by: dict[tuple, set] = {}
        for typ, c, v in findings:
            by.setdefault((typ, c), set()).add(v)
        out = []
        for (typ, c), vals in sorted(by.items()):
            d = self.domain_[typ][c]
            if isinstance(d, frozenset):
                fmt = (lambda x: acts[x].value) if c == "act" else str
                out.append(
                    f"{typ} {labels[c]} {', '.join(fmt(v) for v in sorted(vals))} never measured "
                    f"(measured: {', '.join(fmt(v) for v in sorted(d))})"
                )
            else:
                span = f"{min(vals)}" if len(vals) == 1 else f"{min(vals)}-{max(vals)}"
                out.append(f"{typ} {labels[c]} {span} far outside the measured {d[0]}-{d[1]}")
        return "; ".join(out)


class _PieceSum(Predictor):
    """Sum of per-piece latencies + the network-level calibration term."""

    def _check_params(self) -> None:
        if self.granularity not in SUM_GRANULARITIES:
            raise ValueError(f"granularity: expected one of {SUM_GRANULARITIES}, got {self.granularity!r}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {self.calibration!r}")
        if not (self.estimator == "auto" or self.estimator in ESTIMATORS or isinstance(self.estimator, dict)):
            raise ValueError(
                f"estimator: expected auto, {', '.join(ESTIMATORS)} or a dict per piece "
                f"type, got {self.estimator!r}"
            )

    def _training_pieces(self, pieces: pd.DataFrame | None) -> tuple[list[Workload], np.ndarray]:
        """The measured pieces of this granularity, one per key (the median of its latencies)."""
        if pieces is None or len(pieces) == 0:
            raise ValueError(f"{type(self).__name__} needs measured pieces: pass pieces=TrainingData.pieces")
        p = pieces[(pieces["granularity"] == self.granularity) & (pieces["variant"] == "warm")]
        if p.empty:
            raise ValueError(f"no measured {self.granularity}s to learn from (profile them first)")
        p = p.groupby("key", sort=False).agg(latency_ms=("latency_ms", "median"), spec=("spec", "first"))
        ws = [from_spec(k, json.loads(s) if isinstance(s, str) else s) for k, s in zip(p.index, p["spec"])]
        return ws, p["latency_ms"].to_numpy(float)

    def _fit_regressor(self, ws: list[Workload], ms: np.ndarray) -> PieceRegressor:
        return PieceRegressor(self.estimator, self.random_state).fit(pieces_frame(ws), ms)

    def _fit(self, archs, y, pieces) -> None:
        self._check_params()
        self._fit_pieces(*self._training_pieces(pieces))
        self.gamma_ms_per_mb_ = self.per_piece_ms_ = 0.0  # the plain sum, for the calibration
        self._piece_ms: dict[str, float] = {}  # piece key -> ms
        self._piece_notes: dict[str, tuple] = {}  # piece key -> extrapolation findings
        self._group_ms: dict[PieceGroup, float] = {}  # block -> ms of its pieces + β·n
        self._flagged: dict[PieceGroup, tuple] = {}  # block -> findings of its pieces
        s, _ = self._sums(archs, "training networks")
        groups = [piece_groups(a, self.granularity) for a in archs]
        nf = np.array(
            [[4 * sum(g.params for g in gs) / 1e6, sum(len(g.pieces) for g in gs)] for gs in groups]
        )
        self._fit_calibration(s, nf.reshape(-1, 2), y)
        self._group_ms.clear()  # costs now include the fitted β·n
        self._flagged.clear()

    def state_params(self) -> dict:
        reg = self._regressor()
        return {**self.get_params(), **({"estimator": dict(reg.choice_)} if reg is not None else {})}

    def _regressor(self) -> PieceRegressor | None:
        return None

    def _fit_calibration(self, s, nf, y) -> None:
        """Fit the network term ``y − s = γ·max(0, W − C) + β·n + δ`` on relative error.

        ``nf`` holds per network the weight footprint ``W`` (MB) and the number of pieces ``n``.
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

    # -- prediction: the hot path ----------------------------------------------------------------
    def _sums(self, archs: Sequence[ArchSpec], where: str) -> tuple[np.ndarray, np.ndarray]:
        """Per network: summed piece latency plus the per-piece term ``β·n`` (ms), and parameters.

        Every block is decomposed once per (config, input shape) (:func:`piece_groups`) and every
        distinct piece estimated once, in one batch, then kept: the loop below is lookups only.
        """
        per = [piece_groups(a, self.granularity) for a in archs]
        cost = self._group_ms
        try:
            ms = np.array([sum(map(cost.__getitem__, gs)) for gs in per], dtype=float)
        except KeyError:  # blocks this predictor has not costed yet: all of them, in one batch
            self._cost_groups(list({g: None for gs in per for g in gs if g not in cost}), where)
            ms = np.array([sum(map(cost.__getitem__, gs)) for gs in per], dtype=float)
        if self._flagged:  # pieces outside what was measured: say so at every prediction
            flagged = self._flagged
            self._warn_outside([n for gs in per for g in gs if g in flagged for n in flagged[g]], where)
        if not self.gamma_ms_per_mb_:  # the footprint term is off: parameters are not needed
            return ms, np.zeros(len(per))
        return ms, np.array([sum(map(_PARAMS, gs)) for gs in per], dtype=float)

    def _cost_groups(self, groups: list[PieceGroup], where: str) -> None:
        known, notes = self._piece_ms, self._piece_notes
        todo = {w.key: w for g in groups for w in g.pieces if w.key not in known}
        if todo:
            ms, found = self._estimate(list(todo.values()), where)
            known.update(zip(todo, map(float, ms)))
            notes.update((k, n) for k, n in zip(todo, found) if n)
        for g in groups:
            self._group_ms[g] = sum(known[w.key] for w in g.pieces) + self.per_piece_ms_ * len(g.pieces)
            flagged = tuple(n for w in g.pieces for n in notes.get(w.key, ()))
            if flagged:
                self._flagged[g] = flagged

    def _ms_of(self, pieces: Sequence[Workload], where: str = "network") -> np.ndarray:
        """Latency (ms) of each piece (warns when some are outside what was measured)."""
        ms, found = self._estimate(pieces, where)
        self._warn_outside([n for f in found for n in f], where)
        return ms

    def _warn_outside(self, findings: list[tuple], where: str) -> None:
        if findings:
            self.warn_extrapolation(f"{where}: " + self._regressor().describe(findings))

    def _predict(self, archs) -> np.ndarray:
        ms, params = self._sums(archs, archs[0].name if len(archs) == 1 else f"{len(archs)} networks")
        return ms + self._footprint(params) + self.offset_ms_

    def _footprint(self, params):
        """``γ·max(0, weight_MB − C)`` (ms) for networks of ``params`` fp32 weights."""
        return self.gamma_ms_per_mb_ * np.maximum(0.0, 4 * np.asarray(params) / 1e6 - self.cache_mb_)

    def network_term(self, arch: ArchSpec) -> float:
        """The fitted network-level latency (ms) added to the summed pieces of ``arch``."""
        groups = piece_groups(arch, self.granularity)
        params, n = sum(g.params for g in groups), sum(len(g.pieces) for g in groups)
        return float(self._footprint(params) + self.per_piece_ms_ * n + self.offset_ms_)

    def _layers(self, arch) -> pd.DataFrame:
        self._sums([arch], arch.name)  # estimates every piece of the network
        pieces = blocks(arch) if self.granularity == "block" else kernels(arch)
        ms = np.array([self._piece_ms[w.key] for w in pieces])
        params = np.array([w.params for w in pieces], dtype=float)
        term = self.network_term(arch)
        # the network term goes where the weights are (footprint) or evenly (offset)
        share = (
            params / params.sum()
            if self.gamma_ms_per_mb_ > 0 and params.sum()
            else np.full(len(pieces), 1 / len(pieces))
        )
        names = {r.name: r for r in layers(arch)}
        acc: dict[str, float] = dict.fromkeys(names, 0.0)
        for w, t in zip(pieces, ms + term * share):
            weight = np.array([r.madds + r.elementwise + 1 for r in w.rows], dtype=float)
            for r, part in zip(w.rows, t * weight / weight.sum()):
                name = r.name if r.name in acc else r.name.rsplit(".", 1)[0]  # a kernel's ".act" row
                acc[name] += part
        return pd.DataFrame(
            {
                "name": list(acc),
                "op": [names[n].op.value for n in acc],
                "block": [names[n].block for n in acc],
                "latency_ms": list(acc.values()),
            }
        )


class LookupTable(_PieceSum):
    """Measured pieces summed (Once-for-All / FBNet style table keyed by piece config + input shape).

    ``on_missing="regression"``: a piece not in the table is predicted from the measured pieces of
    the same config at other widths and a per-type regression ``g`` (``estimator``): with ``L`` the
    largest measured latency among pieces no wider in any channel, ``U`` the smallest among pieces
    no narrower, and ``h = g·ρ`` (``ρ`` the config's median measured/regression ratio), the answer
    is ``h`` clipped into ``[L, U]`` (the geometric mean of both clip orders where the table
    contradicts itself). Each of ``h``, ``L``, ``U`` grows with every width, so the answer does; at
    a measured width ``L = U =`` the measurement.
    """

    kind = "lut"

    def __init__(
        self,
        granularity: str = "block",
        calibration: str = "footprint",
        on_missing: str = "raise",
        estimator: str | dict = "auto",
        random_state: int = 0,
    ):
        self.granularity = granularity
        self.calibration = calibration
        self.on_missing = on_missing
        self.estimator = estimator
        self.random_state = random_state

    def _regressor(self) -> PieceRegressor | None:
        return self.fallback_

    def _fit_pieces(self, ws: list[Workload], ms: np.ndarray) -> None:
        if self.on_missing not in ("raise", "regression"):
            raise ValueError(f"on_missing: expected 'raise' or 'regression', got {self.on_missing!r}")
        self.fallback_ = self._fit_regressor(ws, ms) if self.on_missing == "regression" else None
        g = self.fallback_.predict(pieces_frame(ws)) if self.fallback_ is not None else np.ones_like(ms)
        fams: dict[tuple, list[int]] = {}
        widths = []
        for i, w in enumerate(ws):
            config, x = width_signature(w)
            fams.setdefault(config, []).append(i)
            widths.append(x)
        self.families_: dict[tuple, tuple[np.ndarray, np.ndarray, float]] = {}
        table = np.empty(len(ws))
        for config, idx in fams.items():
            X, t = np.array([widths[i] for i in idx]), ms[idx]
            self.families_[config] = (X, t, float(np.median(t / g[idx])))
            lo, hi = _envelope(X, t, X)
            table[idx] = np.sqrt(lo * hi)  # the measurement itself unless the table contradicts itself
        self.table_ = dict(zip((w.key for w in ws), table))
        self.n_adjusted_ = int(np.sum(~np.isclose(table, ms, rtol=1e-9, atol=0)))

    def _estimate(self, pieces: Sequence[Workload], where: str) -> tuple[np.ndarray, list[tuple]]:
        """Latency (ms) of each piece: its table entry, or predicted between measured widths; and
        per piece, the regression's extrapolation findings."""
        ms = np.array([self.table_.get(w.key, np.nan) for w in pieces])
        found: list[tuple] = [()] * len(pieces)
        missing = np.flatnonzero(np.isnan(ms))
        if len(missing):
            miss = [pieces[i] for i in missing]
            if self.fallback_ is None:
                raise MissingEntryError(
                    f"{where}: {len(miss)} {self.granularity}(s) not in the table, e.g. {miss[0].label!r}; "
                    f"profile them (hwlat profile models ... --with-blocks) or use the calibrated kind, "
                    f"which predicts unmeasured pieces"
                )
            feats = pieces_frame(miss)
            ms[missing] = self._between(miss, self.fallback_.predict(feats))
            for i, n in zip(missing, self.fallback_.outside(feats)):
                found[i] = n
        return ms, found

    def _between(self, pieces: Sequence[Workload], g: np.ndarray) -> np.ndarray:
        """Unmeasured pieces: the regression ``g`` (ms) made to agree with the table (class docstring)."""
        out = np.array(g, dtype=float)
        by_config: dict[tuple, list[tuple[int, tuple]]] = {}
        for j, w in enumerate(pieces):
            config, x = width_signature(w)
            if config in self.families_:
                by_config.setdefault(config, []).append((j, x))
        for config, items in by_config.items():
            X, t, rho = self.families_[config]
            j = np.array([i for i, _ in items])
            lo, hi = _envelope(X, t, np.array([x for _, x in items]))
            h = out[j] * rho
            out[j] = np.sqrt(np.minimum(np.maximum(h, lo), hi) * np.maximum(np.minimum(h, hi), lo))
        return out

    def coverage(self, archs: Sequence[ArchSpec]) -> float:
        """Fraction of the pieces of ``archs`` that have a measured entry."""
        keys = [w.key for a in archs for g in piece_groups(a, self.granularity) for w in g.pieces]
        return float(np.mean([k in self.table_ for k in keys])) if keys else 1.0


def _envelope(
    X: np.ndarray, t: np.ndarray, Q: np.ndarray, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``Q`` (widths): the largest ``t`` of rows of ``X`` no wider in any width
    (0 if none) and the smallest ``t`` of rows no narrower (inf if none)."""
    lo, hi = np.empty(len(Q)), np.empty(len(Q))
    for s in range(0, len(Q), chunk):
        q = Q[s : s + chunk, None, :]
        below = (X[None] <= q).all(-1)
        above = (X[None] >= q).all(-1)
        lo[s : s + chunk] = np.where(below, t, 0.0).max(1)
        hi[s : s + chunk] = np.where(above, t, np.inf).min(1)
    return lo, hi


class Regression(_PieceSum):
    """Per-type scikit-learn models of piece latency, summed, plus the network term."""

    kind = "regression"

    def __init__(
        self,
        granularity: str = "block",
        calibration: str = "footprint",
        estimator: str | dict = "auto",
        random_state: int = 0,
    ):
        self.granularity = granularity
        self.calibration = calibration
        self.estimator = estimator
        self.random_state = random_state

    def _regressor(self) -> PieceRegressor | None:
        return self.regressor_

    def _fit_pieces(self, ws: list[Workload], ms: np.ndarray) -> None:
        self.regressor_ = self._fit_regressor(ws, ms)

    def _estimate(self, pieces: Sequence[Workload], where: str) -> tuple[np.ndarray, list[tuple]]:
        feats = pieces_frame(pieces)
        return self.regressor_.predict(feats), self.regressor_.outside(feats)
