"""How fast is analytic counting compared with fvcore on a built model?

NAS and NetAdapt loops ask for MAdds/params thousands of times; the analytic pass must be cheap.
Prints, for each zoo model at 224, the time of ``summary(arch)`` (pure integer maths) beside
building the torch model + fvcore's count, measured side by side in one run, and the ratio.

Reproduce: .venv/bin/python benchmarks/bench_counting.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import stamp  # benchmarks/stamp.py: writes the stamped results file
import torch
from fvcore.nn import FlopCountAnalysis

from hwlat.archs import get_arch, summary, zoo_names
from hwlat.archs.torch_builder import build_torch, fold_bn


def _time(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = ap.parse_args()
    with stamp.results(__file__, {}, runtime="torch", packages=("fvcore",)):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    x = torch.randn(1, 3, 224, 224)
    print(f"{'model':32s} {'analytic_ms':>12s} {'fvcore_ms':>10s} {'ratio':>8s}")
    ratios = []
    for name in zoo_names():
        arch = get_arch(name)
        t_a = _time(lambda: summary(arch), 50)

        def fv():
            m = fold_bn(build_torch(arch, seed=0))
            fca = FlopCountAnalysis(m, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return fca.total()

        t_f = _time(fv, 3)
        ratios.append(t_f / t_a)
        print(f"{name:32s} {t_a * 1e3:12.3f} {t_f * 1e3:10.1f} {t_f / t_a:8.0f}x")
    print(f"median speed-up of analytic counting over build+fvcore: {statistics.median(ratios):.0f}x")
    t_grid = time.perf_counter()
    n = 0
    from hwlat.archs.zoo import paper_grid

    for name, r in paper_grid():
        summary(get_arch(name, resolution=r))
        n += 1
    dt = time.perf_counter() - t_grid
    print(
        f"zoo grid (2 families x 5 multipliers x 6 resolutions = {n} archs): {dt * 1e3:.1f} ms "
        f"({dt / n * 1e3:.2f} ms per arch, factory + count)"
    )


if __name__ == "__main__":
    main()
