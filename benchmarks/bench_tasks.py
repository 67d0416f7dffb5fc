"""The paper's detection and segmentation networks (Section 6) on this machine, beside the paper.

Measures, whole and with LiteRT on one core, every SSDLite network of Table 6 at 320×320 and the
LR-ASPP networks of Tables 7/8 at half Cityscapes resolution (512×1024; ``--full`` adds
1024×2048), plus the non-reduced LR-ASPP networks for the reduced-tail ablation. Each network is
measured ``--repeats`` times in fresh interpreters, the repeats in separate passes over all the
networks (minutes apart), so a slow phase of the machine cannot decide one network alone.

Printed: per network, the latency here (median of the repeats) and the spread of the repeats (the
noise floor of this run), the paper's phone latency and published accuracy, and the ratio here /
paper; then the reduced-tail ablation, the latency saved here beside the saving the paper reports
(Table 6 for detection; Table 7 rows 5 → 6 for segmentation, which use R-ASPP).

Reproduce (quiet machine): .venv/bin/python benchmarks/bench_tasks.py --store out/tasks.db [--full]
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import decode, encode, get_arch
from hwlat.dashboards import frames as D
from hwlat.latency_models.training_data import phase_normalised
from hwlat.paper import task_published
from hwlat.profiler.measure.profile import profile
from hwlat.profiler.storage.store import aggregate_repeats, open_store


def networks(full: bool) -> list:
    """Every Tables 6–8 network at 320×320 / 512×1024 (and 1024×2048 with ``full``), and the pairs
    of the reduced-tail ablation."""
    pub = task_published()
    keep = pub if full else pub[pub["resolution"] != "1024x2048"]
    archs = {a: decode(a, name=n) for a, n in zip(keep["arch"], keep["name"])}
    for _, name, hw, _ in D.REDUCED_TAIL_PAIRS:
        for n in (name, name + "_reduced"):
            a = get_arch(n, resolution=hw)
            archs.setdefault(encode(a), a)
    return list(archs.values())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="out/tasks.db", help="measurement store (created; resumes)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also the 1024x2048 rows of Tables 7/8")
    args = ap.parse_args(argv)
    with stamp.results(__file__, {"repeats": args.repeats, "full": args.full}, args=argv, runtime="litert"):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    archs = networks(args.full)
    t0 = time.perf_counter()
    profile(archs, "model", args.store, "litert", repeats=args.repeats)
    wall = time.perf_counter() - t0
    with open_store(args.store, readonly=True) as st:
        reps = st.frame(runtime="litert", granularity="model", repeats=True)
    # as measured, and each repeat rescaled to the typical phase by the reference timed in its rounds
    frames = {
        "": aggregate_repeats(reps),
        "norm_": aggregate_repeats(reps.assign(latency_ms=phase_normalised(reps))),
    }
    pts, tails = None, {}
    for prefix, frame in frames.items():
        spread = dict(zip(frame["spec"].map(lambda s: json.loads(s)["arch"]), frame["spread_pct"]))
        p = D.task_points(D.models(frame))
        p = p[p["source"] == "measured"].assign(spread_pct=lambda d: d["arch"].map(spread))
        p = p.rename(columns={"here_ms": prefix + "here_ms", "spread_pct": prefix + "spread_pct"})
        pts = p if pts is None else pts.merge(p[["arch", "norm_here_ms", "norm_spread_pct"]], on="arch")
        tails[prefix] = D.reduced_tail(D.models(frame))
    pts["norm_over_paper"] = pts["norm_here_ms"] / pts["paper_ms"]
    ref = reps["ref_ms"].dropna()
    pd.set_option("display.width", 220)
    print(
        f"# LiteRT 1 thread, {len(archs)} networks x {args.repeats} repeats, {wall / 60:.1f} min; "
        f"store {args.store}"
    )
    print(
        f"# reference workload in the same rounds: p10-p90 {ref.quantile(0.1):.3f}-{ref.quantile(0.9):.3f} ms "
        f"(+{100 * (ref.quantile(0.9) / ref.quantile(0.1) - 1):.0f} %); norm_ = each repeat x median(ref)/ref"
    )
    print("# spread_pct: (max - min) / median of the repeats, the noise floor of this run")
    print(
        pts[
            [
                "table",
                "model",
                "resolution",
                "here_ms",
                "spread_pct",
                "norm_here_ms",
                "norm_spread_pct",
                "paper_ms",
                "paper_device",
                "norm_over_paper",
                "metric",
                "accuracy",
            ]
        ].to_string(index=False, float_format=lambda x: f"{x:.2f}")
    )
    print("\n# reduced tail (blocks between C4 and C5 at half width): latency saved, here and in the paper")
    t = tails[""].merge(
        tails["norm_"][["network", "saving_pct"]].rename(columns={"saving_pct": "norm_saving_pct"}),
        on="network",
    )
    print(t.to_string(index=False, float_format=lambda x: f"{x:.1f}"))


if __name__ == "__main__":
    main()
