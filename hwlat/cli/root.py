"""The ``hwlat`` command line: thin wrappers over the public functions.

The contract: a user error (:class:`~hwlat.errors.HwlatError`, ``ValueError``, ``OSError``, or a
usage error) prints one line ``hwlat: error: ...`` naming the file, field or argument and exits 2
(``-v`` adds the traceback); any other exception is a bug and keeps its traceback. No command
changes a file it was not asked to change.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path

from hwlat.errors import FileFormatError, HwlatError
from hwlat.files import dumps_strict, finite_or_none

log = logging.getLogger("hwlat")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("hwlat").strip()
        raise _UsageError(f"{command}: {message}" if command else message)


class _UsageError(Exception):
    pass


def _arch_list(args) -> int:
    from hwlat.archs import task_names, zoo_names

    print("\n".join(zoo_names() + task_names()))
    return 0


def _arch_show(args) -> int:
    import pandas as pd

    from hwlat.archs import layers_frame, load_arch, resolution_str, summary

    arch = load_arch(args.arch, args.resolution)
    df = layers_frame(arch)
    cols = ["name", "op", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kernel", "stride",
            "groups", "act", "madds", "params", "elementwise"] + (["inputs"] if arch.nodes else [])
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(f"{arch.name} @ {'x'.join(map(str, arch.hw))}")
        print(df[cols].to_string(index=False))
    s = summary(arch)
    print(f"total: {s['madds'] / 1e6:.2f} M MAdds (conv+FC), {s['params']:,} params, "
          f"{s['elementwise'] / 1e6:.2f} M elementwise ops")
    if arch.outputs:
        print(f"outputs: {', '.join(arch.outputs)} ({resolution_str(arch.resolution)} input)")
    return 0


def _arch_madds(args) -> int:
    from hwlat.archs import load_arch, resolution_str, summary
    from hwlat.paper import paper_task_rows

    out = []
    for ref in args.arch:
        arch = load_arch(ref, args.resolution)
        s = summary(arch)
        rec = {"name": arch.name, "resolution": arch.resolution, "madds": s["madds"],
               "params": s["params"], "elementwise": s["elementwise"]}
        paper = paper_task_rows(arch)  # the paper's Tables 6-8, for its detection/segmentation nets
        if paper:
            rec["paper"] = [{k: p[k] for k in ("table", "model", "paper_madds_B", "madds_diff_pct",
                                               "paper_params_M", "params_diff_pct")} for p in paper]
        out.append(rec)
    if args.json:
        print(dumps_strict(finite_or_none(out), indent=2, default=lambda v: None))
    else:
        for o in out:
            print(f"{o['name']:36s} {resolution_str(o['resolution']):>4s}px {o['madds'] / 1e6:9.2f} M MAdds "
                  f"{o['params'] / 1e6:7.3f} M params")
            for p in o.get("paper", ()):
                params = "" if p["paper_params_M"] != p["paper_params_M"] else (
                    f", {p['paper_params_M']:.2f} M params ({p['params_diff_pct']:+.1f} %)")
                print(f"{'':49s}paper {p['table']} {p['model']}: {p['paper_madds_B'] * 1e3:.0f} M MAdds "
                      f"({p['madds_diff_pct']:+.1f} %){params}")
    return 0


def _archs(refs: list[str], resolution: "int | tuple[int, int] | None", sample_space: str | int = 0, space: str = "large",
           seed: int = 0) -> list:
    """Resolve CLI references: zoo names, space references, codec strings, files, ``@zoo``,
    ``@grid``, plus ``--sample-space`` samples (``N`` of ``space``, or ``SPACE:N``)."""
    from hwlat.archs import get_space, load_arch, mobilenetv3, zoo_names
    from hwlat.archs.space import parse_sample

    out = []
    for ref in refs:
        if ref == "@zoo":
            out += [load_arch(n, resolution) for n in zoo_names()]
        elif ref == "@grid":  # the paper's Figure 7 grid: Large/Small x multipliers x resolutions
            out += [mobilenetv3(f, width_mult=m, resolution=r) for f in ("large", "small")
                    for m in (0.35, 0.5, 0.75, 1.0, 1.25) for r in (96, 128, 160, 192, 224, 256)]
        else:
            out.append(load_arch(ref, resolution))
    name, n = parse_sample(sample_space, space)
    if n:
        if isinstance(resolution, tuple):  # spaces sample at a square size; HxW is set afterwards
            out += [a.with_resolution(resolution) for a in get_space(name).sample_archs(n, seed)]
        else:
            out += get_space(name, resolution).sample_archs(n, seed)
    if not out:
        raise ValueError("no architectures given (name them, or use @zoo, @grid or --sample-space N)")
    return out


def _export(args) -> int:
    from hwlat.archs import load_arch
    from hwlat.files import atomic_write
    from hwlat.profiler.storage.store import check_output

    out = check_output(args.output)
    arch = load_arch(args.arch, args.resolution)
    if (args.quantize or args.grouped != "conv") and args.format != "tflite":
        raise ValueError("--quantize and --grouped apply to tflite export only")
    if args.format == "tflite":
        from hwlat.profiler.export.tflite import build_tflite

        data = build_tflite(arch, quantize=args.quantize, grouped=args.grouped)
    else:
        from hwlat.profiler.export.onnx import build_onnx

        data = build_onnx(arch)
    atomic_write(out, lambda tmp: tmp.write_bytes(data))
    print(f"wrote {out} ({len(data) / 1e6:.2f} MB, {arch.name} @ {'x'.join(map(str, arch.hw))}px, "
          f"{args.format})")
    return 0


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _profile_run(args, archs=None) -> int:
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.runners import get_runner
    from hwlat.profiler.measure.timing import TimingConfig

    if archs is None:
        archs = _archs(args.arch, args.resolution, args.sample_space, args.space, args.seed)
    opts = {"xnnpack": not args.no_xnnpack, "quantize": args.quantize} if args.runtime == "litert" else {}
    if args.quantize and args.runtime != "litert":
        raise ValueError(f"--quantize is a LiteRT option; runtime {args.runtime!r} measures float32")
    cfg = TimingConfig(target=args.target, max_seconds=args.max_seconds)
    with_blocks = getattr(args, "with_blocks", False)    # an option of `profile models` only
    gran = ("model", "block") if with_blocks else args.granularity.rstrip("s")
    what = "models and blocks" if with_blocks else args.granularity
    if args.ray is not None:
        return _profile_farm(args, archs, gran, cfg, opts, what)
    if args.device or args.parallel_slots:
        raise ValueError("--device and --parallel-slots apply with --ray only")
    res = profile(archs, gran, args.store, get_runner(args.runtime, **opts), variant=args.variant,
                  config=cfg, progress=not args.quiet, repeats=args.repeats)
    return _profile_report(res, archs, what)


def _profile_report(res, archs, what: str, device: str = "") -> int:
    extra = "".join(f", {len(v)} {k}" for k, v in (("duplicates dropped", res.duplicates),
                                                    ("resubmitted", res.resubmitted)) if v)
    measured = len(set(res.measured))
    rows = f" ({len(res.measured)} repeats)" if len(res.measured) != measured else ""
    print(f"{device}{res.total} distinct {what} of {len(archs)} archs: {measured} measured{rows}, "
          f"{len(res.skipped)} already stored, {len(res.failed)} failed{extra}; results in {res.store}")
    for key, err in list(res.failed.items())[:5]:
        print(f"  failed {key}: {err}")
    return 1 if res.failed and not res.measured and not res.skipped else 0


def _profile_calibration(args) -> int:
    from hwlat.archs.calibration import calibration_set, coverage_report
    from hwlat.archs.space import get_space

    space = get_space(args.space)
    archs = calibration_set(space, args.n, seed=args.seed, resolutions=args.resolutions)
    cov = coverage_report(archs, space, seed=args.seed, resolutions=args.resolutions)
    lo, hi = cov["weights_mb"]
    print(f"calibration set of the {args.space} space: {len(archs)} networks at "
          f"{sorted({a.resolution for a in archs})} px covering {cov['covered']}/{cov['total']} op, "
          f"kernel, width and resolution features, weights {lo:.1f}-{hi:.1f} MB")
    args.arch, args.resolution, args.sample_space, args.with_blocks = [], None, 0, True
    args.granularity = "models"
    return _profile_run(args, archs=archs)


def _profile_anomalies(args) -> int:
    import pandas as pd

    from hwlat.profiler.analysis.anomalies import anomalies, efficiency, efficiency_summary
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
            print(f"{len(found)} kernels at least {args.factor:g}x slower than expected for their op "
                  f"type and size:")
            cols = ["device", "label", "gmacs", "latency_ms", "expected_ms", "slowdown"]
            print(found[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


def _resolution(text: str) -> "int | tuple[int, int]":
    """argparse type: an input size in pixels, ``R`` (square) or ``HxW`` (e.g. ``1024x2048``)."""
    from hwlat.archs import parse_resolution

    try:
        return parse_resolution(text)  # sizes below 1 px are refused by validation (arch.resolution)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("resolution: ")) from None


def _resolutions(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated input sizes in pixels."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 32:
        raise argparse.ArgumentTypeError(f"resolutions must be at least 32 px, got {text!r}")
    return values


def _profile_farm(args, archs, gran, cfg, opts: dict, what: str) -> int:
    """``profile ... --ray [ADDRESS]``: the devices of a Ray cluster (a local one without ADDRESS)."""
    import os

    from hwlat.profiler.measure import farm

    devices = [farm.parse_device(d, args.runtime, opts) for d in args.device or [args.runtime]]
    local = {d.resource: 1 for d in devices}
    with farm.session(args.ray or None, num_cpus=os.cpu_count(), resources=local):
        results = farm.farm_profile(archs, gran, args.store, devices, variant=args.variant,
                                    config=cfg, progress=not args.quiet,
                                    parallel_slots=args.parallel_slots, repeats=args.repeats)
    return max(_profile_report(res, archs, what, f"{name}: ") for name, res in results.items())


def _profile_show(args) -> int:
    import pandas as pd

    from hwlat.profiler.storage.store import UNSTABLE_SPREAD_PCT, open_store, unstable_workloads

    with open_store(args.store, readonly=True) as st:
        df = st.frame()
        devices = st.devices()
        fps = {r.device_id: json.loads(r.fingerprint) for r in devices.itertuples()}
    if args.device is not None:
        df = df[df["device_key"] == _select_device(devices, args.device, args.store)]
    df["label"] = [json.loads(spec).get("label", "") for spec in df["spec"]]
    if args.json:  # a JSON list, one object per measurement (as `arch madds --json`, `predict --json`)
        cols = ["key", "granularity", "variant", "runtime", "runtime_version", "device", "device_key",
                "latency_ms", "median_ms", "p10_ms", "p90_ms", "n", "repeats", "spread_pct", "ref_ms", "steal_pct",
                "madds", "params", "label"]
        print(df[[c for c in cols if c in df.columns]].to_json(orient="records", indent=1))
        return 0
    if df.empty:
        print(f"{args.store}: no measurements yet")
        return 0
    df["precision"] = [(fps.get(d, {}).get("extra") or {}).get("precision", "float32") for d in df["device_id"]]
    summary = df.groupby(["device", "device_key", "runtime", "delegate", "precision", "granularity",
                          "variant"], dropna=False).agg(
        workloads=("key", "nunique"), latency_ms_total=("latency_ms", "sum"),
        repeats=("repeats", "median"),
        spread_pct_median=("spread_pct", "median"), spread_pct_max=("spread_pct", "max")).reset_index()
    unstable = unstable_workloads(df)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(summary.to_string(index=False))
    if len(unstable):
        print(f"{len(unstable)} workloads whose repeats disagree by more than {UNSTABLE_SPREAD_PCT:g} % "
              f"(spread = (max - min) / median of the repeats' latencies), widest first:")
        for r in unstable.head(10).itertuples():
            print(f"  {r.spread_pct:5.1f} %  {r.repeats} repeats  {r.latency_ms:.3f} ms  {r.label}")
    return 0


def _profile_export(args) -> int:
    from hwlat.profiler.storage.store import open_store

    from hwlat.profiler.storage.store import check_output

    out = check_output(args.output)
    with open_store(args.store, readonly=True) as st:
        st.export(out)
    print(f"wrote {args.output}")
    return 0


def _profile_bundle(args) -> int:
    from hwlat.profiler.measure.bundle import write_bundle

    archs = _archs(args.arch, args.resolution, args.sample_space, args.space, args.seed)
    out = write_bundle(archs, args.granularity.rstrip("s"), args.output)
    print(f"wrote bundle {out}: copy it to the device, run `python3 run_bundle.py` there, then "
          f"`hwlat profile import {out}/results.jsonl --store STORE`")
    return 0


def _profile_import(args) -> int:
    from hwlat.profiler.measure.bundle import import_results

    c = import_results(args.results, args.store)
    if c["note"]:
        print(c["note"])
    print(f"imported {c['added']} measurements ({c['skipped']} already stored, {c['failures']} failures) "
          f"into {args.store}")
    return 0


def check_predictor_output(path: str | os.PathLike, force: bool = False) -> Path:
    """``path`` is a place ``hwlat fit -o`` may write a predictor to: checked before fitting.

    Its folder must exist; an existing file must be a predictor of ours (or ``force``), never a
    measurement store or a folder.
    """
    from hwlat.latency_models.persist import SCHEMA
    from hwlat.profiler.storage.store import check_output

    path = check_output(path)
    if not os.access(path.parent, os.W_OK):
        raise FileFormatError(f"-o {path}: folder {path.parent} is not writable")
    if not path.exists():
        return path
    try:
        ours = json.loads(path.read_text(encoding="utf-8")).get("schema") == SCHEMA
    except (ValueError, AttributeError):
        ours = False
    if not ours and not force:
        raise FileFormatError(f"-o {path}: exists and is not an hwlat predictor; refusing to overwrite "
                              f"it (--force replaces it)")
    return path


def _save(pred, path: Path) -> None:
    """``pred.save(path)``; an OSError names ``path``, never the temporary file beside it."""
    try:
        pred.save(path)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def _fit(args) -> int:
    from hwlat.latency_models import TrainingData, make_predictor
    from hwlat.latency_models.metrics import metrics

    out = check_predictor_output(args.output, args.force)
    data = TrainingData.from_store(args.store, args.runtime, args.device,
                                   normalise_phase=args.normalise_phase)
    if len(data.models) < 2:
        raise ValueError(f"{args.store}: {len(data.models)} measured network(s); a predictor needs at "
                         f"least 2 (hwlat profile models ... --store {args.store})")
    if args.source and args.kind != "transfer":
        raise ValueError("--source is for --kind transfer")
    pred = make_predictor(args.kind, **_transfer_params(args)) if args.kind == "transfer" else \
        make_predictor(args.kind)
    archs = data.archs()
    pred.fit(archs, data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime=data.runtime)
    _save(pred, out)
    m = metrics(data.latency_ms, pred.predict_many(archs))
    print(f"fitted {args.kind} on {len(archs)} networks and {len(data.pieces)} pieces of device "
          f"{_device_label(data.fingerprint)} [{data.device_key}] ({data.runtime}); training acc10 "
          f"{m['acc10']:.2f}, RMSPE {m['rmspe']:.1f} %; wrote {args.output}")
    if args.kind == "transfer":
        print("  sources: " + ", ".join(f"{n} (weight {w:.2f})" for n, w in
                                         zip(pred.source_names_, pred.weights_)))
    return 0


def _transfer_params(args) -> dict:
    """``--source`` files (or ``@NAME``) of a transfer predictor, loaded once."""
    from hwlat.latency_models import load

    if not args.source and not args.madds_source:
        raise ValueError("--kind transfer needs --source PRED (repeatable; a predictor of another "
                         "device, e.g. @pixel3) or --madds-source")
    return {"sources": [load(s) for s in args.source or ()], "madds": args.madds_source}


def _device_label(fp: dict) -> str:
    from hwlat.profiler.storage.device_select import device_name

    return device_name(fp)


def _select_device(devices, ref: str, store) -> str:
    """The device key that ``--device ref`` names among a store's devices."""
    from hwlat.profiler.storage.device_select import select_device

    return select_device(devices, ref, str(store))["device_key"]


