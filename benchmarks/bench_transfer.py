"""Real ARM devices from the published FBNet table: predictors learned from N end-to-end latencies.

Data: ``data/fbnet_cifar100_latency_ms.csv`` (4,000 FBNet architectures, CIFAR-100 setting; see
``data/README.md``). Published numbers only: nothing is timed here, so the results do not depend on
this machine. For each ARM target column (``samsung_a50``, ``pixel2``, ``pixel3``, ``raspi4``) and
N in {5, 10, 20, 50, 100, 900} it prints acc5, acc10, Spearman and Kendall τ on held-out
architectures of

* ``madds``   — the MAdds proxy (latency = a·MAdds + b) fitted on the N networks;
* ``onehot``  — ridge on the one-hot encoding of the 22 block choices, log latency, alpha by CV;
* ``e2e``     — hwlat's ``e2e`` predictor fitted on the N networks;
* ``tr:DEV``  — ``transfer`` from the ``e2e`` predictor of another ARM device DEV (fitted on all
  training rows of DEV), learning from the N networks of the target;
* ``tr:all``  — ``transfer`` combining every other ARM device;
* ``tr:all*`` — the same with the N networks chosen by ``hwlat suggest`` from the training pool
  instead of at random;
* ``tr:litert`` / ``tr:all+litert`` — with ``--litert-pred PATH``: transfer from this machine's
  LiteRT predictor of the CIFAR FBNet space (alone, and added to the ARM sources).

A last row per target, N = 3200, is the reference the targets are set against: ``onehot`` and
``e2e`` fitted on every training row.

Protocol: per seed, a random 80/20 split by architecture (800 test rows, never used for fitting or
for choosing hyper-parameters: every CV runs inside the N training networks); the N networks are the
first N of a seeded permutation of the 3,200 training rows. Sources are fitted on the training rows
only. Numbers are means over ``--seeds`` splits.

Reproduce: .venv/bin/python benchmarks/bench_transfer.py [--seeds 3] [--litert-pred PATH] [--csv F]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import stamp  # benchmarks/stamp.py: writes the stamped results file
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from hwlat.errors import ExtrapolationWarning
from hwlat.latency_models import EndToEnd, MAddsProxy, Transfer, load
from hwlat.latency_models.metrics import metrics
from hwlat.latency_models.suggest import suggest
from hwlat.paper import fbnet_latencies

# the published table's architectures, decoded as the shipped tables' build decodes them
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from build_shipped_predictors import fbnet_archs

TARGETS = ("samsung_a50", "pixel2", "pixel3", "raspi4")
NS = (5, 10, 20, 50, 100, 900)
METRICS = ("acc5", "acc10", "spearman", "kendall_tau")
TEST = 800


def onehot(ops: np.ndarray) -> np.ndarray:
    X = np.zeros((len(ops), ops.shape[1] * 9))
    for i in range(ops.shape[1]):
        X[np.arange(len(ops)), 9 * i + ops[:, i]] = 1.0
    return X


def score(y, p) -> dict:
    m = metrics(y, p)
    return {k: m[k] for k in METRICS}


def run_seed(seed, archs, ops, df, litert, targets, ns, log) -> list[dict]:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(df))
    te, pool = perm[:TEST], perm[TEST:]  # pool: the training rows, in a seeded order
    A = lambda idx: [archs[i] for i in idx]  # noqa: E731
    t0 = time.perf_counter()
    sources = {
        c: EndToEnd().fit(A(pool), df[c].to_numpy(float)[pool], fingerprint={"name": c}) for c in TARGETS
    }
    log(
        f"seed {seed}: source e2e predictors of {', '.join(TARGETS)} on {len(pool)} rows "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    X = onehot(ops)
    rows = []
    for tgt in targets:
        y = df[tgt].to_numpy(float)
        others = [sources[c] for c in TARGETS if c != tgt]
        columns = {f"tr:{c}": [sources[c]] for c in TARGETS if c != tgt}
        columns["tr:all"] = others
        if litert is not None:
            columns["tr:litert"] = [litert]
            columns["tr:all+litert"] = others + [litert]
        for n in ns:
            t = time.perf_counter()
            tr = pool[:n]
            res = {
                "madds": MAddsProxy().fit(A(tr), y[tr]).predict_many(A(te)),
                "onehot": np.exp(
                    RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X[tr], np.log(y[tr])).predict(X[te])
                ),
                "e2e": EndToEnd().fit(A(tr), y[tr]).predict_many(A(te)),
            }
            for name, srcs in columns.items():
                res[name] = Transfer(sources=srcs).fit(A(tr), y[tr]).predict_many(A(te))
            if n <= 100:  # the N networks chosen by suggest from the training pool
                picks = suggest(others, "fbnet_cifar100", n, candidates=[tuple(ops[i]) for i in pool])
                idx = {tuple(ops[i]): i for i in pool}
                sug = [idx[p.vector] for p in picks]
                res["tr:all*"] = Transfer(sources=others).fit(A(sug), y[sug]).predict_many(A(te))
            for name, p in res.items():
                rows.append({"seed": seed, "target": tgt, "n": n, "predictor": name, **score(y[te], p)})
            log(f"  {tgt} N={n}: {time.perf_counter() - t:.0f} s")
        # the references the targets are set against: one-hot ridge and e2e on every training row
        ref = {
            "onehot": np.exp(
                RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X[pool], np.log(y[pool])).predict(X[te])
            ),
            "e2e": EndToEnd().fit(A(pool), y[pool]).predict_many(A(te)),
        }
        for name, p in ref.items():
            rows.append({"seed": seed, "target": tgt, "n": len(pool), "predictor": name, **score(y[te], p)})
    return rows


def table(res: pd.DataFrame) -> str:
    first = [
        "madds",
        "onehot",
        "e2e",
        *(f"tr:{c}" for c in TARGETS),
        "tr:all",
        "tr:all*",
        "tr:litert",
        "tr:all+litert",
    ]
    order = [c for c in first if c in set(res["predictor"])]
    out = []
    for tgt, g in res.groupby("target", sort=False):
        mean = g.groupby(["n", "predictor"])[list(METRICS)].mean()
        out.append(f"\n== {tgt} (mean of {g['seed'].nunique()} splits, {TEST} test architectures each)")
        long = mean.stack().rename("v").reset_index().rename(columns={"level_2": "metric"})
        wide = long.pivot_table(index=["n", "metric"], columns="predictor", values="v", sort=False)
        wide = wide[[c for c in order if c in wide.columns]]
        wide = wide.reindex(pd.MultiIndex.from_product([sorted(g["n"].unique()), METRICS]))
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            out.append(wide.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="random splits to average (default 3)")
    ap.add_argument("--litert-pred", help="this machine's LiteRT predictor of fbnet_cifar100 (a source)")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--ns", default=",".join(map(str, NS)))
    ap.add_argument("--csv", help="also write every (seed, target, N, predictor) row to this CSV")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    config = {
        "seeds": args.seeds,
        "litert_pred": bool(args.litert_pred),
        "targets": None if args.targets == ",".join(TARGETS) else args.targets.split(","),
        "ns": None if args.ns == ",".join(map(str, NS)) else args.ns.split(","),
    }
    with stamp.results(__file__, config, args=argv):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    # fitted on 5-100 networks, the baselines extrapolate to some test networks by design: it is
    # what the table measures, so the warnings would only repeat it
    warnings.simplefilter("ignore", ExtrapolationWarning)
    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, flush=True))
    t0 = time.perf_counter()
    df = fbnet_latencies()
    ops = df[[f"op{i}" for i in range(22)]].to_numpy()
    archs = fbnet_archs()
    litert = load(args.litert_pred) if args.litert_pred else None
    log(
        f"{len(archs)} architectures decoded ({time.perf_counter() - t0:.0f} s)"
        + ("" if litert else "; no --litert-pred: the tr:litert columns are skipped")
    )
    rows = []
    with threadpool_limits(1):
        for seed in range(args.seeds):
            rows += run_seed(
                seed,
                archs,
                ops,
                df,
                litert,
                args.targets.split(","),
                [int(n) for n in args.ns.split(",")],
                log,
            )
    res = pd.DataFrame(rows)
    if args.csv:
        res.to_csv(args.csv, index=False)
    print(table(res))
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
