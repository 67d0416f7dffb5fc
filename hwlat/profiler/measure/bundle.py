"""Remote-device bundles: profile an ARM board or a phone that has only Python, numpy and LiteRT.

``write_bundle`` writes a self-contained folder::

    manifest.json      workloads (key, file, label, MAdds, params, spec), timing settings
    models/*.tflite    one file per workload
    run_bundle.py      single-file runner: numpy + ai-edge-litert (or tflite-runtime) only

Copy the folder to the device, run ``python3 run_bundle.py`` there (it pins itself to one core,
uses one thread, and appends each result to ``results.jsonl`` as soon as it is measured, so an
interrupted run resumes), bring ``results.jsonl`` back and ``hwlat profile import`` it: the
measurements land in the store under that device's own fingerprint.

The runner is generated from this package's own ``device.py`` and ``timing.py`` sources, so the
device measures exactly as the local profiler does.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hwlat import __version__
from hwlat.archs.ir import ArchSpec
from hwlat.archs.pieces import Workload, collect
from hwlat.errors import FileFormatError
from hwlat.files import atomic_write_json, atomic_write_text, format_tag, format_version
from hwlat.profiler.measure import timing as _timing_mod
from hwlat.profiler.measure.timing import TimingConfig
from hwlat.profiler.storage import device as _device_mod
from hwlat.profiler.storage.store import VARIANTS, Store, check_stats, open_store

FORMAT = format_tag("bundle", 1)
"""The format of a bundle's ``manifest.json`` (its ``"schema"`` field)."""
SCHEMA = FORMAT
RESULTS = "results.jsonl"


def _file_name(key: str) -> str:
    return key.replace(":", "_") + ".tflite"


def write_bundle(
    archs: Iterable[ArchSpec],
    granularity: str,
    out_dir: str | Path,
    config: TimingConfig = TimingConfig(),
    variant: str = "warm",
    quantize: str | None = None,
) -> Path:
    """Write the bundle for every distinct ``granularity`` workload of ``archs``; return its folder."""
    return write_workloads(
        collect(archs, granularity), out_dir, config, variant, granularity, quantize=quantize
    )


def write_workloads(
    workloads: Iterable[Workload],
    out_dir: str | Path,
    config: TimingConfig = TimingConfig(),
    variant: str = "warm",
    granularity: str | None = None,
    quantize: str | None = None,
) -> Path:
    """Write a bundle of the given workloads (any granularities); return its folder.

    ``quantize="int8"`` writes LiteRT int8 models (:func:`hwlat.profiler.export.tflite.tflite_segment`)
    and records ``"precision": "int8"`` in the manifest; the runner then puts it in its fingerprint's
    ``extra``, as the local int8 profiler does, so int8 and float timings are separate devices.
    """
    from hwlat.profiler.export.tflite import tflite_segment

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise ValueError(f"{out}: exists and is not an hwlat bundle; choose an empty or new folder")
    (out / "models").mkdir(parents=True, exist_ok=True)
    entries = []
    for w in workloads:
        path = out / "models" / _file_name(w.key)
        path.write_bytes(tflite_segment(w.rows, outputs=w.outputs or None, quantize=quantize))
        c, h, wd = w.rows[0].in_shape
        entries.append(
            {
                "key": w.key,
                "file": f"models/{path.name}",
                "granularity": w.granularity,
                "label": w.label,
                "madds": w.madds,
                "params": w.params,
                "input_nhwc": [1, h, wd, c],
                "spec": w.spec(),
            }
        )
    manifest = {
        "schema": FORMAT,
        "hwlat_version": __version__,
        "created": time.time(),
        "granularity": granularity,
        "variant": variant,
        **({"precision": quantize} if quantize else {}),
        "config": dataclasses.asdict(config),
        "workloads": entries,
    }
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_text(out / "run_bundle.py", runner_source())
    return out


def _module_body(mod) -> str:
    lines = Path(mod.__file__).read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("from __future__"))


def runner_source() -> str:
    """The single-file runner: device.py + timing.py + a small main, standard library and numpy."""
    return "\n".join(
        [
            "#!/usr/bin/env python3",
            '"""hwlat bundle runner: times every .tflite of manifest.json with LiteRT, one thread."""',
            "from __future__ import annotations",
            "# ---- hwlat/profiler/storage/device.py ----",
            _module_body(_device_mod),
            "# ---- hwlat/profiler/measure/timing.py ----",
            _module_body(_timing_mod),
            "# ---- bundle main ----",
            _MAIN,
        ]
    )


