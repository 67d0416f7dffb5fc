"""Shape inference and cost counting: the one pass over an :class:`ArchSpec` that everything reads.

Counting convention (used everywhere in hwlat)
----------------------------------------------
* ``madds`` — multiply-adds of convolutions and fully connected layers; one fused multiply-add
  counts as 1. A k×k conv with ``groups`` g producing ``Cout×H×W`` costs
  ``H·W·Cout·(Cin/g)·k·k``; an FC layer costs ``Cin·Cout``. Biases and BatchNorm (folded into the
  conv for inference) cost nothing. This is the headline number: fvcore on the BatchNorm-folded
  torch model and torchvision's ``_ops`` give the same count; the paper's Table 9 and the TF-slim
  README print it rounded (217 M Large, 57 M Small); Table 3's 219 M for Large is 1.1 % above it
  (the manual, docs/counting.md: "The remaining gap").
* ``elementwise`` — everything else, reported separately, one per output element: activations
  (ReLU included, identity excluded; a fused ReLU costs the same as a separate one here), the
  squeeze-excite channel scaling (one multiply per element), residual additions (one add per
  element) and average pooling (one add per *input* element).
* A channel shuffle is a permutation of channels: no arithmetic, so 0 MAdds, 0 params and 0
  elementwise. It still has its own layer row (op ``shuffle``) so that the profiler, the exporters
  and the predictors see it; what it costs on a device is measured, never assumed.
* Grouped 1×1 convs follow the conv formula above with their ``groups``: a 1×1 conv Cin→Cout with
  g groups costs ``H·W·Cout·Cin/g`` MAdds and has ``Cout·Cin/g`` weights.
* Task-head ops (:class:`~hwlat.archs.ir.NodeSpec`): convs count as above; a strided average
  pooling costs one add per element of each window (``kh·kw`` per output element); a bilinear
  resize 4 multiply-adds per output element (fvcore's ``upsample_bilinear2d`` convention); the
  gate multiplication and the addition of two tensors one per output element — all elementwise,
  0 MAdds. A concatenation and the SSD ``anchors`` reshape move data only: 0, 0, 0 (own rows).
* ``params`` — trainable parameters: conv/FC weights, biases where present, and BatchNorm as 2 per
  channel (scale and shift; running statistics are buffers, not parameters). This is what
  ``sum(p.numel() for p in model.parameters())`` gives for :func:`hwlat.archs.build_torch`.

Padding is symmetric ``dilation·(k−1)/2``, so a stride-2 layer maps ``H`` to ``ceil(H/2)`` — the same
output shape as TensorFlow's SAME padding.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import asdict, dataclass, fields, replace
from itertools import groupby
from typing import TYPE_CHECKING

from hwlat.archs.ir import NODE_OPS, Act, ArchSpec, BlockSpec, NodeSpec, SkipSpec
from hwlat.errors import InvalidArchError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class OpKind(str, enum.Enum):
    """What a layer computes."""

    CONV = "conv"  # dense k×k convolution (incl. 1×1 pointwise)
    DWCONV = "dwconv"  # depthwise k×k convolution
    POOL = "pool"  # global average pooling
    MUL = "mul"  # squeeze-excite channel scaling
    ADD = "add"  # residual addition
    FC = "fc"  # fully connected classifier
    SHUFFLE = "shuffle"  # channel shuffle with ``groups`` groups (a permutation: no arithmetic)
    AVGPOOL = "avgpool"  # average pooling with a (large) kernel and stride, VALID (task heads)
    RESIZE = "resize"  # bilinear resize to ``out_shape`` (task heads)
    CONCAT = "concat"  # concatenation of ``inputs`` along C, or along W when C is unchanged (task heads)
    ANCHORS = "anchors"  # SSD predictor layout (A·k, H, W) -> (k, 1, H·W·A) (task heads)
    ACT = "act"  # a standalone activation (only in runtime kernel decompositions, never in layers())


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a resolved network. Shapes are ``(C, H, W)`` in elements; costs per image.

    ``inputs`` is empty for the backbone and classifier (a row reads the previous row's output;
    see :mod:`hwlat.archs.segments`); a task-head row names the tensors it reads: ``"input"``
    or the name of an earlier row that ends a step (any row but the first three of a
    squeeze-excite), and ``input_shapes`` their shapes. ``kernel`` and ``stride`` are ``(h, w)``
    tuples only for non-square pooling.
    """

    name: str
    stage: str  # "stem" | "block" | "head" | "task"
    block: int  # index into ``arch.blocks`` (0-based), -1 outside the blocks
    op: OpKind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int | tuple[int, int] = 1
    stride: int | tuple[int, int] = 1
    dilation: int = 1
    groups: int = 1
    act: Act = Act.IDENTITY
    bn: bool = False
    bias: bool = False
    madds: int = 0
    params: int = 0
    elementwise: int = 0
    inputs: tuple[str, ...] = ()
    input_shapes: tuple[tuple[int, int, int], ...] = ()

    @property
    def cin(self) -> int:
        return self.in_shape[0]

    @property
    def cout(self) -> int:
        return self.out_shape[0]


