"""Latency predictors (not built yet): MAdds proxy, lookup tables, per-op regression and
model-level calibration, fitted on profiler measurements, with the evaluation harness."""
