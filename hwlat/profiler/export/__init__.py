"""Export: pieces and whole networks as runnable graphs, ``.tflite`` (LiteRT, no TensorFlow) and ONNX.

* :mod:`~hwlat.profiler.export.tflite` — ``build_tflite``, ``run_tflite``: float and int8 flatbuffers;
* :mod:`~hwlat.profiler.export.onnx` — ``build_onnx``, ``run_onnx``: ``torch.onnx.export`` of the segment reference.
"""

_EXPORTS = {
    "build_tflite": "hwlat.profiler.export.tflite",
    "run_tflite": "hwlat.profiler.export.tflite",
    "tflite_segment": "hwlat.profiler.export.tflite",
    "op_names": "hwlat.profiler.export.tflite",
    "build_onnx": "hwlat.profiler.export.onnx",
    "run_onnx": "hwlat.profiler.export.onnx",
    "onnx_segment": "hwlat.profiler.export.onnx",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # lazy, so that importing the room does not import every runtime
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
