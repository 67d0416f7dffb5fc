"""The pieces of a network as predictors see them, and their features.

Pieces: a network is split into blocks (the stem, each bottleneck, the last stage, or the blocks
of its task heads); at ``granularity="block"`` each block is one piece, at ``"kernel"`` its
runtime ops are. A block's pieces depend only on the block's config and its input shape, so
:func:`piece_groups` caches them per (block config, input channels, height, width): a new network
whose blocks were seen before is decomposed by dictionary lookups alone (no layer pass, no JSON,
no hashing of keys); an unseen block runs the layer pass of that block alone at its input shape,
not the network's, and its key is hashed from row records encoded once per distinct row. The task
heads of a detection or segmentation network are decomposed from its layer table each time (they
are a graph, not a chain of block configs).

Piece features (one row per piece; sizes in elements, bytes for float32 tensors):
``type`` (stem/bneck/head/task for blocks; conv/dwconv/act/se/add/pool/fc and the task-head ops
avgpool/resize/mul/concat/anchors for kernels), ``h, w, cin,
cexp, cout, k, stride, se, act`` (integer code), ``madds, params, elementwise, in_bytes,
out_bytes, act_bytes`` (all intermediate outputs). :data:`INCREASING` names the features that
never decrease when any channel width or the input size grows (the monotone constraints).

Width signature: a piece's channel widths (input, then every row's output) apart from the rest of
its config (:func:`width_signature`), so pieces that differ only in widths can be compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwlat.archs.ir import Act, ArchSpec, ConvSpec, HeadSpec, SkipSpec
from hwlat.archs.layers import LayerSpec, OpKind, _layers, block_groups, layers
from hwlat.archs.pieces import Workload, block_workload, kernels_of
from hwlat.archs.segments import canonical, role

SUM_GRANULARITIES = ("block", "kernel")
"""The piece granularities a piece-sum predictor sums (a subset of :data:`hwlat.archs.pieces.GRANULARITIES`,
which also holds whole models)."""
ACT_CODE = {a: i for i, a in enumerate(Act)}
NUMERIC = [
    "h",
    "w",
    "cin",
    "cexp",
    "cout",
    "k",
    "stride",
    "se",
    "act",
    "madds",
    "params",
    "elementwise",
    "in_bytes",
    "out_bytes",
    "act_bytes",
]
# features that grow with every channel width (and with the input size): constrained monotone
INCREASING = [
    "h",
    "w",
    "cin",
    "cexp",
    "cout",
    "madds",
    "params",
    "elementwise",
    "in_bytes",
    "out_bytes",
    "act_bytes",
]


def piece_type(w: Workload) -> str:
    r = w.rows[0]
    if w.granularity == "block":
        return {"stem": "stem", "head": "head", "task": "task"}.get(r.stage, "bneck")
    if role(r) == "se.pool":
        return "se"
    return r.op.value


def _numel(shape) -> int:
    return math.prod(shape)  # plain ints: np.prod costs ~10 µs a call here


def piece_features(rows: Sequence[LayerSpec]) -> dict:
    r0 = rows[0]
    spatial = [r for r in rows if r.op in (OpKind.CONV, OpKind.DWCONV)]
    main = next((r for r in rows if r.op is OpKind.DWCONV), spatial[0] if spatial else r0)
    return {
        "h": r0.in_shape[1],
        "w": r0.in_shape[2],
        "cin": r0.in_shape[0],
        "cexp": max(r.out_shape[0] for r in rows),
        "cout": rows[-1].out_shape[0],
        "k": _largest(main.kernel),
        "stride": max(_largest(r.stride) for r in rows),
        "se": int(any(role(r) == "se.pool" for r in rows)),
        "act": ACT_CODE[next((r.act for r in rows if r.act is not Act.IDENTITY), Act.IDENTITY)],
        "madds": sum(r.madds for r in rows),
        "params": sum(r.params for r in rows),
        "elementwise": sum(r.elementwise for r in rows),
        "in_bytes": 4 * _numel(r0.in_shape),
        "out_bytes": 4 * _numel(rows[-1].out_shape),
        "act_bytes": 4 * sum(_numel(r.out_shape) for r in rows),
    }


def _largest(v) -> int:
    """A kernel or stride as one number: a pooling's ``(h, w)`` by its larger side."""
    return max(v) if isinstance(v, tuple) else v


