"""The predictor kinds: one registry, used by ``hwlat fit --kind``, the demo, the report and ``load``.

To add a kind, write a :class:`~hwlat.latency_models.base.Predictor` subclass in its own module
(the interface is documented there) and add one :class:`Kind` line to :data:`KINDS`. ``load("@NAME")``
reads a predictor shipped in ``data/predictors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwlat.errors import FileFormatError
from hwlat.latency_models import persist
from hwlat.latency_models.base import Predictor, predictor_class
from hwlat.latency_models.e2e import EndToEnd
from hwlat.latency_models.predictors import LookupTable, MAddsProxy, Regression
from hwlat.latency_models.transfer import Transfer


@dataclass(frozen=True)
class Kind:
    """A predictor class with the parameters that make it this kind; ``summary`` for help texts;
    ``holdout``: fitted from one device's store alone, so scored by default by
    :func:`hwlat.latency_models.evaluate.holdout` (:data:`HOLDOUT_KINDS`)."""

    cls: type[Predictor]
    summary: str
    params: dict = field(default_factory=dict)
    holdout: bool = True


KINDS: dict[str, Kind] = {
    "madds": Kind(MAddsProxy, "latency linear in MAdds (the baseline)"),
    "lut": Kind(
        LookupTable,
        "measured blocks summed plus a per-network offset; refuses unmeasured blocks",
        {"calibration": "offset"},
    ),
    "regression": Kind(
        Regression,
        "per-type regression of block latency plus the weight-footprint network term",
        {"calibration": "footprint"},
    ),
    "calibrated": Kind(
        LookupTable,
        "measured blocks (unmeasured ones predicted between measured "
        "widths) plus the weight-footprint network term",
        {"calibration": "footprint", "on_missing": "regression"},
    ),
    "e2e": Kind(
        EndToEnd,
        "per-block costs learned from whole-network latencies only (features, "
        "a per-block residual, a network term)",
        holdout=False,
    ),
    "transfer": Kind(
        Transfer,
        "other devices' predictors (sources) combined from a few networks of this one",
        holdout=False,
    ),
}
HOLDOUT_KINDS: tuple[str, ...] = tuple(k for k, v in KINDS.items() if v.holdout)


def make_predictor(kind: str, **params) -> Predictor:
    """An unfitted predictor of ``kind`` (a key of :data:`KINDS`), with ``params`` on top."""
    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r} (expected one of {', '.join(KINDS)})")
    k = KINDS[kind]
    return k.cls(**k.params).set_params(**params)


def load(path) -> Predictor:
    """Read a predictor file (:mod:`.persist`) and refit the predictor it describes.

    ``@NAME`` reads a predictor shipped with hwlat (``@pixel3``, ``@raspi4``: ``data/predictors``).
    """
    path = shipped_path(path) if isinstance(path, str) and path.startswith("@") else path
    name, state = persist.read(path)
    return predictor_class(name, str(path)).from_state(state, source=str(path))


def load_predictor(path: str, runtime: str | None = None, allow_other: bool = False) -> Predictor:
    """Load a predictor file (or a shipped ``@NAME``) and check it is for this machine and
    ``runtime`` (None: the predictor's own): a mismatch fails, or warns with ``allow_other``. A
    predictor of a device imported from a table (``@raspi4``, a phone's ``e2e``) is for that device,
    which is what a search targets: no check."""
    from pathlib import Path

    from hwlat.profiler.measure.runners import get_runner

    if not path.startswith("@") and not Path(path).is_file():
        raise ValueError(f"{path}: no such predictor file (hwlat fit ... -o {path})")
    pred = load(path)
    if (pred.fingerprint_ or {}).get("imported"):  # a device measured elsewhere: the search targets it
        return pred
    runtime = runtime or pred.runtime_ or "litert"
    try:
        fp = get_runner(runtime).fingerprint()
    except ImportError as e:
        raise ValueError(f"runtime {runtime!r} is not available here ({e})") from None
    pred.check_device(fp, runtime, strict=not allow_other)
    return pred


def shipped_path(ref: str):
    """The file of a shipped predictor ``@NAME``."""
    from hwlat.paper import data_file, shipped_predictors

    names = shipped_predictors()
    if ref[1:] not in names:
        raise FileFormatError(f"no shipped predictor {ref!r} (shipped: {', '.join('@' + n for n in names)})")
    return data_file(f"predictors/{ref[1:]}.json")
