"""Latency predictors fitted on profiler measurements, judged on end-to-end latencies.

Modules, bottom to top: ``features`` (pieces of a network and their features), ``metrics``,
``persist`` (predictor files), ``base`` (the predictor interface, documented once), ``predictors``
(``MAddsProxy``, ``LookupTable``, ``Regression``), ``kinds`` (the registry behind
``make_predictor(kind)`` and ``load(path)``), ``data`` (training data from the store),
``evaluate`` (the held-out harness), ``space_table`` (vectorised prediction over a search space).
"""
from hwlat.latency_models.data import TrainingData
from hwlat.latency_models.kinds import KINDS, load, make_predictor
from hwlat.latency_models.metrics import metrics, noise_floor
from hwlat.latency_models.predictors import LookupTable, MAddsProxy, Regression

__all__ = ["TrainingData", "metrics", "noise_floor", "load", "KINDS", "LookupTable", "MAddsProxy",
           "Regression", "make_predictor"]