_MAIN = r"""
import argparse as _argparse
import json as _json
import os as _os
import sys as _sys
import uuid as _uuid


def _interpreter():
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        from importlib import metadata
        return Interpreter, OpResolverType, metadata.version("ai-edge-litert")
    except ImportError:
        from tflite_runtime.interpreter import Interpreter, OpResolverType
        import tflite_runtime
        return Interpreter, OpResolverType, "tflite-runtime " + tflite_runtime.__version__


def _main(argv=None):
    here = _os.path.dirname(_os.path.abspath(__file__))
    p = _argparse.ArgumentParser(description="Time the workloads of this hwlat bundle.")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only")
    p.add_argument("--out", default=_os.path.join(here, "results.jsonl"))
    p.add_argument("--limit", type=int, default=None, help="measure at most N workloads")
    args = p.parse_args(argv)
    with open(_os.path.join(here, "manifest.json")) as f:
        manifest = _json.load(f)
    Interpreter, OpResolverType, version = _interpreter()
    delegate = "none" if args.no_xnnpack else "xnnpack"
    precision = manifest.get("precision")  # int8 bundles: a device configuration of its own
    fp = fingerprint("litert", version, threads=args.threads, delegate=delegate,
                     extra={"precision": precision} if precision else None)
    core = pin_to_core()
    cfg = TimingConfig(**manifest["config"])
    variant = manifest.get("variant", "warm")
    done = set()
    if _os.path.exists(args.out):
        with open(args.out, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):  # a line cut by a kill: drop it, its workload is measured again
                f.truncate(end)
        for line in data[:end].decode("utf-8", "replace").splitlines():
            try:
                rec = _json.loads(line)
            except ValueError:
                continue  # `hwlat profile import` reports it
            if isinstance(rec, dict) and rec.get("type") == "measurement" and rec.get("device_key") == device_key(fp):
                done.add(rec["key"])
    todo = [w for w in manifest["workloads"] if w["key"] not in done][:args.limit]
    run_id = _uuid.uuid4().hex[:12]
    out = open(args.out, "a")

    def write(rec):  # strict JSON: Stats.as_dict() has None, never NaN or Infinity
        out.write(_json.dumps(rec, allow_nan=False) + "\n")
        out.flush()
        _os.fsync(out.fileno())

    write({"type": "run", "run_id": run_id, "fingerprint": fp, "device_key": device_key(fp),
           "pinned_core": core, "manifest_schema": manifest["schema"]})
    kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if args.no_xnnpack else OpResolverType.AUTO
    print(f"{len(todo)} to measure, {len(done)} already in {args.out}", file=_sys.stderr)
    for i in range(0, len(todo), 8):
        batch = {w["key"]: w for w in todo[i:i + 8]}
        invokes, holders = {}, {}
        for key, w in batch.items():
            try:
                it = Interpreter(model_path=_os.path.join(here, w["file"]), num_threads=args.threads,
                                 experimental_op_resolver_type=kind)
                it.allocate_tensors()
                rng = np.random.default_rng(0)
                for d in it.get_input_details():  # pieces of task heads can have several inputs
                    it.set_tensor(d["index"], rng.standard_normal(d["shape"], dtype=np.float32))
                invokes[key], holders[key] = it.invoke, it
            except Exception as exc:
                write({"type": "failure", "run_id": run_id, "key": key, "variant": variant,
                       "device_key": device_key(fp), "error": f"{type(exc).__name__}: {exc}"})

        def on_done(key, stats):
            holders.pop(key, None)
            write({"type": "measurement", "run_id": run_id, "key": key, "variant": variant,
                   "device_key": device_key(fp), "stats": stats.as_dict()})
            print(f"  {batch[key]['label']}: {stats.median_ms:.4f} ms", file=_sys.stderr)

        def on_fail(key, exc):
            holders.pop(key, None)
            write({"type": "failure", "run_id": run_id, "key": key, "variant": variant,
                   "device_key": device_key(fp), "error": f"{type(exc).__name__}: {exc}"})

        measure_interleaved(invokes, cfg, variant=variant, on_done=on_done, on_fail=on_fail)
    out.close()
    print(f"results in {args.out}", file=_sys.stderr)
    return 0


if __name__ == "__main__":
    _sys.exit(_main())
"""


@dataclass
class Results:
    """A bundle's parsed results: its ``manifest``, the ``runs`` (run_id -> run header), the
    ``measurements`` and ``failures`` records, and a ``note`` about a cut-off last line."""

    manifest: dict
    runs: dict[str, dict]
    measurements: list[dict]
    failures: list[dict]
    note: str | None = None


