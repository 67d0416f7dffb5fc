"""The paper's detection and segmentation networks (Section 6): SSDLite and LR-ASPP heads on a
backbone of the zoo, as task-head graphs (:class:`~hwlat.archs.ir.NodeSpec`).

* **SSDLite** (Table 6; TF object-detection API ``ssd_mobilenet_v3_*`` / ``ssdlite_mobilenet_v2``):
  the first prediction layer (C4) reads the expansion output of the last block at output stride
  16 (V3-Large: block 13 of the paper, ``blocks.12.expand``, 672 ch; V3-Small: block 9,
  ``blocks.8.expand``, 288 ch; V2: ``blocks.13.expand``, 576 ch; MnasNet-A1: ``blocks.12.expand``,
  672 ch); the second (C5) the last feature layer at stride 32 (the 1×1 conv that precedes pooling in
  the classifier: 960 / 576 / 1280 ch). Four extra layers follow C5, each 1×1 conv to d/2 →
  3×3 depthwise stride 2 → 1×1 conv to d, d = 512, 256, 256, 128, all BatchNorm + ReLU6. Each of
  the six feature maps gets a box and a class predictor, each a 3×3 depthwise conv (BN + ReLU6)
  and a 1×1 conv with bias to A·4 box codes and A·91 class scores (90 COCO classes + background);
  A = 3 anchors per position on C4 and 6 elsewhere (``reduce_boxes_in_lowest_layer``). The
  outputs are the concatenated ``boxes`` ``[1, N, 4]`` and ``scores`` ``[1, N, 91]`` (N = 2,034
  anchors at 320×320); anchor decoding and non-maximum suppression are left out.
* **LR-ASPP** (Tables 7 and 8; TF DeepLab ``mobilenet_v3_*_seg`` with the paper's flags, Fig. 10):
  at output stride 16 the last stage runs at stride 1 (its first block undilated, the others with
  dilation 2, as TF-slim's ``output_stride`` does). On the 1/16 features (the last 1×1 conv):
  branch 1 is a 1×1 conv to F + BN + ReLU, branch 2 a 49×49 average pooling with stride (16, 20)
  (clipped to the feature map, as the pool size of DeepLab's ``image_pooling_crop_size`` rule) →
  1×1 conv to F with bias → sigmoid → bilinear resize to branch 1; their product is resized to
  1/8 and classified by a 1×1 conv (bias) to 19 classes, plus a 1×1 conv (bias) of the 1/8 features
  (the depthwise output of the last 1/8 block, DeepLab's decoder end point); the sum is resized to
  the input size (the per-pixel logits are the one output).
* **Reduced tail** (the paper's dagger rows and RF2): the blocks between C4 and C5 and the last
  1×1 conv have half their output channels. For detection the C4 expansion keeps its width
  (TF-slim's ``V3_LARGE_DETECTION``); for segmentation it is halved too (DeepLab's
  ``mobilenet_v3_large_seg``: 336 Large, 144 Small).
"""

from __future__ import annotations

import functools
from dataclasses import replace

from hwlat.archs.ir import Act, ArchSpec, BlockSpec, NodeSpec, SESpec
from hwlat.archs.zoo import (
    _V3_HEAD,
    _V3_ROWS,
    TASK_ZOO,
    make_divisible,
    mnasnet_a1,
    mobilenetv2,
    mobilenetv3,
    se_squeeze,
    zoo_name,
)

R6, RE, HS = Act.RELU6, Act.RELU, Act.HSWISH

# First block of the last stage (output stride 16 -> 32) of each backbone; C4 is its expansion.
_C4_BLOCK = {"large": 12, "small": 8, "mobilenetv2": 13, "mnasnet_a1": 12}
# The block whose depthwise output is LR-ASPP's 1/8 feature (DeepLab's decoder end point).
_LOW_BLOCK = {"large": 5, "small": 2}
SSD_EXTRA_DEPTHS = (512, 256, 256, 128)
SSD_ANCHORS = (3, 6, 6, 6, 6, 6)
COCO_CLASSES = 91  # 90 COCO classes + background, one score each per anchor
CITYSCAPES_CLASSES = 19
LRASPP_POOL = ((49, 49), (16, 20))  # kernel, stride (Fig. 10)


def _reduce_tail(
    family: str, blocks: tuple[BlockSpec, ...], width_mult: float, halve_c4_expansion: bool
) -> tuple[BlockSpec, ...]:
    """The V3 blocks with the last stage's output channels halved (and, for segmentation, the
    expansion of its first block); later expansions follow the table's ratio to the new input."""
    start, rows = _C4_BLOCK[family], _V3_ROWS[family]
    out, cin = list(blocks[:start]), blocks[start - 1].out
    for i in range(start, len(blocks)):
        b, r = blocks[i], rows[i]
        if i == start:
            exp = make_divisible(b.exp / 2) if halve_c4_expansion else b.exp
        else:
            exp = make_divisible(cin * r.exp / r.inp)
        cout = make_divisible(r.out * width_mult / 2)
        se = SESpec(se_squeeze(exp)) if b.se is not None else None
        out.append(replace(b, exp=exp, out=cout, se=se))
        cin = cout
    return tuple(out)


