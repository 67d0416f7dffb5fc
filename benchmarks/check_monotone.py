"""Monotone in width: counts NetAdapt proposals whose predicted latency rises as the width falls.

Fits every predictor kind on a store, then takes the zoo (224 px) and 200 candidates sampled
(seeded) from the Large and Small spaces. Each NetAdapt proposal of each network (an expansion
width, or a bottleneck width shared by several blocks: ``hwlat.search.netadapt.candidates``) is
swept from its width down to 8 in steps of 8. A proposal is non-monotone when a narrower step
predicts slower than the wider one before it (the seed network included). Also counted: steps that
predict exactly the same as the wider one (the predictor shows no gain for the cut), and apart,
proposals that rise where the "cut" widens some layer (NetAdapt resets a cut block's SE squeeze to
exp/4, which widens MnasNet's input-based squeeze): those are not width reductions. The lookup
table refuses unmeasured blocks; its sweeps are checked over the widths it answers, and its table
over every pair of measured blocks that differ only in widths.

Timings in the store may come from a busy machine: this checks the shape of the predictions, not
their values. Target: 0 non-monotone proposals for lut, regression and calibrated.

Reproduce: .venv/bin/python benchmarks/check_monotone.py --store out/demo/lat.db [--samples 200]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import SearchSpace, get_arch, zoo_names
from hwlat.archs.layers import layers
from hwlat.errors import ExtrapolationWarning, MissingEntryError
from hwlat.latency_models import TrainingData, make_predictor
from hwlat.latency_models.predictors import _envelope
from hwlat.search.netadapt import candidates


def networks(samples: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    archs = [get_arch(n) for n in zoo_names()]
    for i in range(samples):
        space = (SearchSpace.mobilenetv3_large if i % 2 == 0 else SearchSpace.mobilenetv3_small)(
            resolution=224
        )
        archs.append(space.sample_arch(rng))
    return archs


def sweeps(arch) -> list[list]:
    """Per proposal: [seed, widest cut, ..., narrowest cut]."""
    by: dict[tuple, list] = {}
    for kind, key, _, cand in candidates(arch):
        by.setdefault((kind, key), [arch]).append(cand)
    return list(by.values())


def check(pred, archs) -> dict:
    all_sweeps = [s for a in archs for s in sweeps(a)]
    flat = [a for s in all_sweeps for a in s]
    try:
        ms = pred.predict_many(flat)
    except MissingEntryError:  # the lookup table: one network at a time, skipping refusals
        ms = np.array([_or_nan(pred, a) for a in flat])
    rises = widening = flats = steps = unanswered = 0
    i = 0
    for s in all_sweeps:
        v = ms[i : i + len(s)]
        i += len(s)
        unanswered += int(np.isnan(v).sum())
        keep = np.flatnonzero(~np.isnan(v))
        d = np.diff(v[keep])
        steps += len(d)
        flats += int((d == 0).sum())
        up = [j for j in np.flatnonzero(d > 1e-12 * v[keep][:-1])]
        if any(narrower(s[keep[j + 1]], s[keep[j]]) for j in up):
            rises += 1
        elif up:
            widening += 1
    return {
        "proposals": len(all_sweeps),
        "non_monotone": rises,
        "widening": widening,
        "steps": steps,
        "flat_steps": flats,
        "unanswered": unanswered,
    }


def narrower(a, b) -> bool:
    """Whether ``a`` has ``b``'s layers with no layer wider (a pure width cut of ``b``)."""
    ra, rb = layers(a), layers(b)
    return len(ra) == len(rb) and all(
        x.op == y.op and x.in_shape[0] <= y.in_shape[0] and x.out_shape[0] <= y.out_shape[0]
        for x, y in zip(ra, rb)
    )


def _or_nan(pred, arch) -> float:
    try:
        return pred.predict(arch)
    except MissingEntryError:
        return np.nan


def table_violations(pred) -> tuple[int, int]:
    """(pairs of measured blocks where the narrower is slower, comparable pairs) in the table."""
    bad = pairs = 0
    for X, measured, _ in pred.families_.values():
        lo, hi = _envelope(X, measured, X)
        t = np.sqrt(lo * hi)  # the table's entries (the measurements, made monotone)
        below = (X[:, None, :] <= X[None, :, :]).all(-1) & ~np.eye(len(X), dtype=bool)
        pairs += int(below.sum())
        bad += int((below & (t[:, None] > t[None, :] * (1 + 1e-12))).sum())
    return bad, pairs


def main() -> None:
    ap = argparse.ArgumentParser(description="monotonicity of predictions in channel width")
    ap.add_argument("--store", default="out/demo/lat.db")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with stamp.results(__file__, {"samples": args.samples, "seed": args.seed}):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    data = TrainingData.from_store(args.store, "litert")
    archs = networks(args.samples, args.seed)
    print(
        f"{len(archs)} networks ({len(zoo_names())} zoo + {args.samples} sampled), every NetAdapt "
        f"proposal swept down to 8 channels in steps of 8; predictors fitted on {args.store}\n"
    )
    warnings.simplefilter("ignore", ExtrapolationWarning)
    for kind in ("madds", "lut", "regression", "calibrated"):
        pred = make_predictor(kind).fit(data.archs(), data.latency_ms, pieces=data.pieces)
        r = check(pred, archs)
        extra = ""
        if hasattr(pred, "families_"):
            bad, pairs = table_violations(pred)
            extra = (
                f"; table: {bad} of {pairs} comparable measured pairs out of order, "
                f"{pred.n_adjusted_} of {len(pred.table_)} entries adjusted to be monotone"
            )
        print(
            f"{kind:11s} {r['non_monotone']} non-monotone of {r['proposals']} proposals "
            f"(+{r['widening']} that rise where the proposal widens a layer); "
            f"{r['flat_steps']} of {r['steps']} steps flat; {r['unanswered']} networks unanswered{extra}"
        )


if __name__ == "__main__":
    main()