def _check_int(value: object, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArchError(f"{where}: expected an integer, got {value!r}")
    if value < minimum:
        raise InvalidArchError(f"{where}: must be >= {minimum}, got {value}")
    return value


def _check_stride(value: object, where: str) -> int:
    _check_int(value, where)
    if value not in (1, 2):
        raise InvalidArchError(f"{where}: stride must be 1 or 2, got {value}")
    return value  # type: ignore[return-value]


def _check_kernel(value: object, where: str) -> int:
    _check_int(value, where)
    if value % 2 == 0:  # type: ignore[operator]
        raise InvalidArchError(f"{where}: kernel must be odd, got {value}")
    return value  # type: ignore[return-value]


def _conv_out(h: int, k: int, s: int, d: int) -> int:
    pad = d * (k - 1) // 2
    return (h + 2 * pad - d * (k - 1) - 1) // s + 1


class _Builder:
    def __init__(self) -> None:
        self.rows: list[LayerSpec] = []

    def conv(
        self,
        name,
        stage,
        block,
        shape,
        cout,
        k=1,
        s=1,
        d=1,
        groups=1,
        act=Act.IDENTITY,
        bn=True,
        bias=False,
        where="",
        op=OpKind.CONV,
        inputs=(),
    ):
        c, h, w = shape
        if s == 2 and min(h, w) < 2:
            raise InvalidArchError(
                f"{where}: stride 2 receives a {h}x{w} input; the resolution is too small for this "
                f"network to downsample"
            )
        oh, ow = _conv_out(h, k, s, d), _conv_out(w, k, s, d)
        out = (cout, oh, ow)
        per_out = (c // groups) * k * k
        madds = oh * ow * cout * per_out
        params = cout * per_out + (2 * cout if bn else 0) + (cout if bias else 0)
        elem = _numel(out) if act is not Act.IDENTITY else 0
        self.rows.append(
            LayerSpec(
                name,
                stage,
                block,
                op,
                shape,
                out,
                k,
                s,
                d,
                groups,
                act,
                bn,
                bias,
                madds,
                params,
                elem,
                tuple(inputs),
            )
        )
        return out

    def pool(self, name, stage, block, shape):
        out = (shape[0], 1, 1)
        k = shape[1] if shape[1] == shape[2] else (shape[1], shape[2])
        self.rows.append(
            LayerSpec(name, stage, block, OpKind.POOL, shape, out, kernel=k, elementwise=_numel(shape))
        )
        return out

    def elementwise(self, name, stage, block, op, shape):
        self.rows.append(LayerSpec(name, stage, block, op, shape, shape, elementwise=_numel(shape)))
        return shape

    def shuffle(self, name, block, shape, groups):
        self.rows.append(LayerSpec(name, "block", block, OpKind.SHUFFLE, shape, shape, groups=groups))
        return shape


def _numel(shape: tuple[int, int, int]) -> int:
    return shape[0] * shape[1] * shape[2]


def residual_applies(block: BlockSpec, cin: int) -> bool:
    """Whether the bottleneck adds its identity shortcut, given its input channels."""
    match = block.stride == 1 and cin == block.out
    return match if block.residual is None else bool(block.residual)


def expand_applies(block: BlockSpec, cin: int) -> bool:
    """Whether the bottleneck has its 1×1 expansion conv, given its input channels."""
    return block.exp != cin if block.expand is None else bool(block.expand)


def skip_is_identity(block: SkipSpec, cin: int) -> bool:
    """Whether a skip layer is the identity (stride 1, same width) rather than a 1×1 conv."""
    return block.stride == 1 and cin == block.out


def layers(arch: ArchSpec) -> tuple[LayerSpec, ...]:
    """Every layer of ``arch`` in execution order, with shapes and costs; validates as it goes.

    The one shape-inference pass of the project, computed once per distinct spec (cached; the
    result is immutable). Raises :class:`~hwlat.errors.InvalidArchError` (a ``ValueError``)
    naming the block and field of the first problem found.
    """
    if not isinstance(arch, ArchSpec):
        raise TypeError(f"expected an ArchSpec, got {type(arch).__name__}")
    return _layers(arch)


def validate(arch: ArchSpec) -> ArchSpec:
    """Return ``arch`` if it is a valid network; otherwise raise ``InvalidArchError`` naming the
    block and field of the first problem."""
    layers(arch)
    return arch


@functools.lru_cache(maxsize=8192)
def _layers(arch: ArchSpec) -> tuple[LayerSpec, ...]:
    height, width = arch.hw
    _check_int(height, "arch.resolution")
    _check_int(width, "arch.resolution")
    _check_int(arch.in_channels, "arch.in_channels")
    _check_int(arch.num_classes, "arch.num_classes")
    b = _Builder()
    stem = arch.stem
    _check_int(stem.out, "stem.out")
    _check_kernel(stem.kernel, "stem.kernel")
    _check_stride(stem.stride, "stem.stride")
    shape = (arch.in_channels, height, width)
    shape = b.conv("stem", "stem", -1, shape, stem.out, stem.kernel, stem.stride, act=stem.act, where="stem")
    if not arch.blocks:
        raise InvalidArchError("arch.blocks: a network needs at least one block")
    for i, blk in enumerate(arch.blocks):
        where = f"block {i}"
        if isinstance(blk, SkipSpec):
            shape = _skip(b, i, blk, shape, where)
            continue
        if not isinstance(blk, BlockSpec):
            raise InvalidArchError(f"{where}: expected a BlockSpec or SkipSpec, got {type(blk).__name__}")
        _check_int(blk.exp, f"{where}.exp")
        _check_int(blk.out, f"{where}.out")
        _check_kernel(blk.kernel, f"{where}.kernel")
        _check_stride(blk.stride, f"{where}.stride")
        _check_int(blk.dilation, f"{where}.dilation")
        if blk.se is not None:
            _check_int(blk.se.squeeze, f"{where}.se.squeeze")
        for flag in ("residual", "expand"):
            if getattr(blk, flag) not in (None, True, False):
                raise InvalidArchError(
                    f"{where}.{flag}: expected true, false or null, got {getattr(blk, flag)!r}"
                )
        _check_int(blk.groups, f"{where}.groups")
        cin = shape[0]
        expand = expand_applies(blk, cin)
        if not expand and blk.exp != cin:
            raise InvalidArchError(
                f"{where}.expand: false needs exp == input channels (exp {blk.exp}, in {cin} ch)"
            )
        if blk.groups > 1:
            if not expand:
                raise InvalidArchError(
                    f"{where}.groups: grouped 1x1 convs ({blk.groups} groups) need "
                    f"the expansion conv (exp {blk.exp} == in {cin} ch; set expand)"
                )
            for what, c in (("input", cin), ("exp", blk.exp), ("out", blk.out)):
                if c % blk.groups:
                    raise InvalidArchError(
                        f"{where}.groups: {what} channels {c} are not divisible by {blk.groups} groups"
                    )
        if blk.residual is True and not (blk.stride == 1 and cin == blk.out):
            raise InvalidArchError(
                f"{where}.residual: shortcut between mismatched shapes (in {cin} ch, out {blk.out} "
                f"ch, stride {blk.stride})"
            )
        x = shape
        p = f"blocks.{i}"
        if expand:
            x = b.conv(f"{p}.expand", "block", i, x, blk.exp, groups=blk.groups, act=blk.act, where=where)
            if blk.groups > 1:
                x = b.shuffle(f"{p}.shuffle", i, x, blk.groups)
        x = b.conv(
            f"{p}.dw",
            "block",
            i,
            x,
            blk.exp,
            blk.kernel,
            blk.stride,
            blk.dilation,
            groups=blk.exp,
            act=blk.act,
            where=where,
            op=OpKind.DWCONV,
        )
        if blk.se is not None:
            s = b.pool(f"{p}.se.pool", "block", i, x)
            s = b.conv(f"{p}.se.reduce", "block", i, s, blk.se.squeeze, act=blk.se.inner, bn=False, bias=True)
            b.conv(f"{p}.se.expand", "block", i, s, blk.exp, act=blk.se.gate, bn=False, bias=True)
            b.elementwise(f"{p}.se.scale", "block", i, OpKind.MUL, x)
        x = b.conv(f"{p}.project", "block", i, x, blk.out, groups=blk.groups, where=where)
        if residual_applies(blk, cin):
            b.elementwise(f"{p}.add", "block", i, OpKind.ADD, x)
        shape = x
    head = arch.head
    if head is None:
        _task_heads(b, arch, shape)
        return tuple(b.rows)
    if arch.nodes or arch.outputs:
        raise InvalidArchError(
            "arch.nodes: task-head nodes need a network without a classifier head (head null)"
        )
    _check_int(head.conv, "head.conv", minimum=0)
    _check_int(head.hidden, "head.hidden", minimum=0)
    if not (isinstance(head.dropout, (int, float)) and 0 <= head.dropout < 1):
        raise InvalidArchError(f"head.dropout: must be in [0, 1), got {head.dropout!r}")
    if head.conv:
        shape = b.conv("head.conv", "head", -1, shape, head.conv, act=head.conv_act)
    shape = b.pool("head.pool", "head", -1, shape)
    if head.hidden:
        shape = b.conv(
            "head.hidden", "head", -1, shape, head.hidden, act=head.hidden_act, bn=False, bias=True
        )
    cin, n = shape[0], arch.num_classes
    b.rows.append(
        LayerSpec(
            "classifier",
            "head",
            -1,
            OpKind.FC,
            shape,
            (n, 1, 1),
            bias=True,
            madds=cin * n,
            params=cin * n + n,
        )
    )
    return tuple(b.rows)


_NODE_NAME = re.compile(r"[a-z][a-z0-9]*(\.[a-z0-9]+)*")
_NODE_DEFAULTS = {f.name: f.default for f in fields(NodeSpec) if f.name not in ("name", "op", "inputs")}
_NODE_FIELDS = tuple(_NODE_DEFAULTS)
_CONV_FIELDS = {"out", "kernel", "stride", "dilation", "act", "bn"}
_NODE_USES = {
    "conv": _CONV_FIELDS,
    "dwconv": _CONV_FIELDS - {"out"},
    "avgpool": {"kernel", "stride"},
    "resize": {"like"},
    "mul": set(),
    "add": set(),
    "concat": {"axis"},
    "anchors": {"out"},
}
_SE_INNER = ("se.pool", "se.reduce", "se.expand")


def _pair(value, where: str) -> tuple[int, int]:
    v = value if isinstance(value, tuple) else (value, value)
    if len(v) != 2:
        raise InvalidArchError(f"{where}: expected an int or (h, w), got {value!r}")
    return _check_int(v[0], where), _check_int(v[1], where)


def _taps(rows: list[LayerSpec], in_shape, n_blocks: int) -> dict[str, tuple[str, tuple[int, int, int]]]:
    """Names a task head may read → (the row name that holds the tensor, its shape)."""
    taps = {"input": ("input", in_shape)}
    last = ("input", in_shape)
    by_block: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for r in rows:
        if r.name.split(".", 2)[-1] in _SE_INNER and r.name.startswith("blocks."):
            continue
        last = (r.name, r.out_shape)
        taps[r.name] = last
        if r.stage == "block":
            by_block[r.block] = last
    prev = taps.get("stem", last)
    for i in range(n_blocks):
        prev = by_block.get(i, prev)  # an identity skip block hands on its input
        taps[f"blocks.{i}"] = prev
    return taps


def _task_heads(b: _Builder, arch: ArchSpec, shape) -> None:
    """Rows of the task-head graph (``arch.nodes``), validated; stage ``"task"``."""
    if not arch.nodes or not arch.outputs:
        raise InvalidArchError(
            "arch.head: a network without a classifier head (head null) needs task-head nodes and outputs"
        )
    c, h, w = arch.in_channels, *arch.hw
    taps = _taps(b.rows, (c, h, w), len(arch.blocks))
    for i, n in enumerate(arch.nodes):
        where = f"node {i}"
        if not isinstance(n, NodeSpec):
            raise InvalidArchError(f"{where}: expected a NodeSpec, got {type(n).__name__}")
        if not isinstance(n.name, str) or not _NODE_NAME.fullmatch(n.name):
            raise InvalidArchError(
                f"{where}.name: {n.name!r} is not a name (lowercase letters and "
                f"digits, parts separated by dots)"
            )
        where = f"node {i} ({n.name})"
        if n.name in taps:
            raise InvalidArchError(f"{where}.name: {n.name!r} is already a tensor of the network")
        if n.op not in NODE_OPS:
            raise InvalidArchError(f"{where}.op: unknown {n.op!r} (expected one of {', '.join(NODE_OPS)})")
        if not n.inputs:
            raise InvalidArchError(f"{where}.inputs: a node reads at least one tensor")
        for f in _NODE_FIELDS:  # a field the op does not use keeps its default (one spelling per node)
            if f not in _NODE_USES[n.op] and getattr(n, f) != _NODE_DEFAULTS[f]:
                raise InvalidArchError(f"{where}.{f}: op {n.op!r} does not use it (got {getattr(n, f)!r})")
        ins = []
        for x in n.inputs:
            if x not in taps:
                raise InvalidArchError(
                    f"{where}.inputs: unknown tensor {x!r} (an earlier node, "
                    f"'input', a block 'blocks.I' or a layer such as 'blocks.I.expand')"
                )
            ins.append(taps[x])
        names = tuple(t[0] for t in ins)
        shapes = [t[1] for t in ins]
        x = shapes[0]
        first = len(b.rows)
        arity = {"mul": 2, "add": 2}.get(n.op, 0 if n.op == "concat" else 1)
        if arity and len(ins) != arity:
            raise InvalidArchError(f"{where}.inputs: op {n.op!r} reads {arity} tensor(s), got {len(ins)}")
        kw = dict(inputs=names)
        if n.op in ("conv", "dwconv"):
            k = _check_kernel(n.kernel, f"{where}.kernel")
            s = _check_stride(n.stride, f"{where}.stride")
            d = _check_int(n.dilation, f"{where}.dilation")
            if n.op == "conv":
                cout, groups, op = _check_int(n.out, f"{where}.out"), 1, OpKind.CONV
            else:
                cout, groups, op = x[0], x[0], OpKind.DWCONV
            out = b.conv(
                n.name,
                "task",
                -1,
                x,
                cout,
                k,
                s,
                d,
                groups,
                n.act,
                bn=bool(n.bn),
                bias=not n.bn,
                where=where,
                op=op,
                **kw,
            )
        elif n.op == "avgpool":
            kh, kw_ = _pair(n.kernel, f"{where}.kernel")
            sh, sw = _pair(n.stride, f"{where}.stride")
            kh, kw_ = min(kh, x[1]), min(kw_, x[2])
            out = (x[0], (x[1] - kh) // sh + 1, (x[2] - kw_) // sw + 1)
            k = kh if kh == kw_ else (kh, kw_)
            st = sh if sh == sw else (sh, sw)
            b.rows.append(
                LayerSpec(
                    n.name,
                    "task",
                    -1,
                    OpKind.AVGPOOL,
                    x,
                    out,
                    kernel=k,
                    stride=st,
                    elementwise=_numel(out) * kh * kw_,
                    inputs=names,
                )
            )
        elif n.op == "resize":
            if n.like not in taps:
                raise InvalidArchError(f"{where}.like: unknown tensor {n.like!r}")
            ref = taps[n.like][1]
            out = (x[0], ref[1], ref[2])
            b.rows.append(
                LayerSpec(
                    n.name, "task", -1, OpKind.RESIZE, x, out, elementwise=4 * _numel(out), inputs=names
                )
            )
        elif n.op in ("mul", "add"):
            g = shapes[1]
            ok = g == x or (n.op == "mul" and g == (x[0], 1, 1))
            if not ok:
                raise InvalidArchError(
                    f"{where}.inputs: op {n.op!r} between shapes {x} and {g}"
                    + (" (a gate is (C, 1, 1) or the same shape)" if n.op == "mul" else "")
                )
            out = x
            b.rows.append(
                LayerSpec(
                    n.name,
                    "task",
                    -1,
                    OpKind.MUL if n.op == "mul" else OpKind.ADD,
                    x,
                    out,
                    elementwise=_numel(out),
                    inputs=names,
                )
            )
        elif n.op == "concat":
            if n.axis not in ("c", "w"):
                raise InvalidArchError(f"{where}.axis: expected 'c' or 'w', got {n.axis!r}")
            if len(ins) < 2:
                raise InvalidArchError(f"{where}.inputs: concat reads at least 2 tensors")
            keep = (1, 2) if n.axis == "c" else (0, 1)
            cat = 0 if n.axis == "c" else 2
            for sh_ in shapes[1:]:
                if tuple(sh_[j] for j in keep) != tuple(x[j] for j in keep):
                    raise InvalidArchError(
                        f"{where}.inputs: cannot concatenate {sh_} to {x} along {n.axis!r}"
                    )
            out = list(x)
            out[cat] = sum(sh_[cat] for sh_ in shapes)
            out = tuple(out)
            b.rows.append(LayerSpec(n.name, "task", -1, OpKind.CONCAT, x, out, inputs=names))
        else:  # anchors
            k = _check_int(n.out, f"{where}.out")
            if x[0] % k:
                raise InvalidArchError(
                    f"{where}.out: {x[0]} channels are not a multiple of the code size {k}"
                )
            out = (k, 1, x[1] * x[2] * (x[0] // k))
            b.rows.append(LayerSpec(n.name, "task", -1, OpKind.ANCHORS, x, out, inputs=names))
        taps[n.name] = (n.name, out)
        b.rows[first:] = [replace(r, input_shapes=tuple(shapes)) for r in b.rows[first:]]
    node_names = {n.name for n in arch.nodes}
    for o in arch.outputs:
        if o not in node_names:
            raise InvalidArchError(f"arch.outputs: {o!r} is not a node")
    if len(set(arch.outputs)) != len(arch.outputs):
        raise InvalidArchError("arch.outputs: a name appears twice")


def output_names(arch: ArchSpec) -> tuple[str, ...]:
    """Names of the rows whose outputs are the network's outputs, in order: the classifier, or
    ``arch.outputs``."""
    return tuple(arch.outputs) if arch.head is None else (layers(arch)[-1].name,)


def _skip(b: _Builder, i: int, blk: SkipSpec, shape: tuple[int, int, int], where: str):
    """A skip layer: no rows when it is the identity, else one 1×1 conv with its stride."""
    _check_int(blk.out, f"{where}.out")
    _check_stride(blk.stride, f"{where}.stride")
    if skip_is_identity(blk, shape[0]):
        return shape
    return b.conv(f"blocks.{i}.conv", "block", i, shape, blk.out, 1, blk.stride, act=blk.act, where=where)


def summary(arch: ArchSpec) -> dict[str, int]:
    """Totals for ``arch``: ``madds``, ``params``, ``elementwise`` (see module docstring)."""
    rows = layers(arch)
    return {
        "madds": sum(r.madds for r in rows),
        "params": sum(r.params for r in rows),
        "elementwise": sum(r.elementwise for r in rows),
    }


def block_groups(rows: tuple[LayerSpec, ...] | list[LayerSpec]) -> list[tuple[LayerSpec, ...]]:
    """``rows`` (from :func:`layers`) split into the network's blocks, in order: the stem, each
    bottleneck, the last stage with the classifier (runs of rows with the same stage and block);
    task-head rows by the first part of their names (``aspp.conv``, ``aspp.pool``… are one
    block, ``box0.dw``, ``box0.conv``… another)."""
    return [tuple(g) for _, g in groupby(rows, key=_group_key)]


def _group_key(r: LayerSpec) -> tuple:
    return (r.stage, r.name.split(".", 1)[0]) if r.stage == "task" else (r.stage, r.block)


def layers_frame(arch: ArchSpec) -> pd.DataFrame:
    """:func:`layers` as a pandas DataFrame, one row per layer, shapes split into columns
    (``inputs``: the ``+``-joined names a task-head row reads, empty for the others)."""
    import pandas as pd

    recs = []
    for r in layers(arch):
        d = asdict(r)
        (ci, hi, wi), (co, ho, wo) = d.pop("in_shape"), d.pop("out_shape")
        d.update(
            op=r.op.value,
            act=r.act.value,
            in_c=ci,
            in_h=hi,
            in_w=wi,
            out_c=co,
            out_h=ho,
            out_w=wo,
            inputs="+".join(r.inputs),
        )
        recs.append(d)
    cols = [
        "name",
        "stage",
        "block",
        "op",
        "in_c",
        "in_h",
        "in_w",
        "out_c",
        "out_h",
        "out_w",
        "kernel",
        "stride",
        "dilation",
        "groups",
        "act",
        "bn",
        "bias",
        "madds",
        "params",
        "elementwise",
        "inputs",
    ]
    return pd.DataFrame.from_records(recs, columns=cols)
