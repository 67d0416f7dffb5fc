"""``e2e``: per-block costs learned from whole-network latencies only.

For devices where only whole networks can be timed (a phone's ``benchmark_model``, an app, a
published table), there is no block table. This predictor learns what each block costs from the
network latencies alone (all latencies in milliseconds)::

    latency(net) = Σ_blocks [ w · φ(block) + δ[block] ]  +  γ · max(0, weight_MB − C)  +  c

* ``φ(block)`` — cost features summed over the block's rows of :func:`hwlat.archs.layers.layers`
  (:data:`FEATURES`: MAdds of dense, grouped and depthwise convs and of the classifier, depthwise
  output elements, parameters, elements read and written, elementwise work, number of layers).
  ``w ≥ 0`` (the MAdds weight at least :data:`MIN_MADDS_SHARE`): every block costs at least zero
  and more channels never predict a faster block, so blocks and widths that no measured network
  contained are predicted from their features.
* ``δ[block]`` — a residual per distinct block (its workload key: exact computation and input
  shape), ridge-penalised: what the features miss about a block seen in training networks. An
  unseen block has ``δ = 0``. With enough networks of an exactly additive device (a published
  lookup-table sum), ``w · φ + δ`` recovers the device's per-block costs exactly.
* The network term (not additive over blocks): ``c`` per invocation, and the weight footprint
  beyond an effective cache size ``C`` (``γ ≥ 0``, ``C`` chosen by CV, ``∞`` = off).

What network latencies cannot tell apart stays undetermined: the cost every network shares (the
fixed stem and head against the per-invocation ``c``) and, in a fixed-depth space such as FBNet's,
a constant per position where every network has a block. The ridges settle it on the feature
model, so sums are exact where the data are, but a block's own cost can come out slightly negative
(``@pixel3``: the 1×1 ``skip`` conv of layer 1 at −0.15 ms beside 0.5–2.5 ms for its
alternatives).

The fit minimises a soft-L1 loss of the *relative* error (iteratively reweighted least squares):
phone measurements have slow outliers (a run caught by throttling), which must not drag the costs
of every block. The hyper-parameters (the ridge on the features ``λ_f``, on the residuals ``λ_b``,
and ``C``) are chosen by K-fold cross-validation on the training networks only. The MAdds
coefficient is never penalised, so with a handful of networks the model falls back to the MAdds
proxy and with hundreds it learns the device's own cost structure.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear
from threadpoolctl import threadpool_limits

from hwlat.archs.ir import ArchSpec
from hwlat.archs.layers import LayerSpec, OpKind
from hwlat.archs.pieces import blocks
from hwlat.errors import FileFormatError
from hwlat.latency_models import persist
from hwlat.latency_models.base import Predictor
from hwlat.latency_models.features import piece_groups

FEATURES = (
    "madds",
    "conv_madds",
    "gconv_madds",
    "dw_madds",
    "dw_out",
    "fc_madds",
    "params",
    "in_elems",
    "out_elems",
    "elementwise",
    "layers",
)
"""Per-block cost features (counts per image): ``madds`` all multiply-adds (never penalised),
``conv_madds`` dense convs, ``gconv_madds`` grouped (not depthwise) convs, ``dw_madds`` depthwise
convs, ``dw_out`` depthwise output elements (the per-pixel cost that does not grow with k²),
``fc_madds`` the classifier, ``params`` weights, ``in_elems`` / ``out_elems`` elements read /
written by the block's layers, ``elementwise`` activations, adds, pooling, ``layers`` row count
(per-op overhead)."""

LOSS_SCALE = 0.03
"""Relative error beyond which a network counts as an outlier in the soft-L1 loss."""
MIN_MADDS_SHARE = 0.01
"""Lower bound of the MAdds coefficient, as the share of the mean latency the mean network's
MAdds explain: a multiply-add is never free, so five noisy networks cannot fit a model that
ignores MAdds and ranks networks by the (penalised) rest."""
FEATURE_RIDGE = (1e-4, 1e-2, 1.0, 100.0)
BLOCK_RIDGE = (np.inf, 10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-5, 1e-8)
CACHE_QUANTILES = (0.25, 0.5, 0.75)


def _numel(shape) -> int:
    return shape[0] * shape[1] * shape[2]


def block_features(rows: Sequence[LayerSpec]) -> np.ndarray:
    """:data:`FEATURES` of a run of layer rows (one block), as floats."""
    f = dict.fromkeys(FEATURES, 0.0)
    for r in rows:
        f["madds"] += r.madds
        if r.op is OpKind.DWCONV:
            f["dw_madds"] += r.madds
            f["dw_out"] += _numel(r.out_shape)
        elif r.op is OpKind.CONV:
            f["gconv_madds" if r.groups > 1 else "conv_madds"] += r.madds
        elif r.op is OpKind.FC:
            f["fc_madds"] += r.madds
        f["params"] += r.params
        f["in_elems"] += _numel(r.in_shape)
        f["out_elems"] += _numel(r.out_shape)
        f["elementwise"] += r.elementwise
        f["layers"] += 1
    return np.array([f[k] for k in FEATURES], dtype=float)


@functools.lru_cache(maxsize=65536)
def arch_blocks(arch: ArchSpec) -> tuple[tuple[str, ...], np.ndarray, float]:
    """(block keys, per-block features ``(n_blocks, len(FEATURES))``, fp32 weight MB) of ``arch``;
    cached (archs are immutable). Identity layers have no rows and no block."""
    ws = blocks(arch)
    keys = tuple(w.key for w in ws)
    feats = np.stack([block_features(w.rows) for w in ws])
    return keys, feats, 4 * float(feats[:, FEATURES.index("params")].sum()) / 1e6


def soft_l1_weights(r: np.ndarray, scale: float) -> np.ndarray:
    """IRLS weights of the soft-L1 loss ``ρ = 2(√(1+(r/s)²) − 1)`` at residuals ``r``: minimising
    ``Σ wᵢ rᵢ²`` with ``wᵢ = ρ'((rᵢ/s)²) = 1/√(1+(rᵢ/s)²)`` at a fixed point minimises ``Σ ρ``."""
    return 1.0 / np.sqrt(1.0 + (r / scale) ** 2)


