"""Segments: runs of consecutive layer rows that the exporters and runners turn into runnable graphs.

A profiling workload (one kernel, one block, a whole network) is a tuple of :class:`LayerSpec`
rows from :func:`hwlat.archs.layers` (or a runtime kernel decomposition) with its exact input
shape. Their meaning, shared by the torch reference below and the TFLite exporter:

* ``conv`` / ``dwconv`` row: ``x = act(conv(x) + bias)`` — BatchNorm is folded, so every conv has a
  bias; padding is symmetric ``dilation·(k−1)/2``.
* ``act`` row: ``x = act(x)``.
* ``shuffle`` row: ShuffleNet's channel shuffle with ``groups`` g: channels viewed as ``(g, C/g)``,
  transposed to ``(C/g, g)`` and flattened (output channel ``j·g + i`` is input channel ``i·C/g + j``).
* the squeeze-excite group, four rows named ``….se.pool``, ``….se.reduce``, ``….se.expand``,
  ``….se.scale``: ``x = x · gate(conv(inner(conv(mean_hw(x)))))``.
* other ``pool`` rows: ``x = mean_hw(x)`` (keeps a 1×1 spatial size).
* ``fc`` row: ``x = linear(flatten(x))``.
* ``add`` row: ``x = x + s`` where ``s`` is the input of the current block (the tensor that entered
  the segment's first row with the same ``block`` index, or the segment input).
* a row with ``inputs`` (a task-head row, see :class:`hwlat.archs.ir.NodeSpec`) reads the named
  tensors instead of ``x``: ``"input"`` is the segment input and every other name the output of
  the step that ends with the row of that name. Its ops: ``conv``/``dwconv`` as above,
  ``avgpool`` (VALID), ``resize`` (bilinear, half-pixel centres), ``mul`` (a gate broadcast over
  H×W), ``add``, ``concat`` (channels, or W when C is unchanged) and ``anchors`` (``(A·k, H, W)``
  → ``(k, 1, H·W·A)``, position-major then anchor).
* The segment's output is its last step's, or the tensors named by ``outputs`` (a whole task-head
  network: :func:`hwlat.archs.layers.output_names`).
* Its inputs (:func:`segment_inputs`): ``input`` with ``rows[0].in_shape`` when the first row
  reads the previous tensor, then every name a task-head row reads that no row of the segment
  writes (a block of a task head, e.g. the SSD ``boxes`` concatenation, has several).

Weights are indexed by the row's position in the segment: ``{i: (weight, bias)}`` in PyTorch
layout (OIHW for convs, ``[out, in]`` for FC), float32 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwlat.archs.ir import Act
from hwlat.archs.layers import LayerSpec, OpKind

Weights = dict[int, tuple[np.ndarray, np.ndarray]]

SE_ROLES = ("se.pool", "se.reduce", "se.expand", "se.scale")


@dataclass(frozen=True)
class SegmentOp:
    """One step of a segment: ``kind`` in conv | act | shuffle | se | pool | fc | add, or a
    task-head op (avgpool | resize | mul | concat | anchors; add and conv rows with ``inputs``),
    with its row indices."""

    kind: str
    index: tuple[int, ...]


def role(row: LayerSpec) -> str:
    """The row's name without its block prefix: ``blocks.3.se.reduce`` → ``se.reduce``."""
    parts = row.name.split(".")
    return ".".join(parts[2:]) if parts[0] == "blocks" and len(parts) > 2 else row.name


