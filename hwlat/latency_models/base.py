"""The predictor interface, shared by every kind. All latencies in milliseconds.

A predictor is a scikit-learn regressor on :class:`~hwlat.archs.ir.ArchSpec` objects (parameters in
``__init__``, learned attributes end in ``_``; ``get_params``/``set_params``/``clone`` work):

* ``fit(archs, latency_ms, pieces=None, fingerprint=None, runtime=None)`` — networks, their
  measured end-to-end latencies, the measured pieces (a
  :class:`~hwlat.latency_models.training_data.TrainingData` ``pieces`` frame) when the kind learns from
  them, and the device they were measured on.
* ``predict(arch)`` → float; ``predict(list)`` / ``predict_many(list)`` → array.
* ``predict_layers(arch)`` → DataFrame ``name, op, block, latency_ms``, summing to ``predict``.
* ``score(archs, latency_ms)`` → R² (scikit-learn).
* ``check_device(fingerprint, runtime, strict=True)`` — refuse (or warn) when used for another device.
* ``get_state()`` → a JSON-ready dict; ``Cls.from_state(state)`` → the fitted predictor again
  (it refits: no pickles). ``save(path)`` writes it (:mod:`hwlat.latency_models.persist`);
  :func:`hwlat.latency_models.kinds.load` reads it back.
* Extrapolation: a prediction outside what the predictor was fitted on (a resolution far from the
  training networks', a kernel size or activation never measured, widths far outside) emits an
  :class:`~hwlat.errors.ExtrapolationWarning` naming it.

Fitted attributes every kind has: ``fingerprint_``, ``runtime_``, ``train_archs_``,
``train_latency_ms_``, ``train_pieces_`` (or None), ``resolution_range_`` (px).

A new kind subclasses :class:`Predictor`, implements ``_fit(archs, y, pieces)`` and
``_predict(archs) -> ndarray`` (and ``_layers(arch)``), and is registered in
:data:`hwlat.latency_models.kinds.KINDS`.
"""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from hwlat.archs.codec import decode, encode
from hwlat.archs.ir import ArchSpec
from hwlat.errors import DeviceMismatchError, ExtrapolationWarning, FileFormatError, HwlatError
from hwlat.latency_models import persist

# a resolution this factor beyond the training networks' range is named in a warning
FAR_OUTSIDE = 2.0


def side(arch: ArchSpec) -> int:
    """The input size as one side in pixels: ``R`` for a square input, else ``round(√(H·W))``
    (the square of the same pixel count); the resolution range of a predictor is in these."""
    h, w = arch.hw
    return h if h == w else round((h * w) ** 0.5)


def as_list(X) -> tuple[list[ArchSpec], bool]:
    """``(archs, was_single)`` for one ``ArchSpec`` or a sequence of them."""
    if isinstance(X, ArchSpec):
        return [X], True
    archs = list(X)
    bad = [type(a).__name__ for a in archs if not isinstance(a, ArchSpec)]
    if bad:
        raise TypeError(f"expected ArchSpec objects, got {bad[0]}")
    return archs, False


def predict_noting_extrapolation(predictor, archs: Sequence[ArchSpec]) -> tuple[np.ndarray, str | None]:
    """``predictor.predict_many(archs)`` (ms) and, instead of raising its
    :class:`~hwlat.errors.ExtrapolationWarning`, that warning's message (None without one), for
    callers that show extrapolation themselves. Any other warning is passed on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        ms = np.asarray(predictor.predict_many(archs), dtype=float)
    extrapolated = None
    for w in caught:
        if issubclass(w.category, ExtrapolationWarning):
            extrapolated = str(w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ms, extrapolated


@contextlib.contextmanager
def gc_paused():
    """Run the block with Python's cyclic garbage collector paused (then as it was).

    Decomposing new networks allocates many small objects (layer rows, pieces, keys), and every
    few hundred allocations the collector walks the young objects, and ever so often all of the
    heap (a fitted predictor, scikit-learn, pandas: millions of objects); on the first pass over a
    batch of new networks that took ~40% of ``predict_many``. Nothing a prediction allocates
    needs the collector to be freed (reference counting frees it), and cycles it leaves are
    collected after. Nested uses and a collector already off are left alone.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_CLASSES: dict[str, type[Predictor]] = {}