def _one_se(candidates: list, loss) -> float:
    """The first of ``candidates`` (ordered most regularised first) whose mean ``loss(c)`` (an
    array of per-network losses) is within one standard error of the best candidate's."""
    losses = [loss(c) for c in candidates]
    means = np.array([v.mean() for v in losses])
    best = int(np.argmin(means))
    bar = (
        means[best] + losses[best].std(ddof=1) / np.sqrt(len(losses[best]))
        if len(losses[best]) > 1
        else means[best]
    )
    return next(c for c, m in zip(candidates, means) if m <= bar)


class _Design:
    """The linear system of a set of networks: summed features, block counts, footprint."""

    def __init__(self, archs: Sequence[ArchSpec]):
        per = [arch_blocks(a) for a in archs]
        self.phi = np.stack([f.sum(0) for _, f, _ in per])
        self.weight_mb = np.array([w for *_, w in per])
        self.vocab: dict[str, int] = {}
        for keys, *_ in per:
            for k in keys:
                self.vocab.setdefault(k, len(self.vocab))
        self.counts = np.zeros((len(archs), len(self.vocab)))
        for i, (keys, *_) in enumerate(per):
            for k in keys:
                self.counts[i, self.vocab[k]] += 1


class EndToEnd(Predictor):
    """Per-block costs from whole-network latencies (see the module docstring).

    Parameters
    ----------
    feature_ridge, block_ridge, cache_mb :
        ``None`` (default): chosen by cross-validation on the training networks; or fixed values
        (``block_ridge=inf`` turns the per-block residual off, ``cache_mb=inf`` the footprint term).
    loss_scale : relative error beyond which a network counts as an outlier (soft-L1 scale).
    folds : cross-validation folds (fewer when there are fewer networks: leave-one-out).
    random_state : seed of the fold assignment.
    """

    kind = "e2e"
    granularity = "block"  # its pieces are blocks: compile_space can tabulate it
    per_piece_ms_ = 0.0  # no per-piece overhead term (the network term is per invocation)

    def __init__(
        self,
        feature_ridge: float | None = None,
        block_ridge: float | None = None,
        cache_mb: float | None = None,
        loss_scale: float = LOSS_SCALE,
        folds: int = 5,
        random_state: int = 0,
    ):
        self.feature_ridge = feature_ridge
        self.block_ridge = block_ridge
        self.cache_mb = cache_mb
        self.loss_scale = loss_scale
        self.folds = folds
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------
    def _fit(self, archs, y, pieces) -> None:
        # many small dense solves: one BLAS thread is several times faster than a contended pool
        with threadpool_limits(1):
            self._fit_design(_Design(archs), y)

    def _fit_design(self, d: _Design, y: np.ndarray) -> None:
        self.scale_ = np.maximum(np.mean(d.phi / y[:, None], 0), 1e-12)  # features in units of y
        self.y_scale_ = float(np.mean(y))
        lf, lb, c = self._choose(d, y)
        self.chosen_ = {"feature_ridge": lf, "block_ridge": lb, "cache_mb": c}
        self._solve(d, y, lf, lb, c)

    def _choose(self, d: _Design, y: np.ndarray) -> tuple[float, float, float]:
        """Hyper-parameters by K-fold CV on the training networks: first the feature ridge (no
        residual, no footprint), then the cache size, then the block ridge. Each is the most
        regularised value whose CV loss is within one standard error of the best (the "one-SE
        rule"), so a handful of networks cannot talk the model out of the MAdds proxy."""
        lf, lb, c = self.feature_ridge, self.block_ridge, self.cache_mb
        n = len(y)
        k = min(self.folds, n)
        fold = np.random.default_rng(self.random_state).permutation(n) % k
        if lf is None:  # most regularised first; fewer networks than features: MAdds-like only
            grid = sorted(FEATURE_RIDGE, reverse=True)
            lf = (
                _one_se(grid, lambda v: self._cv(d, y, fold, v, np.inf, np.inf))
                if n > len(FEATURES)
                else grid[0]
            )
        if c is None:
            cands = (
                [np.inf, *np.unique(np.quantile(d.weight_mb, CACHE_QUANTILES))[::-1]] if n >= 20 else [np.inf]
            )
            c = _one_se(cands, lambda v: self._cv(d, y, fold, lf, np.inf, v))
        if lb is None:
            lb = _one_se(list(BLOCK_RIDGE), lambda v: self._cv(d, y, fold, lf, v, c)) if n >= 10 else np.inf
        return float(lf), float(lb), float(c)

    def _cv(self, d: _Design, y, fold, lf, lb, c) -> np.ndarray:
        """Per-network soft-L1 loss of the relative error, each predicted by the fit without its fold."""
        err = np.empty(len(y))
        for f in np.unique(fold):
            tr, te = fold != f, fold == f
            coef = self._coefficients(d.phi[tr], d.counts[tr], d.weight_mb[tr], y[tr], lf, lb, c)
            err[te] = self._apply(coef, d.phi[te], d.counts[te], d.weight_mb[te], c) / y[te] - 1
        return 2 * (np.sqrt(1 + (err / self.loss_scale) ** 2) - 1)

    def _columns(self, phi, wmb, c) -> np.ndarray:
        """The bounded part of the design in scaled units: features, footprint, intercept."""
        foot = np.maximum(0.0, wmb - c) if np.isfinite(c) else np.zeros(len(wmb))
        return np.hstack([phi / self.scale_, foot[:, None], np.ones((len(phi), 1))])

    def _coefficients(self, phi, counts, wmb, y, lf, lb, c) -> tuple[np.ndarray, np.ndarray]:
        """(w, δ) in scaled units: ``w`` = [features, γ, c] (bounded), ``δ`` per block (ridge).

        Minimises ``Σ ρ((A·w + C·δ)/y − 1) + lf·|w_pen|² + lb·|δ|²`` by IRLS; in each step ``δ``
        is eliminated in closed form, leaving a small bounded least-squares problem in ``w``.
        """
        A = self._columns(phi, wmb, c) / y[:, None]
        C = counts / (self.y_scale_ * y[:, None])
        nf = len(FEATURES)
        pen = np.zeros(A.shape[1])
        pen[1:nf] = lf  # every feature but total MAdds
        lower = np.full(A.shape[1], -np.inf)
        lower[: nf + 1] = 0.0  # w >= 0, γ >= 0
        lower[0] = MIN_MADDS_SHARE
        if not np.isfinite(c):
            pen[nf] = 1.0  # unused footprint column (all zeros): w = 0
        use_c = np.isfinite(lb) and C.shape[1] > 0
        wts = np.ones(len(y))
        w = delta = None
        for _ in range(6):  # IRLS for the soft-L1 loss on relative error
            WA = A * wts[:, None]
            Q, q = A.T @ WA, WA.sum(0)
            if use_c:
                G = C.T @ (C * wts[:, None]) + lb * np.eye(C.shape[1])
                WC = C * wts[:, None]
                sol = np.linalg.solve(G, np.hstack([WC.T @ A, (WC.T @ np.ones(len(y)))[:, None]]))
                Q = Q - (WC.T @ A).T @ sol[:, :-1]
                q = q - (WC.T @ A).T @ sol[:, -1]
            Q = Q + np.diag(pen)
            L = np.linalg.cholesky(Q + 1e-12 * np.trace(Q) / len(Q) * np.eye(len(Q)))
            w = lsq_linear(L.T, np.linalg.solve(L, q), bounds=(lower, np.inf), method="bvls").x
            if use_c:
                delta = sol[:, -1] - sol[:, :-1] @ w
                r = A @ w + C @ delta - 1
            else:
                delta = np.zeros(C.shape[1])
                r = A @ w - 1
            new = soft_l1_weights(r, self.loss_scale)
            if np.allclose(new, wts, rtol=1e-3, atol=1e-4):
                break
            wts = new
        return w, delta

    def _apply(self, coef, phi, counts, wmb, c) -> np.ndarray:
        w, delta = coef
        return self._columns(phi, wmb, c) @ w + counts @ delta / self.y_scale_

    def _solve(self, d: _Design, y, lf, lb, c) -> None:
        w, delta = self._coefficients(d.phi, d.counts, d.weight_mb, y, lf, lb, c)
        nf = len(FEATURES)
        self.weights_ = w[:nf] / self.scale_  # ms per feature unit
        self.gamma_ms_per_mb_ = float(w[nf])
        self.cache_mb_ = c
        self.offset_ms_ = float(w[nf + 1])
        delta = delta / self.y_scale_
        self.residual_ms_ = {k: float(delta[j]) for k, j in d.vocab.items() if delta[j] != 0.0}

    # -- predicting ----------------------------------------------------------------------------
    def block_costs(self, arch: ArchSpec) -> tuple[tuple[str, ...], np.ndarray]:
        """(block keys, per-block latency in ms) of ``arch``, without the network term."""
        self._check_fitted()
        keys, feats, _ = arch_blocks(arch)
        ms = feats @ self.weights_ + np.array([self.residual_ms_.get(k, 0.0) for k in keys])
        return keys, ms

    def _ms_of(self, pieces, where: str = "network") -> np.ndarray:
        """Latency (ms) of block workloads (:func:`hwlat.archs.pieces.blocks`), without the
        network term: what :func:`~hwlat.latency_models.space_table.compile_space` tabulates."""
        self._check_fitted()
        return np.array(
            [block_features(w.rows) @ self.weights_ + self.residual_ms_.get(w.key, 0.0) for w in pieces]
        )

    def network_term(self, arch: ArchSpec) -> float:
        """The network-level latency (ms): per-invoke offset + weight footprint beyond the cache."""
        wmb = arch_blocks(arch)[2]
        foot = max(0.0, wmb - self.cache_mb_) if np.isfinite(self.cache_mb_) else 0.0
        return self.gamma_ms_per_mb_ * foot + self.offset_ms_

    def _predict(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        """Per network the summed block costs plus the network term, as :meth:`block_costs` and
        :meth:`network_term` give them, from the cached blocks (:func:`piece_groups`): each
        distinct block is costed once (features and residual), a network is lookups."""
        memo = self.__dict__.get("_group_ms")  # (coefficients it was costed with, block -> ms)
        if memo is None or memo[0] is not self.weights_ or memo[1] is not self.residual_ms_:
            memo = self._group_ms = (self.weights_, self.residual_ms_, {})  # refitted or loaded: anew
        cost = memo[2]
        ms, params = [], []
        for a in archs:
            gs = [g for g in piece_groups(a) if g.pieces]  # identity skips have no block
            for g in gs:
                if g not in cost:
                    w = g.pieces[0]
                    cost[g] = float(
                        block_features(w.rows) @ self.weights_ + self.residual_ms_.get(w.key, 0.0)
                    )
            ms.append(np.array([cost[g] for g in gs]).sum())
            params.append(sum(g.params for g in gs))
        wmb = 4 * np.array(params, dtype=float) / 1e6
        foot = np.maximum(0.0, wmb - self.cache_mb_) if np.isfinite(self.cache_mb_) else np.zeros(len(wmb))
        return np.array(ms, dtype=float) + (self.gamma_ms_per_mb_ * foot + self.offset_ms_)

    def _layers(self, arch) -> pd.DataFrame:
        """Per-layer ms: each row's feature cost, its block's residual spread over the block's rows
        by feature cost, and the network term spread by parameters (footprint) or evenly."""
        ws = blocks(arch)
        _, block_ms = self.block_costs(arch)
        term = self.network_term(arch)
        rows = [r for w in ws for r in w.rows]
        params = np.array([r.params for r in rows], dtype=float)
        share = (
            params / params.sum()
            if self.gamma_ms_per_mb_ > 0 and params.sum()
            else np.full(len(rows), 1 / len(rows))
        )
        out, i = [], 0
        for w, b_ms in zip(ws, block_ms):
            f = np.array([block_features((r,)) @ self.weights_ for r in w.rows])
            part = f + (b_ms - f.sum()) * (f / f.sum() if f.sum() > 0 else np.full(len(f), 1 / len(f)))
            for r, ms in zip(w.rows, part):
                out.append((r.name, r.op.value, r.block, ms + term * share[i]))
                i += 1
        return pd.DataFrame(out, columns=["name", "op", "block", "latency_ms"])

    # -- state (JSON persistence) --------------------------------------------------------------
    def chosen_json(self) -> dict:
        """The chosen hyper-parameters, JSON-ready (``None`` for infinity: off)."""
        return {k: (None if not np.isfinite(v) else float(v)) for k, v in self.chosen_.items()}

    def get_state(self) -> dict:
        """The base state plus ``learned``: the coefficients, restored by :meth:`from_state`
        without refitting (the shipped tables hold no training networks, only these)."""
        state = super().get_state()
        state["learned"] = {
            "features": list(FEATURES),
            "weights_ms": [float(v) for v in self.weights_],
            "gamma_ms_per_mb": self.gamma_ms_per_mb_,
            "cache_mb": None if not np.isfinite(self.cache_mb_) else self.cache_mb_,
            "offset_ms": self.offset_ms_,
            "residual_ms": self.residual_ms_,
            "chosen": self.chosen_json(),
            "resolution_range": list(self.resolution_range_),
        }
        return state

    @classmethod
    def from_state(cls, state: dict, source: str = "state") -> EndToEnd:
        """The predictor of :meth:`get_state`: its learned coefficients restored (no refit)."""
        from hwlat.archs.codec import decode

        persist.check_state(state, source)
        learned = state.get("learned")
        if not isinstance(learned, dict):
            raise FileFormatError(f"{source}: state.learned: expected the e2e coefficients (an object)")
        try:
            if list(learned["features"]) != list(FEATURES):
                raise FileFormatError(
                    f"{source}: state.learned.features: {learned['features']} are not "
                    f"this hwlat's {list(FEATURES)}"
                )
            self = cls(**state["params"])
            self.weights_ = np.asarray(learned["weights_ms"], dtype=float).reshape(len(FEATURES))
            self.gamma_ms_per_mb_ = float(learned["gamma_ms_per_mb"])
            self.cache_mb_ = np.inf if learned["cache_mb"] is None else float(learned["cache_mb"])
            self.offset_ms_ = float(learned["offset_ms"])
            self.residual_ms_ = {str(k): float(v) for k, v in learned["residual_ms"].items()}
            self.chosen_ = {k: (np.inf if v is None else float(v)) for k, v in learned["chosen"].items()}
            lo, hi = learned["resolution_range"]
            self.resolution_range_ = (int(lo), int(hi))
            train = state["train"]
            names = train.get("names") or [None] * len(train["archs"])
            self.train_archs_ = [decode(a, name=n) if n else decode(a) for a, n in zip(train["archs"], names)]
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(f"{source}: state.learned: damaged e2e coefficients ({e})") from None
        self.train_latency_ms_ = np.asarray(train["latency_ms"], dtype=float)
        self.train_pieces_ = None
        self.fingerprint_ = dict(state["fingerprint"])
        self.runtime_ = state["runtime"]
        return self