def segment_ops(rows: Sequence[LayerSpec]) -> list[SegmentOp]:
    """Group rows into executable steps; raise ``ValueError`` naming a row that cannot run."""
    if not rows:
        raise ValueError("empty segment: nothing to run")
    ops: list[SegmentOp] = []
    i = 0
    while i < len(rows):
        r = rows[i]
        if r.op is OpKind.POOL and role(r) == "se.pool":
            group = rows[i : i + 4]
            if tuple(role(g) for g in group) != SE_ROLES:
                raise ValueError(f"row {i} ({r.name}): incomplete squeeze-excite group")
            ops.append(SegmentOp("se", tuple(range(i, i + 4))))
            i += 4
            continue
        kind = {
            OpKind.CONV: "conv",
            OpKind.DWCONV: "conv",
            OpKind.ACT: "act",
            OpKind.POOL: "pool",
            OpKind.FC: "fc",
            OpKind.ADD: "add",
            OpKind.SHUFFLE: "shuffle",
        }.get(r.op)
        if r.inputs:
            kind = _TASK_KINDS.get(r.op)
        if kind is None:
            raise ValueError(
                f"row {i} ({r.name}): op {r.op.value!r} cannot run "
                + (
                    "outside a squeeze-excite group"
                    if r.op is OpKind.MUL and not r.inputs
                    else "without the names of its inputs"
                    if not r.inputs
                    else "in a segment"
                )
            )
        ops.append(SegmentOp(kind, (i,)))
        i += 1
    for prev, op in zip(ops, ops[1:]):
        a, b = rows[prev.index[-1]], rows[op.index[0]]
        if b.inputs:  # a task-head row says what it reads
            continue
        want = rows[prev.index[0]].in_shape if prev.kind == "se" else a.out_shape
        if b.in_shape != want:
            raise ValueError(f"row {op.index[0]} ({b.name}): input {b.in_shape} does not follow {want}")
    return ops


_TASK_KINDS = {
    OpKind.CONV: "conv",
    OpKind.DWCONV: "conv",
    OpKind.AVGPOOL: "avgpool",
    OpKind.RESIZE: "resize",
    OpKind.MUL: "mul",
    OpKind.ADD: "add",
    OpKind.CONCAT: "concat",
    OpKind.ANCHORS: "anchors",
}


def step_name(rows: Sequence[LayerSpec], op: SegmentOp) -> str:
    """The name under which a step's output can be read by a later row (its last row's name)."""
    return rows[op.index[-1]].name


def check_outputs(rows: Sequence[LayerSpec], outputs: Sequence[str] | None) -> tuple[str, ...]:
    """The names of the segment's outputs (default: the last step's); ``ValueError`` for a name
    that no step of ``rows`` ends with."""
    ops = segment_ops(rows)
    if not outputs:
        return (step_name(rows, ops[-1]),)
    known = {step_name(rows, op) for op in ops}
    for o in outputs:
        if o not in known:
            raise ValueError(f"outputs: {o!r} is not the output of a step of the segment")
    return tuple(outputs)


def input_shape(rows: Sequence[LayerSpec]) -> tuple[int, int, int]:
    """``(C, H, W)`` of the segment's first input."""
    return segment_inputs(rows)[0][1]


def segment_inputs(rows: Sequence[LayerSpec]) -> list[tuple[str, tuple[int, int, int]]]:
    """``(name, (C, H, W))`` of every input of the segment, in order (module docstring)."""
    out: dict[str, tuple[int, int, int]] = {}
    if not rows[0].inputs:
        out["input"] = rows[0].in_shape
    written: set[str] = set()
    for r in rows:
        shapes = r.input_shapes or (r.in_shape,) * len(r.inputs)
        for name, shape in zip(r.inputs, shapes):
            if name not in written and name not in out:
                out[name] = tuple(shape)
        written.add(r.name)
    return list(out.items())


def param_rows(rows: Sequence[LayerSpec]) -> list[int]:
    """Indices of rows that carry weights (convs and FC)."""
    return [i for i, r in enumerate(rows) if r.op in (OpKind.CONV, OpKind.DWCONV, OpKind.FC)]


