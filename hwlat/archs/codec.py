"""A strict compact string form of :class:`ArchSpec`, one token per block, absolute channels.

In the spirit of timm's ``ir_r1_k3_s1_e1_c16_nre``, but every channel count is absolute::

    in224 , stem_k3_s2_c16_hs , ir_k3_s1_e16_c16_re , ir_k5_s2_e72_c40_se24_re , ... ,
    head_c960_hs_h1280_hs , fc1000

(without the spaces). Tokens are separated by ``,``; fields inside a token by ``_``.

=========================  ================================================================
token                      fields
=========================  ================================================================
``in{R}[_c{C}]``           input resolution R (pixels; ``in{H}x{W}`` when not square), input
                           channels C (default 3)
``stem_k{K}_s{S}_c{C}_{A}``  stem conv: kernel, stride, output channels, activation
``ir_k{K}_s{S}[_d{D}]_e{E}[_g{G}][_pw|_nopw]_c{C}[_se{Q}[_g{A}][_i{A}]]_{A}[_skip|_noskip]``
                           bottleneck: kernel, stride, dilation, expansion channels, groups of
                           the 1×1 convs (with a channel shuffle after the expansion), forced /
                           no expansion conv, output channels, SE squeeze channels with gate
                           (default hsig) and inner (default re) activations, block activation,
                           forced / no shortcut
``skip_s{S}_c{C}_{A}``     FBNet skip layer: the identity when S is 1 and the width is unchanged,
                           else a 1×1 conv with stride S to C channels + BN + activation
``head_c{C}_{A}[_h{H}_{A}]``  last stage: 1×1 conv before pooling (``c0``: none) and after
``fc{N}[_drop{P}]``        classifier with N classes, dropout P (default 0.2)
``@{name}={op}…<{inputs}``  a task-head node (instead of ``head…`` and ``fc…``), reading the
                           ``+``-separated tensors: ``conv_k{K}_s{S}[_d{D}]_c{C}[_bias]_{A}``,
                           ``dw_k{K}_s{S}[_d{D}][_bias]_{A}``, ``avgpool_k{K}[x{K}]_s{S}[x{S}]``,
                           ``resize_like{tensor}``, ``mul``, ``add``, ``concat_c|w``,
                           ``anchors_c{K}`` (``_bias``: a bias instead of BatchNorm)
``out[_n{N}]_{a}+{b}``     the outputs of a task-head network (N: its classes, default 1000)
=========================  ================================================================

Activations: ``re`` relu, ``r6`` relu6, ``hs`` hswish, ``hsig`` hsigmoid, ``sw`` swish,
``sig`` sigmoid, ``id`` identity. :func:`encode` is canonical: ``decode(encode(a))`` equals ``a``
apart from the name, and ``encode(decode(s)) == s`` for canonical ``s``. Anything unexpected raises
``ValueError`` naming the token.
"""

from __future__ import annotations

import re

from hwlat.archs.ir import (
    Act,
    ArchSpec,
    BlockSpec,
    ConvSpec,
    HeadSpec,
    NodeSpec,
    SESpec,
    SkipSpec,
    resolution_str,
)
from hwlat.archs.layers import validate
from hwlat.errors import InvalidArchError

_ACTS = {a.short: a for a in Act}
_DEFAULT_DROPOUT = 0.2


def _fmt_float(x: float) -> str:
    return repr(float(x)).rstrip("0").rstrip(".") if x else "0"


def encode(arch: ArchSpec) -> str:
    """The canonical codec string of ``arch`` (its name is not part of it)."""
    toks = [
        f"in{resolution_str(arch.resolution)}" + ("" if arch.in_channels == 3 else f"_c{arch.in_channels}")
    ]
    s = arch.stem
    toks.append(f"stem_k{s.kernel}_s{s.stride}_c{s.out}_{s.act.short}")
    for b in arch.blocks:
        if isinstance(b, SkipSpec):
            toks.append(f"skip_s{b.stride}_c{b.out}_{b.act.short}")
            continue
        t = [f"ir_k{b.kernel}", f"s{b.stride}"]
        if b.dilation != 1:
            t.append(f"d{b.dilation}")
        t.append(f"e{b.exp}")
        if b.groups != 1:
            t.append(f"g{b.groups}")
        if b.expand is not None:
            t.append("pw" if b.expand else "nopw")
        t.append(f"c{b.out}")
        if b.se is not None:
            t.append(f"se{b.se.squeeze}")
            if b.se.gate is not Act.HSIGMOID:
                t.append(f"g{b.se.gate.short}")
            if b.se.inner is not Act.RELU:
                t.append(f"i{b.se.inner.short}")
        t.append(b.act.short)
        if b.residual is True:
            t.append("skip")
        elif b.residual is False:
            t.append("noskip")
        toks.append("_".join(t))
    h = arch.head
    if h is None:
        toks.extend(_encode_node(n) for n in arch.nodes)
        n = "" if arch.num_classes == 1000 else f"_n{arch.num_classes}"
        toks.append(f"out{n}_" + "+".join(arch.outputs))
        return ",".join(toks)
    head = f"head_c{h.conv}_{h.conv_act.short}"
    if h.hidden or h.hidden_act is not Act.HSWISH:
        head += f"_h{h.hidden}_{h.hidden_act.short}"
    toks.append(head)
    fc = f"fc{arch.num_classes}"
    if h.dropout != _DEFAULT_DROPOUT:
        fc += f"_drop{_fmt_float(h.dropout)}"
    toks.append(fc)
    return ",".join(toks)