def _predict(args) -> int:
    from hwlat.archs import resolution_str
    from hwlat.cli.search import load_predictor

    pred = load_predictor(args.predictor, args.runtime, args.allow_other_device)
    archs = _archs(args.arch, args.resolution)
    out = []
    for arch in archs:
        rec = {"name": arch.name, "resolution": arch.resolution, "latency_ms": pred.predict(arch)}
        if args.layers:
            rec["layers"] = pred.predict_layers(arch)[["name", "op", "latency_ms"]].to_dict("records")
        out.append(rec)
    if args.json:
        print(dumps_strict(finite_or_none(out), indent=1))
        return 0
    for rec in out:
        print(f"{rec['name']:36s} {resolution_str(rec['resolution']):>4s}px {rec['latency_ms']:9.3f} ms")
        for lay in rec.get("layers", []):
            print(f"    {lay['name']:28s} {lay['op']:7s} {lay['latency_ms']:9.4f} ms")
    return 0


def _evaluate(args) -> int:
    import pandas as pd

    from hwlat.latency_models import TrainingData, load
    from hwlat.latency_models.evaluate import repeat_floor, score, unseen

    rows = []
    for path in args.predictor:
        pred = load(path)
        data = TrainingData.from_store(args.store, None if args.device else pred.runtime_ or "litert",
                                       args.device or _device_of(pred))
        pred.check_device(data.fingerprint, data.runtime, strict=not args.allow_other_device)
        archs, y = unseen(pred, data)
        if len(archs) < 2:
            raise ValueError(f"{args.store}: fewer than 2 measured networks that {path} was not trained on")
        floor = repeat_floor(args.store, archs, data.runtime, data.device_key)
        rows.append({"predictor": str(path), "kind": pred.kind, **score(pred, archs, y),
                     **{f"floor_{k}": (floor or {}).get(k) for k in ("n", "acc5", "acc10", "kendall_tau")}})
    if args.json:
        print(dumps_strict(finite_or_none(rows), indent=1))
        return 0
    rows = [{k: v for k, v in r.items() if not k.startswith("floor_")} for r in rows]
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(pd.DataFrame(rows).to_string(index=False))
    print("truth: each network's latency, the median of its repeats' p10 "
          "(hwlat.profiler.storage.store.LATENCY_STATISTIC)")
    if floor is None:
        print("noise floor: unknown (no two test networks measured twice; measure them with "
              "`hwlat profile models ... --repeats 3` to see it)")
    else:
        print(f"noise floor, one repeat against another on {floor['n']} networks: acc5 "
              f"{floor['acc5']:.3f}  acc10 {floor['acc10']:.3f}  kendall_tau {floor['kendall_tau']:.3f}  "
              f"rmspe {floor['rmspe']:.1f} %")
    return 0


