"""The normalised op list that both frontends produce, and the activation matcher they share.

A frontend turns a file's graph into :class:`Graph`: values (integer ids) with channels-first shapes
without the batch (``(C, H, W)``, ``(N,)`` after a flatten, ``(k, 1, N)`` after SSD's anchors
layout) and ops in execution order, constants folded. Op kinds and their attributes:

* ``conv`` — ``k``, ``stride``, ``dilation``, ``groups``, ``pad`` (``(top, left, bottom, right)``,
  an explicit ``Pad`` merged in), ``cin``, ``cout``, ``bias``, ``bn`` (a BatchNorm folded in), ``act``;
* ``act`` — ``act`` (an :class:`~hwlat.archs.ir.Act`; decomposed forms already recognised);
* ``add``, ``mul`` (two tensors), ``gap`` (mean over H, W), ``flatten``, ``fc`` (``cin``, ``cout``,
  ``bias``), ``shuffle`` (``groups``), ``concat`` (``axis`` ``"c"``/``"w"``), ``resize``,
  ``avgpool`` (``kernel``, ``stride`` as ``(h, w)``), ``anchors`` (``code``);
* ``unknown`` — a node no rule understands, with ``why`` (what the IR lacks).

Every op keeps the indices of the file's nodes it came from (``src``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwlat.archs.ir import Act

COMPLETE = {
    "relu": Act.RELU,
    "relu6": Act.RELU6,
    "hswish": Act.HSWISH,
    "hsigmoid": Act.HSIGMOID,
    "sigmoid": Act.SIGMOID,
    "swish": Act.SWISH,
}


@dataclass
class Op:
    kind: str
    ins: list[int]
    out: int
    attrs: dict[str, Any] = field(default_factory=dict)
    src: list[int] = field(default_factory=list)


@dataclass
class Sym:
    """A value that is part of a pattern not yet complete: ``tag`` of ``base`` (e.g. ``x + 3``)."""

    tag: str
    base: int
    src: list[int]
    data: Any = None


@dataclass
class SourceNode:
    name: str
    op: str
    input_shapes: tuple[tuple[int, ...], ...]


class Graph:
    """A file's graph as normalised ops (module docstring)."""

    def __init__(self, fmt: str, label: str) -> None:
        self.fmt, self.label = fmt, label
        self.nodes: list[SourceNode] = []
        self.ops: list[Op] = []
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.input: int | None = None
        self.in_shape: tuple[int, int, int] | None = None
        self.outputs: list[tuple[str, int]] = []
        self.sym: dict[int, Sym] = {}
        self._next = 0

    def value(self, shape: tuple[int, ...] | None) -> int:
        v = self._next
        self._next += 1
        if shape is not None:
            self.shapes[v] = tuple(int(s) for s in shape)
        return v

    def emit(self, kind: str, ins, out: int, src, **attrs) -> Op:
        op = Op(kind, list(ins), out, attrs, list(src))
        self.ops.append(op)
        return op

    def unknown(self, node: int, ins, outs, why: str) -> None:
        real = [self.sym[v].base if self.is_partial(v) else self.real(v, node) for v in ins if v is not None]
        for o in outs or [self.value(None)]:
            self.emit("unknown", [v for v in real if v is not None], o, [node], why=why)

    # -- activation patterns ---------------------------------------------------------------------
    def real(self, v: int, node: int | None = None) -> int | None:
        """``v`` as a computed tensor: a complete activation pattern is emitted as an ``act`` op;
        a partial pattern (``x + 3`` alone) cannot be, and gives ``None``."""
        s = self.sym.get(v)
        if s is None:
            return v
        if s.tag in COMPLETE:
            base = self.real(s.base)
            if base is None:
                return None
            del self.sym[v]
            self.shapes.setdefault(v, self.shapes.get(base))
            self.emit("act", [base], v, s.src, act=COMPLETE[s.tag])
            return v
        return None

    def is_partial(self, v: int) -> bool:
        s = self.sym.get(v)
        return s is not None and s.tag not in COMPLETE

    def act(self, tag: str, x: int, out: int, node: int) -> bool:
        """Record ``out = tag(x)`` (a one-op activation); False if ``x`` cannot take it."""
        s = self.sym.get(x)
        if tag == "relu6" and s is not None and s.tag == "p3":
            self.sym[out] = Sym("r6p3", s.base, s.src + [node])
            return True
        if self.real(x) is None:
            return False
        self.sym[out] = Sym(tag, x, [node])
        self.shapes[out] = self.shapes.get(x)
        return True

    def add_const(self, x: int, c: float, out: int, node: int, relu6: bool = False) -> bool:
        if abs(c - 3.0) > 1e-3 or self.is_partial(x):
            return False
        x = self.real(x)
        self.sym[out] = Sym("r6p3" if relu6 else "p3", x, [node])
        return True

    def scale_const(self, x: int, c: float, out: int, node: int) -> bool:
        """``out = x · c``; recognised when ``c`` is 1/6 and ``x`` a relu6(· + 3) pattern."""
        s = self.sym.get(x)
        if s is None or abs(c - 1 / 6) > 1e-4:
            return False
        if s.tag == "r6p3":
            self.sym[out] = Sym("hsigmoid", s.base, s.src + [node])
        elif s.tag == "xr6p3":
            self.sym[out] = Sym("hswish", s.base, s.src + [node])
        else:
            return False
        return True

    def mul_pattern(self, a: int, b: int, out: int, node: int) -> bool:
        """``out = a · b`` as swish / hard-swish when one factor is a gate of the other."""
        for x, y in ((a, b), (b, a)):
            s = self.sym.get(y)
            if s is None or x in self.sym or s.base != x:
                continue
            tag = {"sigmoid": "swish", "hsigmoid": "hswish", "r6p3": "xr6p3"}.get(s.tag)
            if tag is not None:
                self.sym[out] = Sym(tag, x, s.src + [node])
                return True
        return False
