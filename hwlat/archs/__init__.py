"""Architecture IR: MobileNetV3 and its search variants, described exactly, validated and counted.

``ArchSpec`` (frozen IR) → ``layers()`` (one shape-inference pass: shapes, MAdds, params) →
``hwlat.archs.torch_builder.build_torch()``. ``SearchSpace`` is the MnasNet-style block-wise space. Names of the zoo: ``zoo_names()``; build one with ``get_arch(name, **options)``.
"""
from __future__ import annotations

from pathlib import Path

from hwlat.archs.codec import decode, encode
from hwlat.archs.ir import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, SESpec
from hwlat.archs.layers import LayerSpec, OpKind, layers, layers_frame, summary, validate
from hwlat.archs.space import SearchSpace, StageChoice, StageSpace
from hwlat.archs.zoo import (ZOO, get_arch, make_divisible, mnasnet_a1, mobilenetv2, mobilenetv3,
                             zoo_names)


def load_arch(ref: str, resolution: int | None = None) -> ArchSpec:
    """Resolve a zoo name, a codec string or a JSON/codec file into a validated :class:`ArchSpec`.

    ``resolution`` (pixels) overrides the input resolution.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError("empty architecture reference")
    ref = ref.strip()
    if ref in ZOO:
        kw = {} if resolution is None else {"resolution": resolution}
        return validate(get_arch(ref, **kw))
    if ref.startswith("in") and "," in ref:
        arch = decode(ref)
    elif Path(ref).is_file():
        text = Path(ref).read_text(encoding="utf-8").strip()
        arch = ArchSpec.from_json(text) if text.startswith("{") else decode(text, name=Path(ref).stem)
    else:
        raise ValueError(
            f"unknown architecture {ref!r}: not a zoo name (see `hwlat arch list`), a codec string "
            f"or an existing file"
        )
    if resolution is not None:
        arch = arch.with_resolution(resolution)
    return validate(arch)


__all__ = [
    "Act", "ArchSpec", "BlockSpec", "ConvSpec", "HeadSpec", "SESpec", "LayerSpec", "OpKind",
    "layers", "layers_frame", "summary", "validate", "encode", "decode", "ZOO", "zoo_names", "get_arch",
    "load_arch", "make_divisible", "mobilenetv3", "mobilenetv2", "mnasnet_a1", "SearchSpace",
    "StageChoice", "StageSpace",
]
