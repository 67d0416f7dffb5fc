"""Vectorised prediction over a search space: one gather-and-sum per architecture.

NAS asks for the latency of millions of choice vectors. A stage's latency depends only on its own
choices and the width of the stage before it, so :func:`compile_space` predicts every
(previous width, kernel, ratio, SE, activation, width) block of every stage once, and
:meth:`CompiledSpace.predict` then answers a batch of vectors with numpy indexing. The result is
the predictor's own answer for the decoded architecture (same pieces, same network term).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from hwlat.archs.ir import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, SESpec
from hwlat.archs.space import DECISIONS, SearchSpace, expansion
from hwlat.archs.zoo import make_divisible
from hwlat.profiler.workloads import blocks


def _probe(cin: int, h: int, bl: tuple[BlockSpec, ...], head: HeadSpec | None = None,
           num_classes: int = 1) -> ArchSpec:
    """A network whose input is (cin, h, h) and whose pieces after the stem are ``bl`` (+ head)."""
    return ArchSpec(name="probe", resolution=h, in_channels=cin,
                    stem=ConvSpec(out=cin, kernel=1, stride=1, act=Act.IDENTITY), blocks=bl,
                    head=head or HeadSpec(conv=0, hidden=0), num_classes=num_classes)


class CompiledSpace:
    """Tables of a fitted block-level predictor over ``space``; ``predict(vectors)`` → ms."""

    def __init__(self, pred, space: SearchSpace):
        if getattr(pred, "granularity", "block") != "block" or not hasattr(pred, "_ms_of"):
            raise ValueError("compile_space needs a fitted block-level LookupTable or Regression")
        pred._check_fitted()
        self.pred, self.space = pred, space
        nd = len(DECISIONS)
        ref = space.decode(tuple(0 for _ in space.dims))
        stem_piece = blocks(ref)[0]
        h = math.ceil(space.resolution / space.stem.stride)
        self.stages = []
        prev_widths = (space.stem.out,)
        pieces, where = [], []
        for s, st in enumerate(space.stages):
            opts = [st.options(d) for d in DECISIONS]
            for pi, cin in enumerate(prev_widths):
                for combo in itertools.product(*(range(len(o)) for o in opts)):
                    k, r, se, act, depth, w = (o[i] for o, i in zip(opts, combo))
                    if combo[DECISIONS.index("depth")] != 0:
                        continue  # depth only repeats the second block: one probe per other choice

                    def blk(c, stride):
                        e = expansion(c, r)
                        return BlockSpec(exp=e, out=w, kernel=k, stride=stride, act=act,
                                         se=SESpec(make_divisible(e / 4)) if se else None)

                    ws = blocks(_probe(cin, h, (blk(cin, st.stride), blk(w, 1))))
                    pieces += [ws[1], ws[2]]
                    where.append((s, pi, combo))
            h = math.ceil(h / st.stride)
            prev_widths = st.options("width")
        head_pieces = [blocks(_probe(w, h, (BlockSpec(exp=w, out=w),), space.head, space.num_classes))[-1]
                       for w in prev_widths]
        ms = pred._ms_of([stem_piece, *pieces, *head_pieces])
        params = np.array([p.params for p in [stem_piece, *pieces, *head_pieces]], dtype=float)
        self.stem_ms, self.stem_params = ms[0], params[0]
        self.head_ms, self.head_params = ms[-len(head_pieces):], params[-len(head_pieces):]
        self.tables = []
        for s, st in enumerate(space.stages):
            dims = [len(st.options(d)) for d in DECISIONS]
            n_prev = 1 if s == 0 else len(space.stages[s - 1].options("width"))
            self.tables.append((np.zeros([n_prev, *dims]), np.zeros([n_prev, *dims]), np.zeros([n_prev, *dims])))
        di = DECISIONS.index("depth")
        for j, (s, pi, combo) in enumerate(where):
            first, rep = 1 + 2 * j, 2 + 2 * j
            t_ms, t_par, t_n = self.tables[s]
            for d_idx, depth in enumerate(space.stages[s].options("depth")):
                idx = (pi, *combo[:di], d_idx, *combo[di + 1:])
                t_ms[idx] = ms[first] + (depth - 1) * ms[rep]
                t_par[idx] = params[first] + (depth - 1) * params[rep]
                t_n[idx] = depth
        self._nd = nd

    def predict(self, vectors) -> np.ndarray:
        """Latency (ms) of each row of ``vectors`` (choice-vector indices, shape ``(n, len(dims))``)."""
        V = np.asarray(vectors)
        if V.ndim != 2 or V.shape[1] != len(self.space.dims):
            raise ValueError(f"vectors must have shape (n, {len(self.space.dims)}), got {V.shape}")
        if V.size and ((V < 0).any() or (V >= np.asarray(self.space.dims)).any()):
            bad = np.argwhere((V < 0) | (V >= np.asarray(self.space.dims)))[0]
            raise ValueError(f"vector {bad[0]}: position {bad[1]} ({self.space.describe_position(int(bad[1]))}) "
                             f"index {V[bad[0], bad[1]]} out of range")
        nd, wi = self._nd, DECISIONS.index("width")
        ms = np.full(len(V), self.stem_ms)
        params = np.full(len(V), self.stem_params)
        n = np.full(len(V), 2.0)  # stem and head
        for s, (t_ms, t_par, t_n) in enumerate(self.tables):
            prev = np.zeros(len(V), dtype=int) if s == 0 else V[:, nd * (s - 1) + wi]
            idx = (prev, *(V[:, nd * s + j] for j in range(nd)))
            ms += t_ms[idx]
            params += t_par[idx]
            n += t_n[idx]
        last = V[:, nd * (len(self.tables) - 1) + wi]
        ms += self.head_ms[last]
        params += self.head_params[last]
        p = self.pred
        return (ms + p.gamma_ms_per_mb_ * np.maximum(0.0, 4 * params / 1e6 - p.cache_mb_)
                + p.per_piece_ms_ * n + p.offset_ms_)


def compile_space(pred, space: SearchSpace) -> CompiledSpace:
    """Precompute ``pred`` over ``space`` for vectorised :meth:`CompiledSpace.predict`."""
    return CompiledSpace(pred, space)
