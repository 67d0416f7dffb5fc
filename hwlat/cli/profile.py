"""``hwlat profile ...``: measure latency into a store (here or on a Ray farm), model files as
they are (``profile file``), the calibration set, anomalies, show and export a store, bundles for
remote devices and their import, and tables of latencies measured elsewhere
(``profile import-table``)."""

from __future__ import annotations

import json

from hwlat.cli._common import (
    Choices,
    Library,
    add,
    add_arch_refs,
    add_device_filter,
    add_json,
    add_measuring_runtime,
    add_quiet,
    add_ray,
    add_resolution,
    add_sampling,
    add_store,
    archs,
    positive_int,
    resolutions,
    set_handler,
    subparsers,
)

REPEATS = Library("hwlat.profiler.measure.profile:CLI_REPEATS")
SPACE_NAMES = Choices("hwlat.archs.space:SPACE_NAMES")


def _granularities() -> tuple[str, ...]:
    """The workload granularities as the commands name them: kernels, blocks, models."""
    from hwlat.archs.pieces import GRANULARITIES

    return tuple(f"{g}s" for g in GRANULARITIES)


def _profile_run(args, archs_=None) -> int:
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.runners import get_runner
    from hwlat.profiler.measure.timing import TimingConfig

    if archs_ is None:
        archs_ = archs(args.arch, args.resolution, args.sample_space, args.space, args.seed)
    opts = {"xnnpack": not args.no_xnnpack, "quantize": args.quantize} if args.runtime == "litert" else {}
    if args.quantize and args.runtime != "litert":
        raise ValueError(f"--quantize is a LiteRT option; runtime {args.runtime!r} measures float32")
    cfg = TimingConfig(target=args.target, max_seconds=args.max_seconds)
    with_blocks = getattr(args, "with_blocks", False)  # an option of `profile models` only
    gran = ("model", "block") if with_blocks else args.granularity.rstrip("s")
    what = "models and blocks" if with_blocks else args.granularity
    if args.adb is not None:
        return _profile_phone(args, archs_, gran, cfg, what)
    if args.benchmark_model:
        raise ValueError("--benchmark-model applies with --adb only")
    if args.ray is not None:
        return _profile_farm(args, archs_, gran, cfg, opts, what)
    if args.device or args.parallel_slots:
        raise ValueError("--device and --parallel-slots apply with --ray only")
    res = profile(
        archs_,
        gran,
        args.store,
        get_runner(args.runtime, **opts),
        variant=args.variant,
        config=cfg,
        progress=not args.quiet,
        repeats=args.repeats,
    )
    return _profile_report(res, archs_, what)


def _profile_report(res, archs_, what: str, device: str = "") -> int:
    extra = "".join(
        f", {len(v)} {k}"
        for k, v in (("duplicates dropped", res.duplicates), ("resubmitted", res.resubmitted))
        if v
    )
    measured = len(set(res.measured))
    rows = f" ({len(res.measured)} repeats)" if len(res.measured) != measured else ""
    print(
        f"{device}{res.total} distinct {what} of {len(archs_)} archs: {measured} measured{rows}, "
        f"{len(res.skipped)} already stored, {len(res.failed)} failed{extra}; results in {res.store}"
    )
    if res.timing_line():
        print(f"  {res.timing_line()}")
    for key, err in list(res.failed.items())[:5]:
        print(f"  failed {key}: {err}")
    return 1 if res.failed and not res.measured and not res.skipped else 0


def _profile_phone(args, archs_, gran, cfg, what: str) -> int:
    """``profile ... --adb [SERIAL] --benchmark-model PATH``: a phone over adb."""
    from hwlat.profiler.measure import adb

    if not args.benchmark_model:
        raise ValueError(
            "--adb needs --benchmark-model PATH (the TFLite benchmark tool: a file here or on the phone)"
        )
    if args.ray is not None or args.device or args.parallel_slots:
        raise ValueError(
            "--adb measures one attached phone; --ray, --device and --parallel-slots do not apply"
        )
    if args.runtime != "litert":
        raise ValueError(f"--adb runs the TFLite benchmark tool; --runtime {args.runtime} does not apply")
    phone = adb.connect(
        args.adb or None, args.benchmark_model, xnnpack=not args.no_xnnpack, quantize=args.quantize
    )
    print(
        f"phone {phone.adb.serial}: {phone.fingerprint['board']}, core {phone.core} "
        f"({phone.fingerprint['cpu']}, {phone.fingerprint['governor']})"
    )
    res = adb.profile_phone(
        archs_,
        gran,
        args.store,
        phone,
        config=cfg,
        repeats=args.repeats,
        op_profile=not args.no_op_profile,
        progress=not args.quiet,
    )
    return _profile_report(res, archs_, what, f"{phone.adb.serial}: ")


