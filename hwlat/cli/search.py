"""``hwlat netadapt`` and ``hwlat search``: wire with ``add_parsers(sub)`` on the main subparsers.

Functions return an exit code; bad input raises ``ValueError`` (or an
:class:`~hwlat.errors.HwlatError`) with a one-line message.
"""
from __future__ import annotations

import sys
from pathlib import Path


def load_predictor(path: str, runtime: str | None, allow_other: bool):
    """Load a predictor file (or a shipped ``@NAME``) and check it is for this machine and
    ``runtime`` (None: the predictor's own): a mismatch fails, or warns with ``allow_other``. A
    predictor of a device imported from a table (``@raspi4``, a phone's ``e2e``) is for that device,
    which is what the search targets: no check."""
    from hwlat.latency_models import load
    from hwlat.profiler.measure.runners import get_runner

    if not path.startswith("@") and not Path(path).is_file():
        raise ValueError(f"{path}: no such predictor file (hwlat fit ... -o {path})")
    pred = load(path)
    if (pred.fingerprint_ or {}).get("imported"):   # a device measured elsewhere: the search targets it
        return pred
    runtime = runtime or pred.runtime_ or "litert"
    try:
        fp = get_runner(runtime).fingerprint()
    except ImportError as e:
        raise ValueError(f"runtime {runtime!r} is not available here ({e})") from None
    pred.check_device(fp, runtime, strict=not allow_other)
    return pred


EXIT_SHORT = 3
"""Exit status of a run that finished short of its target: its best network and history are written."""


def _task(spec: str, resolution: int | None, args, steps_attr: str, **kw):
    from hwlat.search.evaluators import make_task

    return make_task(spec, resolution, scratch_steps=getattr(args, steps_attr), seed=args.seed,
                     progress=args.progress, **kw)


def _resumable(out: Path, what: str, run):
    """``run()``; on Ctrl-C say that ``out/history.json`` keeps every finished step, then re-raise."""
    try:
        return run()
    except KeyboardInterrupt:
        print(f"hwlat: {what} interrupted; {out / 'history.json'} holds every finished step; "
              f"run the same command to resume", file=sys.stderr)
        raise


def _netadapt(args) -> int:
    from hwlat.archs import load_arch
    from hwlat.search.netadapt import (NetAdaptConfig, channel_floor, describe_step, measure_litert_side_by_side,
                                       netadapt, outcome, record_result)

    if (args.target_ratio is None) == (args.target_ms is None):
        raise ValueError("give exactly one of --target-ratio R (0 < R < 1) or --target-ms T")
    if args.target_ratio is not None and not (0 < args.target_ratio < 1):
        raise ValueError(f"--target-ratio must be between 0 and 1 (exclusive), got {args.target_ratio}")
    pred = load_predictor(args.predictor, args.runtime, args.allow_other_device)
    task = _task(args.task, args.resolution, args, "seed_steps", holdout_fraction=args.holdout)
    arch = task.adapt(load_arch(args.arch))
    floor = channel_floor(arch, pred)
    target = args.target_ms if args.target_ms is not None else args.target_ratio * floor.seed_ms
    print(f"target {target:.3f} ms predicted; {floor.describe()}")
    floor.check(target)
    cfg = NetAdaptConfig(target_ms=float(target), delta_fraction=args.delta, decay=args.decay,
                         short_steps=args.short_steps, long_steps=args.long_steps, criterion=args.criterion,
                         seed=args.seed, **{k: getattr(args, k) for k in ("min_proposals", "max_steps")
                                            if getattr(args, k) is not None})
    out = Path(args.out)

    print(f"proposals ranked on {task.holdout_name}")

    def show(step):
        print("\n".join(describe_step(step)))

    with _pool(args, task, "proposals") as pool:
        res = _resumable(out, "netadapt", lambda: netadapt(arch, None, task, pred, cfg, out, callback=show,
                                                           pool=pool))
    fin = res.history["final"]
    if args.measure:   # the seed and the result side by side, so their ratio does not hang on a phase
        seed_ms, ms = measure_litert_side_by_side([arch, res.arch], out / "measure.db", repeats=3)
        fin = record_result(out, measured_ms=ms, seed_measured_ms=seed_ms)["final"]
    seed = res.history["seed"]
    print(f"seed {seed['predicted_ms']:.3f} ms predicted"
          + (f" / {fin['seed_measured_ms']:.3f} ms measured" if "seed_measured_ms" in fin else "")
          + f", acc {seed['accuracy']:.3f} -> final {fin['predicted_ms']:.3f} ms "
          f"predicted" + (f", {fin['measured_ms']:.3f} ms measured" if "measured_ms" in fin else "")
          + f", acc {fin['accuracy']:.3f} after long-term fine-tune; wrote {out / 'arch.json'} and "
          f"{out / 'history.json'}")
    print(outcome(res.history))
    return 0 if fin["reached_target"] else EXIT_SHORT


