"""``hwlat fit``, ``predict``, ``evaluate`` and ``suggest``: latency predictors, fitted on a store,
used, judged on networks they were not trained on, and the networks to measure on a new device."""

from __future__ import annotations

import os
from pathlib import Path

from hwlat.cli._common import (
    Choices,
    Library,
    add,
    add_allow_other_device,
    add_arch_refs,
    add_device_filter,
    add_json,
    add_resolution,
    add_store,
    archs,
    positive_int,
    set_handler,
)
from hwlat.files import dumps_strict, finite_or_none


def check_predictor_output(path: str | os.PathLike, force: bool = False) -> Path:
    """``path`` is a place ``hwlat fit -o`` may write a predictor to, checked before fitting: its
    folder exists and is writable; an existing file must be a predictor of ours (or ``force``),
    never a measurement store or a folder (:func:`hwlat.files.check_output`)."""
    from hwlat.errors import FileFormatError
    from hwlat.files import check_output
    from hwlat.latency_models.persist import SCHEMA

    return check_output(path, error=FileFormatError, schema=SCHEMA, what="an hwlat predictor", force=force)


def _save(pred, path: Path) -> None:
    """``pred.save(path)``; an OSError names ``path``, never the temporary file beside it."""
    try:
        pred.save(path)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def _device_label(fp: dict) -> str:
    from hwlat.profiler.storage.device_select import device_name

    return device_name(fp)


def _fit(args) -> int:
    from hwlat.latency_models import TrainingData, make_predictor
    from hwlat.latency_models.metrics import metrics

    out = check_predictor_output(args.output, args.force)
    data = TrainingData.from_store(
        args.store, args.runtime, args.device, normalise_phase=args.normalise_phase
    )
    if len(data.models) < 2:
        raise ValueError(
            f"{args.store}: {len(data.models)} measured network(s); a predictor needs at "
            f"least 2 (hwlat profile models ... --store {args.store})"
        )
    if args.source and args.kind != "transfer":
        raise ValueError("--source is for --kind transfer")
    pred = (
        make_predictor(args.kind, **_transfer_params(args))
        if args.kind == "transfer"
        else make_predictor(args.kind)
    )
    archs_ = data.archs()
    pred.fit(archs_, data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime=data.runtime)
    _save(pred, out)
    m = metrics(data.latency_ms, pred.predict_many(archs_))
    print(
        f"fitted {args.kind} on {len(archs_)} networks and {len(data.pieces)} pieces of device "
        f"{_device_label(data.fingerprint)} [{data.device_key}] ({data.runtime}); training acc10 "
        f"{m['acc10']:.2f}, RMSPE {m['rmspe']:.1f} %; wrote {args.output}"
    )
    if args.kind == "transfer":
        print(
            "  sources: "
            + ", ".join(f"{n} (weight {w:.2f})" for n, w in zip(pred.source_names_, pred.weights_))
        )
    return 0


def _transfer_params(args) -> dict:
    """``--source`` files (or ``@NAME``) of a transfer predictor, loaded once."""
    from hwlat.latency_models import load

    if not args.source and not args.madds_source:
        raise ValueError(
            "--kind transfer needs --source PRED (repeatable; a predictor of another "
            "device, e.g. @pixel3) or --madds-source"
        )
    return {"sources": [load(s) for s in args.source or ()], "madds": args.madds_source}


def is_model_file(ref: str) -> bool:
    """``ref`` names an existing ``.tflite`` or ``.onnx`` file (imported, not read as an IR file)."""
    from hwlat.profiler.measure.profile import FILE_SUFFIXES

    return Path(ref).suffix.lower() in FILE_SUFFIXES and Path(ref).is_file()


def _targets(refs: list[str], resolution) -> list[tuple]:
    """``(arch, workload key, file)`` per reference, in order: a model file is imported
    (:func:`hwlat.archs.import_file`) and keyed by its content, anything else resolved by
    :func:`hwlat.cli._common.archs` and keyed as its ``model`` workload."""
    from hwlat.archs.pieces import model

    out = []
    for ref in refs:
        if is_model_file(ref):
            from hwlat.archs import import_file
            from hwlat.profiler.measure.profile import file_key

            if resolution is not None:
                raise ValueError(
                    f"{ref}: --resolution does not apply to a model file (its input size is its own)"
                )
            arch = import_file(ref).arch
            out.append((arch, file_key(Path(ref).read_bytes()), ref))
        else:
            out += [(a, model(a).key, None) for a in archs([ref], resolution)]
    return out


