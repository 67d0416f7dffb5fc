"""Experiments on the embedded default, run by ``hwlat demo``: the main job and ``hwlat demo compare``.

They use the library packages and are used by none of them.
"""

_EXPORTS = {
    "run_demo": "hwlat.experiments.demo",
    "compare": "hwlat.experiments.compare",
    "CompareConfig": "hwlat.experiments.compare",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # lazy, so that importing the room does not import every runtime
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