def _device_of(pred) -> str | None:
    from hwlat.profiler.storage.device import device_key

    return device_key(pred.fingerprint_) if pred.fingerprint_ else None


def _profile_import_table(args) -> int:
    from hwlat.profiler.storage.tables import import_table

    c = import_table(args.table, args.store, args.device, args.column, space=args.space,
                     source=args.source, runtime=args.runtime)
    print(f"imported {c['rows']} rows of {args.table} column {args.column!r} as device {args.device!r} "
          f"[{c['device_key']}]: {c['added']} measurements added, {c['skipped']} already stored; "
          f"store {args.store}")
    return 0


def _suggest(args) -> int:
    from hwlat.latency_models import load
    from hwlat.latency_models.suggest import suggest, write_csv

    preds = [load(s) for s in args.source]
    picks = suggest(preds, args.space, args.n, seed=args.seed, pool=args.pool)
    if args.output:
        write_csv(picks, args.space, args.output)
    if args.json:
        print(dumps_strict([{"ref": p.ref, "name": p.arch.name, "predicted_ms": p.predicted_ms}
                          for p in picks], indent=1))
        return 0
    for p in picks:
        print(f"{p.ref}  " + "  ".join(f"{ms:8.2f} ms" for ms in p.predicted_ms))
    if args.output:
        print(f"wrote {args.output}: measure each network on the device, fill the latency_ms column, "
              f"then: hwlat profile import-table {args.output} --column latency_ms --space {args.space} "
              f"--device NAME --store STORE")
    return 0


