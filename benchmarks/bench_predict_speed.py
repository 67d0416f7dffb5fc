"""predict_many speed on never-seen ArchSpec objects: the current path beside the old, in one run.

Fits each predictor kind on a measurement store, then predicts networks sampled (seeded) from the
Large search space at 224 px, every one a new ArchSpec object never predicted before:

* ``search run``  — from nothing (block cache empty, the predictor has estimated no piece), 20,000
  networks in batches of 100, as a search asks: the first batches pay a layer pass per network
  with an unseen block, and the estimate of every new piece;
* ``steady``      — the next 20,000 new networks in one call, once the blocks of the space have been
  seen: the rate with a target (lut >= 20,000/s, regression >= 10,000/s);
* ``old path``    — the pre-change hot path on 500 of those networks, timed inline: per network
  ``blocks()`` (a layer pass, then a JSON + SHA-1 key per block), the pieces looked up by key,
  the network term from the pieces; its piece memo is pre-filled, so only per-network work is timed;
* ``compile_space`` — choice vectors of the built-in space, for scale (unchanged by this work).

Both paths must agree (checked). Timings on a shared or busy machine are not results.

Reproduce: .venv/bin/python benchmarks/bench_predict_speed.py --store out/demo/lat.db [-n 20000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import SearchSpace
from hwlat.archs.layers import _layers
from hwlat.archs.pieces import blocks
from hwlat.errors import ExtrapolationWarning
from hwlat.latency_models import TrainingData, make_predictor
from hwlat.latency_models.features import clear_piece_cache
from hwlat.latency_models.space_table import compile_space

TARGETS = {"lut": 20_000, "regression": 10_000}


def old_predict_many(pred, archs, memo: dict) -> np.ndarray:
    """The pre-change ``predict_many`` of a block-level predictor (see module docstring)."""
    per = [blocks(a) for a in archs]
    todo = {w.key: w for ws in per for w in ws if w.key not in memo}
    if todo:
        memo.update(zip(todo, pred._ms_of(list(todo.values()))))
    out = []
    for ws in per:
        params = sum(w.params for w in ws)
        term = (
            pred.gamma_ms_per_mb_ * max(0.0, 4 * params / 1e6 - pred.cache_mb_)
            + pred.per_piece_ms_ * len(ws)
            + pred.offset_ms_
        )
        out.append(sum(memo[w.key] for w in ws) + term)
    return np.array(out)


def rate(fn, archs) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    out = fn(archs)
    return len(archs) / (time.perf_counter() - t), out


def main() -> None:
    ap = argparse.ArgumentParser(description="predict_many speed, new path beside the old")
    ap.add_argument("--store", default="out/demo/lat.db", help="measurement store to fit on")
    ap.add_argument("-n", type=int, default=20_000, help="new networks per timing")
    ap.add_argument("--old", type=int, default=500, help="networks timed on the old path")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with stamp.results(__file__, {"n": args.n, "seed": args.seed}):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    warnings.simplefilter("ignore", ExtrapolationWarning)  # the space reaches beyond a small store
    data = TrainingData.from_store(args.store, "litert")
    space = SearchSpace.mobilenetv3_large(resolution=224)
    print(
        f"fitting on {len(data.models)} networks of {args.store}; timing new networks of the Large "
        f"space at 224 px (new ArchSpec objects, never predicted before)\n"
    )
    print(
        f"{'kind':11s} {'search run':>13s} {'steady':>13s} {'old path':>11s} {'speed-up':>9s} "
        f"{'compile_space':>15s}  target (steady)"
    )
    for kind in ("lut", "regression", "calibrated"):
        rng = np.random.default_rng(args.seed)  # the same networks for every kind
        run = [space.sample_arch(rng) for _ in range(args.n)]
        fresh = [space.sample_arch(rng) for _ in range(args.n)]
        # the lookup table refuses unmeasured blocks: time it with the fallback (a hit is a lookup)
        params = {"on_missing": "regression"} if kind == "lut" else {}
        pred = make_predictor(kind, **params).fit(data.archs(), data.latency_ms, pieces=data.pieces)
        clear_piece_cache()
        pred = make_predictor(kind, **pred.state_params()).fit(
            data.archs(), data.latency_ms, pieces=data.pieces
        )  # no piece estimated yet
        r_run, _ = rate(lambda a: [pred.predict_many(a[i : i + 100]) for i in range(0, len(a), 100)], run)
        r_new, new = rate(pred.predict_many, fresh)
        _layers.cache_clear()  # the old path pays its layer pass per network
        r_old, old = rate(lambda a: old_predict_many(pred, a, dict(pred._piece_ms)), fresh[: args.old])
        np.testing.assert_allclose(new[: args.old], old, rtol=1e-9)
        compiled = compile_space(pred, space)
        r_vec, _ = rate(compiled.predict, np.array([space.sample(rng) for _ in range(100_000)]))
        target = TARGETS.get(kind)
        verdict = "" if target is None else f">= {target:,}/s {'met' if r_new >= target else 'MISSED'}"
        print(
            f"{kind:11s} {r_run:11,.0f}/s {r_new:11,.0f}/s {r_old:9,.0f}/s {r_new / r_old:8.0f}x "
            f"{r_vec:13,.0f}/s  {verdict}"
        )


if __name__ == "__main__":
    main()