def weight_shape(row: LayerSpec) -> tuple[int, ...]:
    """PyTorch weight shape of a conv (OIHW) or FC (``[out, in]``) row."""
    if row.op is OpKind.FC:
        return (row.cout, row.cin)
    return (row.cout, row.cin // row.groups, row.kernel, row.kernel)


def random_weights(rows: Sequence[LayerSpec], seed: int = 0) -> Weights:
    """Deterministic He-uniform weights (fan-in: uniform on ±sqrt(6 / fan_in), the variance of
    He-normal) and small random biases (uniform on ±0.1) for every weighted row.

    Uniform, not normal, because the profiler exports a network's weights for every workload it
    times, and float32 uniforms are several times cheaper to draw (a float kernel's time does not
    depend on the values)."""
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for i in param_rows(rows):
        shape = weight_shape(rows[i])
        fan_in = int(np.prod(shape[1:]))
        out[i] = (_uniform(rng, shape, (6.0 / fan_in) ** 0.5), _uniform(rng, (shape[0],), 0.1))
    return out


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float) -> np.ndarray:
    """Float32 uniform on ``[-bound, bound)``, drawn and scaled in place."""
    x = rng.random(shape, dtype=np.float32)
    x *= np.float32(2 * bound)
    x -= np.float32(bound)
    return x


def canonical(rows: Sequence[LayerSpec]) -> list[dict]:
    """Rows as JSON-ready dicts without their position in a network: the name becomes the role
    (``dw``, ``se.reduce``, ``stem``, ``head.conv``…) and ``b`` the block index relative to the
    segment's first block (-1 outside bottlenecks)."""
    first = next((r.block for r in rows if r.block >= 0), 0)
    # names read from outside the rows become in0, in1... (a piece's key is its computation,
    # not where it sat in a network)
    outside = {n: f"in{i}" for i, (n, _) in enumerate(segment_inputs(rows)) if rows[0].inputs}
    recs = []
    for r in rows:
        rec = {
            "role": role(r),
            "b": r.block - first if r.block >= 0 else -1,
            "op": r.op.value,
            "in": list(r.in_shape),
            "out": list(r.out_shape),
            "k": _json(r.kernel),
            "s": _json(r.stride),
            "d": r.dilation,
            "g": r.groups,
            "act": r.act.value,
            "bn": r.bn,
            "bias": r.bias,
            "madds": r.madds,
            "params": r.params,
            "elementwise": r.elementwise,
        }
        if r.inputs:  # only task-head rows: the records (and keys) of other rows are unchanged
            rec["inputs"] = [outside.get(n, n) for n in r.inputs]
            rec["in_shapes"] = [list(x) for x in r.input_shapes]
        recs.append(rec)
    return recs


def _json(v):
    return list(v) if isinstance(v, tuple) else v


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


def rows_from_canonical(recs: Sequence[dict]) -> tuple[LayerSpec, ...]:
    """Inverse of :func:`canonical` (block indices start at 0)."""
    rows = []
    for r in recs:
        b = r["b"]
        name = f"blocks.{b}.{r['role']}" if b >= 0 else r["role"]
        stage = (
            "block"
            if b >= 0
            else "stem"
            if r["role"].startswith("stem")
            else "task"
            if "inputs" in r
            else "head"
        )
        rows.append(
            LayerSpec(
                name=name,
                stage=stage,
                block=b,
                op=OpKind(r["op"]),
                in_shape=tuple(r["in"]),
                out_shape=tuple(r["out"]),
                kernel=_tuple(r["k"]),
                stride=_tuple(r["s"]),
                dilation=r["d"],
                groups=r["g"],
                act=Act(r["act"]),
                bn=r["bn"],
                bias=r["bias"],
                madds=r["madds"],
                params=r["params"],
                elementwise=r["elementwise"],
                inputs=tuple(r.get("inputs", ())),
                input_shapes=tuple(tuple(x) for x in r.get("in_shapes", ())),
            )
        )
    return tuple(rows)


# --- the torch reference -----------------------------------------------------------------------