def _add_device_parsers(sub, psub) -> None:
    """``profile import-table`` and ``suggest``: devices measured elsewhere, end to end."""
    from hwlat.archs.space import SPACE_NAMES

    q = psub.add_parser("import-table", help="import a CSV of end-to-end latencies (ms) measured "
                        "elsewhere (a published table, benchmark_model runs) as one device")
    q.add_argument("table", help="CSV: one row per network, architecture in op0..opN (with --space) "
                   "or an 'arch' column of codec strings")
    q.add_argument("--store", required=True, help="measurement store (created if missing)")
    q.add_argument("--device", required=True, help="the device's name (e.g. samsung_a50, my-pixel7)")
    q.add_argument("--column", required=True, help="the latency column (ms)")
    q.add_argument("--space", choices=SPACE_NAMES, help="read the architecture from the space's op0.. columns")
    q.add_argument("--source", help="where the numbers come from (default: the file and column)")
    q.add_argument("--runtime", default="unknown", help="runtime the numbers were measured with "
                   "(e.g. tflite); part of the device's identity")
    q.set_defaults(func=_profile_import_table)

    g = sub.add_parser("suggest", help="which networks of a space to measure on a new device "
                       "(for hwlat fit --kind transfer)")
    g.add_argument("--source", required=True, action="append", help="predictor of a known device "
                   "(file or @NAME; repeatable)")
    g.add_argument("--space", required=True, choices=SPACE_NAMES)
    g.add_argument("-n", type=_positive_int, required=True, help="how many networks")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--pool", type=_positive_int, default=2000, help="candidates sampled from the space")
    g.add_argument("-o", "--output", help="also write a CSV (op columns, arch, empty latency_ms) to fill in")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_suggest)