def pieces_frame(workloads: Sequence[Workload]) -> pd.DataFrame:
    """Feature rows for workloads, indexed like the input, with ``key`` and ``type`` columns."""
    recs = [{"key": w.key, "type": piece_type(w), **piece_features(w.rows)} for w in workloads]
    return pd.DataFrame.from_records(recs, columns=["key", "type", *NUMERIC])


def width_signature(w: Workload) -> tuple[tuple, tuple[int, ...]]:
    """``(config, widths)`` of a piece: ``widths`` are its input channels and every row's output
    channels; ``config`` is everything else (roles, ops, spatial sizes, kernels, strides,
    activations...). Pieces with the same config differ only in channel widths."""
    config = tuple(
        (
            role(r),
            r.op.value,
            r.in_shape[1:],
            r.out_shape[1:],
            r.kernel,
            r.stride,
            r.dilation,
            0 if r.op is OpKind.DWCONV else r.groups,
            r.act.value,
            r.bn,
            r.bias,
        )
        for r in w.rows
    )
    return (w.granularity, config), (w.rows[0].in_shape[0], *(r.out_shape[0] for r in w.rows))


# --- pieces of a network, cached per block config and input shape --------------------------------


@dataclass(frozen=True, eq=False)  # identity hash: a group is a cache value, shared by networks
class PieceGroup:
    """The pieces of one block of a network at its input shape.

    ``pieces`` (empty for a block that computes nothing, e.g. an identity skip); ``out``:
    (channels, height) after the block; ``madds``/``params`` summed over the pieces. The rows'
    names are those of the first network the block was seen in: use keys, not names.
    """

    pieces: tuple[Workload, ...]
    out: tuple[int, int]
    madds: int
    params: int


# (block config, input channels, height, width) -> (group, output channels, height, width). A block
# config is the tuple (class, *fields): hashing and comparing it runs in C, unlike the dataclass's
# generated __hash__/__eq__ (2.5x faster lookups; equal tuples <=> equal frozen dataclasses).
_GROUPS: dict[str, dict[tuple, tuple[PieceGroup, int, int]]] = {g: {} for g in SUM_GRANULARITIES}
_MAX_GROUPS = 500_000  # distinct (block, input shape) per granularity kept before starting over


_MEMO: dict[tuple[int, str], tuple[ArchSpec, list[PieceGroup]]] | None = None


@contextlib.contextmanager
def groups_memo():
    """Within it, :func:`piece_groups` answers each ArchSpec object once (by identity): for a
    prediction that asks several predictors about the same networks (``transfer``'s sources).
    Re-entrant; the memo (and the networks it holds) is dropped on exit."""
    global _MEMO
    if _MEMO is not None:
        yield
        return
    _MEMO = {}
    try:
        yield
    finally:
        _MEMO = None


def piece_groups(arch: ArchSpec, granularity: str = "block") -> list[PieceGroup]:
    """The pieces of ``arch``, one group per block (stem, each block, last stage), in order.

    A block seen before at the same input shape costs one dictionary lookup; a network with an
    unseen block runs :func:`hwlat.archs.layers.layers` once (which validates it). The list is
    shared (within :func:`groups_memo`): do not change it.
    """
    memo = _MEMO
    if memo is None:
        return _piece_groups(arch, granularity)
    hit = memo.get((id(arch), granularity))
    if hit is None:  # the memo holds the network, so its id is not reused while the memo lives
        hit = memo[id(arch), granularity] = (arch, _piece_groups(arch, granularity))
    return hit[1]


def network_madds(archs: Sequence[ArchSpec]) -> np.ndarray:
    """Multiply-adds of each network (float array), summed over its pieces."""
    return np.array([sum(g.madds for g in piece_groups(a)) for a in archs], dtype=float)


