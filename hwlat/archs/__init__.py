"""Architecture IR: MobileNetV3 and its search variants, described exactly, validated and counted.

``ArchSpec`` (frozen IR) → ``layers()`` (one shape-inference pass: shapes, MAdds, params) →
``hwlat.archs.torch_builder.build_torch()``. Search spaces are named values (``get_space(name)``:
``large``, ``small``, ``fbnet_cifar100``, ``fbnet_imagenet``). Names of the zoo: ``zoo_names()``;
build one with ``get_arch(name, **options)``.
"""

from __future__ import annotations

from pathlib import Path

from hwlat.archs import tasks  # noqa: E402,F401  (registers the detection/segmentation zoo: TASK_ZOO)
from hwlat.archs.codec import decode, encode
from hwlat.archs.importer import Imported, from_onnx, from_tflite, from_torch, import_file
from hwlat.archs.ir import (
    Act,
    ArchSpec,
    BlockSpec,
    ConvSpec,
    HeadSpec,
    NodeSpec,
    SESpec,
    SkipSpec,
    parse_resolution,
    resolution_str,
)
from hwlat.archs.layers import LayerSpec, OpKind, layers, layers_frame, output_names, summary, validate
from hwlat.archs.space import (
    SPACE_NAMES,
    LayerwiseSpace,
    SearchSpace,
    Space,
    StageChoice,
    StageSpace,
    get_space,
    is_space_ref,
    parse_ref,
)
from hwlat.archs.zoo import (
    CHANNEL_DIVISOR,
    TASK_ZOO,
    ZOO,
    get_arch,
    make_divisible,
    mnasnet_a1,
    mobilenetv2,
    mobilenetv3,
    se_squeeze,
    task_names,
    zoo_names,
)


def load_arch(ref: str, resolution: int | str | tuple[int, int] | None = None) -> ArchSpec:
    """Resolve a zoo name, a search-space reference ``SPACE:i,j,k,...`` (see
    :func:`hwlat.archs.space.parse_ref`), a codec string or a JSON/codec file into a validated
    :class:`ArchSpec`.

    ``resolution`` (pixels: an int, ``"HxW"`` or ``(H, W)``) overrides the input resolution.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError("empty architecture reference")
    ref = ref.strip()
    if resolution is not None:
        resolution = parse_resolution(resolution)
    if ref in ZOO or ref in TASK_ZOO:
        kw = {} if resolution is None else {"resolution": resolution}
        return validate(get_arch(ref, **kw))
    if is_space_ref(ref):  # a space decodes at a square size; another one is set afterwards
        if isinstance(resolution, tuple):
            return validate(parse_ref(ref).with_resolution(resolution))
        return parse_ref(ref, resolution)
    if ref.startswith("in") and "," in ref:
        arch = decode(ref)
    elif Path(ref).is_file():
        text = Path(ref).read_text(encoding="utf-8").strip()
        arch = ArchSpec.from_json(text) if text.startswith("{") else decode(text, name=Path(ref).stem)
    else:
        raise ValueError(
            f"unknown architecture {ref!r}: not a zoo name (see `hwlat arch list`), a search-space "
            f"reference SPACE:i,j,... (SPACE one of {', '.join(SPACE_NAMES)}), a codec string or an "
            f"existing file"
        )
    if resolution is not None:
        arch = arch.with_resolution(resolution)
    return validate(arch)


__all__ = [
    "Act",
    "ArchSpec",
    "BlockSpec",
    "ConvSpec",
    "HeadSpec",
    "NodeSpec",
    "SESpec",
    "SkipSpec",
    "LayerSpec",
    "OpKind",
    "layers",
    "layers_frame",
    "output_names",
    "summary",
    "validate",
    "encode",
    "decode",
    "ZOO",
    "TASK_ZOO",
    "zoo_names",
    "task_names",
    "parse_resolution",
    "resolution_str",
    "get_arch",
    "load_arch",
    "make_divisible",
    "CHANNEL_DIVISOR",
    "se_squeeze",
    "mobilenetv3",
    "mobilenetv2",
    "mnasnet_a1",
    "Space",
    "SearchSpace",
    "StageChoice",
    "StageSpace",
    "LayerwiseSpace",
    "SPACE_NAMES",
    "get_space",
    "parse_ref",
    "Imported",
    "from_onnx",
    "from_tflite",
    "from_torch",
    "import_file",
]