def _measured(store: str, pred, keys: list[str]) -> dict[str, float]:
    """Latency (ms) of the workloads ``keys`` measured in ``store`` on the predictor's device (its
    runtime; warm): the store's latency, the median of the repeats."""
    from hwlat.profiler.storage.device import device_key
    from hwlat.profiler.storage.store import open_store

    if not Path(store).is_file():
        raise ValueError(f"--store {store}: no such store")
    with open_store(store, readonly=True) as st:
        df = st.frame()
    df = df[df["key"].isin(keys) & (df["variant"] == "warm")]
    if pred.fingerprint_:
        df = df[df["device_key"] == device_key(pred.fingerprint_)]
    else:  # a predictor without a device: the one device of its runtime that measured them
        df = df[df["runtime"] == (pred.runtime_ or "litert")]
        if df["device_key"].nunique() > 1:
            return {}
    return dict(zip(df["key"], df["latency_ms"]))


def _predict(args) -> int:
    from hwlat.archs import resolution_str
    from hwlat.latency_models import load_predictor

    pred = load_predictor(args.predictor, args.runtime, args.allow_other_device)
    targets = _targets(args.arch, args.resolution)
    measured = _measured(args.store, pred, [k for _, k, _ in targets]) if args.store else {}
    out = []
    for arch, key, file in targets:
        rec = {"name": file or arch.name, "resolution": arch.resolution, "latency_ms": pred.predict(arch)}
        if file:
            from hwlat.archs import encode

            rec |= {"file": file, "arch": encode(arch)}
        if args.store:
            rec |= {"key": key, "measured_ms": measured.get(key)}
        if args.layers:
            rec["layers"] = pred.predict_layers(arch)[["name", "op", "latency_ms"]].to_dict("records")
        out.append(rec)
    if args.json:
        print(dumps_strict(finite_or_none(out), indent=1))
        return 0
    for rec in out:
        line = f"{rec['name']:36s} {resolution_str(rec['resolution']):>4s}px {rec['latency_ms']:9.3f} ms"
        if args.store:
            ms = rec["measured_ms"]
            line += (
                f"  measured {ms:9.3f} ms ({(rec['latency_ms'] / ms - 1) * 100:+.1f} %)"
                if ms
                else "  measured         - (not in the store on this device)"
            )
        print(line)
        for lay in rec.get("layers", []):
            print(f"    {lay['name']:28s} {lay['op']:7s} {lay['latency_ms']:9.4f} ms")
    return 0


def _device_of(pred) -> str | None:
    from hwlat.profiler.storage.device import device_key

    return device_key(pred.fingerprint_) if pred.fingerprint_ else None


def _evaluate(args) -> int:
    import pandas as pd

    from hwlat.latency_models import TrainingData, load
    from hwlat.latency_models.evaluate import repeat_floor, score, unseen

    rows = []
    for path in args.predictor:
        pred = load(path)
        data = TrainingData.from_store(
            args.store, None if args.device else pred.runtime_ or "litert", args.device or _device_of(pred)
        )
        pred.check_device(data.fingerprint, data.runtime, strict=not args.allow_other_device)
        archs_, y = unseen(pred, data)
        if len(archs_) < 2:
            raise ValueError(f"{args.store}: fewer than 2 measured networks that {path} was not trained on")
        floor = repeat_floor(args.store, archs_, data.runtime, data.device_key)
        rows.append(
            {
                "predictor": str(path),
                "kind": pred.kind,
                **score(pred, archs_, y),
                **{f"floor_{k}": (floor or {}).get(k) for k in ("n", "acc5", "acc10", "kendall_tau")},
            }
        )
    if args.json:
        print(dumps_strict(finite_or_none(rows), indent=1))
        return 0
    rows = [{k: v for k, v in r.items() if not k.startswith("floor_")} for r in rows]
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(pd.DataFrame(rows).to_string(index=False))
    print(
        "truth: each network's latency, the median of its repeats' p10 "
        "(hwlat.profiler.storage.store.LATENCY_STATISTIC)"
    )
    if floor is None:
        print(
            "noise floor: unknown (no two test networks measured twice; measure them with "
            "`hwlat profile models ... --repeats 3` to see it)"
        )
    else:
        print(
            f"noise floor, one repeat against another on {floor['n']} networks: acc5 "
            f"{floor['acc5']:.3f}  acc10 {floor['acc10']:.3f}  kendall_tau {floor['kendall_tau']:.3f}  "
            f"rmspe {floor['rmspe']:.1f} %"
        )
    return 0