def _demo(args) -> int:
    import pandas as pd

    from hwlat.experiments.demo import run_demo
    from hwlat.paper import zoo_vs_table3
    from hwlat.cli.search import EXIT_SHORT

    df = zoo_vs_table3()
    print("hwlat demo: analytic MAdds and params of the zoo beside the paper's Table 3 "
          "(arXiv:1905.02244v5, 224x224)\n")
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print(df.to_string(index=False))
    worst = df["madds_diff_pct"].abs().max()
    print(f"\nlargest MAdds difference: {worst:.2f} % (target <= 1.5 %). MAdds count conv and FC "
          "multiply-adds; elementwise work is listed apart (see README, 'Counting').\n")
    if not args.table_only:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise FileFormatError(f"--out {out}: is a file; the demo needs a folder")
        if not run_demo(out, quick=args.quick, progress=not args.quiet).complete:
            return EXIT_SHORT
    return 0


def _farm_args(q) -> None:
    q.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="measure on the devices of a Ray cluster (HOST:PORT; a local one without "
                        "ADDRESS); needs pip install 'hwlat[ray]'")
    q.add_argument("--device", action="append", metavar="NAME[=RUNTIME]",
                   help="with --ray: a device, the Ray resource device:NAME (repeatable; default: "
                        "one named after --runtime)")
    q.add_argument("--parallel-slots", action="store_true",
                   help="with --ray: allow a host more than one measuring slot (they disturb "
                        "each other; see README)")


