"""Workloads: what the profiler measures, at three granularities, with canonical dedupe keys.

* ``kernel`` — one runtime op at its exact input shape, as LiteRT executes it: a conv or depthwise
  conv with its ReLU/ReLU6 fused (a stride-2 conv includes its explicit PAD), a standalone
  activation where the runtime cannot fuse it (h-swish, h-sigmoid, swish, sigmoid), a whole
  squeeze-excite, a residual add, a pooling, an FC layer.
  A channel shuffle is its own kernel (LiteRT: RESHAPE, TRANSPOSE, RESHAPE), and so is each
  task-head op (average pooling, resize, gate multiply, add, concatenation, anchor reshape).
* ``block`` — the stem, one bottleneck or skip conv, or the last stage with the classifier, at its
  input shape; in a detection or segmentation network each block of its task heads (the nodes
  sharing the first part of their names: ``extra1``, ``box0``, ``aspp``…), with one input per
  tensor it reads from outside. An identity skip layer computes nothing and has no workload.
* ``model`` — the whole network (all its outputs).

``kernels(arch)`` and ``blocks(arch)`` decompose a network; their workloads, summed, cover the
network exactly once (``sum(w.madds) == summary(arch)['madds']``), which is what the predictors
calibrate against the model measurement. Keys are canonical: the same computation at the same
input shape has the same key in every architecture, so a zoo grid or a search-space sample is
measured once per distinct workload.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hwlat.archs.codec import encode
from hwlat.archs.ir import Act, ArchSpec, resolution_str
from hwlat.archs.layers import LayerSpec, OpKind, block_groups, layers
from hwlat.archs.segments import canonical, role, rows_from_canonical, segment_inputs, segment_ops

GRANULARITIES = ("kernel", "block", "model")
# activations that LiteRT (and ONNX Runtime) fuse into the preceding conv
FUSED_ACTS = (Act.IDENTITY, Act.RELU, Act.RELU6)


@dataclass(frozen=True)
class Workload:
    """One thing to time: ``rows`` (a segment, see :mod:`hwlat.archs.segments`) at its input shape."""

    key: str
    granularity: str
    rows: tuple[LayerSpec, ...]
    label: str
    arch: str | None = None  # codec string, for model workloads
    outputs: tuple[str, ...] = ()  # a task-head network's outputs (model workloads); () = the last step
    # a model file (hwlat profile file): its name, format, sha256 and size, and its bytes
    file: dict | None = dataclasses.field(default=None, compare=False)
    content: bytes | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def madds(self) -> int:
        return sum(r.madds for r in self.rows)

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    def spec(self) -> dict:
        """JSON-ready description from which :func:`from_spec` rebuilds the workload."""
        if self.file is not None:  # the file's own graph is what is timed, not rows
            d = {"granularity": self.granularity, "label": self.label, "file": dict(self.file)}
            return d | ({"arch": self.arch, "name": self.file["name"]} if self.arch else {})
        d = {"granularity": self.granularity, "label": self.label, "rows": canonical(self.rows)}
        if self.arch is not None:
            d["arch"] = self.arch
            d["name"] = self.label.rsplit(" @", 1)[0]
        return d


def from_spec(key: str, spec: dict) -> Workload:
    """Rebuild a workload stored by the measurement store (inverse of :meth:`Workload.spec`).

    A model file's workload (``spec["file"]``, ``hwlat profile file``) comes back without its
    bytes: a runner refuses it (a file is measured where it is), so a farm host never times it."""
    if spec.get("file"):
        from hwlat.archs.codec import decode

        rows = tuple(layers(decode(spec["arch"]))) if spec.get("arch") else ()
        return Workload(key, "model", rows, spec.get("label", key), spec.get("arch"), file=dict(spec["file"]))
    if spec.get("arch"):
        from hwlat.archs.codec import decode

        arch = decode(spec["arch"])
        return Workload(
            key,
            spec["granularity"],
            tuple(layers(arch)),
            spec.get("label", key),
            spec["arch"],
            tuple(arch.outputs),
        )
    rows = rows_from_canonical(spec["rows"])
    return Workload(key, spec["granularity"], rows, spec.get("label", key), spec.get("arch"))


def _key(granularity: str, recs: list[dict]) -> str:
    blob = json.dumps(recs, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return f"{granularity}:{hashlib.sha1(blob.encode()).hexdigest()[:20]}"


def _kernel_key(rows: Sequence[LayerSpec]) -> str:
    # a kernel's identity is its computation: the role only matters inside squeeze-excite
    recs = [dict(r, role=r["role"] if r["role"].startswith("se.") else r["op"]) for r in canonical(rows)]
    return _key("kernel", recs)


def _shape(s: tuple[int, int, int]) -> str:
    return f"{s[0]}x{s[1]}x{s[2]}"


def _label(rows: Sequence[LayerSpec]) -> str:
    r = rows[0]
    if len(rows) == 4 and role(r) == "se.pool":
        return f"se {r.cin}->{rows[1].cout} @{_shape(r.in_shape)}"
    if r.op in (OpKind.CONV, OpKind.DWCONV):
        return (
            f"{r.op.value} k{r.kernel} s{r.stride}{f' d{r.dilation}' if r.dilation > 1 else ''} "
            f"{r.cin}->{r.cout} {r.act.value} @{_shape(r.in_shape)}"
        )
    if r.op is OpKind.ACT:
        return f"{r.act.value} @{_shape(r.in_shape)}"
    if r.op is OpKind.SHUFFLE:
        return f"shuffle g{r.groups} @{_shape(r.in_shape)}"
    if r.inputs:  # a task-head op: what it reads and writes
        return f"{r.op.value} {'+'.join(_shape(s) for s in r.input_shapes)}->{_shape(r.out_shape)}"
    return f"{r.op.value} @{_shape(r.in_shape)}"


def kernels(arch: ArchSpec) -> list[Workload]:
    """The runtime ops of ``arch`` in execution order (LiteRT fusion rules, see module docstring)."""
    return kernels_of(layers(arch))


def kernels_of(rows: Sequence[LayerSpec]) -> list[Workload]:
    """The runtime ops of a run of layer rows (a network, or one of its blocks), in order."""
    out = []
    for op in segment_ops(rows):
        group = [rows[i] for i in op.index]
        r = group[0]
        if op.kind == "conv" and r.act not in FUSED_ACTS:
            conv = dataclasses.replace(r, act=Act.IDENTITY, elementwise=0)
            act = LayerSpec(
                f"{r.name}.act",
                r.stage,
                r.block,
                OpKind.ACT,
                r.out_shape,
                r.out_shape,
                act=r.act,
                elementwise=r.elementwise,
            )
            out.append(Workload(_kernel_key([conv]), "kernel", (conv,), _label([conv])))
            out.append(Workload(_kernel_key([act]), "kernel", (act,), _label([act])))
        else:
            out.append(Workload(_kernel_key(group), "kernel", tuple(group), _label(group)))
    return out


def blocks(arch: ArchSpec) -> list[Workload]:
    """The stem, each bottleneck, and the last stage (with classifier) of ``arch``, in order."""
    return [block_workload(rows) for rows in block_groups(layers(arch))]


def block_workload(rows: Sequence[LayerSpec]) -> Workload:
    """One block of a network (rows from :func:`hwlat.archs.layers.block_groups`) as a workload."""
    rows = tuple(rows)
    r0 = rows[0]
    name = {"stem": "stem", "head": "head", "task": "task"}.get(r0.stage, "bneck")
    dw = next((r for r in rows if r.op is OpKind.DWCONV), None)
    if name == "task":  # a block of a task head: its name and what it reads
        ins = "+".join(_shape(s) for _, s in segment_inputs(rows))
        label = f"task {r0.name.split('.', 1)[0]} {ins}->{_shape(rows[-1].out_shape)}"
    elif name == "bneck" and dw is None:  # a skip layer's 1×1 conv
        label = f"skip s{r0.stride} {r0.cin}->{r0.cout} {r0.act.value} @{_shape(r0.in_shape)}"
    elif name == "bneck":
        se = "_se" if any(role(r) == "se.pool" for r in rows) else ""
        g = f"_g{r0.groups}" if r0.groups > 1 else ""
        label = (
            f"bneck k{dw.kernel} s{dw.stride} {r0.cin}->{dw.cout}->{rows[-1].cout}{g}{se} "
            f"{dw.act.value} @{_shape(r0.in_shape)}"
        )
    else:
        label = f"{name} {r0.cin}->{rows[-1].out_shape[0]} @{_shape(r0.in_shape)}"
    return Workload(_key("block", canonical(rows)), "block", rows, label)


def model(arch: ArchSpec) -> Workload:
    """The whole network as one workload; its key is the architecture's codec string hash."""
    code = encode(arch)
    return Workload(
        _key("model", [{"arch": code}]),
        "model",
        tuple(layers(arch)),
        f"{arch.name} @{resolution_str(arch.resolution)}",
        arch=code,
        outputs=tuple(arch.outputs),
    )


