"""``hwlat demo`` (the main job on the built-in defaults) and ``hwlat demo compare`` (NetAdapt
against uniform width scaling, and NAS with each controller); their settings are the library's
(:class:`~hwlat.experiments.compare.CompareConfig`)."""

from __future__ import annotations

from pathlib import Path

from hwlat.cli._common import (
    EXIT_SHORT,
    Library,
    add,
    add_allow_other_device,
    add_quiet,
    comma_set,
    comma_tuple,
    set_handler,
    subparsers,
)

COMPARE = "hwlat.experiments.compare:CompareConfig"

# --option: (CompareConfig field, argparse type, help without its default)
COMPARE_OPTIONS = {
    "--seed-arch": ("seed_arch", str, "NetAdapt's seed: zoo name, codec string or spec file"),
    "--resolution": ("resolution", int, "input size (px) of the NetAdapt task"),
    "--seed-steps": ("seed_steps", int, "training steps of the seed from scratch"),
    "--short-steps": ("short_steps", int, "NetAdapt fine-tune steps per proposal"),
    "--long-steps": ("long_steps", int, "NetAdapt's final long-term fine-tune steps"),
    "--delta": ("delta", float, "NetAdapt step as a fraction of the seed latency"),
    "--ratio": ("ratio", float, "NetAdapt target as a fraction of the seed latency"),
    "--nas-budget": ("nas_budget", int, "NAS candidates per controller"),
    "--nas-steps": ("nas_steps", int, "training steps of the cheap NAS evaluator"),
    "--nas-resolution": ("nas_resolution", int, "input size of the cheap NAS evaluator"),
    "--nas-controllers": ("controllers", comma_tuple, "comma list"),
    "--threads": ("threads", int, "torch threads of the evaluators"),
    "--skip": ("skip", comma_set, "comma list of parts to skip: netadapt, uniform, nas"),
    "--max-seconds": ("max_seconds", float, "cap per LiteRT measurement"),
}


def _demo(args) -> int:
    import pandas as pd

    from hwlat.errors import FileFormatError
    from hwlat.experiments.demo import run_demo
    from hwlat.paper import zoo_vs_table3

    df = zoo_vs_table3()
    print(
        "hwlat demo: analytic MAdds and params of the zoo beside the paper's Table 3 "
        "(arXiv:1905.02244v5, 224x224)\n"
    )
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print(df.to_string(index=False))
    worst = df["madds_diff_pct"].abs().max()
    print(
        f"\nlargest MAdds difference: {worst:.2f} % (target <= 1.5 %). MAdds count conv and FC "
        "multiply-adds; elementwise work is listed apart (see docs/counting.md).\n"
    )
    if not args.table_only:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise FileFormatError(f"--out {out}: is a file; the demo needs a folder")
        if not run_demo(out, quick=args.quick, progress=not args.quiet).complete:
            return EXIT_SHORT
    return 0


def compare_config(args):
    """The :class:`~hwlat.experiments.compare.CompareConfig` of ``demo compare``'s options."""
    from hwlat.experiments.compare import CompareConfig

    return CompareConfig(**{field: getattr(args, field) for field, _, _ in COMPARE_OPTIONS.values()})


def _demo_compare(args) -> int:
    from hwlat.experiments.compare import compare
    from hwlat.latency_models import load_predictor

    cfg = compare_config(args)
    pred = load_predictor(args.predictor, "litert", args.allow_other_device)
    res = compare(pred, args.out, cfg)
    na, uni = res.get("netadapt"), res.get("uniform")
    if na:
        print(
            f"NetAdapt: {na['seed']} @{na['resolution']}px {na['seed_measured_ms']:.3f} ms measured, acc "
            f"{na['seed_accuracy']:.3f} -> {na['final_measured_ms']:.3f} ms ({na['measured_ratio']:.2f} of "
            f"the seed; {na['final_predicted_ms']:.3f} ms predicted), acc {na['final_accuracy']:.3f}"
        )
    if uni:
        print(
            f"uniform x{uni['width_mult']:g}: {uni['measured_ms']:.3f} ms measured "
            f"({uni['predicted_ms']:.3f} ms predicted), acc {uni['accuracy']:.3f}"
        )
    elif na and "uniform" not in cfg.skip:
        print("uniform: no width multiplier of the seed is predicted as fast as NetAdapt's result")
    print(f"wrote {Path(args.out) / 'compare.json'}")
    return 0


def add_parsers(sub) -> None:
    """``demo`` and ``demo compare`` on the ``hwlat`` subparsers ``sub``."""
    d = sub.add_parser(
        "demo",
        help="the main job on the built-in defaults: profile this CPU, fit, "
        "NetAdapt on digits, report; `demo compare`: NetAdapt vs uniform, NAS",
    )
    d.add_argument("--out", default="out/demo", help="folder for the store, predictors, runs and report")
    d.add_argument(
        "--quick", action="store_true", help="a small version of the same path (the one the tests run)"
    )
    add_quiet(d, "no progress bars")
    d.add_argument("--table-only", action="store_true", help="only the zoo vs paper Table 3 comparison")
    set_handler(d, _demo)
    dsub = subparsers(d, "demo_cmd", required=False)
    c = dsub.add_parser(
        "compare",
        help="NetAdapt against uniform width scaling (measured with LiteRT), "
        "and NAS with each controller, on digits",
    )
    c.add_argument("--predictor", required=True, help="fitted predictor of this machine (hwlat fit)")
    c.add_argument("--out", required=True, help="folder: netadapt/, nas_*/, measure.db, compare.json")
    for flag, (field, type_, help_) in COMPARE_OPTIONS.items():
        flags = (flag, "-r") if flag == "--resolution" else (flag,)
        add(
            c,
            *flags,
            type=type_,
            dest=field,
            metavar=flag[2:].upper().replace("-", "_"),
            default=Library(f"{COMPARE}.{field}"),
            help=f"{help_} (default %(library_default)s)",
        )
    add_allow_other_device(c)
    set_handler(c, _demo_compare)