def read_manifest(path: str | Path) -> dict:
    """A bundle's ``manifest.json``, checked; :class:`FileFormatError` names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: the bundle manifest must sit beside the results")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(
            f"{path}: damaged bundle manifest (not JSON: {e}); copy the bundle folder again"
        ) from None
    if not isinstance(manifest, dict) or "schema" not in manifest:
        raise FileFormatError(f"{path}: not an hwlat bundle manifest ({FORMAT})")
    format_version(path, manifest["schema"], FORMAT, error=FileFormatError)
    wls = manifest.get("workloads")
    if not isinstance(wls, list):
        raise FileFormatError(f"{path}: damaged bundle manifest (no workloads list)")
    for i, w in enumerate(wls):
        if not isinstance(w, dict) or not all(k in w for k in _WORKLOAD_FIELDS):
            raise FileFormatError(
                f"{path}: damaged bundle manifest (workload {i} needs {', '.join(_WORKLOAD_FIELDS)})"
            )
    return manifest


_WORKLOAD_FIELDS = ("key", "granularity", "spec", "madds", "params")


def _record_problem(rec, workloads: dict) -> str | None:
    """What is wrong with one parsed line of results.jsonl (None if nothing)."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not a record object"
    kind = rec.get("type")
    if not isinstance(rec.get("run_id"), str) or not rec["run_id"]:
        return "no run_id"
    if kind == "run":
        return None if isinstance(rec.get("fingerprint"), dict) else "run header without a fingerprint"
    if kind not in ("measurement", "failure"):
        return f"unknown record type {kind!r}"
    if rec.get("key") not in workloads:
        return f"workload {rec.get('key')!r} is not in the manifest"
    if rec.get("variant", "warm") not in VARIANTS:
        return f"variant must be one of {VARIANTS}, got {rec.get('variant')!r}"
    if kind == "failure":
        return None if isinstance(rec.get("error"), str) else "failure without an error text"
    if not isinstance(rec.get("stats"), dict):
        return "measurement without stats"
    try:
        check_stats(rec["stats"])
    except ValueError as e:
        return str(e)
    return None


def read_results(path: str | Path) -> Results:
    """Parse and check a bundle's ``results.jsonl`` (or its folder) and its manifest.

    Every line must be a valid record of a run whose header line is in the file; only a last
    line cut short (a run killed while writing it: no newline at its end) is tolerated, and said
    so in ``note``. Otherwise :class:`FileFormatError` lists every refused line by number.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    results = folder / RESULTS if path.is_dir() else path
    if not results.is_file():
        raise FileFormatError(f"{results}: no bundle results file")
    manifest = read_manifest(folder / "manifest.json")
    workloads = {w["key"]: w for w in manifest["workloads"]}
    try:
        text = results.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{results}: not a results file (not UTF-8 text: {e})") from None
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    refused, recs, note = [], [], None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == last and not text.endswith("\n"):
                note = f"{results}: line {i + 1} is cut short (a run killed while writing it): ignored"
                continue
            refused.append(f"line {i + 1}: not JSON")
            continue
        problem = _record_problem(rec, workloads)
        if problem:
            refused.append(f"line {i + 1}: {problem}")
        else:
            recs.append((i + 1, rec))
    runs = {r["run_id"]: r for _, r in recs if r["type"] == "run"}
    refused += [
        f"line {n}: run {r['run_id']!r} has no run header line"
        for n, r in recs
        if r["type"] != "run" and r["run_id"] not in runs
    ]
    if refused:
        refused.sort(key=lambda m: int(m.split(":")[0].split()[1]))
        raise FileFormatError(
            f"{results}: {len(refused)} line(s) refused, nothing imported: " + "; ".join(refused)
        )
    return Results(
        manifest,
        runs,
        [r for _, r in recs if r["type"] == "measurement"],
        [r for _, r in recs if r["type"] == "failure"],
        note,
    )


def import_results(path: str | Path, store: str | Path | Store) -> dict:
    """Merge a bundle's results into ``store`` under each run's device fingerprint.

    All or nothing: the results are checked first (:func:`read_results`), then written in one
    transaction. Returns counts ``added``, ``skipped`` (already in the store), ``failures``, and
    ``note`` (a cut-off last line, or None).
    """
    res = read_results(path)
    workloads = {w["key"]: w for w in res.manifest["workloads"]}
    batches = []
    for run_id, run in res.runs.items():
        meas = [r for r in res.measurements if r["run_id"] == run_id]
        fails = [r for r in res.failures if r["run_id"] == run_id]
        keys = sorted({r["key"] for r in meas + fails})
        batches.append(
            dict(
                fingerprint=run["fingerprint"],
                run_id=run_id,
                workloads=[{f: workloads[k][f] for f in _WORKLOAD_FIELDS} for k in keys],
                measurements=[
                    {**r["stats"], "workload_key": r["key"], "variant": r.get("variant", "warm")}
                    for r in meas
                ],
                failures=[
                    {"workload_key": r["key"], "variant": r.get("variant", "warm"), "error": r["error"]}
                    for r in fails
                ],
            )
        )
    with open_store(store) as st:
        added, skipped = st.import_runs(batches)
    return {"added": added, "skipped": skipped, "failures": len(res.failures), "note": res.note}