def _search(args) -> int:
    import numpy as np

    from hwlat.archs.space import get_space
    from hwlat.files import atomic_write_text
    from hwlat.search.nas import W_DEFAULT, W_SMALL, CachedAccuracy, make_controller, search

    pred = load_predictor(args.predictor, args.runtime, args.allow_other_device)
    task = _task(args.task, args.resolution, args, "train_steps")
    space = get_space(args.space, resolution=task.resolution, num_classes=task.num_classes)

    def factory(resolution=None, num_classes=None):
        return get_space(args.space, resolution=resolution, num_classes=num_classes)

    lat, lat_res = _deployed_latency(pred, factory, task, args)
    w = args.w if args.w is not None else (W_SMALL if args.space == "small" else W_DEFAULT)
    ctrl = make_controller(args.controller, space, seed=args.seed)
    out = Path(args.out)

    def show(ev):
        from tqdm import tqdm

        b = ev["best"]
        tqdm.write(f"{ev['done']:5d}/{ev['budget']}: best reward {b['reward']:.4f} "
                   f"(acc {b['accuracy']:.3f}, {b['predicted_ms']:.3f} ms at {lat_res} px)")

    meta = {"task": args.task, "train_steps": args.train_steps, "seed": args.seed,
            "latency_resolution": lat_res}
    with _pool(args, task, "candidates") as pool:
        hist = _resumable(out, "search", lambda: search(
            space, ctrl, CachedAccuracy(task.evaluate), lat, args.target_ms, args.budget,
            np.random.default_rng(args.seed), w=w, form=args.form, batch=args.batch, out_dir=out,
            callback=show, meta=meta, pool=pool))
    best = hist["best"]
    arch = space.decode(best["vector"])
    atomic_write_text(out / "arch.json", arch.to_json())
    print(f"{args.controller}: best of {len(hist['candidates'])} reward {best['reward']:.4f}, "
          f"acc {best['accuracy']:.3f}, {best['predicted_ms']:.3f} ms predicted at {lat_res} px "
          f"(trained at {task.resolution} px); wrote {out / 'arch.json'}")
    return 0


def _deployed_latency(pred, factory, task, args):
    """The latency function at ``--latency-resolution`` (the deployed network's input, default
    224 for these ImageNet-style spaces) and that resolution; checks ``--target-ms`` against what
    the predictor gives 300 sampled networks there."""
    import numpy as np

    from hwlat.search.nas import latency_function

    res = args.latency_resolution or factory().resolution    # the space's own: 224, FBNet CIFAR 32
    lat = latency_function(pred, factory(resolution=res, num_classes=task.num_classes))
    print(lat.describe())
    probe = np.random.default_rng(12345)
    sampled = lat([factory(resolution=res).sample(probe) for _ in range(300)])
    fastest, slowest = float(sampled.min()), float(sampled.max())
    if args.target_ms < fastest:
        raise ValueError(f"--target-ms {args.target_ms} is below what the space reaches at {res} px: "
                         f"the fastest of 300 sampled networks is predicted at {fastest:.3f} ms "
                         f"(--latency-resolution sets the deployed input size)")
    if args.target_ms > slowest:
        print(f"hwlat: warning: --target-ms {args.target_ms} is above every one of 300 sampled networks "
              f"at {res} px (slowest {slowest:.3f} ms): the target will not constrain the search",
              file=sys.stderr)
    return lat, res