def collect(archs: Iterable[ArchSpec], granularity: str) -> list[Workload]:
    """Unique workloads of ``granularity`` over ``archs``, in first-seen order."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity: unknown {granularity!r} (expected one of {GRANULARITIES})")
    seen: dict[str, Workload] = {}
    for arch in archs:
        ws = {"kernel": kernels, "block": blocks}.get(granularity, lambda a: [model(a)])(arch)
        for w in ws:
            seen.setdefault(w.key, w)
    return list(seen.values())


PHASE_ANCHOR_ARCH = ("mobilenetv3_small_050", 96)
"""The phase anchor (the stored ``ref_ms`` times it): MobileNetV3-Small 0.5 at 96 px, a small whole network
that exercises every op type of the zoo; timed in every round of a profiling run (its time is the
``phase reference`` line of
``benchmarks/results/fidelity__litert__large-60__small-60__repeats-3__block-repeats-3__train-candidates-150__seed-1__x86_64.txt``)."""


def phase_anchor_workload() -> Workload:
    """The model workload of :data:`PHASE_ANCHOR_ARCH` (see :mod:`hwlat.profiler.measure.timing` on phases)."""
    from hwlat.archs.zoo import get_arch

    name, resolution = PHASE_ANCHOR_ARCH
    return model(get_arch(name, resolution=resolution))
