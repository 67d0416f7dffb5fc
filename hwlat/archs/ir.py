"""The architecture IR: frozen dataclasses that describe a whole network with final channel counts.

An :class:`ArchSpec` is a stem convolution, a sequence of blocks — inverted-residual bottlenecks
(:class:`BlockSpec`, grouped 1×1 convs and channel shuffle included) and FBNet-style ``skip``
layers (:class:`SkipSpec`) — then either a last stage (:class:`HeadSpec`) and a classifier, or
task heads: a graph of :class:`NodeSpec` layers that read feature taps of the backbone, with one
or more named ``outputs`` (SSDLite detection, LR-ASPP segmentation). The input is square
(``resolution`` an int) or ``(H, W)``. Every channel
count is an absolute integer: width multipliers and rounding are applied by the factories in
:mod:`hwlat.archs.zoo` and :mod:`hwlat.archs.space`, never here. Shapes are worked out once, by :func:`hwlat.archs.layers.layers`.

JSON form: ``to_dict()`` / ``ArchSpec.from_dict()`` (schema ``hwlat.arch/1``; a skip layer is a
block object with ``"type": "skip"``; a non-square resolution is ``[H, W]``); the compact string form lives in :mod:`hwlat.archs.codec`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from hwlat.errors import InvalidArchError
from hwlat.files import format_tag, format_version

FORMAT = format_tag("arch", 1)
"""The format of an architecture JSON file (its ``"schema"`` field)."""
SCHEMA = FORMAT


class Act(str, enum.Enum):
    """Activation functions. The value is the name used in JSON; ``short`` is the codec token."""

    RELU = "relu"
    RELU6 = "relu6"
    HSWISH = "hswish"
    HSIGMOID = "hsigmoid"
    SWISH = "swish"
    SIGMOID = "sigmoid"
    IDENTITY = "identity"

    @property
    def short(self) -> str:
        return _ACT_SHORT[self]

    @classmethod
    def parse(cls, value: Act | str, where: str = "activation") -> Act:
        """Accept an :class:`Act`, its JSON name or its codec token; raise ``ValueError`` otherwise."""
        if isinstance(value, Act):
            return value
        if isinstance(value, str):
            v = value.lower()
            for act in cls:
                if v in (act.value, act.short):
                    return act
        names = ", ".join(a.value for a in cls)
        raise InvalidArchError(f"{where}: unknown activation {value!r} (expected one of {names})")


_ACT_SHORT = {
    Act.RELU: "re",
    Act.RELU6: "r6",
    Act.HSWISH: "hs",
    Act.HSIGMOID: "hsig",
    Act.SWISH: "sw",
    Act.SIGMOID: "sig",
    Act.IDENTITY: "id",
}


@dataclass(frozen=True)
class ConvSpec:
    """A k×k convolution + BatchNorm + activation (the stem).

    Attributes: ``out`` output channels, ``kernel`` size, ``stride`` (1 or 2), ``act``.
    """

    out: int
    kernel: int = 3
    stride: int = 2
    act: Act = Act.HSWISH

    def __post_init__(self) -> None:
        object.__setattr__(self, "act", Act.parse(self.act, "stem.act"))


@dataclass(frozen=True)
class SESpec:
    """Squeeze-and-excite: global mean → 1×1 conv to ``squeeze`` channels (+bias, ``inner`` act)
    → 1×1 conv back (+bias) → ``gate`` → channel-wise multiply."""

    squeeze: int
    gate: Act = Act.HSIGMOID
    inner: Act = Act.RELU

    def __post_init__(self) -> None:
        object.__setattr__(self, "gate", Act.parse(self.gate, "se.gate"))
        object.__setattr__(self, "inner", Act.parse(self.inner, "se.inner"))


@dataclass(frozen=True)
class BlockSpec:
    """Inverted-residual bottleneck (MobileNetV2/V3, MnasNet MBConv, FBNet ``kK_eE[_gG]``).

    1×1 expansion to ``exp`` channels → depthwise ``kernel``×``kernel`` with ``stride`` and
    ``dilation`` → optional squeeze-excite → 1×1 linear projection to ``out`` channels. ``act`` is
    used after expansion and depthwise.

    ``expand``: ``None`` has the expansion conv exactly when ``exp`` differs from the block's input
    channels (MobileNet: ratio 1 means no expansion conv); ``True`` always has it (FBNet's ``e1``
    blocks); ``False`` never (invalid when ``exp`` differs from the input channels).

    ``groups``: groups of the expansion and projection 1×1 convs (FBNet's ``_g2``); when > 1 a
    channel shuffle with that many groups follows the expansion conv (and its activation), as in
    ShuffleNet and FBNet. Needs the expansion conv, and input, ``exp`` and ``out`` divisible by it.

    ``residual``: ``None`` adds the identity shortcut exactly when shapes match (stride 1 and
    in == out channels); ``False`` never adds it; ``True`` requires it (invalid if shapes differ).
    """

    exp: int
    out: int
    kernel: int = 3
    stride: int = 1
    act: Act = Act.RELU
    se: SESpec | None = None
    dilation: int = 1
    residual: bool | None = None
    groups: int = 1
    expand: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "act", Act.parse(self.act, "block.act"))


@dataclass(frozen=True)
class SkipSpec:
    """FBNet's ``skip`` layer choice: the identity when the shapes allow it (``stride`` 1 and input
    channels == ``out``), otherwise a 1×1 conv with ``stride`` to ``out`` channels + BN + ``act``.

    An identity skip has no layers at all (nothing to compute, nothing to time).
    """

    out: int
    stride: int = 1
    act: Act = Act.RELU

    def __post_init__(self) -> None:
        object.__setattr__(self, "act", Act.parse(self.act, "skip.act"))


@dataclass(frozen=True)
class HeadSpec:
    """Last stage and classifier.

    ``conv`` channels of the 1×1 conv (+BN, ``conv_act``) before global average pooling (0: none);
    ``hidden`` channels of the 1×1 conv (+bias, no BN, ``hidden_act``) after pooling (0: none);
    then dropout (training only) and a fully connected classifier with bias.

    The paper's efficient last stage (Figure 5) is ``conv=960, hidden=1280``; the original
    MobileNetV2-style last stage computes its 1280-channel conv before pooling (``hidden=0``).
    """

    conv: int
    conv_act: Act = Act.HSWISH
    hidden: int = 0
    hidden_act: Act = Act.HSWISH
    dropout: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv_act", Act.parse(self.conv_act, "head.conv_act"))
        object.__setattr__(self, "hidden_act", Act.parse(self.hidden_act, "head.hidden_act"))

    @property
    def efficient(self) -> bool:
        """True when the widest 1×1 conv runs after pooling (the paper's efficient last stage)."""
        return self.hidden > 0


NODE_OPS = ("conv", "dwconv", "avgpool", "resize", "mul", "add", "concat", "anchors")
"""Operations of task-head nodes (see :class:`NodeSpec`)."""


@dataclass(frozen=True)
class NodeSpec:
    """One layer of a task head, reading named tensors (``inputs``) and named ``name``.

    A name in ``inputs`` is ``"input"`` (the image), a backbone layer (``"blocks.12.expand"``: the
    expansion output of block 12 after its activation; ``"blocks.5.dw"``; ``"stem"``), a whole block
    (``"blocks.5"``: its output after the residual add) or an earlier node. ``op``:

    * ``conv`` — k×k conv (``kernel``, ``stride`` 1 or 2, ``dilation``) to ``out`` channels, then
      BatchNorm (``bn=True``) or a bias (``bn=False``), then ``act``;
    * ``dwconv`` — depthwise k×k conv (the same fields but ``out``: it keeps the input width);
    * ``avgpool`` — average pooling, VALID, ``kernel`` and ``stride`` each an int or ``(h, w)``; a
      kernel larger than the input is clipped to it (as TF-slim's ``reduce_to_1x1``);
    * ``resize`` — bilinear resize (half-pixel centres, PyTorch ``align_corners=False``) to the
      spatial size of the tensor named by ``like``;
    * ``mul`` — ``inputs[0] · inputs[1]``, the second broadcast over H×W when it is 1×1 (a gate);
    * ``add`` — ``inputs[0] + inputs[1]``, equal shapes;
    * ``concat`` — concatenation of all inputs along ``axis``: ``"c"`` channels (equal H×W) or
      ``"w"`` (equal C and H; used after ``anchors``);
    * ``anchors`` — SSD box-predictor layout: a ``(A·out, H, W)`` map becomes ``(out, 1, H·W·A)``,
      position-major then anchor (the NHWC reshape ``[1, H·W·A, out]`` of TFLite and TF).

    A field that the op does not use keeps its default (validation says so otherwise).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    out: int = 0
    kernel: int | tuple[int, int] = 1
    stride: int | tuple[int, int] = 1
    dilation: int = 1
    act: Act = Act.IDENTITY
    bn: bool = True
    like: str = ""
    axis: str = "c"

    def __post_init__(self) -> None:
        object.__setattr__(self, "act", Act.parse(self.act, f"node {self.name}.act"))
        if isinstance(self.inputs, str):
            raise InvalidArchError(f"node {self.name}.inputs: expected a list of names, got a string")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        for f in ("kernel", "stride"):
            v = getattr(self, f)
            if isinstance(v, list):
                v = tuple(v)
            if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
                v = v[0]
            object.__setattr__(self, f, v)


def parse_resolution(value: int | str | Sequence[int], where: str = "resolution") -> int | tuple[int, int]:
    """An input size: an int (square), ``"HxW"`` or ``(H, W)``; a square ``(R, R)`` becomes ``R``.

    Raises :class:`InvalidArchError` naming ``where`` otherwise.
    """
    v = value
    if isinstance(v, str):
        parts = v.lower().split("x")
        try:
            v = tuple(int(p) for p in parts) if len(parts) == 2 else int(v)
        except ValueError:
            raise InvalidArchError(
                f"{where}: expected pixels R or HxW (e.g. 224 or 1024x2048), got {value!r}"
            ) from None
    if isinstance(v, list):
        v = tuple(v)
    if isinstance(v, tuple):
        if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            raise InvalidArchError(f"{where}: expected (H, W) integers, got {value!r}")
        return v[0] if v[0] == v[1] else v
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidArchError(f"{where}: expected pixels R or HxW, got {value!r}")
    return v


def resolution_str(resolution: int | tuple[int, int]) -> str:
    """``224`` → ``"224"``, ``(1024, 2048)`` → ``"1024x2048"``."""
    return f"{resolution[0]}x{resolution[1]}" if isinstance(resolution, tuple) else str(resolution)


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: input ``resolution`` (pixels: an int for a square input, else ``(H, W)``),
    stem, blocks, then a classification ``head`` with ``num_classes`` classes, or (``head=None``)
    task-head ``nodes`` and the names of the network's ``outputs``."""

    name: str
    resolution: int | tuple[int, int]
    stem: ConvSpec
    blocks: tuple[BlockSpec | SkipSpec, ...]
    head: HeadSpec | None
    num_classes: int = 1000
    in_channels: int = 3
    nodes: tuple[NodeSpec, ...] = ()
    outputs: tuple[str, ...] = ()
    meta: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if isinstance(self.resolution, (list, tuple, str)):
            object.__setattr__(self, "resolution", parse_resolution(self.resolution, "arch.resolution"))
        if isinstance(self.meta, dict):
            object.__setattr__(self, "meta", tuple(sorted(self.meta.items())))

    # -- convenience -------------------------------------------------------------------------
    @property
    def hw(self) -> tuple[int, int]:
        """Input ``(height, width)`` in pixels."""
        r = self.resolution
        return (r[0], r[1]) if isinstance(r, tuple) else (r, r)

    def with_resolution(self, resolution: int | str | tuple[int, int]) -> ArchSpec:
        """The same network at another input resolution (an int, ``"HxW"`` or ``(H, W)``)."""
        return replace(self, resolution=parse_resolution(resolution))

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as their names); inverse of :meth:`from_dict`."""
        d = asdict(self)
        d["meta"] = dict(self.meta)
        if not self.nodes and not self.outputs:
            del d["nodes"], d["outputs"]
        d["blocks"] = [
            {"type": "skip", **b} if isinstance(blk, SkipSpec) else b
            for blk, b in zip(self.blocks, d["blocks"])
        ]
        return {"schema": FORMAT, **_enum_to_str(d)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        """Strictly parse :meth:`to_dict` output; unknown or missing keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise InvalidArchError(f"arch JSON must be an object, got {type(d).__name__}")
        d = dict(d)
        format_version("arch JSON", d.pop("schema", FORMAT), FORMAT, error=InvalidArchError)
        _check_keys(d, cls, "arch")
        blocks = d.get("blocks")
        if not isinstance(blocks, list):
            raise InvalidArchError("arch.blocks: expected a list")
        out = []
        for i, b in enumerate(blocks):
            where = f"block {i}"
            if not isinstance(b, dict):
                raise InvalidArchError(f"{where}: expected an object")
            b = dict(b)
            kind = b.pop("type", "ir")
            if kind == "skip":
                _check_keys(b, SkipSpec, where)
                out.append(_build(SkipSpec, b, where))
                continue
            if kind != "ir":
                raise InvalidArchError(f"{where}.type: unknown block type {kind!r} (expected 'ir' or 'skip')")
            _check_keys(b, BlockSpec, where)
            if b.get("se") is not None:
                _check_keys(b["se"], SESpec, f"{where}.se")
                b["se"] = _build(SESpec, b["se"], f"{where}.se")
            out.append(_build(BlockSpec, b, where))
        for key, typ in (("stem", ConvSpec), ("head", HeadSpec)):
            if key == "head" and d.get(key) is None:
                continue
            if not isinstance(d.get(key), dict):
                raise InvalidArchError(f"arch.{key}: expected an object")
            _check_keys(d[key], typ, key)
        nodes = d.get("nodes", [])
        if not isinstance(nodes, list):
            raise InvalidArchError("arch.nodes: expected a list")
        for i, n in enumerate(nodes):
            _check_keys(n, NodeSpec, f"node {i}")
        outputs = d.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise InvalidArchError("arch.outputs: expected a list of names")
        return _build(
            cls,
            {
                **d,
                "stem": _build(ConvSpec, d["stem"], "stem"),
                "head": None if d.get("head") is None else _build(HeadSpec, d["head"], "head"),
                "nodes": tuple(_build(NodeSpec, n, f"node {i}") for i, n in enumerate(nodes)),
                "outputs": tuple(outputs),
                "blocks": tuple(out),
                "meta": tuple(sorted((d.get("meta") or {}).items())),
            },
            "arch",
        )

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidArchError(f"arch JSON is not valid JSON: {e}") from None
        return cls.from_dict(data)


def _enum_to_str(obj: Any) -> Any:
    if isinstance(obj, Act):
        return obj.value
    if isinstance(obj, dict):
        return {k: _enum_to_str(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_enum_to_str(v) for v in obj]
    return obj


def _check_keys(d: Any, cls: type, where: str) -> None:
    if not isinstance(d, dict):
        raise InvalidArchError(f"{where}: expected an object")
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise InvalidArchError(f"{where}: unknown field(s) {sorted(unknown)}")
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
    missing = required - set(d)
    if missing:
        raise InvalidArchError(f"{where}: missing field(s) {sorted(missing)}")


def _build(cls: type, d: dict, where: str) -> Any:
    try:
        return cls(**d)
    except TypeError as e:
        raise InvalidArchError(f"{where}: {e}") from None