def _suggest(args) -> int:
    from hwlat.latency_models import load
    from hwlat.latency_models.suggest import suggest, write_csv

    preds = [load(s) for s in args.source]
    picks = suggest(preds, args.space, args.n, seed=args.seed, pool=args.pool)
    if args.output:
        write_csv(picks, args.space, args.output)
    if args.json:
        print(
            dumps_strict(
                [{"ref": p.ref, "name": p.arch.name, "predicted_ms": p.predicted_ms} for p in picks], indent=1
            )
        )
        return 0
    for p in picks:
        print(f"{p.ref}  " + "  ".join(f"{ms:8.2f} ms" for ms in p.predicted_ms))
    if args.output:
        print(
            f"wrote {args.output}: measure each network on the device, fill the latency_ms column, "
            f"then: hwlat profile import-table {args.output} --column latency_ms --space {args.space} "
            f"--device NAME --store STORE"
        )
    return 0


# -- parsers -------------------------------------------------------------------------------------
def add_parsers(sub) -> None:
    """``suggest``, ``fit``, ``predict`` and ``evaluate`` on the ``hwlat`` subparsers ``sub``."""
    g = sub.add_parser(
        "suggest", help="which networks of a space to measure on a new device (for hwlat fit --kind transfer)"
    )
    g.add_argument(
        "--source",
        required=True,
        action="append",
        help="predictor of a known device (file or @NAME; repeatable)",
    )
    add(g, "--space", required=True, choices=Choices("hwlat.archs.space:SPACE_NAMES"))
    g.add_argument("-n", type=positive_int, required=True, help="how many networks")
    add(g, "--seed", type=int, default=Library("hwlat.latency_models.suggest:suggest.seed"))
    add(
        g,
        "--pool",
        type=positive_int,
        default=Library("hwlat.latency_models.suggest:suggest.pool"),
        help="candidates sampled from the space (default %(library_default)s)",
    )
    g.add_argument("-o", "--output", help="also write a CSV (op columns, arch, empty latency_ms) to fill in")
    add_json(g)
    set_handler(g, _suggest)

    f = sub.add_parser("fit", help="fit a latency predictor on a store's measurements")
    add_store(f)
    add(
        f,
        "--kind",
        required=True,
        choices=Choices("hwlat.latency_models.kinds:KINDS"),
        help="e2e: per-block costs from whole-network latencies only; transfer: combine "
        "--source predictors of other devices from a few networks of this one",
    )
    f.add_argument("--runtime", help="only devices of this runtime (default: any)")
    add_device_filter(f)
    f.add_argument(
        "--source", action="append", help="transfer: predictor of another device (file or @NAME; repeatable)"
    )
    f.add_argument("--madds-source", action="store_true", help="transfer: the MAdds count as one more source")
    f.add_argument(
        "--normalise-phase",
        action="store_true",
        help="rescale each measurement by the reference workload timed in its own rounds "
        "(the machine's phase; rows without one are kept as measured)",
    )
    f.add_argument("-o", "--output", required=True, help="predictor file (.json); never a store")
    f.add_argument("--force", action="store_true", help="replace an existing file that is not a predictor")
    set_handler(f, _fit)

    f = sub.add_parser("predict", help="predict latency (ms) with a fitted predictor")
    f.add_argument("--predictor", required=True, help="fitted predictor file (hwlat fit) or @NAME")
    add_arch_refs(f, "+", "zoo names, codec strings, files (.tflite/.onnx files imported), @zoo, @grid")
    add_resolution(f)
    f.add_argument(
        "--runtime",
        help="runtime the latency is for (default: the predictor's own); "
        "checked with the device against the predictor",
    )
    add_allow_other_device(f, "warn instead of failing when the predictor is for another device or runtime")
    f.add_argument("--layers", action="store_true", help="per-layer breakdown")
    f.add_argument(
        "--store",
        help="also print what this store measured of each network on the predictor's device "
        "(a model file: hwlat profile file; others: hwlat profile models)",
    )
    add_json(f)
    set_handler(f, _predict)

    f = sub.add_parser("evaluate", help="score predictors on a store's networks they were not trained on")
    add_store(f)
    f.add_argument("--predictor", required=True, nargs="+", help="fitted predictor files or @NAME")
    add_device_filter(f, "the device (a name or a device key); default: the predictor's")
    add_allow_other_device(f, "warn instead of failing")
    add_json(f)
    set_handler(f, _evaluate)