def _dilate_last_stage(blocks: tuple[BlockSpec, ...], start: int) -> tuple[BlockSpec, ...]:
    """Output stride 16: the stride-2 block ``start`` runs at stride 1, the blocks after it with
    dilation 2 (TF-slim's ``output_stride``: a layer's own rate is that before its stride)."""
    out = list(blocks)
    out[start] = replace(out[start], stride=1)
    for i in range(start + 1, len(out)):
        out[i] = replace(out[i], dilation=2)
    return tuple(out)


def _conv(name: str, src: str, out: int, act: Act, k: int = 1, bn: bool = True) -> NodeSpec:
    return NodeSpec(name, "conv", (src,), out=out, kernel=k, act=act, bn=bn)


def ssdlite_nodes(
    c4: str,
    c5: str,
    num_classes: int = COCO_CLASSES,
    depth=lambda d: d,
    anchors: tuple[int, ...] = SSD_ANCHORS,
) -> tuple[list[NodeSpec], tuple[str, str]]:
    """SSDLite's extra layers and predictors on the tensors named ``c4`` and ``c5``; returns the
    nodes and the output names (``boxes``, ``scores``). ``depth`` maps a layer depth to its width
    (the width multiplier of the baselines)."""
    nodes, fmaps, prev = [], [c4, c5], c5
    for i, d in enumerate(SSD_EXTRA_DEPTHS, start=1):
        p = f"extra{i}"
        nodes += [
            _conv(f"{p}.reduce", prev, depth(d // 2), R6),
            NodeSpec(f"{p}.dw", "dwconv", (f"{p}.reduce",), kernel=3, stride=2, act=R6),
            _conv(f"{p}.conv", f"{p}.dw", depth(d), R6),
        ]
        prev = f"{p}.conv"
        fmaps.append(prev)
    for kind, code in (("box", 4), ("cls", num_classes)):
        for i, (f, a) in enumerate(zip(fmaps, anchors)):
            p = f"{kind}{i}"
            nodes += [
                NodeSpec(f"{p}.dw", "dwconv", (f,), kernel=3, act=R6),
                _conv(f"{p}.conv", f"{p}.dw", a * code, Act.IDENTITY, bn=False),
                NodeSpec(f"{p}.flat", "anchors", (f"{p}.conv",), out=code),
            ]
        nodes.append(
            NodeSpec(
                "boxes" if kind == "box" else "scores",
                "concat",
                tuple(f"{kind}{i}.flat" for i in range(len(fmaps))),
                axis="w",
            )
        )
    return nodes, ("boxes", "scores")


def _lastconv(arch: ArchSpec, width: int, act: Act) -> NodeSpec:
    return _conv("lastconv", f"blocks.{len(arch.blocks) - 1}", width, act)


def ssdlite_mobilenetv3(
    family: str = "large",
    *,
    reduced_tail: bool = False,
    width_mult: float = 1.0,
    resolution: int | tuple[int, int] = 320,
    num_classes: int = COCO_CLASSES,
) -> ArchSpec:
    """SSDLite on MobileNetV3-Large/-Small (paper Table 6; ``reduced_tail``: the dagger rows)."""
    base = mobilenetv3(family, width_mult=width_mult, resolution=resolution)
    blocks = _reduce_tail(family, base.blocks, width_mult, False) if reduced_tail else base.blocks
    last = make_divisible(_V3_HEAD[family][0] * width_mult / (2 if reduced_tail else 1))
    arch = replace(base, blocks=blocks, head=None)
    nodes, outputs = ssdlite_nodes(
        f"blocks.{_C4_BLOCK[family]}.expand",
        "lastconv",
        num_classes,
        depth=lambda d: max(int(d * width_mult), 16),
    )
    name = zoo_name(f"ssdlite_mobilenetv3_{family}", width_mult).removesuffix("_100") + (
        "_reduced" if reduced_tail else ""
    )
    return replace(
        arch,
        name=name,
        num_classes=num_classes,
        nodes=(_lastconv(arch, last, HS), *nodes),
        outputs=outputs,
        meta={
            "family": f"ssdlite_mobilenetv3_{family}",
            "width_mult": width_mult,
            "reduced_tail": reduced_tail,
            "task": "detection",
        },
    )


def ssdlite_baseline(
    backbone: str = "mobilenetv2",
    *,
    width_mult: float = 1.0,
    resolution: int | tuple[int, int] = 320,
    num_classes: int = COCO_CLASSES,
) -> ArchSpec:
    """SSDLite on MobileNetV2 or MnasNet-A1 (Table 6 baselines): C4 is the expansion of the first
    stride-32 block, C5 the 1280 conv (scaled by the width multiplier, as the TF object-detection
    API's feature extractors build it); extra-layer depths scaled as ``max(int(d·m), 16)``."""
    factory = {"mobilenetv2": mobilenetv2, "mnasnet_a1": mnasnet_a1}[backbone]
    base = factory(width_mult=width_mult, resolution=resolution)
    act = base.head.conv_act
    arch = replace(base, head=None)
    nodes, outputs = ssdlite_nodes(
        f"blocks.{_C4_BLOCK[backbone]}.expand",
        "lastconv",
        num_classes,
        depth=lambda d: max(int(d * width_mult), 16),
    )
    return replace(
        arch,
        name="ssdlite_" + zoo_name(backbone, width_mult),
        num_classes=num_classes,
        nodes=(_lastconv(arch, make_divisible(1280 * width_mult), act), *nodes),
        outputs=outputs,
        meta={"family": f"ssdlite_{backbone}", "width_mult": width_mult, "task": "detection"},
    )


def lraspp_nodes(
    high: str, low: str, filters: int = 128, num_classes: int = CITYSCAPES_CLASSES, pool: tuple = LRASPP_POOL
) -> tuple[list[NodeSpec], tuple[str]]:
    """The LR-ASPP head on the 1/16 (or 1/32) tensor ``high`` and the 1/8 tensor ``low``."""
    (kernel, stride) = pool
    nodes = [
        _conv("aspp.conv", high, filters, RE),
        NodeSpec("aspp.pool", "avgpool", (high,), kernel=kernel, stride=stride),
        _conv("aspp.gate", "aspp.pool", filters, Act.SIGMOID, bn=False),
        NodeSpec("aspp.up", "resize", ("aspp.gate",), like="aspp.conv"),
        NodeSpec("aspp.mul", "mul", ("aspp.conv", "aspp.up")),
        NodeSpec("high.up", "resize", ("aspp.mul",), like=low),
        _conv("high.cls", "high.up", num_classes, Act.IDENTITY, bn=False),
        _conv("low.cls", low, num_classes, Act.IDENTITY, bn=False),
        NodeSpec("logits", "add", ("high.cls", "low.cls")),
        NodeSpec("seg", "resize", ("logits",), like="input"),
    ]
    return nodes, ("seg",)


def lraspp_mobilenetv3(
    family: str = "large",
    *,
    reduced_tail: bool = False,
    filters: int = 128,
    output_stride: int = 16,
    width_mult: float = 1.0,
    resolution: int | tuple[int, int] = (1024, 2048),
    num_classes: int = CITYSCAPES_CLASSES,
) -> ArchSpec:
    """LR-ASPP on MobileNetV3-Large/-Small (paper Tables 7 and 8) at full Cityscapes size; with
    ``reduced_tail=True`` (RF2), 128 filters and output stride 16 it is the paper's chosen
    model (Table 7 rows 8 and 11)."""
    if output_stride not in (16, 32):
        raise ValueError(f"output_stride: expected 16 or 32, got {output_stride!r}")
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(f"filters: expected a positive integer (the paper: 128 or 256), got {filters!r}")
    base = mobilenetv3(family, width_mult=width_mult, resolution=resolution)
    blocks = _reduce_tail(family, base.blocks, width_mult, True) if reduced_tail else base.blocks
    if output_stride == 16:
        blocks = _dilate_last_stage(blocks, _C4_BLOCK[family])
    last = make_divisible(_V3_HEAD[family][0] * width_mult / (2 if reduced_tail else 1))
    arch = replace(base, blocks=blocks, head=None)
    nodes, outputs = lraspp_nodes("lastconv", f"blocks.{_LOW_BLOCK[family]}.dw", filters, num_classes)
    name = (
        zoo_name(f"lraspp_mobilenetv3_{family}", width_mult).removesuffix("_100")
        + ("_reduced" if reduced_tail else "")
        + ("" if filters == 128 else f"_f{filters}")
        + ("" if output_stride == 16 else "_os32")
    )
    return replace(
        arch,
        name=name,
        num_classes=num_classes,
        nodes=(_lastconv(arch, last, HS), *nodes),
        outputs=outputs,
        meta={
            "family": f"lraspp_mobilenetv3_{family}",
            "width_mult": width_mult,
            "reduced_tail": reduced_tail,
            "filters": filters,
            "output_stride": output_stride,
            "task": "segmentation",
        },
    )


def _register() -> None:
    """Fill :data:`hwlat.archs.zoo.TASK_ZOO` with the paper's variants."""
    for fam in ("large", "small"):
        for reduced in (False, True):
            suffix = "_reduced" if reduced else ""
            TASK_ZOO[f"ssdlite_mobilenetv3_{fam}{suffix}"] = functools.partial(
                ssdlite_mobilenetv3, fam, reduced_tail=reduced
            )
            TASK_ZOO[f"lraspp_mobilenetv3_{fam}{suffix}"] = functools.partial(
                lraspp_mobilenetv3, fam, reduced_tail=reduced
            )
    for backbone in ("mobilenetv2", "mnasnet_a1"):
        for m in (1.0, 0.5, 0.35):
            TASK_ZOO["ssdlite_" + zoo_name(backbone, m)] = functools.partial(
                ssdlite_baseline, backbone, width_mult=m
            )


_register()
