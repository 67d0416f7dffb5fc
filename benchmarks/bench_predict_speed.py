"""predict_many speed on never-seen ArchSpec objects, every kind: the current path beside the old.

Fits each predictor kind on a measurement store (the lookup table with its regression fallback:
the space reaches beyond any small table; ``transfer`` combines the calibrated predictor with the
MAdds count), then predicts networks sampled (seeded) from the Large search space at 224 px, every
one a new ArchSpec object never predicted before:

* ``cold``   — the first pass over ``n`` new networks in one call, from the state a fresh process
  has after fitting (the block cache and the predictor's memo hold the training networks' pieces
  only): a layer pass for every block never seen at its input shape, the estimate of every new
  piece;
* ``steady`` — the next ``n`` new networks in one call, the blocks of the space mostly seen;
* ``old``    — the same two calls on the same networks through the pre-change code, kept below:
  :func:`old_fill` (a network with an unseen block runs the layer pass of the whole network, and
  each new block's key is ``block_workload``'s JSON + SHA-1 of all its rows), the
  end-to-end kind's per-network ``blocks()`` (a layer pass and a JSON + SHA-1 key per block) and
  the transfer kind's per-network ``summary()``, and the garbage collector running throughout
  (now paused during a prediction: :func:`hwlat.latency_models.base.gc_paused`);
* ``compile_space`` — choice vectors of the built-in space, for scale (unchanged by this work).

Old and new run interleaved (``--rounds`` times each, the best kept), from the same restored state,
and must agree to rtol 1e-12 (checked). The target is 10,000 networks/s for every kind, cold and
steady. Timings on a shared or busy machine are not results: there, read only the old/new ratios.

Reproduce: .venv/bin/python benchmarks/bench_predict_speed.py --store out/demo/lat.db [-n 3000]
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings

import numpy as np
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import SearchSpace
from hwlat.archs.layers import _layers, block_groups, layers, summary
from hwlat.archs.pieces import block_workload, kernels_of
from hwlat.errors import ExtrapolationWarning
from hwlat.latency_models import TrainingData, base, features, make_predictor
from hwlat.latency_models import e2e as e2e_mod
from hwlat.latency_models.space_table import compile_space
from hwlat.latency_models.transfer import Transfer

TARGET = 10_000  # networks/s, every kind, cold and steady
KINDS = ("madds", "lut", "regression", "calibrated", "e2e", "transfer")


# --- the pre-change code, verbatim but for names ---------------------------------------------------
def old_fill(arch, granularity: str, cache: dict) -> list:
    """The pre-change ``features._fill``: the layer pass of the whole network."""
    rows = layers(arch)
    if len(cache) > features._MAX_GROUPS:
        cache.clear()
    by_block = {(g[0].stage, g[0].block): g for g in block_groups(rows) if g[0].stage != "task"}
    make = (lambda grp: (block_workload(grp),)) if granularity == "block" else kernels_of

    def group(spec, extra: tuple, grp, c, h, w):
        key = (spec.__class__, *spec.__dict__.values(), *extra)
        try:
            hit = cache.get(key)
        except TypeError:
            key, hit = None, None
        if hit is None:
            pieces = tuple(make(grp)) if grp else ()
            c, h, w = grp[-1].out_shape if grp else (c, h, w)
            hit = (features._group(pieces, (c, h)), c, h, w)
            if key is not None:
                cache[key] = hit
        return hit

    c, (h, w) = arch.in_channels, arch.hw
    g, c, h, w = group(arch.stem, (c, h, w), by_block[("stem", -1)], c, h, w)
    out = [g]
    for i, b in enumerate(arch.blocks):
        g, c, h, w = group(b, (c, h, w), by_block.get(("block", i)), c, h, w)
        out.append(g)
    if arch.head is None:
        for grp in block_groups(rows):
            if grp[0].stage == "task":
                pieces = tuple(make(grp))
                out.append(features._group(pieces, grp[-1].out_shape[:2]))
        return out
    out.append(group(arch.head, (arch.num_classes, c, h, w), by_block[("head", -1)], c, h, w)[0])
    return out


def old_e2e_predict(self, archs):
    return np.array([float(self.block_costs(a)[1].sum()) + self.network_term(a) for a in archs])


def old_log_sources(self, archs):
    cols = [p.predict_many(archs) for p in self.sources_]
    if self.madds:
        cols.append(np.array([summary(a)["madds"] for a in archs], dtype=float) / 1e6)
    return np.log(np.stack(cols, 1))


@contextlib.contextmanager
def old_code():
    """The pre-change code in place of the current (module attributes swapped, then restored)."""
    saved = features._fill, e2e_mod.EndToEnd._predict, Transfer._log_sources, base.gc_paused
    features._fill, e2e_mod.EndToEnd._predict, Transfer._log_sources = (
        old_fill,
        old_e2e_predict,
        old_log_sources,
    )
    base.gc_paused = contextlib.nullcontext  # the collector ran throughout
    try:
        yield
    finally:
        features._fill, e2e_mod.EndToEnd._predict, Transfer._log_sources, base.gc_paused = saved


# --- state as a fresh process has it after fitting ------------------------------------------------
MEMOS = ("_piece_ms", "_piece_notes", "_group_ms", "_flagged")


def snapshot(preds) -> dict:
    return {
        "groups": {g: dict(c) for g, c in features._GROUPS.items()},
        "records": dict(features._RECORDS),
        "memos": {
            id(p): {m: dict(p.__dict__[m]) for m in MEMOS if isinstance(p.__dict__.get(m), dict)}
            for p in preds
        },
    }


def restore(state: dict, preds) -> None:
    for g, c in features._GROUPS.items():
        c.clear()
        c.update(state["groups"][g])
    features._RECORDS.clear()
    features._RECORDS.update(state["records"])
    for p in preds:
        p.__dict__.pop("_group_ms", None)  # e2e's memo (absent after fitting)
        for m, v in state["memos"][id(p)].items():
            p.__dict__[m] = dict(v)
    _layers.cache_clear()
    e2e_mod.arch_blocks.cache_clear()


def timed(fn, archs) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    out = fn(archs)
    return len(archs) / (time.perf_counter() - t), out


def main() -> None:
    ap = argparse.ArgumentParser(description="predict_many speed of every kind, new path beside the old")
    ap.add_argument("--store", default="out/demo/lat.db", help="measurement store to fit on")
    ap.add_argument("-n", type=int, default=3_000, help="new networks per call (cold, then steady)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved old/new rounds (best kept)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with stamp.results(__file__, {"n": args.n, "seed": args.seed}):
        bench(args)


def fit_all(data) -> dict:
    fit = dict(pieces=data.pieces)
    out = {}
    for kind in KINDS:
        if kind == "transfer":
            out[kind] = make_predictor(kind, sources=[out["calibrated"]], madds=True)
        else:  # the lookup table refuses unmeasured blocks: time it with the fallback
            out[kind] = make_predictor(kind, **({"on_missing": "regression"} if kind == "lut" else {}))
        out[kind].fit(data.archs(), data.latency_ms, **fit)
    return out


def bench(args: argparse.Namespace) -> None:
    warnings.simplefilter("ignore", ExtrapolationWarning)  # the space reaches beyond a small store
    data = TrainingData.from_store(args.store, "litert")
    space = SearchSpace.mobilenetv3_large(resolution=224)
    features.clear_piece_cache()
    preds = fit_all(data)  # the block cache now holds the training networks' blocks, as after a fit
    everyone = [*preds.values(), *preds["transfer"].sources_]
    state = snapshot(everyone)
    print(
        f"fitted on {len(data.models)} networks of {args.store}; {args.n:,} new networks of the Large "
        f"space at 224 px per call (new ArchSpec objects), old and new interleaved, best of "
        f"{args.rounds}; target >= {TARGET:,}/s cold and steady\n"
    )
    print(
        f"{'kind':11s} {'cold':>10s} {'old':>10s} {'x':>5s}   {'steady':>10s} {'old':>10s} {'x':>5s}   "
        f"{'compile_space':>13s}  target"
    )
    for kind, pred in preds.items():
        rng = np.random.default_rng(args.seed)  # the same networks for every kind
        cold_nets = [space.sample_arch(rng) for _ in range(args.n)]
        steady_nets = [space.sample_arch(rng) for _ in range(args.n)]
        best = {"new": [0.0, 0.0], "old": [0.0, 0.0]}
        outs = {}
        for _ in range(args.rounds):
            for path in ("old", "new"):
                restore(state, everyone)
                with old_code() if path == "old" else contextlib.nullcontext():
                    r_cold, a = timed(pred.predict_many, [_copy(x) for x in cold_nets])
                    r_steady, b = timed(pred.predict_many, [_copy(x) for x in steady_nets])
                best[path] = [max(best[path][0], r_cold), max(best[path][1], r_steady)]
                outs[path] = (a, b)
        for o, n in zip(outs["old"], outs["new"]):
            np.testing.assert_allclose(n, o, rtol=1e-12)
        try:
            compiled = compile_space(pred, space)
            r_vec, _ = timed(compiled.predict, np.array([space.sample(rng) for _ in range(100_000)]))
            vec = f"{r_vec:11,.0f}/s"
        except (TypeError, ValueError, AttributeError):  # kinds compile_space does not tabulate
            vec = f"{'-':>13s}"
        (c_new, s_new), (c_old, s_old) = best["new"], best["old"]
        met = "met" if min(c_new, s_new) >= TARGET else "MISSED"
        print(
            f"{kind:11s} {c_new:8,.0f}/s {c_old:8,.0f}/s {c_new / c_old:4.1f}x   {s_new:8,.0f}/s "
            f"{s_old:8,.0f}/s {s_new / s_old:4.1f}x   {vec}  {met}"
        )


def _copy(arch):
    """A new ArchSpec object equal to ``arch`` (never predicted before: no per-object cache helps)."""
    import dataclasses

    return dataclasses.replace(arch)


if __name__ == "__main__":
    main()