def _piece_groups(arch: ArchSpec, granularity: str) -> list[PieceGroup]:
    cache = _GROUPS.get(granularity)
    if cache is None:
        raise ValueError(f"granularity: expected 'block' or 'kernel', got {granularity!r}")
    try:  # the hot path of every prediction: lookups only
        stem, head = arch.stem, arch.head
        r = arch.resolution
        h, w = r if r.__class__ is tuple else (r, r)
        g, c, h, w = cache[(stem.__class__, *stem.__dict__.values(), arch.in_channels, h, w)]
        out = [g]
        add = out.append
        for b in arch.blocks:
            g, c, h, w = cache[(b.__class__, *b.__dict__.values(), c, h, w)]
            add(g)
        add(cache[(head.__class__, *head.__dict__.values(), arch.num_classes, c, h, w)][0])
        if len(out) > 2:
            return out
    except (KeyError, TypeError, AttributeError):  # an unseen block, or a malformed one
        pass
    return _fill(arch, granularity, cache)


def _fill(arch: ArchSpec, granularity: str, cache: dict) -> list[PieceGroup]:
    if arch.head is not None and not arch.nodes and not arch.outputs:
        try:
            out = _fill_unseen(arch, granularity, cache)
        except Exception:  # noqa: BLE001 -- the whole pass names the problem as layers() does
            out = None
        if out is not None:
            return out
    return _fill_network(arch, granularity, cache)


def _fill_unseen(arch: ArchSpec, granularity: str, cache: dict) -> list[PieceGroup] | None:
    """The pieces of a classification network whose stem was seen at this input: only its unseen
    blocks (and head) run a layer pass, each alone at its input shape (:func:`_block_rows`), not
    the network's. A block's rows, validity and keys depend only on its config and input shape,
    so this is the network pass's answer; None (the stem unseen) leaves it to that pass, and so
    does any error, so a malformed network is named as :func:`layers` names it."""
    stem, head = arch.stem, arch.head
    c, (h, w) = arch.in_channels, arch.hw
    hit = cache.get((stem.__class__, *stem.__dict__.values(), c, h, w))
    if hit is None or not arch.blocks:
        return None
    if len(cache) > _MAX_GROUPS:
        return None
    make = (lambda grp: (_block_piece(grp),)) if granularity == "block" else kernels_of
    g, c, h, w = hit
    out = [g]
    for b in (*arch.blocks, head):
        extra = (arch.num_classes, c, h, w) if b is head else (c, h, w)
        key = (b.__class__, *b.__dict__.values(), *extra)
        hit = cache.get(key)
        if hit is None:
            grp = _block_rows(b, c, h, w, head=arch.num_classes if b is head else None)
            pieces = tuple(make(grp)) if grp else ()
            c, h, w = grp[-1].out_shape if grp else (c, h, w)
            hit = cache[key] = (_group(pieces, (c, h)), c, h, w)
        g, c, h, w = hit
        out.append(g)
    return out


def _block_rows(spec, c: int, h: int, w: int, head: int | None = None) -> tuple[LayerSpec, ...]:
    """The rows of one block (``head``: the last stage, with that many classes) at input
    ``(c, h, w)``: the layer pass of a network of a 1×1 stem to ``c`` channels and this block alone
    (rows named as block 0; keys do not depend on names)."""
    probe = ArchSpec(
        name="probe",
        resolution=(h, w),
        in_channels=1,
        stem=ConvSpec(out=c, kernel=1, stride=1, act=Act.IDENTITY),
        blocks=(SkipSpec(out=c),) if head is not None else (spec,),
        head=spec if head is not None else HeadSpec(conv=0, hidden=0),
        num_classes=head if head is not None else 1,
    )
    stage = "head" if head is not None else "block"
    # the uncached pass: probes would crowd real networks out of layers()' cache
    return tuple(r for r in _layers.__wrapped__(probe) if r.stage == stage)


# a row's canonical JSON record (what its piece's key hashes), by its content and role: a new
# block is mostly rows seen before in other blocks (the same depthwise conv at another output width)
_RECORDS: dict[tuple, str] = {}