def _demo_compare(args) -> int:
    from hwlat.cli.search import load_predictor
    from hwlat.experiments.compare import CompareConfig, compare

    cfg = CompareConfig(seed_arch=args.seed_arch, resolution=args.resolution, seed_steps=args.seed_steps,
                        short_steps=args.short_steps, long_steps=args.long_steps, delta=args.delta,
                        ratio=args.ratio, nas_budget=args.nas_budget, nas_steps=args.nas_steps,
                        nas_resolution=args.nas_resolution,
                        controllers=tuple(filter(None, args.nas_controllers.split(","))),
                        threads=args.threads, skip=frozenset(filter(None, args.skip.split(","))),
                        max_seconds=args.max_seconds)
    pred = load_predictor(args.predictor, "litert", args.allow_other_device)
    res = compare(pred, args.out, cfg)
    na, uni = res.get("netadapt"), res.get("uniform")
    if na:
        print(f"NetAdapt: {na['seed']} @{na['resolution']}px {na['seed_measured_ms']:.3f} ms measured, acc "
              f"{na['seed_accuracy']:.3f} -> {na['final_measured_ms']:.3f} ms ({na['measured_ratio']:.2f} of "
              f"the seed; {na['final_predicted_ms']:.3f} ms predicted), acc {na['final_accuracy']:.3f}")
    if uni:
        print(f"uniform x{uni['width_mult']:g}: {uni['measured_ms']:.3f} ms measured "
              f"({uni['predicted_ms']:.3f} ms predicted), acc {uni['accuracy']:.3f}")
    elif na and "uniform" not in cfg.skip:
        print("uniform: no width multiplier of the seed is predicted as fast as NetAdapt's result")
    print(f"wrote {Path(args.out) / 'compare.json'}")
    return 0


def _add_arch(sub) -> None:
    arch = sub.add_parser("arch", help="architectures: list, show, count").add_subparsers(
        dest="arch_cmd", required=True, parser_class=_Parser)
    a = arch.add_parser("list", help="zoo names")
    a.set_defaults(func=_arch_list)
    a = arch.add_parser("show", help="layer table with shapes, MAdds, params")
    a.add_argument("arch", help="zoo name, SPACE:i,j,... (a point of a search space), codec string "
                   "or JSON/codec file")
    a.add_argument("--resolution", "-r", type=_resolution, help="input resolution in pixels: R or HxW")
    a.set_defaults(func=_arch_show)
    a = arch.add_parser("madds", help="MAdds and params of one or more architectures")
    a.add_argument("arch", nargs="+", help="zoo names, SPACE:i,j,... references, codec strings or "
                   "JSON/codec files")
    a.add_argument("--resolution", "-r", type=_resolution, help="input resolution in pixels: R or HxW")
    a.add_argument("--json", action="store_true", help="print a JSON list")
    a.set_defaults(func=_arch_madds)


def _add_export(sub) -> None:
    e = sub.add_parser("export", help="write a .tflite or .onnx file of an architecture")
    e.add_argument("format", choices=["tflite", "onnx"])
    e.add_argument("arch", help="zoo name, codec string or JSON/codec file")
    e.add_argument("-o", "--output", required=True, help="output file")
    e.add_argument("--resolution", "-r", type=_resolution, help="input resolution in pixels: R or HxW")
    e.add_argument("--quantize", choices=["int8"], help="tflite only: int8 post-training quantization "
                   "calibrated on random data")
    e.add_argument("--grouped", choices=["conv", "split"], default="conv",
                   help="tflite only: grouped 1x1 convs as one grouped CONV_2D, or SPLIT + CONV_2D per "
                        "group + CONCATENATION")
    e.set_defaults(func=_export)


def _arch_args(q) -> None:
    from hwlat.archs.space import SPACE_NAMES

    q.add_argument("arch", nargs="*", help="zoo names, codec strings, files, @zoo, @grid")
    q.add_argument("--resolution", "-r", type=_resolution, help="input resolution in pixels: R or HxW")
    q.add_argument("--sample-space", default="0", metavar="[SPACE:]N",
                   help="also profile N architectures sampled from SPACE (default: --space)")
    q.add_argument("--space", choices=SPACE_NAMES, default="large", help="the space of --sample-space N")
    q.add_argument("--seed", type=int, default=0)


def _measure_args(q) -> None:
    from hwlat.profiler.measure.profile import CLI_REPEATS

    q.add_argument("--runtime", default="litert", help="litert | onnxruntime | torch")
    q.add_argument("--store", required=True, help="SQLite measurement store (created if missing)")
    q.add_argument("--variant", choices=["warm", "cold"], default="warm",
                   help="cold: evict caches before every invocation")
    q.add_argument("--target", type=float, default=0.02,
                   help="sample until the 95%% CI of each repeat's median is within this "
                        "fraction of it (default 0.02), or --max-seconds")
    q.add_argument("--max-seconds", type=float, default=10.0, help="cap per workload")
    q.add_argument("--no-xnnpack", action="store_true", help="LiteRT builtin kernels only")
    q.add_argument("--quantize", choices=["int8"], help="LiteRT int8 post-training quantized models")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    q.add_argument("--repeats", type=_positive_int, default=CLI_REPEATS, metavar="R",
                   help="measure each workload R times, in fresh runtime instances spread over "
                        f"the run (R passes); its latency is the median of theirs (default {CLI_REPEATS})")
    _farm_args(q)