class _Serial:
    """No pool: ``with _pool(...)`` yields None."""

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _pool(args, task, desc: str):
    """A :class:`~hwlat.search.parallel.RayPool` on the cluster of ``--ray [ADDRESS]`` (connected
    here, disconnected on exit), or no pool without ``--ray``."""
    import contextlib

    if args.ray is None:
        if args.workers:
            raise ValueError("--workers applies with --ray only")
        return _Serial()
    from hwlat.profiler.measure.farm import session
    from hwlat.search.parallel import RayPool

    @contextlib.contextmanager
    def pooled():
        with session(args.ray or None, num_cpus=args.workers), \
                RayPool(task, workers=args.workers, desc=desc) as pool:
            yield pool

    return pooled()


def _common(p, steps_flag: str, steps_default: int) -> None:
    p.add_argument("--task", default="digits", help="digits (built-in) or an image folder <dir>/<class>/<img>")
    p.add_argument("--resolution", "-r", type=int, help="input resolution (default: 32 digits, 64 folder)")
    p.add_argument("--predictor", required=True, help="fitted predictor file (hwlat fit)")
    p.add_argument("--runtime", default="litert", help="runtime the latency is for (checked against the predictor)")
    p.add_argument("--allow-other-device", action="store_true", help="warn instead of failing on a device mismatch")
    p.add_argument("--out", required=True, help="output folder (history.json, arch.json); reruns resume")
    p.add_argument(steps_flag, type=int, default=steps_default)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help="tqdm progress bars for training")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="train in parallel on a Ray cluster (HOST:PORT; a local one without ADDRESS); "
                        "needs pip install 'hwlat[ray]'")
    p.add_argument("--workers", type=int, help="with --ray: trainings at once (default: the cluster's CPUs)")


def add_parsers(sub) -> None:
    """Add ``netadapt`` and ``search`` to the ``hwlat`` subparsers object ``sub``."""
    from hwlat.archs.space import SPACE_NAMES

    n = sub.add_parser("netadapt", help="NetAdapt channel cuts down to a target predicted latency")
    n.add_argument("arch", help="seed network: zoo name, codec string or spec file")
    g = n.add_mutually_exclusive_group()
    g.add_argument("--target-ratio", type=float, help="target as a fraction of the seed's predicted latency")
    g.add_argument("--target-ms", type=float, help="target predicted latency (ms)")
    _common(n, "--seed-steps", 300)
    n.add_argument("--short-steps", type=int, default=20, help="T: fine-tune steps per proposal (paper: 10000)")
    n.add_argument("--long-steps", type=int, default=300, help="final long-term fine-tune steps")
    n.add_argument("--delta", type=float, default=0.01, help="per-step reduction as a fraction of the seed latency")
    n.add_argument("--decay", type=float, default=1.0, help="multiply the step reduction by this after every step")
    n.add_argument("--min-proposals", type=int, default=None,
                   help="halve a step while fewer proposals than this can meet it (default: NetAdaptConfig.min_proposals)")
    n.add_argument("--max-steps", type=int, default=None, help="stop short after this many steps (default: NetAdaptConfig.max_steps)")
    n.add_argument("--holdout", type=float, default=0.2,
                   help="share of the training images held out to rank proposals (0: the validation split)")
    n.add_argument("--criterion", choices=["slope", "least_drop"], default="slope",
                   help="slope: max dAcc/|dLat| (paper); least_drop: original NetAdapt")
    n.add_argument("--measure", action="store_true", help="measure the seed and the final network with LiteRT on this machine, side by side (3 repeats)")
    n.set_defaults(func=_netadapt)

    s = sub.add_parser("search", help="platform-aware NAS with the MnasNet reward on predicted latency")
    s.add_argument("--controller", choices=["rl", "evolution", "random"], default="rl")
    s.add_argument("--target-ms", type=float, required=True)
    s.add_argument("--budget", type=int, default=200, help="candidates to evaluate")
    s.add_argument("--space", choices=SPACE_NAMES, default="small",
                   help="search space (fbnet_*: the FBNet space, e.g. with --predictor @raspi4)")
    s.add_argument("--w", type=float, help="reward exponent (default -0.07 large, -0.15 small)")
    s.add_argument("--form", choices=["soft", "hard"], default="soft")
    s.add_argument("--batch", type=int, default=10, help="candidates per controller update")
    s.add_argument("--latency-resolution", type=int,
                   help="input size (px) the latency is predicted at: the deployed network's "
                        "(default: the space's own, 224 for large/small, 32 for fbnet_cifar100), "
                        "apart from the accuracy proxy's training resolution")
    _common(s, "--train-steps", 20)
    s.set_defaults(func=_search)
