"""Latency predictors fitted on profiler measurements, judged on end-to-end latencies.

``MAddsProxy`` (baseline), ``LookupTable`` and ``Regression`` share one interface (scikit-learn
``fit``/``predict``/``score``, ``predict_many``, ``predict_layers``); ``make_predictor(kind)`` builds
the CLI kinds ``madds``, ``lut``, ``regression``, ``calibrated``. Files: ``pred.save(path)``,
``load(path)``. Data: ``TrainingData.from_store(path, runtime)``. Metrics and the held-out harness
live in ``metrics`` and ``evaluate``.
"""
from hwlat.latency_models.data import TrainingData
from hwlat.latency_models.metrics import metrics, noise_floor
from hwlat.latency_models.persist import load
from hwlat.latency_models.predictors import (KINDS, LookupTable, MAddsProxy, Regression,
                                             make_predictor)

__all__ = ["TrainingData", "metrics", "noise_floor", "load", "KINDS", "LookupTable", "MAddsProxy",
           "Regression", "make_predictor"]
