"""Analysis of stored measurements: efficiency per op type and kernel size, the workloads far below it,
and the per-op times of whole networks placed on their layers (:mod:`~hwlat.profiler.analysis.op_layers`)."""

_EXPORTS = {
    "efficiency": "hwlat.profiler.analysis.anomalies",
    "anomalies": "hwlat.profiler.analysis.anomalies",
    "efficiency_summary": "hwlat.profiler.analysis.anomalies",
    "op_layers": "hwlat.profiler.analysis.op_layers",
    "layer_times": "hwlat.profiler.analysis.op_layers",
    "node_type_times": "hwlat.profiler.analysis.op_layers",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # lazy, so that importing the room does not import every runtime
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