def _add_profile_run(psub, gran: str) -> None:
    q = psub.add_parser(gran, help=f"measure the distinct {gran} of the architectures")
    _arch_args(q)
    _measure_args(q)
    if gran == "models":
        q.add_argument("--with-blocks", action="store_true",
                       help="measure each network together with its blocks (what predictors "
                            "calibrate on), interleaved so a slow phase hits both alike")
    q.set_defaults(func=_profile_run, granularity=gran)


def _add_profile_calibration(psub) -> None:
    from hwlat.archs.space import SPACE_NAMES

    q = psub.add_parser("calibration", help="measure the calibration set hwlat picks from a search "
                        "space (each network with its blocks): what the network-level terms learn from")
    q.add_argument("--space", choices=SPACE_NAMES, default="large")
    q.add_argument("-n", type=_positive_int, default=24, help="networks in the set (default 24)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--resolutions", type=_resolutions, default=None,
                   help="comma-separated input sizes to cover (default: the space's own, e.g. "
                        "224 for large/small, 32 for fbnet_cifar100)")
    _measure_args(q)
    q.set_defaults(func=_profile_calibration)


def _add_profile_anomalies(psub) -> None:
    q = psub.add_parser("anomalies", help="kernels far less efficient (MAdds per ms) than others "
                        "of their op type and size, and efficiency by op type and kernel size")
    q.add_argument("--store", required=True)
    q.add_argument("--factor", type=float, default=2.0,
                   help="report kernels at least this many times slower than expected (default 2)")
    q.add_argument("--json", action="store_true", help="the anomalies as JSON records")
    q.set_defaults(func=_profile_anomalies)


def _add_profile(sub) -> None:
    prof = sub.add_parser("profile", help="measure latency into a store; show, export, bundles")
    psub = prof.add_subparsers(dest="profile_cmd", required=True, parser_class=_Parser)
    for gran in ("kernels", "blocks", "models"):
        _add_profile_run(psub, gran)
    _add_profile_calibration(psub)
    _add_profile_anomalies(psub)
    q = psub.add_parser("show", help="summarise a store (read only)")
    q.add_argument("--store", required=True)
    q.add_argument("--device", help="only this device (a name or a device key)")
    q.add_argument("--json", action="store_true", help="print a JSON list with one object per measurement")
    q.set_defaults(func=_profile_show)
    q = psub.add_parser("export", help="export a store (read only) to .csv, .parquet or .json")
    q.add_argument("--store", required=True)
    q.add_argument("-o", "--output", required=True)
    q.set_defaults(func=_profile_export)
    q = psub.add_parser("bundle", help="write a self-contained folder to profile a remote device")
    q.add_argument("granularity", choices=["kernels", "blocks", "models"])
    _arch_args(q)
    q.add_argument("-o", "--output", required=True, help="bundle folder")
    q.set_defaults(func=_profile_bundle)
    q = psub.add_parser("import", help="merge a bundle's results.jsonl into a store (all or nothing)")
    q.add_argument("results", help="results.jsonl or the bundle folder")
    q.add_argument("--store", required=True)
    q.set_defaults(func=_profile_import)
    _add_device_parsers(sub, psub)


def _add_fit(sub) -> None:
    f = sub.add_parser("fit", help="fit a latency predictor on a store's measurements")
    f.add_argument("--store", required=True, help="measurement store (read only)")
    f.add_argument("--kind", required=True, choices=["madds", "lut", "regression", "calibrated", "e2e",
                                                     "transfer"],
                   help="e2e: per-block costs from whole-network latencies only; transfer: combine "
                        "--source predictors of other devices from a few networks of this one")
    f.add_argument("--runtime", help="only devices of this runtime (default: any)")
    f.add_argument("--device", help="the device (a name or a device key), when the store holds several")
    f.add_argument("--source", action="append", help="transfer: predictor of another device (file or "
                   "@NAME; repeatable)")
    f.add_argument("--madds-source", action="store_true", help="transfer: the MAdds count as one more source")
    f.add_argument("--normalise-phase", action="store_true",
                   help="rescale each measurement by the reference workload timed in its own rounds "
                        "(the machine's phase; rows without one are kept as measured)")
    f.add_argument("-o", "--output", required=True, help="predictor file (.json); never a store")
    f.add_argument("--force", action="store_true", help="replace an existing file that is not a predictor")
    f.set_defaults(func=_fit)


