"""The bundle proven on aarch64: write bundles on x86, run them under qemu-user, import, compare.

    python tools/arm/check.py [--work DIR] [--json REPORT]      # `make arm-check` runs the test

1. :func:`workloads`: kernels, blocks and whole networks of MobileNetV3-Small 0.5 at 96 px, an
   FBNet-space sample (``fbnet_cifar100``) and two task networks on V3-Small reduced (LR-ASPP at
   96 px, SSDLite at 320 px, the smallest it downsamples);
   two bundles of them, float32 and int8 (``write_workloads(..., quantize="int8")``), with a tiny
   timing config: timings under emulation mean nothing, the run is functional.
2. ``run_bundle.py`` of each bundle runs on the emulated arm64 python (tools/arm/emulate.py), then
   ``hwlat profile import`` merges its results into a store: the device must be an
   "ARM Cortex-A72" marked emulated (a device key of its own, refused as training data).
3. tools/arm/dump_outputs.py runs every model of the bundles under emulation on seeded inputs,
   with XNNPACK and with the builtin kernels; the same models on the same inputs run here with
   x86 LiteRT, and every output tensor must agree: float32 within ``16·eps·√ΣK·max|ref|``
   (tests/tolerances.py, ΣK the workload's reduction length), int8 within one quantisation step
   (the output's scale) per element.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (HERE, REPO, REPO / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import emulate
import sysroot

PRECISIONS = (None, "int8")
RESOLVERS = ("xnnpack", "builtin")


def workloads():
    """Kernels, blocks and models of three small networks (module docstring), in that order."""
    from hwlat.archs import get_arch, get_space, task_names
    from hwlat.archs.pieces import collect

    fbnet = get_space("fbnet_cifar100").sample_arch(np.random.default_rng(0))
    tasks = [n for n in task_names() if n.endswith("mobilenetv3_small_reduced")]
    assert len(tasks) == 2, tasks
    archs = [
        get_arch("mobilenetv3_small_050", resolution=96),
        fbnet,
        get_arch("lraspp_mobilenetv3_small_reduced", resolution=96),  # segmentation
        get_arch("ssdlite_mobilenetv3_small_reduced", resolution=320),
    ]  # detection, 2 outputs
    return archs, [w for g in ("kernel", "block", "model") for w in collect(archs, g)]


def tiny_config():
    """Two samples of one invoke per workload, no warm-up time: enough to exercise the runner."""
    from hwlat.profiler.measure.timing import TimingConfig

    return TimingConfig(
        target=1.0,
        min_samples=2,
        max_samples=2,
        max_seconds=1.0,
        warmup_seconds=0.0,
        min_warmup=1,
        min_sample_ms=0.0,
        max_inner=1,
        round_samples=2,
    )


def _output_scales(interp) -> list[float | None]:
    """The int8 scale of each output (the tensor its DEQUANTIZE reads), None for float outputs."""
    by_name = {d["name"]: d for d in interp.get_tensor_details()}
    out = []
    for d in interp.get_output_details():
        q = by_name.get(d["name"] + "_int8", {}).get("quantization_parameters", {})
        scales = q.get("scales", np.zeros(0))
        out.append(float(scales[0]) if len(scales) else None)
    return out


def _invoke(path: Path, arrays, kind):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    for j, d in enumerate(it.get_input_details()):
        it.set_tensor(d["index"], arrays[f"in_{j}"])
    it.invoke()
    return it, [np.array(it.get_tensor(d["index"]), np.float64) for d in it.get_output_details()]


def compare(bundle: Path, arm_dir: Path, wls: dict, resolver: str, float_bundle: Path | None = None) -> dict:
    """Every output of every model of ``bundle``: x86 LiteRT on the inputs saved in ``arm_dir``
    against the arm64 outputs there; returns the worst errors, raises AssertionError on any
    element out of tolerance.

    Tolerances: float32 ``16·eps·√ΣK·max|ref|`` (tests/tolerances.py); int8 one quantisation step
    (the output's scale) per element. LiteRT's *builtin* int8 kernels round requantisation
    differently on ARM (NEON) and x86, one step per op, and those steps compound along a block or
    a network (7 steps seen at the output of MobileNetV3-Small): there, with ``resolver="builtin"``,
    an element may differ by up to twice the int8 model's own quantisation error on x86
    (``max|int8 - float32|`` against the same workload of ``float_bundle`` on the same inputs), as
    two int8 evaluations that each approximate the float model within that error can; a broken
    kernel (wrong zero point, scale, rounding mode everywhere) moves outputs by far more.
    """
    from ai_edge_litert.interpreter import OpResolverType
    from tolerances import float32_atol, reduction_length

    kind = OpResolverType.AUTO if resolver == "xnnpack" else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    manifest = json.loads((bundle / "manifest.json").read_text())
    int8 = manifest.get("precision") == "int8"
    worst = {
        "max_abs": 0.0,
        "max_ratio": 0.0,
        "max_steps": 0 if int8 else None,
        "where": None,
        "outputs": 0,
        "elements": 0,
        "differing_elements": 0,
    }
    bad = []
    for w in manifest["workloads"]:
        stem = Path(w["file"]).stem
        arm = np.load(arm_dir / f"{stem}.npz")
        it, refs = _invoke(bundle / w["file"], arm, kind)
        scales = _output_scales(it) if int8 else None
        floats = (
            _invoke(float_bundle / w["file"], arm, kind)[1]
            if int8 and resolver == "builtin" and float_bundle
            else None
        )
        reduction = reduction_length(wls[w["key"]].rows)
        for j, ref in enumerate(refs):
            got = arm[f"out_{j}"].astype(np.float64)
            assert got.shape == ref.shape, (w["key"], j, got.shape, ref.shape)
            err = float(np.abs(got - ref).max()) if ref.size else 0.0
            if int8:
                tol = scales[j]
                # dequantised outputs differ by whole steps; float32 rounding adds ~1e-5 of a step
                worst["max_steps"] = max(worst["max_steps"], round(err / tol))
                if floats is not None:
                    tol = max(tol, 2 * float(np.abs(ref - floats[j]).max()))
                tol *= 1 + 1e-4  # the dequantised float32 values round too
            else:
                tol = float32_atol(ref, reduction)
            ratio = err / tol if tol > 0 else (0.0 if err == 0 else math.inf)
            worst["outputs"] += 1
            worst["elements"] += int(ref.size)
            worst["differing_elements"] += int(np.count_nonzero(got != ref))
            worst["max_abs"] = max(worst["max_abs"], err)
            if ratio > worst["max_ratio"]:
                worst["max_ratio"], worst["where"] = ratio, f"{w['label']} output {j}"
            if ratio > 1.0:
                bad.append(
                    f"{w['label']} ({w['key']}) output {j}: max |arm - x86| = {err:.3g} > "
                    f"{'1 step ' if int8 else ''}{tol:.3g}"
                )
    assert not bad, f"{bundle.name} ({resolver}): {len(bad)} outputs out of tolerance: " + "; ".join(bad[:10])
    return worst


# Each check of emulation_trace() on its own, in the runner's pasted copy of device.py: the files
# that an earlier check reads are hidden, as where qemu runs through binfmt_misc (its own name gone).
PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import run_bundle as rb
read = rb._read
traces = []
for hidden in ((), ("/proc/self/status",), ("/proc/self/status", "/proc/self/maps")):
    rb._read = lambda p, hidden=hidden: None if str(p) in hidden else read(p)
    traces.append(rb.emulation_trace())
rb._read = read
print(json.dumps({"traces": traces, "vdso_mapped": "[vdso]" in open("/proc/self/maps").read(),
                  "auxv_sysinfo_ehdr": rb._AT_SYSINFO_EHDR in rb._auxv_types(),
                  "cpu": rb.fingerprint("litert", "x")["cpu"]}))
"""


def run_check(work: Path, root: Path | None = None, log=print) -> dict:
    """The whole check in ``work``; returns the report, raises AssertionError on a failure."""
    from hwlat.cli import main as cli
    from hwlat.errors import EmulatedDeviceError
    from hwlat.latency_models.training_data import TrainingData
    from hwlat.profiler.measure.bundle import write_workloads
    from hwlat.profiler.storage.device import device_label, is_emulated
    from hwlat.profiler.storage.store import Store

    report: dict = {"seconds": {}}
    t0 = time.perf_counter()

    def lap(name, since):
        report["seconds"][name] = round(time.perf_counter() - since, 2)
        log(f"  {name}: {report['seconds'][name]:.1f} s")

    t = time.perf_counter()
    root = root or sysroot.build(log=log)
    report["sysroot"] = {"path": str(root), **json.loads((root / sysroot.MARKER).read_text())}
    lap("sysroot", t)

    t = time.perf_counter()
    archs, wls = workloads()
    by_key = {w.key: w for w in wls}
    report["networks"] = [a.name for a in archs]
    report["workloads"] = {g: sum(w.granularity == g for w in wls) for g in ("kernel", "block", "model")}
    bundles = {}
    for q in PRECISIONS:
        tag = q or "float32"
        bundles[tag] = write_workloads(wls, work / f"bundle-{tag}", tiny_config(), quantize=q)
    lap("write bundles (x86)", t)

    store = work / "arm.db"
    for tag, b in bundles.items():
        t = time.perf_counter()
        r = emulate.run(root, [str(b / "run_bundle.py")], cwd=work)
        lap(f"run_bundle.py {tag} (emulated)", t)
        assert "results in" in r.stderr, r.stderr[-2000:]
        assert cli(["profile", "import", str(b), "--store", str(store)]) == 0

    with Store(store) as st:
        devices = st.devices()
        frame = st.frame()
    fps = [json.loads(f) for f in devices["fingerprint"]]
    assert len(fps) == 2, f"expected a float32 and an int8 device, got {len(fps)}"
    for fp in fps:
        assert fp["cpu"] == "ARM Cortex-A72", fp["cpu"]
        assert fp["machine"] == "aarch64" and fp.get("emulated") is True, fp
        assert fp["extra"].get("emulated") is True and is_emulated(fp)
        assert device_label(fp).endswith("(emulated)")
    assert sorted(str(fp["extra"].get("precision")) for fp in fps) == ["None", "int8"]
    n = len(wls)
    assert len(frame) == 2 * n, f"{len(frame)} measurements imported, expected {2 * n}"
    try:
        TrainingData.from_store(store, "litert", devices["device_key"].iloc[0])
        raise AssertionError("TrainingData.from_store accepted emulated measurements")
    except EmulatedDeviceError:
        pass
    TrainingData.from_store(store, "litert", devices["device_key"].iloc[0], allow_emulated=True)
    report["devices"] = [
        {"label": device_label(fp), "cpu": fp["cpu"], "extra": fp["extra"], "emulation": fp.get("emulation")}
        for fp in fps
    ]
    report["measurements"] = len(frame)

    report["emulation_probe"] = {}
    for mounted in (True, False):
        r = emulate.run(root, ["-c", PROBE, str(bundles["float32"])], cpuinfo=mounted)
        probe = json.loads(r.stdout.strip().splitlines()[-1])
        name, vdso, arch = probe["traces"]
        assert name.startswith("qemu-user (process name") and vdso.startswith("no vDSO"), probe
        assert not probe["vdso_mapped"] and not probe["auxv_sysinfo_ehdr"], probe
        assert (arch is None) == mounted, probe  # x86 cpuinfo seen by an arm64 process
        assert probe["cpu"] == "ARM Cortex-A72" or not mounted, probe
        report["emulation_probe"]["arm cpuinfo" if mounted else "host cpuinfo"] = probe

    report["max_errors"] = {}
    for tag, b in bundles.items():
        for resolver in RESOLVERS:
            out = work / f"outputs-{tag}-{resolver}"
            t = time.perf_counter()
            emulate.run(
                root,
                [str(HERE / "dump_outputs.py"), str(b), str(out)]
                + (["--no-xnnpack"] if resolver == "builtin" else []),
            )
            lap(f"outputs {tag} {resolver} (emulated)", t)
            t = time.perf_counter()
            worst = compare(b, out, by_key, resolver, float_bundle=bundles["float32"])
            lap(f"compare {tag} {resolver} (x86)", t)
            report["max_errors"][f"{tag} {resolver}"] = worst
            log(
                f"    {tag} {resolver}: {worst['outputs']} outputs, max |arm - x86| "
                f"{worst['max_abs']:.3g}"
                + (
                    f" = {worst['max_steps']} steps"
                    if tag == "int8"
                    else f" = {worst['max_ratio']:.3g} of the tolerance"
                )
                + f" ({worst['where']}); {worst['differing_elements']}/{worst['elements']} elements differ"
            )
    report["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", help="working folder (default: a temporary one)")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    why = emulate.missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = run_check(work)
    text = json.dumps(report, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
