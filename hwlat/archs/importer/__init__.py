"""Read a model file (``.onnx``, ``.tflite``) or a torch module into the IR.

Two frontends (:mod:`~hwlat.archs.importer.onnx_front`, :mod:`~hwlat.archs.importer.tflite_front`)
normalise a graph into one small op list (:mod:`~hwlat.archs.importer.graph`); one recognizer
(:mod:`~hwlat.archs.importer.recognize`) turns it into an :class:`~hwlat.archs.ir.ArchSpec`: the
stem, inverted-residual blocks (expansion or not, squeeze-excite, grouped 1×1 convs with channel
shuffle, residuals), FBNet skip convs, the last stage and classifier, or task-head nodes (SSDLite,
LR-ASPP). Every import is verified: the shapes, MAdds and (BatchNorm-folded) parameters of
``layers(arch)`` equal those of the graph's convolutions and FC layers, else it is refused.

The result is canonical (:func:`canonical`): what a graph cannot show takes its default — identity
skip layers (they compute nothing) are absent, residual/expansion flags are implied by the shapes,
dropout is 0.2, the BatchNorm-or-bias choice of a task-head conv follows its activation (a bias
before identity or sigmoid, BatchNorm otherwise) unless the file has an explicit BatchNorm.

A graph the IR cannot describe raises :class:`~hwlat.errors.UnsupportedGraphError` with one line
naming the first node it cannot place, its op and input shapes, and what the IR lacks; nothing is
approximated. ``import_file(..., allow_partial=True)`` describes what it can instead.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hwlat.archs.importer.recognize import Refusal, arch_costs, canonical, graph_costs, recognize, same_arch
from hwlat.archs.ir import ArchSpec
from hwlat.errors import InvalidArchError, UnsupportedGraphError

FORMATS = ("onnx", "tflite")
TORCH_OPSET = 17


@dataclass(frozen=True)
class Imported:
    """An imported file: the ``arch`` (None when even the backbone cannot be described, only with
    ``allow_partial``), one row per graph node (``node``, ``op``, ``layer`` — the IR row it became,
    or None — and ``partial``: what could not be placed, empty when placed or a constant) and the
    file ``format``."""

    arch: ArchSpec | None
    rows: list[dict] = field(default_factory=list)
    format: str = "onnx"

    @property
    def complete(self) -> bool:
        return self.arch is not None and not any(r["partial"] for r in self.rows)


def _fmt_shape(s) -> str:
    return "x".join(str(v) for v in s) if len(s) else "scalar"


def _refusal_line(g, ops, e: Refusal) -> str:
    if 0 <= e.op < len(ops) and ops[e.op].src:
        node = g.nodes[min(ops[e.op].src)]
        shapes = ", ".join(_fmt_shape(s) for s in node.input_shapes) or "none"
        where = f"node {node.name} ({node.op}, inputs {shapes})"
    else:
        where = "the graph"
    return f"{g.label}: {where} is not part of a MobileNetV3-family network: {e.why}"


def _first_unplaced(ops, row) -> int | None:
    rest = [i for i in range(len(ops)) if i not in row]
    return min(rest, key=lambda i: min(ops[i].src) if ops[i].src else 1 << 30) if rest else None


def _import_graph(g, allow_partial: bool) -> Imported:
    arch, row, refusal, ops = recognize(g, Path(g.label).stem or "imported", allow_partial)
    if refusal is None:
        first = _first_unplaced(ops, row)
        if first is not None:
            o = ops[first]
            refusal = Refusal(first, o.attrs.get("why") or f"the IR has no {o.kind} here")
    elif refusal.op >= 0:
        if ops[refusal.op].kind == "unknown":  # the node itself says what the IR lacks
            refusal = Refusal(refusal.op, ops[refusal.op].attrs["why"])
        first = _first_unplaced(ops, row)
        if first is not None and ops[first].kind == "unknown":
            f_src = min(ops[first].src)
            r_src = min(ops[refusal.op].src) if ops[refusal.op].src else 1 << 30
            if f_src < r_src:  # an unknown node before the one the recognizer stopped at
                refusal = Refusal(first, ops[first].attrs["why"])
    if arch is not None:
        try:
            arch = canonical(arch)
            got, want = arch_costs(arch), graph_costs(ops, g)
        except InvalidArchError as e:
            if refusal is None:
                refusal = Refusal(-1, f"the description it yields is not a valid network ({e})")
            arch, got, want = None, None, None
        if got is not None and refusal is None and got != want:
            diff = (want - got) or (got - want)
            refusal = Refusal(
                -1, f"the IR's layers do not compute what the graph computes ({sorted(diff)[:1]})"
            )
            arch = None
    if refusal is not None and not allow_partial:
        raise UnsupportedGraphError(_refusal_line(g, ops, refusal))
    rows = []
    by_src: dict[int, int] = {}
    for i, o in enumerate(ops):
        for s in o.src:
            by_src[s] = i
    why = _refusal_line(g, ops, refusal).split(": ", 2)[-1] if refusal is not None else ""
    for n, node in enumerate(g.nodes):
        i = by_src.get(n)
        layer = row.get(i) if i is not None else None
        partial = ()
        if i is not None and layer is None:
            o = ops[i]
            partial = (o.attrs.get("why") or why or f"the IR has no {o.kind} here",)
        rows.append({"node": node.name, "op": node.op, "layer": layer, "partial": partial})
    return Imported(arch=arch, rows=rows, format=g.fmt)


def _label(path_or_model, default: str) -> str:
    if isinstance(path_or_model, (str, os.PathLike)):
        return Path(path_or_model).name
    return default


def import_onnx(path_or_model, allow_partial: bool = False, label: str | None = None) -> Imported:
    from hwlat.archs.importer.onnx_front import read_onnx

    g = read_onnx(path_or_model, label or _label(path_or_model, "model.onnx"))
    return _import_graph(g, allow_partial)


def import_tflite(path_or_bytes, allow_partial: bool = False, label: str | None = None) -> Imported:
    from hwlat.archs.importer.tflite_front import read_tflite

    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        data = Path(path_or_bytes).read_bytes()
    g = read_tflite(data, label or _label(path_or_bytes, "model.tflite"))
    return _import_graph(g, allow_partial)


def from_onnx(path_or_model) -> ArchSpec:
    """The :class:`ArchSpec` of an ONNX model (a path, serialized bytes or a ``ModelProto``)."""
    return import_onnx(path_or_model).arch


def from_tflite(path) -> ArchSpec:
    """The :class:`ArchSpec` of a ``.tflite`` flatbuffer (a path or its bytes; float or int8)."""
    return import_tflite(path).arch


def from_torch(module, input_shape) -> ArchSpec:
    """The :class:`ArchSpec` of a torch module: ``torch.onnx.export`` (TorchScript exporter, opset
    17, eval mode, in memory) on an input of ``input_shape`` (``(1, C, H, W)`` or ``(C, H, W)``),
    then :func:`from_onnx`."""
    import torch

    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    was_training = module.training
    module.eval()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(
                    module,
                    (torch.zeros(shape),),
                    buf,
                    dynamo=False,
                    opset_version=TORCH_OPSET,
                    input_names=["input"],
                    do_constant_folding=True,
                )
    finally:
        module.train(was_training)
    return import_onnx(buf.getvalue(), label=f"{type(module).__name__}.onnx").arch


def detect_format(path) -> str:
    """``"onnx"`` or ``"tflite"`` from the suffix, else from the magic bytes (``TFL3`` at byte 4)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".tflite":
        return "tflite"
    with open(p, "rb") as f:
        head = f.read(8)
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if head[:1] == b"\x08":  # a ModelProto starts with field 1 (ir_version), varint
        return "onnx"
    raise UnsupportedGraphError(f"{p.name}: not an ONNX or TFLite model (unknown suffix and magic bytes)")


def import_file(path, allow_partial: bool = False) -> Imported:
    """Import a model file; the format from its suffix or magic bytes (:func:`detect_format`)."""
    fmt = detect_format(path)
    if fmt == "tflite":
        return import_tflite(path, allow_partial)
    return import_onnx(path, allow_partial)


__all__ = [
    "Imported",
    "from_onnx",
    "from_tflite",
    "from_torch",
    "import_file",
    "import_onnx",
    "import_tflite",
    "detect_format",
    "canonical",
    "same_arch",
]