def _pair_str(v) -> str:
    return f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v)


def _encode_node(n: NodeSpec) -> str:
    t = [{"dwconv": "dw"}.get(n.op, n.op)]
    if n.op in ("conv", "dwconv"):
        t += [f"k{n.kernel}", f"s{n.stride}"] + ([f"d{n.dilation}"] if n.dilation != 1 else [])
        if n.op == "conv":
            t.append(f"c{n.out}")
        if not n.bn:
            t.append("bias")
        t.append(n.act.short)
    elif n.op == "avgpool":
        t += [f"k{_pair_str(n.kernel)}", f"s{_pair_str(n.stride)}"]
    elif n.op == "resize":
        t.append(f"like{n.like}")
    elif n.op == "concat":
        t.append(n.axis)
    elif n.op == "anchors":
        t.append(f"c{n.out}")
    return f"@{n.name}=" + "_".join(t) + "<" + "+".join(n.inputs)


_INT = r"([1-9][0-9]*)"
_ACT = "(" + "|".join(sorted(_ACTS, key=len, reverse=True)) + ")"
_RE_IN = re.compile(rf"in{_INT}(?:x{_INT})?(?:_c{_INT})?")
_NAME = r"[a-z][a-z0-9]*(?:\.[a-z0-9]+)*"
_RE_NODE = re.compile(rf"@({_NAME})=([a-z]+)((?:_[a-z0-9.]+)*)<({_NAME}(?:\+{_NAME})*)")
_RE_OUT = re.compile(rf"out(?:_n{_INT})?_({_NAME}(?:\+{_NAME})*)")
_PAIR = rf"{_INT}(?:x{_INT})?"
_NODE_FIELDS = {
    "conv": re.compile(rf"_k{_INT}_s{_INT}(?:_d{_INT})?_c{_INT}(_bias)?_{_ACT}"),
    "dw": re.compile(rf"_k{_INT}_s{_INT}(?:_d{_INT})?(_bias)?_{_ACT}"),
    "avgpool": re.compile(rf"_k{_PAIR}_s{_PAIR}"),
    "resize": re.compile(rf"_like({_NAME})"),
    "mul": re.compile(""),
    "add": re.compile(""),
    "concat": re.compile("_(c|w)"),
    "anchors": re.compile(rf"_c{_INT}"),
}


def _decode_node(tok: str, i: int) -> NodeSpec:
    m = _match(_RE_NODE, tok, i, "node (@{name}={op}…<{inputs})")
    name, op, rest, ins = m[1], m[2], m[3], tuple(m[4].split("+"))
    if op not in _NODE_FIELDS:
        raise InvalidArchError(
            f"token {i} {tok!r}: unknown node op {op!r} (expected one of {', '.join(_NODE_FIELDS)})"
        )
    f = _NODE_FIELDS[op].fullmatch(rest)
    if f is None:
        raise InvalidArchError(f"token {i} {tok!r}: not a valid {op!r} node (see hwlat.archs.codec)")
    pair = lambda a, b: int(a) if b is None else (int(a), int(b))
    if op == "conv":
        k, st, d, c, bias, act = f.groups()
        return NodeSpec(
            name,
            "conv",
            ins,
            out=int(c),
            kernel=int(k),
            stride=int(st),
            dilation=int(d or 1),
            act=_ACTS[act],
            bn=bias is None,
        )
    if op == "dw":
        k, st, d, bias, act = f.groups()
        return NodeSpec(
            name,
            "dwconv",
            ins,
            kernel=int(k),
            stride=int(st),
            dilation=int(d or 1),
            act=_ACTS[act],
            bn=bias is None,
        )
    if op == "avgpool":
        return NodeSpec(name, op, ins, kernel=pair(f[1], f[2]), stride=pair(f[3], f[4]))
    if op == "resize":
        return NodeSpec(name, op, ins, like=f[1])
    if op == "concat":
        return NodeSpec(name, op, ins, axis=f[1])
    if op == "anchors":
        return NodeSpec(name, op, ins, out=int(f[1]))
    return NodeSpec(name, op, ins)


