"""Latency predictors fitted on profiler measurements, judged on end-to-end latencies.

Modules, bottom to top: ``features`` (pieces of a network and their features), ``metrics``,
``persist`` (predictor files), ``base`` (the predictor interface, documented once), ``predictors``
(``MAddsProxy``, ``LookupTable``, ``Regression``), ``e2e`` (per-block costs from whole-network
latencies) and ``transfer`` (a new device from a few networks and other devices' predictors),
``kinds`` (the registry behind
``make_predictor(kind)`` and ``load(path)``; ``@NAME`` reads a predictor shipped in
``data/predictors``), ``training_data`` (training data from the store), ``evaluate`` (the held-out
harness), ``space_table`` (vectorised prediction over a search space), ``suggest`` (which networks
to measure on a new device). The shipped ``@pixel3``/``@raspi4`` block tables are built by
``tools/build_shipped_predictors.py``.
"""

from hwlat.latency_models.e2e import EndToEnd
from hwlat.latency_models.kinds import KINDS, load, load_predictor, make_predictor
from hwlat.latency_models.metrics import metrics, noise_floor
from hwlat.latency_models.predictors import LookupTable, MAddsProxy, Regression
from hwlat.latency_models.training_data import TrainingData
from hwlat.latency_models.transfer import Transfer

__all__ = [
    "TrainingData",
    "metrics",
    "noise_floor",
    "load",
    "load_predictor",
    "KINDS",
    "LookupTable",
    "MAddsProxy",
    "Regression",
    "EndToEnd",
    "Transfer",
    "make_predictor",
]
