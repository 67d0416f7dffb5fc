"""``transfer``: a new device's predictor from a handful of its measurements and the predictors of
devices already known.

With N (as few as 5) end-to-end latencies of the new device, it learns how to combine one or several
*source* predictors (this machine's lookup table, a published phone's ``e2e``...), in log space::

    log latency(net) = a + Σ_s b_s · log p_s(net)          (b_s ≥ 0)

* ``a`` is the new device's speed relative to the sources; ``b`` says which sources' notion of
  "expensive" it shares. ``b`` is pulled towards the prior ``b_s = 1/S`` (the sources' geometric
  mean, same shape) by a ridge whose strength is chosen by cross-validation on the N networks
  (leave-one-out up to 10; ``∞``: the prior itself, only the scale is learned, as with 2 networks).
* The fit minimises a soft-L1 loss of the log error, so one throttled run among five does not set
  the scale.
* ``madds=True`` adds the MAdds count as one more source (it needs no measurement at all).

``predict_layers`` gives the sources' per-layer shares (weighted by ``b``) scaled to the total.
The fitted predictor embeds its sources (their files' contents), so it is self-contained, and
records their devices (``source_devices``) so a report can say where its knowledge came from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from hwlat.archs.ir import ArchSpec
from hwlat.archs.layers import layers
from hwlat.errors import FileFormatError
from hwlat.latency_models import persist
from hwlat.latency_models.base import Predictor, predictor_class
from hwlat.latency_models.e2e import soft_l1_weights
from hwlat.latency_models.features import groups_memo, network_madds

LOSS_SCALE = 0.03
RIDGE = (np.inf, 1e3, 1e2, 10.0, 1.0, 0.1, 1e-2, 1e-3)
"""Candidate strengths of the pull towards equal weights (cross-validation picks one)."""


def _fit_log(
    L: np.ndarray, ly: np.ndarray, ridge: float, prior: np.ndarray, scale: float = LOSS_SCALE
) -> tuple[float, np.ndarray]:
    """(a, b) minimising ``Σ ρ(ly − a − L·b) + ridge·|b − prior|²`` with ``b ≥ 0`` (IRLS, soft-L1)."""
    n, k = L.shape
    w = np.ones(n)
    base = ly - L @ prior
    u, a = np.zeros(k), 0.0
    for _ in range(8):
        if np.isfinite(ridge):
            sw = np.sqrt(w)
            A = np.vstack(
                [
                    np.hstack([L, np.ones((n, 1))]) * sw[:, None],
                    np.hstack([np.sqrt(ridge) * np.eye(k), np.zeros((k, 1))]),
                ]
            )
            b = np.concatenate([base * sw, np.zeros(k)])
            x = lsq_linear(A, b, bounds=(np.concatenate([-prior, [-np.inf]]), np.inf), method="bvls").x
            u, a = x[:k], x[k]
        else:
            a = float(np.average(base, weights=w))
        r = base - L @ u - a
        new = soft_l1_weights(r, scale)
        if np.allclose(new, w, rtol=1e-3, atol=1e-4):
            break
        w = new
    return float(a), prior + u


def _cv_ridge(
    L: np.ndarray, ly: np.ndarray, prior: np.ndarray, scale: float = LOSS_SCALE, folds: int = 10
) -> float:
    """The ridge of :data:`RIDGE` with the smallest cross-validated soft-L1 loss: leave-one-out up to
    ``folds`` networks, ``folds``-fold beyond (``∞`` below 3 networks)."""
    n = len(ly)
    if n < 3:
        return np.inf
    fold = np.arange(n) % min(n, folds)
    best, best_loss = np.inf, np.inf
    for ridge in RIDGE:
        err = np.empty(n)
        for f in range(min(n, folds)):
            keep = fold != f
            a, b = _fit_log(L[keep], ly[keep], ridge, prior, scale)
            err[~keep] = ly[~keep] - a - L[~keep] @ b
        loss = float(np.mean(2 * (np.sqrt(1 + (err / scale) ** 2) - 1)))
        if loss < best_loss - 1e-12:
            best, best_loss = ridge, loss
    return best


def source_label(pred) -> str:
    """A short name of a source predictor: its device's name, else its kind."""
    from hwlat.profiler.storage.device_select import device_name

    fp = getattr(pred, "fingerprint_", None) or {}
    return f"{pred.kind}:{device_name(fp)}" if fp else pred.kind


