"""Speed of ``hwlat profile import-table``: rows per second of a first import and of a re-import.

Builds a table of ``--rows`` architectures sampled (seeded, uniformly per position) from the
``fbnet_cifar100`` space with SYNTHETIC latencies (a seeded random number per row, not a device's:
this benchmark times the import, not a device), imports it into a fresh store, then imports the
same file again (which must add nothing and write nothing), and prints rows/s of both beside the
target of 10,000 rows/s.

    python benchmarks/bench_import_table.py               # 50,000 rows
    python benchmarks/bench_import_table.py --rows 5000   # a smoke run

Times are wall clock on whatever else the machine is doing: compare runs taken side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stamp  # benchmarks/stamp.py: writes the stamped results file

TARGET_ROWS_PER_S = 10_000
SPACE = "fbnet_cifar100"


def synthetic_table(path: Path, rows: int, seed: int) -> Path:
    """``rows`` distinct architectures of the space with synthetic latencies (ms)."""
    from hwlat.archs.space import get_space

    sp = get_space(SPACE)
    rng = np.random.default_rng(seed)
    vecs = np.unique(rng.integers(0, np.array(sp.dims), size=(int(rows * 1.01) + 10, len(sp.dims))), axis=0)
    vecs = vecs[rng.permutation(len(vecs))[:rows]]
    df = pd.DataFrame(vecs, columns=[f"op{i}" for i in range(len(sp.dims))])
    df.insert(0, "idx", np.arange(len(df)))
    df["synthetic_ms"] = np.round(rng.uniform(5.0, 50.0, len(df)), 3)  # SYNTHETIC, not measured
    df.to_csv(path, index=False)
    return path


def bench(args) -> None:
    from hwlat.profiler.storage.tables import import_table

    with tempfile.TemporaryDirectory() as tmp:
        csv = synthetic_table(Path(tmp) / "synthetic.csv", args.rows, args.seed)
        db = Path(tmp) / "store.db"
        print(f"table: {args.rows} architectures of {SPACE} (seed {args.seed}), SYNTHETIC latencies")
        print(f"target: {TARGET_ROWS_PER_S:,} rows/s")
        for what in ("import", "re-import"):
            t0 = time.perf_counter()
            c = import_table(csv, db, "synthetic", "synthetic_ms", space=SPACE, runtime="synthetic")
            dt = time.perf_counter() - t0
            rate = c["rows"] / dt
            print(
                f"{what:9s}: {c['rows']} rows in {dt:.2f} s = {rate:,.0f} rows/s "
                f"({rate / TARGET_ROWS_PER_S:.2f}x the target); {c['added']} added, "
                f"{c['skipped']} already stored"
            )
        print(f"store size: {db.stat().st_size / 1e6:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with stamp.results(__file__, {"rows": args.rows, "seed": args.seed}):
        bench(args)


if __name__ == "__main__":
    main()