def _block_piece(rows: tuple[LayerSpec, ...]) -> Workload:
    """:func:`hwlat.archs.pieces.block_workload` of a backbone block, the same workload (key and
    label): the key's JSON is the records of the rows joined as ``json.dumps`` joins a list, each
    record encoded once per distinct row (``canonical`` of the row alone: a block's rows share
    one block index). Task-head blocks (rows that name their inputs) are left to it."""
    r0 = rows[0]
    if r0.stage not in ("stem", "block", "head") or any(r.inputs for r in rows):
        return block_workload(rows)
    if len(_RECORDS) > _MAX_GROUPS:
        _RECORDS.clear()
    recs = []
    dw = se = None
    for r in rows:
        name = role(r)
        k = (name, r.block < 0, r.op, r.in_shape, r.out_shape, r.kernel, r.stride, r.dilation, r.groups)
        k += (r.act, r.bn, r.bias, r.madds, r.params, r.elementwise)
        rec = _RECORDS.get(k)
        if rec is None:
            rec = _RECORDS[k] = json.dumps(canonical((r,))[0], sort_keys=True, separators=(",", ":"))
        recs.append(rec)
        if dw is None and r.op is OpKind.DWCONV:
            dw = r
        se = se or name == "se.pool"
    key = "block:" + hashlib.sha1(("[" + ",".join(recs) + "]").encode()).hexdigest()[:20]
    at = "{}x{}x{}".format(*r0.in_shape)
    kind = {"stem": "stem", "head": "head"}.get(r0.stage, "bneck")
    if kind == "bneck" and dw is None:  # as block_workload labels them
        label = f"skip s{r0.stride} {r0.cin}->{r0.cout} {r0.act.value} @{at}"
    elif kind == "bneck":
        g = f"_g{r0.groups}" if r0.groups > 1 else ""
        label = (
            f"bneck k{dw.kernel} s{dw.stride} {r0.cin}->{dw.cout}->{rows[-1].cout}{g}{'_se' if se else ''} "
            f"{dw.act.value} @{at}"
        )
    else:
        label = f"{kind} {r0.cin}->{rows[-1].out_shape[0]} @{at}"
    return Workload(key, "block", rows, label)


def _fill_network(arch: ArchSpec, granularity: str, cache: dict) -> list[PieceGroup]:
    rows = layers(arch)  # validates: a malformed network raises here, naming the block and field
    if len(cache) > _MAX_GROUPS:
        cache.clear()
    by_block = {(g[0].stage, g[0].block): g for g in block_groups(rows) if g[0].stage != "task"}
    make = (lambda grp: (block_workload(grp),)) if granularity == "block" else kernels_of

    def group(spec, extra: tuple, grp, c, h, w) -> tuple[PieceGroup, int, int, int]:
        key = (spec.__class__, *spec.__dict__.values(), *extra)
        try:
            hit = cache.get(key)
        except TypeError:  # an unhashable field value that layers() accepts: not cached
            key, hit = None, None
        if hit is None:
            pieces = tuple(make(grp)) if grp else ()
            c, h, w = grp[-1].out_shape if grp else (c, h, w)
            hit = (_group(pieces, (c, h)), c, h, w)
            if key is not None:
                cache[key] = hit
        return hit

    c, (h, w) = arch.in_channels, arch.hw
    g, c, h, w = group(arch.stem, (c, h, w), by_block[("stem", -1)], c, h, w)
    out = [g]
    for i, b in enumerate(arch.blocks):
        g, c, h, w = group(b, (c, h, w), by_block.get(("block", i)), c, h, w)
        out.append(g)
    if arch.head is None:  # task heads: one group per block of the graph, not cached
        for grp in block_groups(rows):
            if grp[0].stage == "task":
                pieces = tuple(make(grp))
                out.append(_group(pieces, grp[-1].out_shape[:2]))
        return out
    out.append(group(arch.head, (arch.num_classes, c, h, w), by_block[("head", -1)], c, h, w)[0])
    return out


def _group(pieces: tuple[Workload, ...], out: tuple[int, int]) -> PieceGroup:
    return PieceGroup(pieces, tuple(out), sum(p.madds for p in pieces), sum(p.params for p in pieces))


def clear_piece_cache() -> None:
    """Forget every cached block decomposition (benchmarks measure the cold path with it)."""
    for cache in _GROUPS.values():
        cache.clear()
    _RECORDS.clear()
