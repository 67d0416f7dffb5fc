"""hwlat — hardware-aware latency modeling and architecture profiling for mobile networks.

The IR's public API at the top level; the profiler, predictors, search and dashboards live in
``hwlat.profiler``, ``hwlat.latency_models``, ``hwlat.search`` and ``hwlat.dashboards``::

    from hwlat import get_arch, load_arch, layers_frame, summary, build_torch
    arch = get_arch("mobilenetv3_large_100", resolution=192)
    summary(arch)            # {'madds': ..., 'params': ..., 'elementwise': ...}
"""

from __future__ import annotations

from hwlat.archs import (
    Act,
    ArchSpec,
    BlockSpec,
    ConvSpec,
    HeadSpec,
    SearchSpace,
    SESpec,
    SkipSpec,
    decode,
    encode,
    get_arch,
    get_space,
    layers,
    layers_frame,
    load_arch,
    summary,
    zoo_names,
)

__version__ = "0.1.0"


def build_torch(arch, seed: int | None = 0):
    """A PyTorch module for ``arch`` (see :func:`hwlat.archs.torch_builder.build_torch`)."""
    from hwlat.archs.torch_builder import build_torch as _build

    return _build(arch, seed=seed)


__all__ = [
    "Act",
    "ArchSpec",
    "BlockSpec",
    "ConvSpec",
    "HeadSpec",
    "SESpec",
    "SkipSpec",
    "decode",
    "encode",
    "get_arch",
    "get_space",
    "layers",
    "layers_frame",
    "load_arch",
    "SearchSpace",
    "summary",
    "zoo_names",
    "build_torch",
    "__version__",
]
