"""The predictor kinds: one registry, used by ``hwlat fit --kind``, the demo, the report and ``load``.

To add a kind, write a :class:`~hwlat.latency_models.base.Predictor` subclass in its own module
(the interface is documented there) and add one :class:`Kind` line to :data:`KINDS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hwlat.errors import FileFormatError
from hwlat.latency_models import persist
from hwlat.latency_models.base import Predictor
from hwlat.latency_models.predictors import LookupTable, MAddsProxy, Regression


@dataclass(frozen=True)
class Kind:
    """A predictor class with the parameters that make it this kind; ``summary`` for help texts."""

    cls: type[Predictor]
    summary: str
    params: dict = field(default_factory=dict)


KINDS: dict[str, Kind] = {
    "madds": Kind(MAddsProxy, "latency linear in MAdds (the baseline)"),
    "lut": Kind(LookupTable, "measured blocks summed plus a per-network offset; refuses unmeasured "
                "blocks", {"calibration": "offset"}),
    "regression": Kind(Regression, "per-type regression of block latency plus the weight-footprint "
                       "network term", {"calibration": "footprint"}),
    "calibrated": Kind(LookupTable, "measured blocks (unmeasured ones predicted between measured "
                       "widths) plus the weight-footprint network term",
                       {"calibration": "footprint", "on_missing": "regression"}),
}


def make_predictor(kind: str, **params) -> Predictor:
    """An unfitted predictor of ``kind`` (a key of :data:`KINDS`), with ``params`` on top."""
    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r} (expected one of {', '.join(KINDS)})")
    k = KINDS[kind]
    return k.cls(**k.params).set_params(**params)


def load(path) -> Predictor:
    """Read a predictor file (:mod:`.persist`) and refit the predictor it describes."""
    name, state = persist.read(path)
    classes = {k.cls.__name__: k.cls for k in KINDS.values()}
    if name not in classes:
        raise FileFormatError(f"{path}: unknown predictor class {name!r} (known: {', '.join(sorted(classes))})")
    return classes[name].from_state(state, source=str(path))
