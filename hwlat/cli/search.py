"""``hwlat netadapt`` and ``hwlat search``: wire with ``add_parsers(sub)`` on the main subparsers.

Functions return an exit code; bad input raises ``ValueError`` (or an
:class:`~hwlat.errors.HwlatError`) with a one-line message.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hwlat.cli._common import (
    EXIT_SHORT,
    Choices,
    Library,
    add,
    add_allow_other_device,
    add_measuring_runtime,
    add_ray,
    set_handler,
)

NETADAPT = "hwlat.search.netadapt:NetAdaptConfig"
TASK = "hwlat.search.evaluators:TrainableTask.__init__"


def _task(spec: str, resolution: int | None, args, steps_attr: str, **kw):
    from hwlat.search.evaluators import make_task

    return make_task(
        spec,
        resolution,
        scratch_steps=getattr(args, steps_attr),
        seed=args.seed,
        progress=args.progress,
        **kw,
    )


def _resumable(out: Path, what: str, run):
    """``run()``; on Ctrl-C say that ``out/history.json`` keeps every finished step, then re-raise."""
    try:
        return run()
    except KeyboardInterrupt:
        print(
            f"hwlat: {what} interrupted; {out / 'history.json'} holds every finished step; "
            f"run the same command to resume",
            file=sys.stderr,
        )
        raise


def _netadapt(args) -> int:
    from hwlat.archs import load_arch
    from hwlat.search.netadapt import (
        NetAdaptConfig,
        channel_floor,
        describe_step,
        measure_litert_side_by_side,
        netadapt,
        outcome,
        record_result,
    )

    if (args.target_ratio is None) == (args.target_ms is None):
        raise ValueError("give exactly one of --target-ratio R (0 < R < 1) or --target-ms T")
    if args.target_ratio is not None and not (0 < args.target_ratio < 1):
        raise ValueError(f"--target-ratio must be between 0 and 1 (exclusive), got {args.target_ratio}")
    from hwlat.latency_models import load_predictor

    pred = load_predictor(args.predictor, args.runtime, args.allow_other_device)
    task = _task(args.task, args.resolution, args, "seed_steps", holdout_fraction=args.holdout)
    arch = task.adapt(load_arch(args.arch))
    floor = channel_floor(arch, pred)
    target = args.target_ms if args.target_ms is not None else args.target_ratio * floor.seed_ms
    print(f"target {target:.3f} ms predicted; {floor.describe()}")
    floor.check(target)
    cfg = NetAdaptConfig(
        target_ms=float(target),
        delta_fraction=args.delta,
        decay=args.decay,
        short_steps=args.short_steps,
        long_steps=args.long_steps,
        criterion=args.criterion,
        seed=args.seed,
        min_proposals=args.min_proposals,
        max_steps=args.max_steps,
    )
    out = Path(args.out)

    print(f"proposals ranked on {task.holdout_name}")

    def show(step):
        print("\n".join(describe_step(step)))

    with _pool(args, task, "proposals") as pool:
        res = _resumable(
            out, "netadapt", lambda: netadapt(arch, None, task, pred, cfg, out, callback=show, pool=pool)
        )
    fin = res.history["final"]
    if args.measure:  # the seed and the result side by side, so their ratio does not hang on a phase
        seed_ms, ms = measure_litert_side_by_side([arch, res.arch], out / "measure.db", repeats=3)
        fin = record_result(out, measured_ms=ms, seed_measured_ms=seed_ms)["final"]
    seed = res.history["seed"]
    print(
        f"seed {seed['predicted_ms']:.3f} ms predicted"
        + (f" / {fin['seed_measured_ms']:.3f} ms measured" if "seed_measured_ms" in fin else "")
        + f", acc {seed['accuracy']:.3f} -> final {fin['predicted_ms']:.3f} ms "
        f"predicted"
        + (f", {fin['measured_ms']:.3f} ms measured" if "measured_ms" in fin else "")
        + f", acc {fin['accuracy']:.3f} after long-term fine-tune; wrote {out / 'arch.json'} and "
        f"{out / 'history.json'}"
    )
    print(outcome(res.history))
    return 0 if fin["reached_target"] else EXIT_SHORT


def _search(args) -> int:
    import numpy as np

    from hwlat.archs.space import get_space
    from hwlat.files import atomic_write_text
    from hwlat.latency_models import load_predictor
    from hwlat.search.nas import (
        W_DEFAULT,
        W_SMALL,
        CachedAccuracy,
        make_controller,
        search,
    )

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
        tqdm.write(
            f"{ev['done']:5d}/{ev['budget']}: best reward {b['reward']:.4f} "
            f"(acc {b['accuracy']:.3f}, {b['predicted_ms']:.3f} ms at {lat_res} px)"
        )

    meta = {
        "task": args.task,
        "train_steps": args.train_steps,
        "seed": args.seed,
        "latency_resolution": lat_res,
    }
    with _pool(args, task, "candidates") as pool:
        hist = _resumable(
            out,
            "search",
            lambda: search(
                space,
                ctrl,
                CachedAccuracy(task.evaluate),
                lat,
                args.target_ms,
                args.budget,
                np.random.default_rng(args.seed),
                w=w,
                form=args.form,
                batch=args.batch,
                out_dir=out,
                callback=show,
                meta=meta,
                pool=pool,
            ),
        )
    best = hist["best"]
    arch = space.decode(best["vector"])
    atomic_write_text(out / "arch.json", arch.to_json())
    print(
        f"{args.controller}: best of {len(hist['candidates'])} reward {best['reward']:.4f}, "
        f"acc {best['accuracy']:.3f}, {best['predicted_ms']:.3f} ms predicted at {lat_res} px "
        f"(trained at {task.resolution} px); wrote {out / 'arch.json'}"
    )
    return 0


def _deployed_latency(pred, factory, task, args):
    """The latency function at ``--latency-resolution`` (the deployed network's input, default
    224 for these ImageNet-style spaces) and that resolution; checks ``--target-ms`` against what
    the predictor gives 300 sampled networks there."""
    import numpy as np

    from hwlat.search.nas import latency_function

    res = args.latency_resolution or factory().resolution  # the space's own: 224, FBNet CIFAR 32
    lat = latency_function(pred, factory(resolution=res, num_classes=task.num_classes))
    print(lat.describe())
    probe = np.random.default_rng(12345)
    sampled = lat([factory(resolution=res).sample(probe) for _ in range(300)])
    fastest, slowest = float(sampled.min()), float(sampled.max())
    if args.target_ms < fastest:
        raise ValueError(
            f"--target-ms {args.target_ms} is below what the space reaches at {res} px: "
            f"the fastest of 300 sampled networks is predicted at {fastest:.3f} ms "
            f"(--latency-resolution sets the deployed input size)"
        )
    if args.target_ms > slowest:
        print(
            f"hwlat: warning: --target-ms {args.target_ms} is above every one of 300 sampled networks "
            f"at {res} px (slowest {slowest:.3f} ms): the target will not constrain the search",
            file=sys.stderr,
        )
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
        with (
            session(args.ray or None, num_cpus=args.workers),
            RayPool(task, workers=args.workers, desc=desc) as pool,
        ):
            yield pool

    return pooled()


def _shared(p, steps_flag: str, steps_default: Library, steps_help: str, seed: Library) -> None:
    p.add_argument(
        "--task", default="digits", help="digits (built-in) or an image folder <dir>/<class>/<img>"
    )
    p.add_argument("--resolution", "-r", type=int, help="input resolution (default: 32 digits, 64 folder)")
    p.add_argument("--predictor", required=True, help="fitted predictor file (hwlat fit) or @NAME")
    add_measuring_runtime(p, "runtime the latency is for (checked against the predictor)")
    add_allow_other_device(p)
    p.add_argument("--out", required=True, help="output folder (history.json, arch.json); reruns resume")
    add(p, steps_flag, type=int, default=steps_default, help=f"{steps_help} (default %(library_default)s)")
    add(p, "--seed", type=int, default=seed)
    p.add_argument("--progress", action="store_true", help="tqdm progress bars for training")
    add_ray(p, "train in parallel on")
    p.add_argument("--workers", type=int, help="with --ray: trainings at once (default: the cluster's CPUs)")


def add_parsers(sub) -> None:
    """Add ``netadapt`` and ``search`` to the ``hwlat`` subparsers object ``sub``."""
    n = sub.add_parser("netadapt", help="NetAdapt channel cuts down to a target predicted latency")
    n.add_argument("arch", help="seed network: zoo name, codec string or spec file")
    g = n.add_mutually_exclusive_group()
    g.add_argument("--target-ratio", type=float, help="target as a fraction of the seed's predicted latency")
    g.add_argument("--target-ms", type=float, help="target predicted latency (ms)")
    _shared(
        n,
        "--seed-steps",
        Library(f"{TASK}.scratch_steps"),
        "training steps of the seed from scratch",
        Library(f"{NETADAPT}.seed"),
    )
    add(
        n,
        "--short-steps",
        type=int,
        default=Library(f"{NETADAPT}.short_steps"),
        help="T: fine-tune steps per proposal (paper: 10000; default %(library_default)s)",
    )
    add(
        n,
        "--long-steps",
        type=int,
        default=Library(f"{NETADAPT}.long_steps"),
        help="final long-term fine-tune steps (default %(library_default)s)",
    )
    add(
        n,
        "--delta",
        type=float,
        default=Library(f"{NETADAPT}.delta_fraction"),
        help="per-step reduction as a fraction of the seed latency (default %(library_default)s)",
    )
    add(
        n,
        "--decay",
        type=float,
        default=Library(f"{NETADAPT}.decay"),
        help="multiply the step reduction by this after every step (default %(library_default)s)",
    )
    add(
        n,
        "--min-proposals",
        type=int,
        default=Library(f"{NETADAPT}.min_proposals"),
        help="halve a step while fewer proposals than this can meet it (default %(library_default)s)",
    )
    add(
        n,
        "--max-steps",
        type=int,
        default=Library(f"{NETADAPT}.max_steps"),
        help="stop short after this many steps (default %(library_default)s)",
    )
    add(
        n,
        "--holdout",
        type=float,
        default=Library("hwlat.search.netadapt:HOLDOUT"),
        help="share of the training images held out to rank proposals (0: the validation split)",
    )
    add(
        n,
        "--criterion",
        choices=Choices("hwlat.search.netadapt:CRITERIA"),
        default=Library(f"{NETADAPT}.criterion"),
        help="slope: max dAcc/|dLat| (paper); least_drop: original NetAdapt",
    )
    n.add_argument(
        "--measure",
        action="store_true",
        help="measure the seed and the final network with LiteRT on this machine, side by side (3 repeats)",
    )
    set_handler(n, _netadapt)

    s = sub.add_parser("search", help="platform-aware NAS with the MnasNet reward on predicted latency")
    add(
        s,
        "--controller",
        choices=Choices("hwlat.search.nas:CONTROLLERS"),
        default=Library("hwlat.search.nas:DEFAULT_CONTROLLER"),
    )
    s.add_argument("--target-ms", type=float, required=True)
    add(
        s,
        "--budget",
        type=int,
        default=Library("hwlat.search.nas:DEFAULT_BUDGET"),
        help="candidates to evaluate (default %(library_default)s)",
    )
    add(
        s,
        "--space",
        choices=Choices("hwlat.archs.space:SPACE_NAMES"),
        default=Library("hwlat.search.nas:DEFAULT_SPACE"),
        help="search space (fbnet_*: the FBNet space, e.g. with --predictor @raspi4)",
    )
    w = s.add_argument(
        "--w",
        type=float,
        help="reward exponent (default %(w_small)s for the small space, %(w_default)s for the others)",
    )
    w.w_small, w.w_default = Library("hwlat.search.nas:W_SMALL"), Library("hwlat.search.nas:W_DEFAULT")
    add(
        s,
        "--form",
        choices=Choices("hwlat.search.nas:REWARD_FORMS"),
        default=Library("hwlat.search.nas:search.form"),
    )
    add(
        s,
        "--batch",
        type=int,
        default=Library("hwlat.search.nas:search.batch"),
        help="candidates per controller update (default %(library_default)s)",
    )
    s.add_argument(
        "--latency-resolution",
        type=int,
        help="input size (px) the latency is predicted at: the deployed network's "
        "(default: the space's own, 224 for large/small, 32 for fbnet_cifar100), "
        "apart from the accuracy proxy's training resolution",
    )
    _shared(
        s,
        "--train-steps",
        Library("hwlat.search.nas:DEFAULT_TRAIN_STEPS"),
        "training steps of each candidate from scratch",
        Library("hwlat.search.nas:make_controller.seed"),
    )
    set_handler(s, _search)
