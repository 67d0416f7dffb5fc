"""Vectorised prediction over a search space: one gather-and-sum per architecture.

NAS asks for the latency of millions of choice vectors. :func:`compile_space` predicts every block
the space can contain once, and :meth:`CompiledSpace.predict` then answers a batch of vectors with
numpy indexing. The result is the predictor's own answer for the decoded architecture (same
pieces, same network term). It works on every space of :mod:`hwlat.archs.space`:

* block-wise (:class:`~hwlat.archs.space.SearchSpace`, ``large`` / ``small``): a stage's latency
  depends only on its own choices and the width of the stage before it, so every (previous width,
  kernel, ratio, SE, activation, width) block of every stage is predicted once;
* layer-wise (:class:`~hwlat.archs.space.LayerwiseSpace`, the FBNet spaces): every layer's input and
  output widths and stride are fixed, so its block depends only on its own op: one table of
  positions × ops (an identity skip is no piece: 0 ms, 0 params).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from hwlat.archs.ir import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, SESpec
from hwlat.archs.pieces import blocks
from hwlat.archs.space import DECISIONS, LayerwiseSpace, SearchSpace, Space, expansion
from hwlat.archs.zoo import se_squeeze


def _probe(
    cin: int, h: int, bl: tuple[BlockSpec, ...], head: HeadSpec | None = None, num_classes: int = 1
) -> ArchSpec:
    """A network whose input is (cin, h, h) and whose pieces after the stem are ``bl`` (+ head)."""
    return ArchSpec(
        name="probe",
        resolution=h,
        in_channels=cin,
        stem=ConvSpec(out=cin, kernel=1, stride=1, act=Act.IDENTITY),
        blocks=bl,
        head=head or HeadSpec(conv=0, hidden=0),
        num_classes=num_classes,
    )


def compilable(pred) -> bool:
    """Whether :func:`compile_space` can tabulate ``pred``: a block-level LookupTable or Regression."""
    return getattr(pred, "granularity", None) == "block" and hasattr(pred, "_ms_of")


class CompiledSpace:
    """Tables of a fitted block-level predictor over ``space``; ``predict(vectors)`` → ms.

    ``stem_*`` are scalars, ``head_*`` are indexed by the last width option (block-wise) or have
    one entry (layer-wise); ``tables`` hold per-stage (block-wise) or per-position (layer-wise)
    latency (ms), params and piece counts.
    """

    def __init__(self, pred, space: Space):
        if not compilable(pred):
            raise ValueError("compile_space needs a fitted block-level LookupTable or Regression")
        if not isinstance(space, (SearchSpace, LayerwiseSpace)):
            raise ValueError(f"compile_space: cannot vectorise a {type(space).__name__}")
        pred._check_fitted()
        self.pred, self.space = pred, space
        if isinstance(space, LayerwiseSpace):
            self._compile_layerwise(pred, space)
        else:
            self._compile_blockwise(pred, space)

    def _compile_layerwise(self, pred, space: LayerwiseSpace) -> None:
        n_pos, n_ops = len(space.dims), len(space.ops)
        stem = head = None
        pieces, where = [], []
        for op in range(n_ops):  # layer p of any network is the same block as in (op,)*n_pos
            ws = blocks(space.decode((op,) * n_pos))
            stem, head = ws[0], ws[-1]
            for w in ws[1:-1]:
                pieces.append(w)
                where.append((w.rows[0].block, op))
        ms = pred._ms_of([stem, *pieces, head])
        self.stem_ms, self.stem_params = ms[0], float(stem.params)
        self.head_ms, self.head_params = ms[-1:], np.array([float(head.params)])
        t_ms, t_par, t_n = np.zeros((n_pos, n_ops)), np.zeros((n_pos, n_ops)), np.zeros((n_pos, n_ops))
        for (p, op), w, m in zip(where, pieces, ms[1:-1]):
            t_ms[p, op], t_par[p, op], t_n[p, op] = m, w.params, 1
        self.tables = [(t_ms, t_par, t_n)]

    def _compile_blockwise(self, pred, space: SearchSpace) -> None:
        ref = space.decode(tuple(0 for _ in space.dims))
        stem_piece = blocks(ref)[0]
        h = math.ceil(space.resolution / space.stem.stride)
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
                        return BlockSpec(
                            exp=e,
                            out=w,
                            kernel=k,
                            stride=stride,
                            act=act,
                            se=SESpec(se_squeeze(e)) if se else None,
                        )

                    ws = blocks(_probe(cin, h, (blk(cin, st.stride), blk(w, 1))))
                    pieces += [ws[1], ws[2]]
                    where.append((s, pi, combo))
            h = math.ceil(h / st.stride)
            prev_widths = st.options("width")
        head_pieces = [
            blocks(_probe(w, h, (BlockSpec(exp=w, out=w),), space.head, space.num_classes))[-1]
            for w in prev_widths
        ]
        ms = pred._ms_of([stem_piece, *pieces, *head_pieces])
        params = np.array([p.params for p in [stem_piece, *pieces, *head_pieces]], dtype=float)
        self.stem_ms, self.stem_params = ms[0], params[0]
        self.head_ms, self.head_params = ms[-len(head_pieces) :], params[-len(head_pieces) :]
        self.tables = []
        for s, st in enumerate(space.stages):
            dims = [len(st.options(d)) for d in DECISIONS]
            n_prev = 1 if s == 0 else len(space.stages[s - 1].options("width"))
            self.tables.append(
                (np.zeros([n_prev, *dims]), np.zeros([n_prev, *dims]), np.zeros([n_prev, *dims]))
            )
        di = DECISIONS.index("depth")
        for j, (s, pi, combo) in enumerate(where):
            first, rep = 1 + 2 * j, 2 + 2 * j
            t_ms, t_par, t_n = self.tables[s]
            for d_idx, depth in enumerate(space.stages[s].options("depth")):
                idx = (pi, *combo[:di], d_idx, *combo[di + 1 :])
                t_ms[idx] = ms[first] + (depth - 1) * ms[rep]
                t_par[idx] = params[first] + (depth - 1) * params[rep]
                t_n[idx] = depth

    def predict(self, vectors) -> np.ndarray:
        """Latency (ms) of each row of ``vectors`` (choice-vector indices, shape ``(n, len(dims))``)."""
        V = np.asarray(vectors)
        if V.ndim != 2 or V.shape[1] != len(self.space.dims):
            raise ValueError(f"vectors must have shape (n, {len(self.space.dims)}), got {V.shape}")
        if V.size and ((V < 0).any() or (V >= np.asarray(self.space.dims)).any()):
            bad = np.argwhere((V < 0) | (V >= np.asarray(self.space.dims)))[0]
            raise ValueError(
                f"vector {bad[0]}: {self.space.describe_position(int(bad[1]))}: index "
                f"{V[bad[0], bad[1]]} out of range 0..{self.space.dims[bad[1]] - 1}"
            )
        ms = np.full(len(V), self.stem_ms)
        params = np.full(len(V), self.stem_params)
        n = np.full(len(V), 2.0)  # stem and head
        if isinstance(self.space, LayerwiseSpace):
            t_ms, t_par, t_n = self.tables[0]
            pos = np.arange(V.shape[1])
            ms += t_ms[pos, V].sum(1)
            params += t_par[pos, V].sum(1)
            n += t_n[pos, V].sum(1)
            last = np.zeros(len(V), dtype=int)
        else:
            nd, wi = len(DECISIONS), DECISIONS.index("width")
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
        return (
            ms
            + p.gamma_ms_per_mb_ * np.maximum(0.0, 4 * params / 1e6 - p.cache_mb_)
            + p.per_piece_ms_ * n
            + p.offset_ms_
        )


def compile_space(pred, space: Space) -> CompiledSpace:
    """Precompute ``pred`` over ``space`` (any space of :func:`hwlat.archs.space.get_space`) for
    vectorised :meth:`CompiledSpace.predict`."""
    return CompiledSpace(pred, space)