class Predictor(RegressorMixin, BaseEstimator):
    """The interface of the module docstring; subclasses implement ``_fit``, ``_predict``, ``_layers``."""

    kind = "base"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):  # a predictor file names its class: predictor_class()
            _CLASSES[cls.__name__] = cls

    def fit(
        self,
        X,
        y,
        pieces: pd.DataFrame | None = None,
        fingerprint: dict | None = None,
        runtime: str | None = None,
    ):
        archs, _ = as_list(X)
        y = np.asarray(y, dtype=float)
        if len(archs) != len(y) or len(y) < 2:
            raise ValueError(f"need at least 2 networks with one latency each, got {len(archs)} and {len(y)}")
        if not np.all(np.isfinite(y) & (y > 0)):
            raise ValueError("latencies must be finite and positive (ms)")
        self.fingerprint_ = dict(fingerprint or {})
        self.runtime_ = runtime
        self.train_archs_, self.train_latency_ms_, self.train_pieces_ = archs, y, pieces
        res = [side(a) for a in archs]
        self.resolution_range_ = (min(res), max(res))
        self._fit(archs, y, pieces)
        return self

    def predict(self, X):
        """Latency in ms of one ``ArchSpec`` (float) or of a sequence of them (array)."""
        archs, single = as_list(X)
        out = self.predict_many(archs)
        return float(out[0]) if single else out

    def predict_many(self, archs: Sequence[ArchSpec]) -> np.ndarray:
        """Latencies (ms) of many networks."""
        self._check_fitted()
        archs, _ = as_list(archs)
        if not archs:
            return np.zeros(0)
        self._warn_resolution(archs)
        with gc_paused():
            return np.asarray(self._predict(archs), dtype=float)

    def predict_layers(self, arch: ArchSpec) -> pd.DataFrame:
        """Per-layer latency (ms) of ``arch``: columns ``name, op, block, latency_ms``; sums to the total."""
        self._check_fitted()
        self._warn_resolution([arch])
        return self._layers(arch)

    # -- extrapolation ---------------------------------------------------------------------------
    def _warn_resolution(self, archs: Sequence[ArchSpec]) -> None:
        lo, hi = self.resolution_range_
        far = sorted(r for r in {side(a) for a in archs} if not lo / FAR_OUTSIDE <= r <= hi * FAR_OUTSIDE)
        if far:
            shown = ", ".join(map(str, far[:5])) + (", ..." if len(far) > 5 else "")
            self.warn_extrapolation(
                f"resolution {shown} px is far outside the training networks' {lo}-{hi} px"
            )

    def warn_extrapolation(self, what: str) -> None:
        """Emit an :class:`~hwlat.errors.ExtrapolationWarning` about ``what``."""
        warnings.warn(f"{type(self).__name__} extrapolates: {what}", ExtrapolationWarning, stacklevel=4)

    # -- device ----------------------------------------------------------------------------------
    def check_device(self, fingerprint: dict, runtime: str | None = None, strict: bool = True) -> None:
        """Raise (``strict``) or warn when used for another device or runtime than it was fitted on."""
        from hwlat.profiler.storage.device import device_key

        self._check_fitted()
        mine = device_key(self.fingerprint_) if self.fingerprint_ else None
        theirs = device_key(fingerprint)
        problems = []
        if mine and mine != theirs:
            problems.append(
                f"fitted on device {mine} ({self.fingerprint_.get('cpu')}, "
                f"{self.fingerprint_.get('runtime')} {self.fingerprint_.get('runtime_version')}), "
                f"used for {theirs} ({fingerprint.get('cpu')}, {fingerprint.get('runtime')} "
                f"{fingerprint.get('runtime_version')})"
            )
        if runtime and self.runtime_ and runtime != self.runtime_:
            problems.append(f"fitted for runtime {self.runtime_!r}, used for {runtime!r}")
        if problems:
            msg = "predictor/device mismatch: " + "; ".join(problems)
            if strict:
                raise DeviceMismatchError(msg)
            warnings.warn(msg, stacklevel=2)

    def _check_fitted(self) -> None:
        if not hasattr(self, "fingerprint_"):
            raise ValueError(f"{type(self).__name__} is not fitted yet; call fit() or load()")

    # -- state in and out ------------------------------------------------------------------------
    def state_params(self) -> dict:
        """The constructor parameters that rebuild this fitted predictor (what the fit chose
        included, e.g. the estimator per piece type, so a refit skips the choice)."""
        return self.get_params()

    def get_state(self) -> dict:
        """JSON-ready state: parameters, device, training networks and pieces."""
        self._check_fitted()
        pieces = self.train_pieces_
        return {
            "params": self.state_params(),
            "fingerprint": self.fingerprint_,
            "runtime": self.runtime_,
            "train": {
                "archs": [encode(a) for a in self.train_archs_],
                "names": [a.name for a in self.train_archs_],
                "latency_ms": [float(v) for v in self.train_latency_ms_],
            },
            "pieces": None
            if pieces is None
            else [  # exact floats: json, not pandas' to_json
                {**r, "latency_ms": float(r["latency_ms"])}
                for r in pieces[list(persist.PIECE_FIELDS)].to_dict("records")
            ],
        }

    @classmethod
    def from_state(cls, state: dict, source: str = "state") -> Predictor:
        """The predictor ``get_state`` described, refitted; errors name ``source`` and the field."""
        persist.check_state(state, source)
        params = state["params"]
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise FileFormatError(
                f"{source}: state.params: unknown parameter(s) {sorted(unknown)} for {cls.__name__}"
            )
        train = state["train"]
        names = train.get("names") or [None] * len(train["archs"])
        try:
            archs = [decode(a, name=n) if n else decode(a) for a, n in zip(train["archs"], names)]
        except ValueError as e:
            raise FileFormatError(f"{source}: state.train.archs: {e}") from None
        pieces = (
            None
            if state["pieces"] is None
            else pd.DataFrame.from_records(state["pieces"], columns=list(persist.PIECE_FIELDS))
        )
        try:
            return cls(**params).fit(
                archs,
                train["latency_ms"],
                pieces=pieces,
                fingerprint=state["fingerprint"],
                runtime=state["runtime"],
            )
        except (ValueError, HwlatError) as e:  # e.g. latencies <= 0, pieces that do not cover the networks
            raise FileFormatError(f"{source}: cannot refit the predictor it holds: {e}") from None

    def save(self, path) -> None:
        """Write the state as JSON (refitted deterministically on load)."""
        persist.write(path, type(self).__name__, self.get_state())


def predictor_class(name: str, where: str = "predictor file") -> type[Predictor]:
    """The :class:`Predictor` subclass called ``name`` (a predictor file's ``class``)."""
    if name not in _CLASSES:
        raise FileFormatError(
            f"{where}: unknown predictor class {name!r} (known: {', '.join(sorted(_CLASSES))})"
        )
    return _CLASSES[name]
