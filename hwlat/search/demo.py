"""The issue's demonstration: NetAdapt vs uniform width scaling on digits, and NAS with each controller.

    python -m hwlat.search.demo --predictor pred.json --out DIR [--seed-arch mobilenetv3_small_050]

Writes ``DIR/netadapt/history.json``, ``DIR/nas_<controller>/history.json`` and ``DIR/demo.json``
(all numbers). Latency targets are predicted; the seed, the NetAdapt result and the uniform
baseline are also measured with LiteRT on this machine (``DIR/measure.db``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from hwlat.archs import SearchSpace, get_arch, mobilenetv3, summary
    from hwlat.latency_models import load
    from hwlat.search.evaluators import DigitsTask
    from hwlat.search.nas import W_SMALL, CachedAccuracy, latency_function, make_controller, search
    from hwlat.files import atomic_write_json as write_json_atomic
    from hwlat.search.netadapt import NetAdaptConfig, measure_litert, netadapt

    ap = argparse.ArgumentParser()
    ap.add_argument("--predictor", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed-arch", default="mobilenetv3_small_050")
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--seed-steps", type=int, default=150)
    ap.add_argument("--short-steps", type=int, default=5)
    ap.add_argument("--long-steps", type=int, default=100)
    ap.add_argument("--delta", type=float, default=0.03)
    ap.add_argument("--ratio", type=float, default=0.8)
    ap.add_argument("--nas-budget", type=int, default=200)
    ap.add_argument("--nas-steps", type=int, default=3, help="training steps of the cheap NAS evaluator")
    ap.add_argument("--nas-resolution", type=int, default=32, help="input size of the cheap NAS evaluator")
    ap.add_argument("--nas-controllers", default="random,evolution,rl", help="comma list")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the evaluators")
    ap.add_argument("--skip", default="", help="comma list: netadapt,uniform,nas")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, a.skip.split(",")))
    t0 = time.time()
    pred = load(a.predictor)
    print(f"loaded predictor in {time.time() - t0:.0f} s", flush=True)
    res: dict = {}
    rpath = out / "demo.json"
    if rpath.exists():
        res = json.loads(rpath.read_text())
    mdb = out / "measure.db"
    task = DigitsTask(a.resolution, scratch_steps=a.seed_steps, batch_size=32)
    seed = task.adapt(get_arch(a.seed_arch))
    seed_pred = pred.predict(seed)
    if "netadapt" not in skip:
        seed_meas = measure_litert(seed, mdb)
        target = a.ratio * seed_pred
        cfg = NetAdaptConfig(target_ms=target, delta_fraction=a.delta, short_steps=a.short_steps,
                             long_steps=a.long_steps)
        t = time.time()
        r = netadapt(seed, None, task, pred, cfg, out / "netadapt",
                     callback=lambda s: print(f"  step {s['step']}: {s['chosen']['kind']} {s['chosen']['key']}"
                                              f"->{s['chosen']['width']} {s['predicted_ms']:.3f} ms "
                                              f"acc {s['accuracy']:.3f}", flush=True))
        fin = r.history["final"]
        fin_meas = measure_litert(r.arch, mdb)
        res["netadapt"] = {"seed": a.seed_arch, "resolution": a.resolution, "seed_predicted_ms": seed_pred,
                           "seed_measured_ms": seed_meas, "seed_accuracy": r.history["seed"]["accuracy"],
                           "target_predicted_ms": target, "final_predicted_ms": fin["predicted_ms"],
                           "final_measured_ms": fin_meas, "measured_ratio": fin_meas / seed_meas,
                           "final_accuracy": fin["accuracy"], "accuracy_before_long": fin["accuracy_before_long"],
                           "steps": len(r.history["steps"]), "seconds": time.time() - t,
                           "trajectory": [(s["predicted_ms"], s["accuracy"]) for s in r.history["steps"]],
                           "final_arch": fin["arch"], "final_params": fin["params"]}
        write_json_atomic(rpath, res)
        print(json.dumps({k: v for k, v in res["netadapt"].items() if k != "trajectory"}, indent=1), flush=True)
    if "uniform" not in skip and "netadapt" in res:
        target = res["netadapt"]["target_predicted_ms"]
        fam = "small" if "small" in a.seed_arch else "large"
        best = None
        for m in np.arange(0.50, 0.19, -0.025):
            arch = task.adapt(mobilenetv3(fam, width_mult=float(m)))
            if pred.predict(arch) <= target:
                best = (float(m), arch)
                break
        if best:
            m, arch = best
            model = task.train(arch, a.seed_steps + a.long_steps)
            res["uniform"] = {"width_mult": m, "predicted_ms": pred.predict(arch),
                              "measured_ms": measure_litert(arch, mdb), "accuracy": task.accuracy(model),
                              "train_steps": a.seed_steps + a.long_steps, "params": summary(arch)["params"]}
            write_json_atomic(rpath, res)
            print(json.dumps(res["uniform"], indent=1), flush=True)
    if "nas" not in skip:
        space = SearchSpace.mobilenetv3_small(resolution=a.nas_resolution, num_classes=10)
        lat = latency_function(pred, space)
        # cheap: few steps, BatchNorm statistics recalibrated on one batch of 256 training images
        cheap = DigitsTask(a.nas_resolution, scratch_steps=a.nas_steps, batch_size=32, bn_batches=1,
                           threads=a.threads)
        ref = np.median(lat([space.sample(np.random.default_rng(7)) for _ in range(500)]))
        res["nas"] = {"space": f"mobilenetv3_small @{a.nas_resolution}px", "target_ms": float(ref), "w": W_SMALL,
                      "evaluator": f"digits {a.nas_resolution}px, {a.nas_steps} training steps from scratch"}
        for c in a.nas_controllers.split(","):
            t = time.time()
            h = search(space, make_controller(c, space), CachedAccuracy(cheap.evaluate), lat, float(ref),
                       a.nas_budget, np.random.default_rng(0), w=W_SMALL, out_dir=out / f"nas_{c}")
            b = h["best"]
            rw = [x["reward"] for x in h["candidates"]]
            res["nas"][c] = {"best_reward": b["reward"], "best_accuracy": b["accuracy"],
                             "best_predicted_ms": b["predicted_ms"], "candidates": len(rw),
                             "mean_reward_first50": float(np.mean(rw[:50])),
                             "mean_reward_last50": float(np.mean(rw[-50:])), "seconds": time.time() - t}
            write_json_atomic(rpath, res)
            print(c, json.dumps(res["nas"][c]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