def _add_predict(sub) -> None:
    f = sub.add_parser("predict", help="predict latency (ms) with a fitted predictor")
    f.add_argument("--predictor", required=True)
    f.add_argument("arch", nargs="+", help="zoo names, codec strings, files, @zoo, @grid")
    f.add_argument("--resolution", "-r", type=_resolution, help="input resolution in pixels: R or HxW")
    f.add_argument("--runtime", help="runtime the latency is for (default: the predictor's own); "
                                     "checked with the device against the predictor")
    f.add_argument("--allow-other-device", action="store_true",
                   help="warn instead of failing when the predictor is for another device or runtime")
    f.add_argument("--layers", action="store_true", help="per-layer breakdown")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_predict)


def _add_evaluate(sub) -> None:
    f = sub.add_parser("evaluate", help="score predictors on a store's networks they were not trained on")
    f.add_argument("--store", required=True, help="measurement store (read only)")
    f.add_argument("--predictor", required=True, nargs="+")
    f.add_argument("--device", help="the device (a name or a device key); default: the predictor's")
    f.add_argument("--allow-other-device", action="store_true", help="warn instead of failing")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_evaluate)


def _add_demo(sub) -> None:
    d = sub.add_parser("demo", help="the main job on the built-in defaults: profile this CPU, fit, "
                                    "NetAdapt on digits, report; `demo compare`: NetAdapt vs uniform, NAS")
    d.add_argument("--out", default="out/demo", help="folder for the store, predictors, runs and report")
    d.add_argument("--quick", action="store_true", help="a small version of the same path (~1 min)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    d.add_argument("--table-only", action="store_true", help="only the zoo vs paper Table 3 comparison")
    d.set_defaults(func=_demo)
    dsub = d.add_subparsers(dest="demo_cmd", parser_class=_Parser)
    c = dsub.add_parser("compare", help="NetAdapt against uniform width scaling (measured with LiteRT), "
                                        "and NAS with each controller, on digits")
    c.add_argument("--predictor", required=True, help="fitted predictor of this machine (hwlat fit)")
    c.add_argument("--out", required=True, help="folder: netadapt/, nas_*/, measure.db, compare.json")
    c.add_argument("--seed-arch", default="mobilenetv3_small_050",
                   help="NetAdapt's seed: zoo name, codec string or spec file")
    c.add_argument("--resolution", "-r", type=int, default=96)
    c.add_argument("--seed-steps", type=int, default=150)
    c.add_argument("--short-steps", type=int, default=5)
    c.add_argument("--long-steps", type=int, default=100)
    c.add_argument("--delta", type=float, default=0.03, help="NetAdapt step as a fraction of the seed latency")
    c.add_argument("--ratio", type=float, default=0.8, help="NetAdapt target as a fraction of the seed latency")
    c.add_argument("--nas-budget", type=int, default=200)
    c.add_argument("--nas-steps", type=int, default=3, help="training steps of the cheap NAS evaluator")
    c.add_argument("--nas-resolution", type=int, default=32, help="input size of the cheap NAS evaluator")
    c.add_argument("--nas-controllers", default="random,evolution,rl", help="comma list")
    c.add_argument("--threads", type=int, default=1, help="torch threads of the evaluators")
    c.add_argument("--skip", default="", help="comma list of parts to skip: netadapt, uniform, nas")
    c.add_argument("--max-seconds", type=float, default=10.0, help="cap per LiteRT measurement")
    c.add_argument("--allow-other-device", action="store_true", help="warn instead of failing on a device mismatch")
    c.set_defaults(func=_demo_compare)


def build_parser() -> argparse.ArgumentParser:
    from hwlat.cli.dashboards import add_parsers as add_dashboard
    from hwlat.cli.search import add_parsers as add_search

    p = _Parser(prog="hwlat", description="Hardware-aware latency modeling for mobile networks.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    for add in (_add_arch, _add_export, _add_profile, _add_fit, _add_predict, _add_evaluate,
                add_search, add_dashboard, _add_demo):
        add(sub)
    return p


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2 + 3:]}"


def error_message(e: BaseException) -> str:
    """One line for a user error: an OSError names its file (shortened) and the system's reason."""
    if isinstance(e, OSError) and e.strerror:
        files = [_shorten(str(f)) for f in (e.filename, e.filename2) if f is not None]
        msg = f"{' -> '.join(files)}: {e.strerror.lower()}" if files else e.strerror
    else:
        msg = str(e)
    msg = " ".join(msg.split())                 # one line
    return msg if len(msg) <= 1000 else _shorten(msg, 1000)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"hwlat: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 2 bad input, 3 finished short of its goal with the
    results written: a NetAdapt run short of its target, a demo with a stage that failed; 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(f"hwlat: error: {error_message(e)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    format_warning = warnings.formatwarning
    if not args.verbose:  # a warning is one line for the user, not a source location
        warnings.formatwarning = _one_line_warning
    try:
        return args.func(args)
    except (HwlatError, ValueError, OSError) as e:
        if args.verbose:
            traceback.print_exc()
        print(f"hwlat: error: {error_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwlat: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = format_warning
