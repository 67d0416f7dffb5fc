"""Profiler benchmark: throughput, noise floor, end-to-end latencies, cost of the zoo grid.

Prints, measured in one run on this machine (single thread, pinned to one core):
1. unique workloads measured per minute at the default precision (2 % CI of the median), for each
   runtime and granularity;
2. the noise floor: CV of repeated whole-model measurements of V3-Large 1.0 and V3-Small 1.0 on
   each runtime (fresh measurement each repeat);
3. end-to-end LiteRT latencies of V3-Large 1.0 / V3-Small 1.0 and their ratio beside the paper's
   Pixel-1 ratio (51 / 15.8 ms);
4. the wall time to profile every block that the zoo grid needs (Large and Small × 5 multipliers ×
   resolutions 96–256) with LiteRT.

Reproduce: .venv/bin/python benchmarks/bench_profiler.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import get_arch, mobilenetv3
from hwlat.archs.pieces import blocks
from hwlat.profiler.measure.profile import profile
from hwlat.profiler.storage.store import Store

RUNTIMES = ("litert", "onnxruntime", "torch")


def throughput(tmp: Path, quick: bool) -> None:
    print("\n1. unique workloads measured per minute (default precision: 95 % CI of median <= 2 %)")
    archs = [get_arch("mobilenetv3_small_100"), get_arch("mobilenetv3_large_075", resolution=192)]
    if quick:
        archs = archs[:1]
    print(f"   on {', '.join(a.name + '@' + str(a.resolution) for a in archs)}")
    print(f"   {'runtime':12s} {'granularity':11s} {'workloads':>9s} {'seconds':>8s} {'per min':>8s}")
    for rt in RUNTIMES:
        for gran in ("kernel", "block", "model"):
            t = time.perf_counter()
            res = profile(archs, gran, tmp / f"tp-{rt}.db", rt, progress=False)
            dt = time.perf_counter() - t
            n = len(res.measured)
            print(f"   {rt:12s} {gran:11s} {n:9d} {dt:8.1f} {n / dt * 60:8.1f}")


def noise_floor(tmp: Path, repeats: int) -> dict:
    print(f"\n2. noise floor: CV of {repeats} repeated model measurements (each a fresh store)")
    medians = {}
    for rt in RUNTIMES:
        for name in ("mobilenetv3_large_100", "mobilenetv3_small_100"):
            arch = get_arch(name)
            vals = []
            for i in range(repeats):
                path = tmp / f"noise-{rt}-{name}-{i}.db"
                profile([arch], "model", path, rt, progress=False)
                with Store(path) as st:
                    vals.append(float(st.frame()["median_ms"].iloc[0]))
            cv = statistics.stdev(vals) / statistics.mean(vals)
            medians[(rt, name)] = statistics.median(vals)
            print(
                f"   {rt:12s} {name:24s} median {statistics.median(vals):8.3f} ms  CV {cv * 100:5.2f} %  "
                f"(min {min(vals):.3f}, max {max(vals):.3f})"
            )
    return medians


def end_to_end(medians: dict) -> None:
    large, small = medians[("litert", "mobilenetv3_large_100")], medians[("litert", "mobilenetv3_small_100")]
    print("\n3. end-to-end LiteRT (1 thread, XNNPACK) at 224 px")
    print(
        f"   V3-Large 1.0 {large:.3f} ms, V3-Small 1.0 {small:.3f} ms, ratio {large / small:.2f} "
        f"(paper Pixel-1: 51 / 15.8 ms = {51 / 15.8:.2f})"
    )


def zoo_grid(tmp: Path, quick: bool) -> None:
    from hwlat.archs.zoo import GRID_RESOLUTIONS, V3_MULTIPLIERS

    mults = V3_MULTIPLIERS
    ress = (96, 128) if quick else GRID_RESOLUTIONS
    archs = [
        mobilenetv3(f, width_mult=m, resolution=r) for f in ("large", "small") for m in mults for r in ress
    ]
    print(
        f"\n4. every block of the zoo grid: {len(archs)} archs (Large/Small x {len(mults)} multipliers x "
        f"resolutions {ress[0]}-{ress[-1]}), LiteRT"
    )
    t = time.perf_counter()
    res = profile(archs, "block", tmp / "grid.db", "litert", progress=True)
    dt = time.perf_counter() - t
    per_arch = sum(len(blocks(a)) for a in archs)
    print(
        f"   {res.total} distinct blocks (of {per_arch} block instances) measured in {dt:.0f} s "
        f"({dt / 60:.1f} min, {res.total / dt * 60:.0f} blocks/min)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sets, for a smoke run")
    args = ap.parse_args()
    with stamp.results(__file__, {"quick": args.quick}):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        throughput(tmp, args.quick)
        medians = noise_floor(tmp, 3 if args.quick else 5)
        end_to_end(medians)
        zoo_grid(tmp, args.quick)


if __name__ == "__main__":
    main()
