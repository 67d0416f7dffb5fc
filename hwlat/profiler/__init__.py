"""The op-level profiler, in four rooms; dependencies point down the list.

* :mod:`hwlat.profiler.analysis` — efficiency and anomalies of stored kernels;
* :mod:`hwlat.profiler.measure` — runners, timing, ``profile``, the farm, bundles;
* :mod:`hwlat.profiler.export` — ``.tflite`` and ONNX graphs of pieces and networks;
* :mod:`hwlat.profiler.storage` — the store, device fingerprints, imported tables.

What is measured (kernels, blocks, models and their keys) is the IR's: :mod:`hwlat.archs.pieces`.
"""