def _profile_farm(args, archs_, gran, cfg, opts: dict, what: str) -> int:
    """``profile ... --ray [ADDRESS]``: the devices of a Ray cluster (a local one without ADDRESS)."""
    import os

    from hwlat.profiler.measure import farm

    devices = [farm.parse_device(d, args.runtime, opts) for d in args.device or [args.runtime]]
    local = farm.local_resources(devices, args.parallel_slots)
    with farm.session(args.ray or None, num_cpus=os.cpu_count(), resources=local):
        results = farm.farm_profile(
            archs_,
            gran,
            args.store,
            devices,
            variant=args.variant,
            config=cfg,
            progress=not args.quiet,
            parallel_slots=args.parallel_slots,
            repeats=args.repeats,
        )
    return max(_profile_report(res, archs_, what, f"{name}: ") for name, res in results.items())


def _profile_file(args) -> int:
    """``profile file FILE...``: time model files, each on the runtime of its format unless
    ``--runtime`` (a format the runtime does not run is an error before anything is measured)."""
    from hwlat.profiler.measure.profile import file_workload, profile
    from hwlat.profiler.measure.runners import FILE_FORMATS, RUNTIMES, get_runner
    from hwlat.profiler.measure.timing import TimingConfig

    if args.runtime is not None and args.runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {args.runtime!r} (expected one of {', '.join(RUNTIMES)})")
    files = [file_workload(f) for f in args.files]
    by_runtime: dict[str, list] = {}
    runtime_of = {fmt: rt for rt, fmt in FILE_FORMATS.items()}
    for f in files:
        fmt = f.workload.file["format"]
        rt = args.runtime or runtime_of[fmt]
        if FILE_FORMATS.get(rt) != fmt:
            raise ValueError(
                f"{f.path}: runtime {rt} does not run .{fmt} files (--runtime {runtime_of[fmt]} does)"
            )
        by_runtime.setdefault(rt, []).append(f)
        how = (
            f"imported ({f.workload.madds / 1e6:.2f} M MAdds; `hwlat arch import {f.path}` shows how)"
            if f.workload.arch
            else f"not imported ({f.why}); measured all the same"
        )
        print(f"{f.path}: {f.workload.key} ({fmt}, {f.workload.file['bytes'] / 1e6:.2f} MB), {how}")
    cfg = TimingConfig(target=args.target, max_seconds=args.max_seconds)
    code = 0
    for rt, fs in by_runtime.items():
        opts = {"xnnpack": not args.no_xnnpack} if rt == "litert" else {}
        res = profile(
            [],
            "model",
            args.store,
            get_runner(rt, **opts),
            variant=args.variant,
            config=cfg,
            progress=not args.quiet,
            repeats=args.repeats,
            workloads=[f.workload for f in fs],
        )
        measured = len(set(res.measured))
        rows = f" ({len(res.measured)} repeats)" if len(res.measured) != measured else ""
        print(
            f"{rt}: {res.total} file(s): {measured} measured{rows}, {len(res.skipped)} already stored, "
            f"{len(res.failed)} failed; results in {res.store}"
        )
        for key, err in list(res.failed.items())[:5]:
            print(f"  failed {key}: {err}")
        if res.failed and not res.measured and not res.skipped:
            code = 1
    return code


def _profile_calibration(args) -> int:
    from hwlat.archs.calibration import calibration_set, coverage_report
    from hwlat.archs.space import get_space

    space = get_space(args.space)
    cal = calibration_set(space, args.n, seed=args.seed, resolutions=args.resolutions)
    cov = coverage_report(cal, space, seed=args.seed, resolutions=args.resolutions)
    lo, hi = cov["weights_mb"]
    print(
        f"calibration set of the {args.space} space: {len(cal)} networks at "
        f"{sorted({a.resolution for a in cal})} px covering {cov['covered']}/{cov['total']} op, "
        f"kernel, width and resolution features, weights {lo:.1f}-{hi:.1f} MB"
    )
    args.arch, args.resolution, args.sample_space, args.with_blocks = [], None, 0, True
    args.granularity = "models"
    return _profile_run(args, archs_=cal)


