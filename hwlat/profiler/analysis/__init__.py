"""Analysis of stored measurements: efficiency per op type and kernel size, and the workloads far below it."""

_EXPORTS = {
    "efficiency": "hwlat.profiler.analysis.anomalies",
    "anomalies": "hwlat.profiler.analysis.anomalies",
    "efficiency_summary": "hwlat.profiler.analysis.anomalies",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # lazy, so that importing the room does not import every runtime
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
