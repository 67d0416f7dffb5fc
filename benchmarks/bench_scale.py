"""Scale-out: NAS and NetAdapt speed-up on Ray workers, the two-device profiling farm against one
process, and how much one measurement disturbs another on a second core.

Prints, measured in one run on this machine with a local Ray cluster:
1. NAS candidates evaluated per minute with 1 and 2 Ray workers (small space, digits at 32 px,
   20 training steps per candidate, as `hwlat search` by default), and their ratio (goal >= 1.7);
2. the wall time of one NetAdapt step (every proposal fine-tuned) with 1 and 2 workers;
3. a two-"device" farm -- LiteRT and ONNX Runtime as two devices, each pinned to its own core --
   profiling the zoo grid's blocks into one store, against one process profiling both in turn;
4. interference: the same blocks measured by one slot alone, again alone (the noise floor), and
   by two slots at once on two cores; per workload the ratio to the first one-slot run, median
   over workloads. This is the number `hwlat.profiler.measure.farm.INTERFERENCE` quotes.

Reproduce on a quiet machine: .venv/bin/python benchmarks/bench_scale.py [--quick] [--only nas,...]
    [--farm-networks N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import SearchSpace, mobilenetv3
from hwlat.profiler.measure.profile import profile
from hwlat.profiler.measure.timing import TimingConfig
from hwlat.profiler.storage.store import Store

SECTIONS = ("nas", "netadapt", "farm", "interference")


def _grid(quick: bool) -> list:
    from hwlat.archs.zoo import GRID_RESOLUTIONS, V3_MULTIPLIERS

    mults = (0.5, 1.0) if quick else V3_MULTIPLIERS
    ress = (128,) if quick else GRID_RESOLUTIONS
    return [
        mobilenetv3(f, width_mult=m, resolution=r) for f in ("large", "small") for m in mults for r in ress
    ]


def _with_cluster(fn, **kw):
    from hwlat.profiler.measure import farm

    farm.connect(num_cpus=2, **kw)
    try:
        return fn()
    finally:
        farm.disconnect()


def nas_rate(quick: bool) -> None:
    from hwlat.search.evaluators import DigitsTask
    from hwlat.search.parallel import RayPool

    n = 4 if quick else 24
    print(
        f"\n1. NAS candidates per minute (small space, digits 32 px, 20 steps each, {n} distinct "
        f"candidates per run)"
    )
    task = DigitsTask(32, scratch_steps=20)
    space = SearchSpace.mobilenetv3_small(resolution=32, num_classes=10)
    rng = np.random.default_rng(0)
    archs = list({a.to_json(): a for a in (space.sample_arch(rng) for _ in range(3 * n))}.values())[:n]

    def run():
        rates = {}
        for workers in (1, 2):
            with RayPool(task, workers=workers, progress=False) as pool:
                pool.map(archs[:1])  # workers and the task in place before timing
                pool.cache.clear()
                t = time.perf_counter()
                pool.map(archs)
                rates[workers] = n / (time.perf_counter() - t) * 60
            print(f"   {workers} worker(s): {rates[workers]:6.1f} candidates/min")
        print(f"   ratio 2/1 workers: {rates[2] / rates[1]:.2f} (goal >= 1.7)")

    _with_cluster(run)


def netadapt_step(quick: bool, tmp: Path) -> None:
    from hwlat.archs import get_arch, summary
    from hwlat.latency_models import make_predictor
    from hwlat.search.evaluators import DigitsTask
    from hwlat.search.netadapt import NetAdaptConfig, candidates, netadapt
    from hwlat.search.parallel import RayPool

    print(
        "\n2. wall time of one NetAdapt step (mobilenetv3_small_050 on digits at 32 px, "
        "T = 20 fine-tune steps per proposal)"
    )
    task = DigitsTask(32, scratch_steps=20 if quick else 100)
    seed = task.adapt(get_arch("mobilenetv3_small_050"))
    archs = [seed] + [c[3] for c in candidates(seed)[::7]]
    pred = make_predictor("madds").fit(archs, [summary(a)["madds"] / 1e6 + 0.05 for a in archs])
    cfg = NetAdaptConfig(target_ms=float(pred.predict(seed)) * 0.9, short_steps=20, long_steps=0, max_steps=1)
    model = task.train(seed)

    def run():
        for workers in (1, 2):
            with RayPool(task, workers=workers, progress=False) as pool:
                res = netadapt(seed, model, task, pred, cfg, tmp / f"na{workers}", pool=pool)
            step = res.history["steps"][0]
            print(f"   {workers} worker(s): {step['seconds']:6.1f} s for {len(step['candidates'])} proposals")

    _with_cluster(run)


def farm_vs_serial(quick: bool, tmp: Path, networks: int | None = None) -> None:
    from hwlat.profiler.measure import farm

    archs = _grid(quick)
    if networks:  # an evenly spread subset of the grid
        archs = [archs[i] for i in np.linspace(0, len(archs) - 1, min(networks, len(archs))).astype(int)]
    cfg = TimingConfig(max_seconds=1.0) if quick else TimingConfig()
    print(f"\n3. the zoo grid's blocks ({len(archs)} networks) on LiteRT and ONNX Runtime into one store")
    t = time.perf_counter()
    for rt in ("litert", "onnxruntime"):
        profile(archs, "block", tmp / "serial.db", rt, config=cfg, progress=False)
    serial = time.perf_counter() - t
    devices = [farm.FarmDevice("litert", "litert"), farm.FarmDevice("onnxruntime", "onnxruntime")]

    def run():
        t = time.perf_counter()
        res = farm.farm_profile(
            archs, "block", tmp / "farm.db", devices, config=cfg, progress=False, parallel_slots=True
        )
        return time.perf_counter() - t, res

    parallel, res = _with_cluster(run, resources={d.resource: 1 for d in devices})
    n = {k: len(r.measured) for k, r in res.items()}
    with Store(tmp / "farm.db") as st:
        devs = st.frame()["device_id"].nunique()
    print(f"   one process, both runtimes in turn: {serial:7.1f} s")
    print(
        f"   farm, two devices on two cores:     {parallel:7.1f} s ({n}; {devs} devices in one "
        f"store); speed-up {serial / parallel:.2f}x"
    )


def _measure_on(core: int, archs, path: str, cfg: TimingConfig, start) -> None:
    os.sched_setaffinity(0, {core})
    start.wait()
    profile(archs, "block", path, "litert", config=cfg, progress=False, pin=False)


def _medians(path: Path) -> dict:
    with Store(path) as st:
        df = st.frame()
    return dict(zip(df["key"], df["latency_ms"]))


def interference(quick: bool, tmp: Path) -> None:
    archs = _grid(True if quick else False)[: 4 if quick else 12]
    cfg = TimingConfig(max_seconds=1.0) if quick else TimingConfig()
    cores = sorted(os.sched_getaffinity(0))[:2]
    print(
        f"\n4. interference: the blocks of {len(archs)} grid networks with LiteRT, one slot (core "
        f"{cores[-1]}) vs two slots at once (cores {cores})"
    )
    if len(cores) < 2:
        print("   needs two cores")
        return
    ctx = mp.get_context("spawn")

    def run(jobs):
        start = ctx.Barrier(len(jobs))
        ps = [ctx.Process(target=_measure_on, args=(c, archs, str(p), cfg, start)) for c, p in jobs]
        for p in ps:
            p.start()
        for p in ps:
            p.join()

    run([(cores[-1], tmp / "alone1.db")])
    run([(cores[-1], tmp / "alone2.db")])
    run([(cores[0], tmp / "pair0.db"), (cores[-1], tmp / "pair1.db")])
    base = _medians(tmp / "alone1.db")

    def ratio(path: Path) -> float:
        other = _medians(path)
        keys = sorted(set(base) & set(other))
        return float(np.median([other[k] / base[k] for k in keys]))

    floor = ratio(tmp / "alone2.db")
    pair = [ratio(tmp / "pair0.db"), ratio(tmp / "pair1.db")]
    print(f"   one slot again (noise floor):  {100 * (floor - 1):+6.1f} % median per workload")
    print(f"   two slots at once, core {cores[0]}:    {100 * (pair[0] - 1):+6.1f} %")
    print(f"   two slots at once, core {cores[-1]}:    {100 * (pair[1] - 1):+6.1f} %")
    print(f"   interference beyond the noise floor: {100 * (np.mean(pair) - floor):+.1f} points")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated of {SECTIONS}")
    ap.add_argument(
        "--farm-networks",
        type=int,
        help="farm: an evenly spread subset of this many grid networks (default: the whole grid, 60)",
    )
    args = ap.parse_args()
    only = args.only.split(",")
    config = {
        "quick": args.quick,
        "only": None if set(only) == set(SECTIONS) else only,
        "farm_networks": args.farm_networks,
    }
    with stamp.results(__file__, config, packages=("ray",)):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    only = args.only.split(",")
    print(f"bench_scale on {os.cpu_count()} cores" + (" (--quick: NOT for quoting)" if args.quick else ""))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "nas" in only:
            nas_rate(args.quick)
        if "netadapt" in only:
            netadapt_step(args.quick, tmp)
        if "farm" in only:
            farm_vs_serial(args.quick, tmp, args.farm_networks)
        if "interference" in only:
            interference(args.quick, tmp)


if __name__ == "__main__":
    main()
