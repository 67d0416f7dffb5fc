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
from pathlib import Path
from typing import Iterable

from hwlat import __version__
from hwlat.archs.ir import ArchSpec
from hwlat.profiler import device as _device_mod
from hwlat.profiler import timing as _timing_mod
from hwlat.profiler.store import Store
from hwlat.profiler.timing import TimingConfig
from hwlat.profiler.workloads import collect

SCHEMA = "hwlat.bundle/1"
RESULTS = "results.jsonl"


def _file_name(key: str) -> str:
    return key.replace(":", "_") + ".tflite"


def write_bundle(archs: Iterable[ArchSpec], granularity: str, out_dir: str | Path,
                 config: TimingConfig = TimingConfig(), variant: str = "warm") -> Path:
    """Write the bundle for every distinct ``granularity`` workload of ``archs``; return its folder."""
    from hwlat.profiler.tflite_export import tflite_segment

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise ValueError(f"{out}: exists and is not an hwlat bundle; choose an empty or new folder")
    (out / "models").mkdir(parents=True, exist_ok=True)
    entries = []
    for w in collect(archs, granularity):
        path = out / "models" / _file_name(w.key)
        path.write_bytes(tflite_segment(w.rows))
        c, h, wd = w.rows[0].in_shape
        entries.append({"key": w.key, "file": f"models/{path.name}", "granularity": w.granularity,
                        "label": w.label, "madds": w.madds, "params": w.params,
                        "input_nhwc": [1, h, wd, c], "spec": w.spec()})
    manifest = {"schema": SCHEMA, "hwlat_version": __version__, "created": time.time(),
                "granularity": granularity, "variant": variant,
                "config": dataclasses.asdict(config), "workloads": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out / "run_bundle.py").write_text(runner_source())
    return out


def _module_body(mod) -> str:
    lines = Path(mod.__file__).read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("from __future__"))


def runner_source() -> str:
    """The single-file runner: device.py + timing.py + a small main, standard library and numpy."""
    return "\n".join([
        "#!/usr/bin/env python3",
        '"""hwlat bundle runner: times every .tflite of manifest.json with LiteRT, one thread."""',
        "from __future__ import annotations",
        "# ---- hwlat/profiler/device.py ----",
        _module_body(_device_mod),
        "# ---- hwlat/profiler/timing.py ----",
        _module_body(_timing_mod),
        "# ---- bundle main ----",
        _MAIN,
    ])


_MAIN = r'''
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
    fp = fingerprint("litert", version, threads=args.threads, delegate=delegate)
    core = pin_to_core()
    cfg = TimingConfig(**manifest["config"])
    variant = manifest.get("variant", "warm")
    done = set()
    if _os.path.exists(args.out):
        with open(args.out) as f:
            for line in f:
                try:
                    rec = _json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill
                if rec.get("type") == "measurement" and rec.get("device_key") == device_key(fp):
                    done.add(rec["key"])
    todo = [w for w in manifest["workloads"] if w["key"] not in done][:args.limit]
    run_id = _uuid.uuid4().hex[:12]
    out = open(args.out, "a")

    def write(rec):
        out.write(_json.dumps(rec) + "\n")
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
                x = np.random.default_rng(0).standard_normal(w["input_nhwc"], dtype=np.float32)
                it.set_tensor(it.get_input_details()[0]["index"], x)
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
'''


def read_results(path: str | Path) -> tuple[dict, list[dict]]:
    """Parse a bundle's ``results.jsonl`` (or its folder) → (manifest, records)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    results = folder / RESULTS if path.is_dir() else path
    manifest_path = folder / "manifest.json"
    if not results.is_file():
        raise ValueError(f"{results}: no bundle results file")
    if not manifest_path.is_file():
        raise ValueError(f"{manifest_path}: the bundle manifest must sit beside the results")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("schema") != SCHEMA:
        raise ValueError(f"{manifest_path}: not an hwlat bundle manifest ({SCHEMA})")
    records = []
    for n, line in enumerate(results.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the last line of a killed run may be cut short
    return manifest, records


def import_results(path: str | Path, store: str | Path | Store) -> dict[str, int]:
    """Merge a bundle's results into ``store`` under each run's device fingerprint.

    Returns counts: ``added``, ``skipped`` (already in the store), ``failures``.
    """
    manifest, records = read_results(path)
    workloads = {w["key"]: w for w in manifest["workloads"]}
    runs = {r["run_id"]: r for r in records if r.get("type") == "run"}
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    counts = {"added": 0, "skipped": 0, "failures": 0}
    try:
        for run_id, run in runs.items():
            meas = [r for r in records if r.get("type") == "measurement" and r["run_id"] == run_id]
            fails = [r for r in records if r.get("type") == "failure" and r["run_id"] == run_id]
            unknown = {r["key"] for r in meas + fails} - set(workloads)
            if unknown:
                raise ValueError(f"results name workloads missing from the manifest: {sorted(unknown)[:3]}")
            wl = [{"key": k, "granularity": workloads[k]["granularity"], "spec": workloads[k]["spec"],
                   "madds": workloads[k]["madds"], "params": workloads[k]["params"]}
                  for k in {r["key"] for r in meas + fails}]
            ms = [{"workload_key": r["key"], "variant": r["variant"], **r["stats"]} for r in meas]
            added, skipped = st.import_rows(run["fingerprint"], wl, ms, run_id)
            counts["added"] += added
            counts["skipped"] += skipped
            device_id = st.add_device(run["fingerprint"])
            for r in fails:
                st.add_failure(r["key"], device_id, r["error"], run_id, variant=r["variant"])
                counts["failures"] += 1
    finally:
        if own:
            st.close()
    return counts
