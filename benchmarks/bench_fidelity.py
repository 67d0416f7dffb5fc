"""Predictor fidelity on search-space candidates not measured whole for training; LiteRT, 1 thread.

The user's workflow: the zoo and hwlat's calibration set are measured end to end with their blocks,
the candidates' blocks are measured, and no candidate network is measured for training. The
candidates (seeded Large- and Small-space samples at mixed resolutions) are then measured end to end
in a separate store with ``--repeats`` fresh instances each: the truth is each network's latency in
the store, the median of its repeats' p10 (:data:`hwlat.profiler.storage.store.LATENCY_STATISTIC`).

Prints, in one run:
- the cost of profiling the calibration set with its blocks;
- the noise floor: one repeat of the truth against another (acc5 / acc10 / Kendall τ), i.e. what a
  perfect predictor could reach against a single measurement, by the store's latency statistic
  (p10 of the samples) and by the median of the samples, to show why the store uses the former;
- the calibrated predictor and the MAdds proxy against the median of the repeats, per subset
  (Large / Small / with 7×7 / without), beside the targets, with and without the phase
  normalisation (entries scaled by the reference network timed in the same rounds);
- the same with the candidates' networks in training as well (fitted on a seeded half, scored on
  the other half);
- the same with ``--train-candidates`` N *other* candidates (default 150, their own seed, half
  Large half Small) measured whole with their blocks in a third store and added to training, scored
  on all the test candidates (target with those in training: acc10 >= 0.97).

``--block-repeats R`` measures the candidates' blocks R times, in passes minutes apart, so that a
block's latency (the median of its repeats) does not come from one phase of the machine.

Reproduce (quiet machine only; the stores are reused, a rerun measures what is missing):
    .venv/bin/python benchmarks/bench_fidelity.py --large 60 --small 60 --repeats 3 --out out/fidelity
    (``--train-candidates 0`` skips the third store, about 20 minutes of measuring)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import get_arch, zoo_names
from hwlat.archs.calibration import calibration_set
from hwlat.archs.codec import encode
from hwlat.archs.space import get_space
from hwlat.latency_models import TrainingData, make_predictor
from hwlat.latency_models.evaluate import repeat_against_repeat
from hwlat.latency_models.metrics import metrics
from hwlat.profiler.measure.profile import profile
from hwlat.profiler.storage.store import open_store

TARGETS = {"acc10": 0.95, "acc5": 0.80, "kendall_tau": 0.95}
RESOLUTIONS = (160, 192, 224)


def candidates(n_large: int, n_small: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for name, n in (("large", n_large), ("small", n_small)):
        space = get_space(name)
        for _ in range(n):
            out.append(space.sample_arch(rng).with_resolution(int(rng.choice(RESOLUTIONS))))
    return out


def truth(store: Path) -> pd.DataFrame:
    """The candidates' networks, one row per repeat, with their codec strings."""
    with open_store(store, readonly=True) as st:
        raw = st.frame(granularity="model", repeats=True)
    return raw.assign(arch=[json.loads(s)["arch"] for s in raw["spec"]])


def fmt(m: dict) -> str:
    bias = f"  bias {m['bias_pct']:+5.1f} %" if "bias_pct" in m else ""
    return (
        f"acc10 {m['acc10']:.2f}  acc5 {m['acc5']:.2f}  tau {m['kendall_tau']:.3f}  "
        f"rmspe {m['rmspe']:5.1f} %{bias}  n {m['n']}"
    )