class Transfer(Predictor):
    """Source predictors combined in log space from a few measurements (module docstring).

    Parameters
    ----------
    sources : fitted predictors of other devices (``load("@pixel3")``, ``load(path)``...).
    ridge : pull towards equal weights; ``None`` chooses it by cross-validation.
    madds : add the MAdds count as a source.
    loss_scale : log error beyond which a measurement counts as an outlier (soft-L1 scale).
    """

    kind = "transfer"

    def __init__(
        self,
        sources: Sequence = (),
        ridge: float | None = None,
        madds: bool = False,
        loss_scale: float = LOSS_SCALE,
    ):
        self.sources = sources
        self.ridge = ridge
        self.madds = madds
        self.loss_scale = loss_scale

    def _source_preds(self) -> list:
        preds = list(self.sources)
        if not preds and not self.madds:
            raise ValueError("transfer needs at least one source predictor (--source PRED) or madds=True")
        for p in preds:
            if not isinstance(p, Predictor):
                raise TypeError(
                    f"transfer sources must be fitted predictors (load(path)), got {type(p).__name__}"
                )
            p._check_fitted()
        return preds

    def _log_sources(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        with groups_memo():  # every source, and the MAdds count, decompose each network once
            cols = [p.predict_many(archs) for p in self.sources_]
            if self.madds:
                cols.append(network_madds(archs) / 1e6)
        P = np.stack(cols, 1)
        if not np.all(np.isfinite(P) & (P > 0)):
            bad = int(np.argwhere(~(np.isfinite(P) & (P > 0)))[0, 1])
            raise ValueError(
                f"source {self.source_names_[bad]} predicts a non-positive latency; "
                f"it cannot be combined in log space"
            )
        return np.log(P)

    def _fit(self, archs, y, pieces) -> None:
        self.sources_ = self._source_preds()
        self.source_names_ = [source_label(p) for p in self.sources_] + (["madds"] if self.madds else [])
        L, ly = self._log_sources(archs), np.log(y)
        prior = np.full(L.shape[1], 1.0 / L.shape[1])
        self.ridge_ = (
            float(self.ridge) if self.ridge is not None else _cv_ridge(L, ly, prior, self.loss_scale)
        )
        self.intercept_, self.weights_ = _fit_log(L, ly, self.ridge_, prior, self.loss_scale)

    @property
    def source_devices(self) -> list[dict]:
        """Each source's device: ``name``, ``device_key``, ``kind`` (what the knowledge came from)."""
        from hwlat.profiler.storage.device import device_key
        from hwlat.profiler.storage.device_select import device_name

        self._check_fitted()
        return [
            {
                "name": device_name(p.fingerprint_) if p.fingerprint_ else None,
                "device_key": device_key(p.fingerprint_) if p.fingerprint_ else None,
                "kind": p.kind,
            }
            for p in self.sources_
        ]

    def _predict(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        return np.exp(self.intercept_ + self._log_sources(archs) @ self.weights_)

    def _layers(self, arch) -> pd.DataFrame:
        """Each layer's share of the total: the sources' per-layer shares weighted by ``b`` (the
        MAdds source's share is the layer's MAdds), scaled to :meth:`predict`."""
        rows = layers(arch)
        names = [r.name for r in rows]
        madds = np.array([r.madds for r in rows], dtype=float)
        share = np.zeros(len(rows))
        for w, p in zip(self.weights_, self.sources_):
            ms = p.predict_layers(arch).groupby("name")["latency_ms"].sum().reindex(names, fill_value=0.0)
            share += w * ms.to_numpy() / ms.sum()
        if self.madds:
            share += self.weights_[-1] * madds / madds.sum()
        if share.sum() <= 0:
            share = madds / madds.sum()
        return pd.DataFrame(
            {
                "name": names,
                "op": [r.op.value for r in rows],
                "block": [r.block for r in rows],
                "latency_ms": float(self._predict([arch])[0]) * share / share.sum(),
            }
        )

    # -- state (JSON persistence) --------------------------------------------------------------
    def state_params(self) -> dict:
        """The constructor parameters but the sources (they are part of the learned state)."""
        return {k: v for k, v in self.get_params().items() if k != "sources"}

    def get_state(self) -> dict:
        """The base state plus ``learned``: the sources' own states (the file is self-contained),
        their names and devices, and the combination; :meth:`from_state` restores it as is."""
        state = super().get_state()
        state["learned"] = {
            "sources": [{"class": type(p).__name__, "state": p.get_state()} for p in self.sources_],
            "source_names": self.source_names_,
            "source_devices": self.source_devices,
            "weights": [float(v) for v in self.weights_],
            "intercept": self.intercept_,
            "ridge": None if not np.isfinite(self.ridge_) else self.ridge_,
            "resolution_range": list(self.resolution_range_),
        }
        return state

    @classmethod
    def from_state(cls, state: dict, source: str = "state") -> Transfer:
        """The predictor of :meth:`get_state`, its sources rebuilt from their states (no refit)."""
        from hwlat.archs.codec import decode

        persist.check_state(state, source)
        learned = state.get("learned")
        if not isinstance(learned, dict):
            raise FileFormatError(f"{source}: state.learned: expected the transfer's sources and weights")
        try:
            srcs = [
                predictor_class(d["class"], f"{source}: state.learned.sources[{i}]").from_state(
                    d["state"], f"{source}: state.learned.sources[{i}]"
                )
                for i, d in enumerate(learned["sources"])
            ]
            self = cls(sources=srcs, **state["params"])
            self.sources_ = srcs
            self.source_names_ = [str(n) for n in learned["source_names"]]
            self.weights_ = np.asarray(learned["weights"], dtype=float)
            self.intercept_ = float(learned["intercept"])
            self.ridge_ = np.inf if learned["ridge"] is None else float(learned["ridge"])
            lo, hi = learned["resolution_range"]
            self.resolution_range_ = (int(lo), int(hi))
            if len(self.weights_) != len(srcs) + bool(self.madds):
                raise ValueError(f"{len(self.weights_)} weights for {len(srcs)} sources")
            train = state["train"]
            names = train.get("names") or [None] * len(train["archs"])
            self.train_archs_ = [decode(a, name=n) if n else decode(a) for a, n in zip(train["archs"], names)]
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(f"{source}: state.learned: damaged transfer state ({e})") from None
        self.train_latency_ms_ = np.asarray(train["latency_ms"], dtype=float)
        self.train_pieces_ = None
        self.fingerprint_ = dict(state["fingerprint"])
        self.runtime_ = state["runtime"]
        return self
