"""Storage: the SQLite measurement store, device fingerprints, choosing a device, and tables measured elsewhere.

* :mod:`~hwlat.profiler.storage.store` — ``Store``, ``open_store``: devices, workloads, measurements, failures;
* :mod:`~hwlat.profiler.storage.device` — ``fingerprint``, ``device_key``: which machine and runtime a number came from;
* :mod:`~hwlat.profiler.storage.device_select` — ``select_device``: ``--device NAME`` on every reader;
* :mod:`~hwlat.profiler.storage.tables` — ``import_table``: end-to-end latencies measured elsewhere;
* :mod:`~hwlat.profiler.storage.benchmark_log` — what TFLite's ``benchmark_model`` prints: timings, init, memory, per-op profiles.
"""

_EXPORTS = {
    "Store": "hwlat.profiler.storage.store",
    "open_store": "hwlat.profiler.storage.store",
    "fingerprint": "hwlat.profiler.storage.device",
    "device_key": "hwlat.profiler.storage.device",
    "device_label": "hwlat.profiler.storage.device",
    "select_device": "hwlat.profiler.storage.device_select",
    "Table": "hwlat.profiler.storage.tables",
    "read_table": "hwlat.profiler.storage.tables",
    "import_table": "hwlat.profiler.storage.tables",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # lazy, so that importing the room does not import every runtime
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