def score(pred, archs, y) -> dict:
    p = pred.predict_many(archs)
    m = metrics(y, p)
    m["bias_pct"] = float(100 * np.median((p - y) / y))
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--large", type=int, default=60)
    ap.add_argument("--small", type=int, default=60)
    ap.add_argument("--calibration", type=int, default=24, help="networks per space")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of each candidate network (the truth)")
    ap.add_argument(
        "--block-repeats",
        type=int,
        default=1,
        help="repeats of each candidate block (fresh instances in passes minutes apart)",
    )
    ap.add_argument(
        "--train-candidates",
        type=int,
        default=150,
        help="other candidates measured whole with their blocks, for the fit with "
        "candidate networks in training (0: skip)",
    )
    ap.add_argument("--train-repeats", type=int, default=1, help="repeats of those training candidates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/fidelity")
    args = ap.parse_args()
    config = {
        "large": args.large,
        "small": args.small,
        "repeats": args.repeats,
        "block_repeats": args.block_repeats,
        "train_candidates": args.train_candidates,
        "seed": args.seed,
    }
    with stamp.results(__file__, config, runtime="litert"):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_db, truth_db = out / "train.db", out / "truth.db"
    cands = candidates(args.large, args.small, args.seed)

    print("1. zoo + calibration sets, each network with its blocks")
    zoo = [get_arch(n, resolution=r) for n in zoo_names() for r in RESOLUTIONS]
    profile(zoo, ("model", "block"), train_db, "litert")
    for name in ("large", "small"):
        t = time.perf_counter()
        cal = calibration_set(get_space(name), args.calibration, seed=args.seed, resolutions=RESOLUTIONS)
        profile(cal, ("model", "block"), train_db, "litert")
        print(
            f"   calibration set {name} ({len(cal)} networks with their blocks) profiled (or resumed) in "
            f"{(time.perf_counter() - t) / 60:.1f} min (target <= 5 min for one set on 2 cores)"
        )
    print(
        f"2. the {len(cands)} candidates' blocks, {args.block_repeats} repeat(s) "
        f"(no candidate network in training)"
    )
    t = time.perf_counter()
    profile(cands, "block", train_db, "litert", repeats=args.block_repeats)
    print(f"   measured (or resumed) in {(time.perf_counter() - t) / 60:.1f} min")
    print(f"3. the candidates end to end, {args.repeats} repeats (the truth, separate store)")
    profile(cands, "model", truth_db, "litert", repeats=args.repeats)

    raw = truth(truth_db)
    lat = raw.groupby("arch")["latency_ms"].median()
    codes = [encode(a) for a in cands]
    y = lat.reindex(codes).to_numpy()
    fl = repeat_against_repeat(raw) or {}
    print("\nnoise floor (repeat 1 as a prediction of repeat 0):", fmt(fl) if fl else "needs 2 repeats")
    fl_median = repeat_against_repeat(raw.assign(latency_ms=raw["median_ms"]))
    if fl_median:
        print("   the same by each repeat's median instead of its p10:", fmt(fl_median))
    data = TrainingData.from_store(train_db, "litert")
    normed = TrainingData.from_store(train_db, "litert", normalise_phase=True)
    with open_store(train_db, readonly=True) as st:
        ref = st.frame(runtime="litert")["ref_ms"].dropna()
    if len(ref):
        print(
            f"phase reference over the training rows: median {ref.median():.3f} ms, "
            f"p10-p90 {ref.quantile(0.1):.3f}-{ref.quantile(0.9):.3f} ms"
        )
    subsets = {
        "all": np.ones(len(cands), bool),
        "large": np.array([i < args.large for i in range(len(cands))]),
        "small": np.array([i >= args.large for i in range(len(cands))]),
        "with 7x7": np.array([any(b.kernel == 7 for b in a.blocks) for a in cands]),
        "without 7x7": np.array([not any(b.kernel == 7 for b in a.blocks) for a in cands]),
    }
    preds = {
        k: make_predictor(k).fit(
            data.archs(), data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
        )
        for k in ("madds", "calibrated")
    }
    preds["calibrated, phase-normalised"] = make_predictor("calibrated").fit(
        normed.archs(),
        normed.latency_ms,
        pieces=normed.pieces,
        fingerprint=normed.fingerprint,
        runtime="litert",
    )
    print(
        f"\npredictors fitted on {len(data.models)} networks (zoo + calibration) and "
        f"{len(data.pieces)} pieces; scored against the latency over {args.repeats} repeats"
    )
    for kind, pred in preds.items():
        for name, sel in subsets.items():
            if sel.sum() >= 2:
                print(
                    f"   {kind:29s} {name:12s} {fmt(score(pred, [c for c, s in zip(cands, sel) if s], y[sel]))}"
                )
    for kind in ("calibrated", "calibrated, phase-normalised"):
        m = score(preds[kind], cands, y)
        for k, target in TARGETS.items():
            gap = m[k] - target
            print(
                f"   {kind}: target {k} >= {target}: {m[k]:.3f} "
                f"({'met' if gap >= 0 else f'missed by {-gap:.3f}'}; floor {fl.get(k, float('nan')):.3f})"
            )

    # the candidates' networks in training as well: a seeded half trains, the other half is scored
    rng = np.random.default_rng(args.seed + 1)
    half = rng.permutation(len(cands)) < len(cands) // 2
    more = pd.DataFrame(
        {
            "arch": [c for c, h in zip(codes, half) if h],
            "name": [a.name for a, h in zip(cands, half) if h],
            "latency_ms": y[half],
        }
    )
    models = pd.concat([data.models, more], ignore_index=True)
    from hwlat.archs.codec import decode

    pred = make_predictor("calibrated").fit(
        [decode(a, name=n) for a, n in zip(models["arch"], models["name"])],
        models["latency_ms"].to_numpy(float),
        pieces=data.pieces,
        fingerprint=data.fingerprint,
        runtime="litert",
    )
    test = ~half
    m2 = score(pred, [c for c, t in zip(cands, test) if t], y[test])
    print(
        f"\nwith {int(half.sum())} candidate networks in training as well (scored on the other "
        f"{int(test.sum())}):\n   calibrated {fmt(m2)}\n   target acc10 >= 0.97: {m2['acc10']:.3f}"
    )
    if args.train_candidates:
        with_training_candidates(args, out / "train_candidates.db", data, cands, y)


