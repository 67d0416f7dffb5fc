"""Features of profiled pieces (kernels, blocks) and of whole networks, from the layer table.

Piece features (one row per piece; sizes in elements, bytes for float32 tensors):
``type`` (stem/bneck/head for blocks; conv/dwconv/act/se/add/pool/fc for kernels), ``h, w, cin,
cexp, cout, k, stride, se, act`` (integer code), ``madds, params, elementwise, in_bytes,
out_bytes, act_bytes`` (all intermediate outputs).

Network features: the fp32 weight footprint ``weight_mb`` (drives the cache-residency gap between
isolated pieces and the whole network), ``n_pieces``, ``act_mb``, ``madds``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd

from hwlat.archs.ir import Act, ArchSpec
from hwlat.archs.layers import LayerSpec, OpKind
from hwlat.profiler.segments import role
from hwlat.profiler.workloads import Workload, blocks, kernels

ACT_CODE = {a: i for i, a in enumerate(Act)}
NUMERIC = ["h", "w", "cin", "cexp", "cout", "k", "stride", "se", "act", "madds", "params",
           "elementwise", "in_bytes", "out_bytes", "act_bytes"]


def piece_type(w: Workload) -> str:
    r = w.rows[0]
    if w.granularity == "block":
        return "stem" if r.stage == "stem" else "head" if r.stage == "head" else "bneck"
    if role(r) == "se.pool":
        return "se"
    return r.op.value


def _numel(shape) -> int:
    return math.prod(shape)    # plain ints: np.prod costs ~10 µs a call here


def piece_features(rows: Sequence[LayerSpec]) -> dict:
    r0 = rows[0]
    spatial = [r for r in rows if r.op in (OpKind.CONV, OpKind.DWCONV)]
    main = next((r for r in rows if r.op is OpKind.DWCONV), spatial[0] if spatial else r0)
    return {
        "h": r0.in_shape[1], "w": r0.in_shape[2], "cin": r0.in_shape[0],
        "cexp": max(r.out_shape[0] for r in rows), "cout": rows[-1].out_shape[0],
        "k": main.kernel, "stride": max(r.stride for r in rows),
        "se": int(any(role(r) == "se.pool" for r in rows)),
        "act": ACT_CODE[next((r.act for r in rows if r.act is not Act.IDENTITY), Act.IDENTITY)],
        "madds": sum(r.madds for r in rows), "params": sum(r.params for r in rows),
        "elementwise": sum(r.elementwise for r in rows),
        "in_bytes": 4 * _numel(r0.in_shape), "out_bytes": 4 * _numel(rows[-1].out_shape),
        "act_bytes": 4 * sum(_numel(r.out_shape) for r in rows),
    }


def pieces_frame(workloads: Sequence[Workload]) -> pd.DataFrame:
    """Feature rows for workloads, indexed like the input, with ``key`` and ``type`` columns."""
    recs = [{"key": w.key, "type": piece_type(w), **piece_features(w.rows)} for w in workloads]
    return pd.DataFrame.from_records(recs, columns=["key", "type", *NUMERIC])


@lru_cache(maxsize=65536)
def arch_pieces(arch: ArchSpec, granularity: str) -> tuple[Workload, ...]:
    """The pieces of ``arch`` at ``granularity`` (cached: archs are immutable)."""
    if granularity == "block":
        return tuple(blocks(arch))
    if granularity == "kernel":
        return tuple(kernels(arch))
    raise ValueError(f"granularity: expected 'block' or 'kernel', got {granularity!r}")


def network_features(pieces: Sequence[Workload]) -> dict:
    """Whole-network features from its pieces."""
    params = sum(w.params for w in pieces)
    return {
        "weight_mb": 4 * params / 1e6,
        "n_pieces": len(pieces),
        "act_mb": sum(4 * _numel(r.out_shape) for w in pieces for r in w.rows) / 1e6,
        "madds": sum(w.madds for w in pieces),
    }
