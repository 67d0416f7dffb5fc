"""A new device in minutes: every speed figure of profiling a device, beside its target, in one run.

LiteRT, one thread pinned to one core. Sections (``--only`` picks some):

1. ``share`` — the measuring share of the profiler on the demo's workloads (its networks, each with
   its blocks, at the demo's timing settings): wall time, time inside timed invocations (every
   sample, :attr:`~hwlat.profiler.measure.profile.ProfileResult.timed_seconds`) and the samples the
   store keeps (Σ mean × n × inner). Then, on every third network, the pre-change settings
   (:data:`LEGACY`: 50 ms warm-up, the reference timed 5 times every round, 5 samples in slow
   rounds) and today's, interleaved A B A B: wall ratio, and how far each one's stored latency is
   from the other's beside how far it is from itself (the fidelity of the change). Target: a share
   of at least 80 %.
2. ``calibration`` — the calibration set (Large space, 24 networks with their blocks) at 3 repeats.
   First recorded in full under :data:`RECORDED` (the stopping rule before this change: the median
   known to 2 %, at most 200 samples or 10 s per workload): every round's samples (the
   ``on_round`` hook). Each candidate rule is then replayed on those rounds (a rule can only stop
   a workload earlier) and costed as the recorded run's wall time minus its simulated sampling plus
   the rule's. Fidelity, per rule: the calibrated predictor fitted on two thirds of the networks
   (by architecture, 3 folds) with every block, scored on the held-out networks against their
   latency under the recorded rule, beside the noise floor (one repeat against another). Then the
   library's default rule is run for real in a fresh store and scored the same way. Target: at
   most 5 min at 3 repeats, fidelity not below the recorded rule's.
3. ``slots`` — two measuring slots: the first networks of the calibration set (1 repeat) on a
   local Ray farm with one slot, then with two (``--parallel-slots``), then in one process without
   Ray (``hwlat profile calibration``), then on the farm with one slot again: wall times,
   and per-workload latency against the one-slot runs (interference beside the noise floor).
4. ``predict`` — ``benchmarks/bench_predict_speed.py`` on the store of section 1: ``predict_many``
   cold and steady for every kind, beside ``compile_space``. Target: 10,000 networks/s.
5. ``table`` — ``benchmarks/bench_import_table.py``: ``profile import-table`` rows/s, first import
   and re-import. Target: 10,000 rows/s.

Quiet machine only: latency is measured here. Reproduce:
    .venv/bin/python benchmarks/bench_new_device.py --out out/new_device
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.profiler.measure.timing import TimingConfig, should_stop, summarize

DEMO_TIMING = TimingConfig(max_seconds=2.0)  # hwlat.experiments.demo's (its quick mode: 1.0)
LEGACY = dataclasses.replace(
    DEMO_TIMING, warmup_seconds=0.05, reference_samples=5, reference_every_ms=0.0, slow_round_samples=5
)
"""The timing loop's settings before this change, on the demo's cap. (What they cannot bring back:
the exports before uniform weights and a presized buffer, and the collector scanning the whole heap.)"""
RECORDED = TimingConfig(target=0.02, stop_quantile=0.5, max_samples=200, max_seconds=10.0)
"""The stopping rule before this change, under which the calibration set is recorded in full."""
RULES = {
    "before: median to 2 %, cap 200 samples / 10 s": RECORDED,
    "cap 5 s": dataclasses.replace(RECORDED, max_seconds=5.0),
    "cap 3 s": dataclasses.replace(RECORDED, max_seconds=3.0),
    "cap 100 samples": dataclasses.replace(RECORDED, max_samples=100),
    "cap 50 samples": dataclasses.replace(RECORDED, max_samples=50),
    "median to 5 %": dataclasses.replace(RECORDED, target=0.05),
    "p10 to 2 %": dataclasses.replace(RECORDED, stop_quantile=0.1),
    "p10 to 2 %, cap 5 s": dataclasses.replace(RECORDED, stop_quantile=0.1, max_seconds=5.0),
    "p10 to 1 %": dataclasses.replace(RECORDED, stop_quantile=0.1, target=0.01),
}
SHARE_TARGET = 0.80
CALIBRATION_TARGET_S = 300.0
CALIBRATION_REPEATS = 3


# --- 1. measuring share -------------------------------------------------------------------------
def kept_seconds(store) -> float:
    """Seconds of the samples a store keeps: Σ mean × n × inner over its measurements."""
    from hwlat.profiler.storage.store import Store

    with Store(store) as st:
        f = st.frame(repeats=True)
    return float((f["mean_ms"] * f["n"] * f["inner"]).sum() / 1e3)


def latencies(store) -> dict:
    from hwlat.profiler.storage.store import Store

    with Store(store) as st:
        f = st.frame()
    return dict(zip(f["key"], f["latency_ms"]))


def log_gap(a: dict, b: dict) -> tuple[float, float]:
    """(median |log ratio| in %, median ratio b/a - 1 in %) over the keys of both."""
    keys = sorted(set(a) & set(b))
    r = np.log([b[k] / a[k] for k in keys])
    return 100 * float(np.median(np.abs(r))), 100 * (math.exp(float(np.median(r))) - 1)


def share(args, out: Path) -> Path:
    from hwlat.experiments import demo
    from hwlat.profiler.measure.profile import profile

    archs = demo._archs(args.quick)
    store = out / "share.db"
    store.unlink(missing_ok=True)
    print(f"\n1. measuring share: the demo's {len(archs)} networks with their blocks, its timing settings")
    res = profile(archs, ("model", "block"), store, "litert", config=DEMO_TIMING, progress=False)
    kept = kept_seconds(store)
    n = len(res.measured)
    print(
        f"   {n} workloads in {res.seconds:.1f} s: {res.timed_seconds:.1f} s in timed invocations "
        f"(share {res.measuring_share:.2f}, target >= {SHARE_TARGET:.2f}: "
        f"{'met' if res.measuring_share >= SHARE_TARGET else f'missed by {SHARE_TARGET - res.measuring_share:.2f}'}), "
        f"{kept:.1f} s of samples kept by the store (share {kept / res.seconds:.2f})"
    )
    print(f"   the rest: {(res.seconds - res.timed_seconds) / n * 1e3:.1f} ms per workload")
    sub = archs[::3]
    print(f"\n   the pre-change settings (LEGACY) against today's, on {len(sub)} networks, A B A B:")
    runs = defaultdict(list)
    for i in range(2):
        for name, cfg in (("before", LEGACY), ("today", DEMO_TIMING)):
            path = out / f"share-{name}-{i}.db"
            path.unlink(missing_ok=True)
            r = profile(sub, ("model", "block"), path, "litert", config=cfg, progress=False)
            runs[name].append((r, latencies(path)))
            print(
                f"   {name:6s} run {i + 1}: {len(r.measured)} workloads in {r.seconds:5.1f} s, "
                f"share {r.measuring_share:.2f}"
            )
    before = [r.seconds for r, _ in runs["before"]]
    today = [r.seconds for r, _ in runs["today"]]
    print(f"   wall time today / before: {sum(today) / sum(before):.2f} (run by run: "
          f"{today[0] / before[0]:.2f}, {today[1] / before[1]:.2f})")  # fmt: skip
    same_b, _ = log_gap(runs["before"][0][1], runs["before"][1][1])
    same_t, _ = log_gap(runs["today"][0][1], runs["today"][1][1])
    cross = [log_gap(runs["before"][i][1], runs["today"][j][1]) for i in range(2) for j in range(2)]
    print(
        f"   stored latency, median |difference| per workload: before vs before {same_b:.1f} %, today vs "
        f"today {same_t:.1f} %, today vs before {np.mean([c[0] for c in cross]):.1f} % "
        f"(today's median offset from before {np.mean([c[1] for c in cross]):+.1f} %)"
    )
    return store


# --- 2. the calibration set and its stopping rule -----------------------------------------------
def record(cal, store: Path, trace: Path, repeats: int) -> float:
    """Measure ``cal`` with its blocks under :data:`RECORDED`, every round's samples to ``trace``
    (JSON lines); returns the wall time. Reused when both files exist."""
    from hwlat.profiler.measure.profile import profile

    if store.exists() and trace.exists():
        meta = json.loads(trace.read_text().splitlines()[0])
        print(f"   recorded run reused: {store} ({meta['seconds']:.0f} s when measured)")
        return meta["seconds"]
    store.unlink(missing_ok=True)
    rounds = []
    res = profile(
        cal, ("model", "block"), store, "litert", config=RECORDED, repeats=repeats, progress=True,
        on_round=lambda r, key, xs, slow, inner: rounds.append([r, key, list(xs), slow, inner]),
    )  # fmt: skip
    with open(trace, "w") as f:
        f.write(json.dumps({"seconds": res.seconds, "timed_seconds": res.timed_seconds}) + "\n")
        for rec in rounds:
            f.write(json.dumps(rec) + "\n")
    return res.seconds


def load_trace(trace: Path) -> dict:
    """{(repeat, key): [(samples, slow, inner), ...]} in round order."""
    out = defaultdict(list)
    for line in trace.read_text().splitlines()[1:]:
        r, key, xs, slow, inner = json.loads(line)
        out[(r, key)].append((xs, slow, inner))
    return out


def replay(batch: list[str], recs: dict, cfg: TimingConfig, ref_s: float) -> tuple[float, dict]:
    """Simulate one batch (its workloads' recorded rounds, in order) under stopping rule ``cfg``:
    ``(seconds of sampling and reference timings, {key: (samples, slow flags)})``. A workload stops
    where ``cfg`` says or where its recording ends (the recorded rule stopped it)."""
    elapsed, since_ref, r = 0.0, math.inf, 0
    active = [k for k in batch if recs.get(k)]
    got = {k: ([], []) for k in active}
    while active:
        if since_ref * 1e3 >= cfg.reference_every_ms:
            elapsed, since_ref = elapsed + ref_s, 0.0
        dur = 0.0
        for k in active:
            xs, slow, inner = recs[k][r]
            dur += sum(xs) * inner / 1e3
            got[k][0].extend(xs)
            got[k][1].extend([slow] * len(xs))
        elapsed += dur
        since_ref += dur
        r += 1
        active = [k for k in active if r < len(recs[k]) and not should_stop(*got[k], elapsed, cfg)]
    return elapsed, got


def rule_store(path: Path, template: Path, got: dict, cfg: TimingConfig) -> Path:
    """A store holding what rule ``cfg`` would have stored: ``got`` {(repeat, key): (samples, slow)}."""
    from hwlat.profiler.storage.store import Store

    path.unlink(missing_ok=True)
    with Store(template) as src:
        fp = src._query("SELECT fingerprint FROM devices")["fingerprint"].iloc[0]
        wl = src._query("SELECT key, granularity, spec, madds, params FROM workloads")
    with Store(path) as st:
        dev = st.add_device(json.loads(fp))
        for row in wl.itertuples():
            st.add_workload(row.key, row.granularity, json.loads(row.spec), row.madds, row.params)
        for (rep, key), (xs, slow) in got.items():
            normal = [x for x, s in zip(xs, slow) if not s]
            stats = summarize(normal if len(normal) >= cfg.min_samples else xs, 0, 1, time.time())
            st.add_measurement(key, dev, stats.as_dict(), "replay", repeat=rep)
    return path


def cv_fidelity(train_store: Path, truth_store: Path, seed: int = 0, folds: int = 3) -> dict:
    """The calibrated predictor, fitted on the networks of ``train_store`` outside each fold (with
    every block), scored on the fold's networks against their latency in ``truth_store``."""
    from hwlat.archs.codec import encode
    from hwlat.latency_models import TrainingData, make_predictor
    from hwlat.latency_models.metrics import metrics

    data, truth = (
        TrainingData.from_store(train_store, "litert"),
        TrainingData.from_store(truth_store, "litert"),
    )
    archs, y = data.archs(), data.latency_ms
    true = {encode(a): t for a, t in zip(truth.archs(), truth.latency_ms)}
    order = np.random.default_rng(seed).permutation(len(archs))
    yt, yp = [], []
    for f in range(folds):
        te = order[f::folds]
        tr = np.setdiff1d(order, te)
        pred = make_predictor("calibrated").fit(
            [archs[i] for i in tr], y[tr], pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
        )
        test = [archs[i] for i in te if encode(archs[i]) in true]
        yp.extend(pred.predict_many(test))
        yt.extend(true[encode(a)] for a in test)
    return metrics(np.asarray(yt), np.asarray(yp))


def floor(store: Path) -> dict | None:
    from hwlat.latency_models.evaluate import repeat_against_repeat
    from hwlat.profiler.storage.store import Store

    with Store(store) as st:
        raw = st.frame(granularity="model", repeats=True)
    return repeat_against_repeat(raw)


def fmt(m: dict) -> str:
    return (
        f"acc10 {m['acc10']:.2f}  acc5 {m['acc5']:.2f}  tau {m['kendall_tau']:.3f}  rmspe {m['rmspe']:5.1f} %"
    )


def calibration(args, out: Path) -> None:
    from hwlat.archs.calibration import calibration_set
    from hwlat.archs.space import get_space
    from hwlat.profiler.measure.profile import batches, group_workloads, profile

    n = 6 if args.quick else 24
    repeats = 2 if args.quick else CALIBRATION_REPEATS
    cal = calibration_set(get_space("large"), n, seed=0)
    print(f"\n2. the calibration set: {len(cal)} Large-space networks with their blocks, {repeats} repeats")
    store, trace = (
        out / f"calibration-recorded-{n}x{repeats}.db",
        out / f"calibration-recorded-{n}x{repeats}.jsonl",
    )
    wall = record(cal, store, trace, repeats)
    recs = load_trace(trace)
    grans, groups = group_workloads(cal, ("model", "block"))
    plan = [(r, [w.key for w in b]) for r in range(repeats) for b in batches(grans, groups, set(), 8)]
    ref_s = 3 * 1.0e-3  # three ~1 ms samples of the phase reference per timing
    sims = {}
    for name, cfg in RULES.items():
        t, got = 0.0, {}
        for r, keys in plan:
            dt, g = replay(keys, {k: recs[(r, k)] for k in keys if (r, k) in recs}, cfg, ref_s)
            t += dt
            got.update({(r, k): v for k, v in g.items()})
        sims[name] = (t, got, cfg)
    fixed = wall - sims[next(iter(RULES))][0]
    fl = floor(store)
    print(f"   recorded under the rule before this change: {wall:.0f} s ({wall / 60:.1f} min), of which "
          f"{fixed:.0f} s outside sampling (export, load, warm-up, store)")  # fmt: skip
    print(f"   noise floor, one repeat of a network against another: {fmt(fl) if fl else 'n/a'}")
    print(
        f"   {'rule (replayed on the recorded rounds)':46s} {'minutes':>7s} {'samples':>8s}   fidelity (3-fold, held-out networks)"
    )
    for name, (t, got, cfg) in sims.items():
        path = rule_store(out / "rule.db", store, got, cfg)
        m = cv_fidelity(path, store)
        samples = sum(len(xs) for xs, _ in got.values())
        print(f"   {name:46s} {(fixed + t) / 60:7.1f} {samples:8d}   {fmt(m)}")
    print(f"\n   today's default rule, measured for real in a fresh store: {_rule(TimingConfig())}")
    fresh = out / f"calibration-default-{n}x{repeats}.db"
    fresh.unlink(missing_ok=True)
    res = profile(cal, ("model", "block"), fresh, "litert", repeats=repeats, progress=True)
    m = cv_fidelity(fresh, store)
    verdict = (
        "met"
        if res.seconds <= CALIBRATION_TARGET_S
        else f"missed by {res.seconds - CALIBRATION_TARGET_S:.0f} s"
    )
    print(f"   {res.seconds:.0f} s ({res.seconds / 60:.1f} min; target <= {CALIBRATION_TARGET_S / 60:.0f} min: {verdict}), "
          f"share {res.measuring_share:.2f}; fidelity against the recorded run's latencies: {fmt(m)}")  # fmt: skip
    fl2 = floor(fresh)
    print(f"   its own noise floor: {fmt(fl2) if fl2 else 'n/a'}")


def _rule(cfg: TimingConfig) -> str:
    q = "median" if cfg.stop_quantile == 0.5 else f"p{cfg.stop_quantile * 100:.0f}"
    return f"{q} to {cfg.target:.0%}, cap {cfg.max_samples} samples / {cfg.max_seconds:g} s"


# --- 3. two slots --------------------------------------------------------------------------------
def slots(args, out: Path) -> None:
    import os

    from hwlat.archs.calibration import calibration_set
    from hwlat.archs.space import get_space
    from hwlat.profiler.measure import farm
    from hwlat.profiler.measure.profile import profile

    n = 3 if args.quick else 8
    cal = calibration_set(get_space("large"), 24, seed=0)[:n]
    print(f"\n3. two measuring slots: {n} calibration networks with their blocks, 1 repeat, a local Ray farm")
    runs = []
    for label, k in (("one slot", 1), ("two slots", 2), ("one process", 0), ("one slot again", 1)):
        path = out / f"slots-{len(runs)}.db"
        path.unlink(missing_ok=True)
        if k == 0:  # `hwlat profile calibration` without --ray
            r = profile(cal, ("model", "block"), path, "litert", progress=False)
        else:
            dev = farm.parse_device("litert", "litert", {})
            with farm.session(None, num_cpus=os.cpu_count(), resources={dev.resource: k}):
                res = farm.farm_profile(
                    cal, ("model", "block"), path, [dev], progress=False, parallel_slots=k > 1
                )
            r = res["litert"]
        runs.append((label, r, latencies(path)))
        print(
            f"   {label:15s}: {len(r.measured)} workloads in {r.seconds:5.1f} s, {r.timed_seconds:5.1f} s timed"
        )
    base = runs[0][2]
    for label, r, lat in runs[1:]:
        gap, off = log_gap(base, lat)
        print(f"   {label:15s} against the first one-slot run: median |difference| {gap:.1f} %, offset {off:+.1f} %; "
              f"wall ratio {r.seconds / runs[0][1].seconds:.2f}")  # fmt: skip


# --- 4, 5 -----------------------------------------------------------------------------------------
def predict(args, store: Path | None) -> None:
    import bench_predict_speed

    print("\n4. predict_many on new networks (benchmarks/bench_predict_speed.py)")
    if store is None or not store.exists():
        print("   skipped: no store (run the share section first)")
        return
    bench_predict_speed.bench(
        argparse.Namespace(store=str(store), n=1000 if args.quick else 3000, rounds=2, seed=0)
    )


def table(args) -> None:
    import bench_import_table

    print("\n5. import-table (benchmarks/bench_import_table.py)")
    bench_import_table.bench(argparse.Namespace(rows=2000 if args.quick else 50_000, seed=0))


SECTIONS = ("share", "calibration", "slots", "predict", "table")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="folder for the stores and the recorded rounds (reused)")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="small sets, for a smoke run")
    args = ap.parse_args()
    with stamp.results(
        __file__,
        {"only": args.only if args.only != list(SECTIONS) else None, "quick": args.quick},
        runtime="litert",
    ):
        bench(args)


def bench(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"stores in {out}")
        store = out / "share.db"
        if "share" in args.only:
            store = share(args, out)
        if "calibration" in args.only:
            calibration(args, out)
        if "slots" in args.only:
            slots(args, out)
        if "predict" in args.only:
            predict(args, store)
        if "table" in args.only:
            table(args)


if __name__ == "__main__":
    main()
