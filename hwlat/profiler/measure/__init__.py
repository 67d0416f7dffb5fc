"""Measurement: single-threaded timing of workloads on this machine, on a farm of devices, or on a board through a bundle.

* :mod:`~hwlat.profiler.measure.runners` — one ``invoke`` per workload and runtime (LiteRT, ONNX Runtime, PyTorch);
* :mod:`~hwlat.profiler.measure.timing` — warm-up, interleaved rounds, the median's confidence interval, phase reference;
* :mod:`~hwlat.profiler.measure.profile` — ``profile``: dedupe, resume and commit into the store, one writer;
* :mod:`~hwlat.profiler.measure.farm` — the same on many devices through Ray;
* :mod:`~hwlat.profiler.measure.bundle` — a self-contained directory to run on a device with only Python and LiteRT;
* :mod:`~hwlat.profiler.measure.adb` — phones over adb: TFLite's ``benchmark_model``, single-threaded, on one fast core.
"""

_EXPORTS = {
    "Runner": "hwlat.profiler.measure.runners",
    "get_runner": "hwlat.profiler.measure.runners",
    "TimingConfig": "hwlat.profiler.measure.timing",
    "Stats": "hwlat.profiler.measure.timing",
    "measure_interleaved": "hwlat.profiler.measure.timing",
    "profile": "hwlat.profiler.measure.profile",
    "ProfileResult": "hwlat.profiler.measure.profile",
    "farm_profile": "hwlat.profiler.measure.farm",
    "FarmDevice": "hwlat.profiler.measure.farm",
    "parse_device": "hwlat.profiler.measure.farm",
    "write_bundle": "hwlat.profiler.measure.bundle",
    "import_results": "hwlat.profiler.measure.bundle",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # lazy, so that importing the room does not import every runtime
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