_RE_STEM = re.compile(rf"stem_k{_INT}_s{_INT}_c{_INT}_{_ACT}")
_RE_IR = re.compile(
    rf"ir_k{_INT}_s{_INT}(?:_d{_INT})?_e{_INT}(?:_g{_INT})?(?:_(pw|nopw))?_c{_INT}"
    rf"(?:_se{_INT}(?:_g{_ACT})?(?:_i{_ACT})?)?_{_ACT}(?:_(skip|noskip))?"
)
_RE_SKIP = re.compile(rf"skip_s{_INT}_c{_INT}_{_ACT}")
_RE_HEAD = re.compile(rf"head_c(0|[1-9][0-9]*)_{_ACT}(?:_h(0|[1-9][0-9]*)_{_ACT})?")
_RE_FC = re.compile(rf"fc{_INT}(?:_drop(0|0\.[0-9]*[1-9]))?")


def _match(rx: re.Pattern, tok: str, i: int, what: str) -> re.Match:
    m = rx.fullmatch(tok)
    if m is None:
        raise InvalidArchError(f"token {i} {tok!r}: not a valid {what} token")
    return m


def decode(text: str, name: str = "custom") -> ArchSpec:
    """Parse a codec string into an :class:`ArchSpec` (validated by shape inference)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArchError("arch string is empty")
    toks = text.strip().split(",")
    if len(toks) < 5:
        raise InvalidArchError(
            f"arch string has {len(toks)} token(s); expected in…, stem…, at least one ir… or skip…, "
            f"head…, fc…"
        )
    m = _match(_RE_IN, toks[0], 0, "input (in{R}[x{W}][_c{C}])")
    res, cin = (int(m[1]) if m[2] is None else (int(m[1]), int(m[2]))), int(m[3] or 3)
    m = _match(_RE_STEM, toks[1], 1, "stem (stem_k{K}_s{S}_c{C}_{act})")
    stem = ConvSpec(out=int(m[3]), kernel=int(m[1]), stride=int(m[2]), act=_ACTS[m[4]])
    first_node = next((i for i, t in enumerate(toks) if t.startswith("@")), None)
    if first_node is not None or toks[-1].startswith("out"):
        if first_node is None:
            raise InvalidArchError("arch string: an out… token needs task-head nodes (@…) before it")
        nodes = tuple(_decode_node(t, i) for i, t in enumerate(toks[first_node:-1], start=first_node))
        m = _match(_RE_OUT, toks[-1], len(toks) - 1, "outputs (out[_n{N}]_{a}+{b})")
        blocks = _decode_blocks(toks[2:first_node])
        arch = ArchSpec(
            name=name,
            resolution=res,
            in_channels=cin,
            stem=stem,
            blocks=blocks,
            head=None,
            num_classes=int(m[1] or 1000),
            nodes=nodes,
            outputs=tuple(m[2].split("+")),
        )
        return validate(arch)
    blocks = _decode_blocks(toks[2:-2])
    m = _match(_RE_HEAD, toks[-2], len(toks) - 2, "head (head_c{C}_{act}[_h{H}_{act}])")
    head_kw = dict(
        conv=int(m[1]), conv_act=_ACTS[m[2]], hidden=int(m[3] or 0), hidden_act=_ACTS[m[4] or "hs"]
    )
    m = _match(_RE_FC, toks[-1], len(toks) - 1, "classifier (fc{N}[_drop{P}])")
    dropout = float(m[2]) if m[2] is not None else _DEFAULT_DROPOUT
    arch = ArchSpec(
        name=name,
        resolution=res,
        in_channels=cin,
        stem=stem,
        blocks=blocks,
        head=HeadSpec(dropout=dropout, **head_kw),
        num_classes=int(m[1]),
    )
    return validate(arch)


def _decode_blocks(toks: list[str]) -> tuple[BlockSpec | SkipSpec, ...]:
    blocks = []
    for i, tok in enumerate(toks, start=2):
        if tok.startswith("skip_"):
            m = _match(_RE_SKIP, tok, i, "skip (skip_s{S}_c{C}_{act})")
            blocks.append(SkipSpec(out=int(m[2]), stride=int(m[1]), act=_ACTS[m[3]]))
            continue
        m = _match(_RE_IR, tok, i, "bottleneck (ir_k…_s…_e…_c…_{act})")
        k, s, d, e, groups, pw, c, sq, g, inner, act, res_flag = m.groups()
        se = None
        if sq is not None:
            se = SESpec(int(sq), gate=_ACTS[g or "hsig"], inner=_ACTS[inner or "re"])
        blocks.append(
            BlockSpec(
                exp=int(e),
                out=int(c),
                kernel=int(k),
                stride=int(s),
                act=_ACTS[act],
                se=se,
                dilation=int(d or 1),
                residual={None: None, "skip": True, "noskip": False}[res_flag],
                groups=int(groups or 1),
                expand={None: None, "pw": True, "nopw": False}[pw],
            )
        )
    return tuple(blocks)