def _profile_anomalies(args) -> int:
    import pandas as pd

    from hwlat.profiler.analysis.anomalies import (
        anomalies,
        efficiency,
        efficiency_summary,
    )
    from hwlat.profiler.storage.store import open_store

    with open_store(args.store, readonly=True) as st:
        frame = st.frame(granularity="kernel")
    found = anomalies(frame, factor=args.factor)
    if args.json:
        print(found.to_json(orient="records", indent=1))
        return 0
    summary = efficiency_summary(efficiency(frame))
    if summary.empty:
        print(f"{args.store}: no kernel measurements (profile kernels first: `hwlat profile kernels ...`)")
        return 0
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print("median efficiency (GMAC/s) by op type and kernel size:")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        if found.empty:
            print(f"no kernel is {args.factor:g}x slower than expected for its op type and size")
        else:
            print(
                f"{len(found)} kernels at least {args.factor:g}x slower than expected for their op "
                f"type and size:"
            )
            cols = ["device", "label", "gmacs", "latency_ms", "expected_ms", "slowdown"]
            print(found[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def select_device(devices, ref: str, store) -> str:
    """The device key that ``--device ref`` names among a store's devices."""
    from hwlat.profiler.storage.device_select import select_device as select

    return select(devices, ref, str(store))["device_key"]


def _profile_show(args) -> int:
    import pandas as pd

    from hwlat.profiler.storage.store import (
        UNSTABLE_SPREAD_PCT,
        open_store,
        unstable_workloads,
    )

    with open_store(args.store, readonly=True) as st:
        df = st.frame()
        if args.device is not None:
            df = df[df["device_key"] == select_device(st.devices(), args.device, args.store)]
        summary = None if args.json or df.empty else st.summary(df, counts=False)
    df["label"] = [json.loads(spec).get("label", "") for spec in df["spec"]]
    if args.json:  # a JSON list, one object per measurement (as `arch madds --json`, `predict --json`)
        cols = [
            "key",
            "granularity",
            "variant",
            "runtime",
            "runtime_version",
            "device",
            "device_key",
            "latency_ms",
            "median_ms",
            "p10_ms",
            "p90_ms",
            "n",
            "repeats",
            "spread_pct",
            "ref_ms",
            "steal_pct",
            "madds",
            "params",
            "label",
        ]
        print(df[[c for c in cols if c in df.columns]].to_json(orient="records", indent=1))
        return 0
    if df.empty:
        print(f"{args.store}: no measurements yet")
        return 0
    unstable = unstable_workloads(df)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(summary.to_string(index=False))
    if len(unstable):
        print(
            f"{len(unstable)} workloads whose repeats disagree by more than {UNSTABLE_SPREAD_PCT:g} % "
            f"(spread = (max - min) / median of the repeats' latencies), widest first:"
        )
        for r in unstable.head(10).itertuples():
            print(f"  {r.spread_pct:5.1f} %  {r.repeats} repeats  {r.latency_ms:.3f} ms  {r.label}")
    return 0


def _profile_export(args) -> int:
    from hwlat.profiler.storage.store import check_output, open_store

    out = check_output(args.output)
    with open_store(args.store, readonly=True) as st:
        st.export(out)
    print(f"wrote {args.output}")
    return 0


def _profile_bundle(args) -> int:
    from hwlat.profiler.measure.bundle import write_bundle

    archs_ = archs(args.arch, args.resolution, args.sample_space, args.space, args.seed)
    out = write_bundle(archs_, args.granularity.rstrip("s"), args.output, quantize=args.quantize)
    print(
        f"wrote bundle {out}: copy it to the device, run `python3 run_bundle.py` there, then "
        f"`hwlat profile import {out}/results.jsonl --store STORE`"
    )
    return 0


def _profile_import(args) -> int:
    from hwlat.profiler.measure.bundle import import_results

    c = import_results(args.results, args.store)
    if c["note"]:
        print(c["note"])
    print(
        f"imported {c['added']} measurements ({c['skipped']} already stored, {c['failures']} failures) "
        f"into {args.store}"
    )
    return 0


def _profile_import_benchmark_log(args) -> int:
    from hwlat.archs import load_arch
    from hwlat.profiler.storage.benchmark_log import import_logs

    arch = load_arch(args.arch, args.resolution)
    added, skipped = import_logs(args.logs, arch, args.device, args.store)
    print(
        f"{args.device}: {added} benchmark_model runs of {arch.name or args.arch} added, {skipped} "
        f"already stored; results in {args.store}"
    )
    return 0


def _profile_import_table(args) -> int:
    from hwlat.profiler.storage.tables import import_table

    c = import_table(
        args.table,
        args.store,
        args.device,
        args.column,
        space=args.space,
        source=args.source,
        runtime=args.runtime,
        progress=not args.quiet,
    )
    print(
        f"imported {c['rows']} rows of {args.table} column {args.column!r} as device {args.device!r} "
        f"[{c['device_key']}]: {c['added']} measurements added, {c['skipped']} already stored; "
        f"store {args.store}"
    )
    return 0


# -- parsers -------------------------------------------------------------------------------------
def _timing_args(q) -> None:
    """How each workload is timed: --variant, --target, --max-seconds, --no-xnnpack."""
    add(
        q,
        "--variant",
        choices=Choices("hwlat.profiler.storage.store:VARIANTS"),
        default=Library("hwlat.profiler.measure.profile:profile.variant"),
        help="cold: evict caches before every invocation",
    )
    add(
        q,
        "--target",
        type=float,
        default=Library("hwlat.profiler.measure.timing:TimingConfig.target"),
        help="sample until the 95%% CI of each repeat's median is within this "
        "fraction of it (default %(library_default)s), or --max-seconds",
    )
    add(
        q,
        "--max-seconds",
        type=float,
        default=Library("hwlat.profiler.measure.timing:TimingConfig.max_seconds"),
        help="cap per workload (default %(library_default)s)",
    )
    q.add_argument("--no-xnnpack", action="store_true", help="LiteRT builtin kernels only")


def _repeats_arg(q, what: str) -> None:
    add(
        q,
        "--repeats",
        type=positive_int,
        default=REPEATS,
        metavar="R",
        help=f"measure each {what} R times, in fresh runtime instances spread over "
        "the run (R passes); its latency is the median of theirs (default %(library_default)s)",
    )


def _measure_args(q) -> None:
    add_measuring_runtime(q)
    add_store(q, "write")
    _timing_args(q)
    add(
        q,
        "--quantize",
        choices=Choices("hwlat.profiler.export.tflite:QUANTIZE_MODES"),
        help="LiteRT int8 post-training quantized models",
    )
    add_quiet(q)
    _repeats_arg(q, "workload")
    add_ray(q, "measure on the devices of")
    q.add_argument(
        "--device",
        action="append",
        metavar="NAME[=RUNTIME]",
        help="with --ray: a device, the Ray resource device:NAME (repeatable; default: "
        "one named after --runtime)",
    )
    q.add_argument(
        "--parallel-slots",
        action="store_true",
        help="with --ray: allow a host more than one measuring slot (they disturb each other; see "
        "docs/profiling.md, 'The profiling farm (Ray)'); a local cluster then gives each device "
        "cores // devices slots",
    )
    q.add_argument(
        "--adb",
        nargs="?",
        const="",
        metavar="SERIAL",
        help="measure on an Android phone over adb with TFLite's benchmark_model, one thread pinned "
        "to a core of the fastest cluster (the only attached phone, or SERIAL)",
    )
    q.add_argument(
        "--benchmark-model",
        metavar="PATH",
        help="with --adb: the benchmark_model binary, a file here (pushed once) or a path on the phone",
    )
    q.add_argument(
        "--no-op-profile",
        action="store_true",
        help="with --adb: no per-op profile of whole networks (kept beside their measurements by default)",
    )


def _add_run(psub, gran: str) -> None:
    q = psub.add_parser(gran, help=f"measure the distinct {gran} of the architectures")
    add_arch_refs(q)
    add_resolution(q)
    add_sampling(q)
    _measure_args(q)
    if gran == "models":
        q.add_argument(
            "--with-blocks",
            action="store_true",
            help="measure each network together with its blocks (what predictors "
            "calibrate on), interleaved so a slow phase hits both alike",
        )
    set_handler(q, _profile_run, granularity=gran)


def _add_calibration(psub) -> None:
    q = psub.add_parser(
        "calibration",
        help="measure the calibration set hwlat picks from a search "
        "space (each network with its blocks): what the network-level terms learn from",
    )
    add(q, "--space", choices=SPACE_NAMES, default=Library("hwlat.archs.space:DEFAULT_SPACE"))
    add(
        q,
        "-n",
        type=positive_int,
        default=Library("hwlat.archs.calibration:calibration_set.n"),
        help="networks in the set (default %(library_default)s)",
    )
    add(q, "--seed", type=int, default=Library("hwlat.archs.calibration:calibration_set.seed"))
    q.add_argument(
        "--resolutions",
        type=resolutions,
        help="comma-separated input sizes to cover (default: the space's own, e.g. "
        "224 for large/small, 32 for fbnet_cifar100)",
    )
    _measure_args(q)
    set_handler(q, _profile_calibration)


def _add_anomalies(psub) -> None:
    q = psub.add_parser(
        "anomalies",
        help="kernels far less efficient (MAdds per ms) than others "
        "of their op type and size, and efficiency by op type and kernel size",
    )
    add_store(q)
    add(
        q,
        "--factor",
        type=float,
        default=Library("hwlat.profiler.analysis.anomalies:anomalies.factor"),
        help="report kernels at least this many times slower than expected (default %(library_default)s)",
    )
    add_json(q, "the anomalies as JSON records")
    set_handler(q, _profile_anomalies)


def _add_import_table(psub) -> None:
    q = psub.add_parser(
        "import-table",
        help="import a CSV of end-to-end latencies (ms) measured "
        "elsewhere (a published table, benchmark_model runs) as one device",
    )
    q.add_argument(
        "table",
        help="CSV: one row per network, architecture in op0..opN (with --space) "
        "or an 'arch' column of codec strings",
    )
    add_store(q, "write")
    q.add_argument("--device", required=True, help="the device's name (e.g. samsung_a50, my-pixel7)")
    q.add_argument("--column", required=True, help="the latency column (ms)")
    add(q, "--space", choices=SPACE_NAMES, help="read the architecture from the space's op0.. columns")
    q.add_argument("--source", help="where the numbers come from (default: the file and column)")
    add(
        q,
        "--runtime",
        default=Library("hwlat.profiler.storage.tables:import_table.runtime"),
        help="runtime the numbers were measured with (e.g. tflite); part of the device's identity "
        "(default %(library_default)s)",
    )
    add_quiet(q)
    set_handler(q, _profile_import_table)


def _add_import_benchmark_log(psub) -> None:
    q = psub.add_parser(
        "import-benchmark-log",
        help="store saved outputs of TFLite's benchmark_model on a known network (runs made by hand), "
        "each file one repeat, its raw text and per-op times kept",
    )
    q.add_argument("logs", nargs="+", metavar="LOG", help="benchmark_model output files (stdout)")
    q.add_argument(
        "--arch", required=True, help="the network the logs measured (zoo name, codec string, file)"
    )
    add_resolution(q)
    q.add_argument("--device", required=True, help="the phone's name (e.g. pixel7)")
    add_store(q, "write")
    set_handler(q, _profile_import_benchmark_log)


def _add_file(psub) -> None:
    q = psub.add_parser(
        "file",
        help="measure .tflite or .onnx files as they are (model workloads keyed by their content), "
        "imported as networks when hwlat can",
    )
    q.add_argument("files", nargs="+", metavar="FILE", help=".tflite or .onnx model files")
    add_store(q, "write")
    q.add_argument(
        "--runtime",
        help="runtime to measure with (default: the file's, litert for .tflite, onnxruntime for .onnx)",
    )
    _timing_args(q)
    add_quiet(q)
    _repeats_arg(q, "file")
    set_handler(q, _profile_file)


def add_parsers(sub) -> None:
    """``profile ...`` on the ``hwlat`` subparsers ``sub``."""
    prof = sub.add_parser("profile", help="measure latency into a store; show, export, bundles")
    psub = subparsers(prof, "profile_cmd")
    grans = _granularities()
    for gran in grans:
        _add_run(psub, gran)
    _add_calibration(psub)
    _add_anomalies(psub)
    q = psub.add_parser("show", help="summarise a store (read only)")
    add_store(q)
    add_device_filter(q, "only this device (a name or a device key)")
    add_json(q, "print a JSON list with one object per measurement")
    set_handler(q, _profile_show)
    q = psub.add_parser("export", help="export a store (read only) to .csv, .parquet or .json")
    add_store(q)
    q.add_argument("-o", "--output", required=True, help="output file (.csv, .parquet or .json)")
    set_handler(q, _profile_export)
    q = psub.add_parser("bundle", help="write a self-contained folder to profile a remote device")
    q.add_argument("granularity", choices=grans)
    add_arch_refs(q)
    add_resolution(q)
    add_sampling(q)
    add(
        q,
        "--quantize",
        choices=Choices("hwlat.profiler.export.tflite:QUANTIZE_MODES"),
        help="LiteRT int8 post-training quantized models",
    )
    q.add_argument("-o", "--output", required=True, help="bundle folder")
    set_handler(q, _profile_bundle)
    q = psub.add_parser("import", help="merge a bundle's results.jsonl into a store (all or nothing)")
    q.add_argument("results", help="results.jsonl or the bundle folder")
    add_store(q, "write")
    set_handler(q, _profile_import)
    _add_import_table(psub)
    _add_import_benchmark_log(psub)
    _add_file(psub)