def torch_segment(
    rows: Sequence[LayerSpec],
    weights: Weights | None = None,
    seed: int = 0,
    outputs: Sequence[str] | None = None,
):
    """An eval-mode ``nn.Module`` computing the segment (NCHW input, batch of any size); it returns
    one tensor, or a tuple when ``outputs`` names several."""
    import torch
    from torch import nn

    from hwlat.archs.torch_builder import ChannelShuffle, act_module, task_module

    ops = segment_ops(rows)
    outputs = check_outputs(rows, outputs)
    names = [step_name(rows, op) for op in ops]
    in_names = [n for n, _ in segment_inputs(rows)]
    needed = {x for r in rows for x in r.inputs} | set(outputs)
    weights = random_weights(rows, seed) if weights is None else weights

    def conv(row: LayerSpec, i: int) -> nn.Conv2d:
        pad = row.dilation * (row.kernel - 1) // 2
        m = nn.Conv2d(row.cin, row.cout, row.kernel, row.stride, pad, row.dilation, row.groups, bias=True)
        w, b = weights[i]
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            m.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        return m

    class Segment(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.steps = nn.ModuleList()
            self.kinds: list[str] = []
            self.block_of: list[int] = []
            self.reads: list[tuple[str, ...]] = []
            for op in ops:
                r = rows[op.index[0]]
                if op.kind == "conv":
                    mod = nn.Sequential(conv(r, op.index[0]), act_module(r.act))
                elif op.kind == "act":
                    mod = act_module(r.act)
                elif op.kind == "shuffle":
                    mod = ChannelShuffle(r.groups)
                elif op.kind == "se":
                    red, exp = rows[op.index[1]], rows[op.index[2]]
                    mod = nn.Sequential(
                        conv(red, op.index[1]),
                        act_module(red.act),
                        conv(exp, op.index[2]),
                        act_module(exp.act),
                    )
                elif op.kind == "fc":
                    mod = nn.Linear(r.cin, r.cout)
                    w, b = weights[op.index[0]]
                    with torch.no_grad():
                        mod.weight.copy_(torch.from_numpy(w))
                        mod.bias.copy_(torch.from_numpy(b))
                elif r.inputs:
                    mod = task_module(r)
                else:
                    mod = nn.Identity()
                self.steps.append(mod)
                self.kinds.append(op.kind)
                self.block_of.append(r.block)
                self.reads.append(r.inputs)

        def forward(self, *xs):
            x = xs[0]
            block, block_in = None, x
            env = dict(zip(in_names, xs))
            for kind, blk, mod, reads, name in zip(self.kinds, self.block_of, self.steps, self.reads, names):
                if blk != block:
                    block, block_in = blk, x
                if reads:
                    x = mod(*(env[n] for n in reads))
                elif kind == "se":
                    x = x * mod(x.mean((2, 3), keepdim=True))
                elif kind == "pool":
                    x = x.mean((2, 3), keepdim=True)
                elif kind == "fc":
                    x = mod(x.flatten(1))
                elif kind == "add":
                    x = x + block_in
                else:
                    x = mod(x)
                if name in needed:
                    env[name] = x
            outs = tuple(env[o] for o in outputs)
            return outs[0] if len(outs) == 1 else outs

    return Segment().eval()


def weights_from_torch(net, rows: Sequence[LayerSpec]) -> Weights:
    """Folded weights of a :func:`hwlat.archs.torch_builder.build_torch` network, indexed like ``rows``.

    ``net`` should be BatchNorm-folded (:func:`~hwlat.archs.torch_builder.fold_bn`).
    """
    mods = {"stem": net.features[0][0]}
    if not net.task_rows:
        mods.update(
            {
                "head.conv": getattr(net.head_conv, "0", None),
                "head.hidden": getattr(net.head_hidden, "0", None),
                "classifier": net.classifier,
            }
        )
    out: Weights = {}
    for i in param_rows(rows):
        r = rows[i]
        if r.stage == "task":
            from hwlat.archs.torch_builder import key

            m = net.nodes[key(r.name)][0]
        elif r.stage == "block":
            blk = net.features[r.block + 1]
            rl = role(r)
            m = (
                blk.se.reduce[0]
                if rl == "se.reduce"
                else blk.se.expand[0]
                if rl == "se.expand"
                else getattr(blk, rl)[0]
            )
        else:
            m = mods[r.name]
        if m.bias is None:
            raise ValueError(f"{r.name}: the network is not BatchNorm-folded (no conv bias); call fold_bn")
        out[i] = (m.weight.detach().numpy().astype(np.float32), m.bias.detach().numpy().astype(np.float32))
    return out