def with_training_candidates(args, store: Path, data: TrainingData, cands: list, y: np.ndarray) -> None:
    """Fit with ``args.train_candidates`` other candidates (their own seed), measured whole with
    their blocks in ``store``, added to the zoo and calibration networks; score on ``cands``."""
    n_small = args.train_candidates // 2
    more = candidates(args.train_candidates - n_small, n_small, args.seed + 1000)
    test_codes = {encode(c) for c in cands}
    more = [c for c in more if encode(c) not in test_codes]
    print(
        f"\n4. {len(more)} other candidates (seed {args.seed + 1000}) measured whole with their "
        f"blocks, {args.train_repeats} repeat(s), for training"
    )
    t = time.perf_counter()
    profile(more, ("model", "block"), store, "litert", repeats=args.train_repeats)
    print(f"   measured (or resumed) in {(time.perf_counter() - t) / 60:.1f} min")
    extra = TrainingData.from_store(store, "litert")
    models = pd.concat([data.models, extra.models], ignore_index=True)
    pieces = pd.concat([data.pieces, extra.pieces], ignore_index=True).drop_duplicates(
        ["key", "variant"], keep="first"
    )
    joined = TrainingData(pieces, models, data.fingerprint, data.device_key, data.runtime)
    pred = make_predictor("calibrated").fit(
        joined.archs(),
        joined.latency_ms,
        pieces=joined.pieces,
        fingerprint=joined.fingerprint,
        runtime="litert",
    )
    m = score(pred, cands, y)
    gap = m["acc10"] - 0.97
    print(
        f"with {len(extra.models)} other candidate networks in training as well ({len(models)} "
        f"networks, {len(pieces)} pieces), scored on all {len(cands)}:\n   calibrated {fmt(m)}\n"
        f"   target acc10 >= 0.97: {m['acc10']:.3f} ({'met' if gap >= 0 else f'missed by {-gap:.3f}'})"
    )


if __name__ == "__main__":
    main()
