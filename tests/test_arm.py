"""ARM: emulated timings are marked and refused as training data (fast tests), and the bundle runs
on aarch64 under qemu-user with outputs that match x86 LiteRT (slow: `make arm-check`).

The emulation tricks (tools/arm/emulate.py: ``-cpu cortex-a72``, a private mount namespace with an
ARM /proc/cpuinfo) stay in the harness; ``run_bundle.py`` is what a real board runs.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwlat.archs import mobilenetv3
from hwlat.archs.pieces import collect, model
from hwlat.cli import main
from hwlat.errors import DeviceMismatchError, EmulatedDeviceError, HwlatError
from hwlat.latency_models.training_data import TrainingData
from hwlat.profiler.measure.bundle import write_workloads
from hwlat.profiler.storage import device as dev
from hwlat.profiler.storage.device import (
    device_key,
    device_label,
    emulation_trace,
    fingerprint,
    is_emulated,
)
from hwlat.profiler.storage.store import Store

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "arm"

PI = {
    "hostname": "pi",
    "board": "Raspberry Pi 4 Model B Rev 1.4",
    "cpu": "ARM Cortex-A72",
    "machine": "aarch64",
    "cores": 4,
    "governor": "performance",
    "runtime": "litert",
    "runtime_version": "2.3.0",
    "threads": 1,
    "delegate": "xnnpack",
    "extra": {},
}
EMULATED = {
    **PI,
    "hostname": "vm",
    "extra": {"emulated": True},
    "emulated": True,
    "emulation": "qemu-user (process name 'qemu-aarch64-st')",
}


def test_no_emulation_natively():
    assert emulation_trace() is None
    fp = fingerprint("litert", "2.3.0")
    assert "emulated" not in fp and "emulated" not in fp["extra"] and not is_emulated(fp)
    assert not device_label(fp).endswith("(emulated)")


def test_emulation_traces(monkeypatch):
    """Each check on its own, faked: qemu's process name; an ARM process seeing x86 cpuinfo."""
    real = dev._read
    monkeypatch.setattr(
        dev,
        "_read",
        lambda p: "Name:\tqemu-aarch64-st\nState:\tR" if str(p) == "/proc/self/status" else real(p),
    )
    assert emulation_trace() == "qemu-user (process name 'qemu-aarch64-st')"
    fp = fingerprint("litert", "2.3.0", extra={"precision": "int8"})
    assert fp["emulated"] is True and fp["extra"] == {"precision": "int8", "emulated": True}
    monkeypatch.setattr(dev, "_read", real)
    monkeypatch.setattr(dev.platform, "machine", lambda: "aarch64")  # this host's cpuinfo is x86
    assert "another architecture" in emulation_trace()
    monkeypatch.setattr(
        dev,
        "_cpuinfo",
        lambda: dev.cpuinfo_blocks("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n"),
    )
    assert emulation_trace() is None  # an ARM cpuinfo and a vDSO: a native arm64 process


def test_emulated_fingerprint_is_a_device_of_its_own_and_labelled():
    assert is_emulated(EMULATED) and is_emulated({**PI, "extra": {"emulated": True}})
    assert not is_emulated(PI) and not is_emulated({**PI, "extra": None})
    assert device_label(EMULATED) == "vm (ARM Cortex-A72) (emulated)"
    assert device_label(PI) == "pi (ARM Cortex-A72)"
    assert device_key(EMULATED) != device_key({**EMULATED, "extra": {}})
    # a phone emulator over adb marks extra.emulated too (hwlat.profiler.measure.adb)
    assert device_label(
        {"hostname": "emulator-5554", "cpu": "ranchu", "extra": {"transport": "adb", "emulated": True}}
    ).endswith("(emulated)")


def _store(path, fps):
    w = model(mobilenetv3("small", width_mult=0.5, resolution=96))
    stats = {"median_ms": 2.0, "p10_ms": 1.9, "p90_ms": 2.2, "mean_ms": 2.0, "std_ms": 0.1, "n": 10}
    with Store(path) as s:
        s.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
        for fp in fps:
            s.add_measurement(w.key, s.add_device(fp), stats, "run")
    return path


def test_training_data_refuses_emulated_devices(tmp_path):
    db = _store(tmp_path / "s.db", [EMULATED, PI])
    with pytest.raises(
        EmulatedDeviceError,
        match=r"vm \(ARM Cortex-A72\) \(emulated\) \[[0-9a-f]{16}\] "
        r"was measured under emulation",
    ) as e:
        TrainingData.from_store(db, device="vm")
    assert isinstance(e.value, (HwlatError, DeviceMismatchError)) and "\n" not in str(e.value)
    data = TrainingData.from_store(db, device="vm", allow_emulated=True)
    assert len(data.models) == 1 and is_emulated(data.fingerprint)
    assert len(TrainingData.from_store(db, device="pi").models) == 1  # the real board is fine
    with Store(db) as s:
        labels = set(s.frame()["device"])  # what the dashboards show
    assert labels == {"vm (ARM Cortex-A72) (emulated)", "pi (ARM Cortex-A72)"}


def test_cli_fit_refuses_emulated_device_in_one_line(tmp_path):
    db = _store(tmp_path / "s.db", [EMULATED])
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwlat",
            "fit",
            "--store",
            str(db),
            "--kind",
            "madds",
            "-o",
            str(tmp_path / "p.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "measured under emulation" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_int8_bundle_records_precision_in_manifest_and_fingerprint(tmp_path):
    """An int8 bundle's runner fingerprints as the local int8 profiler does (``--limit 0``: the run
    header only, nothing is timed)."""
    wls = collect([mobilenetv3("small", width_mult=0.35, resolution=64)], "kernel")[:2]
    out = write_workloads(wls, tmp_path / "b", quantize="int8")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and len(manifest["workloads"]) == 2
    r = subprocess.run(
        [sys.executable, str(out / "run_bundle.py"), "--limit", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    header = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert header["fingerprint"]["extra"] == {"precision": "int8"}
    float_out = write_workloads(wls, tmp_path / "f")
    assert "precision" not in json.loads((float_out / "manifest.json").read_text())
    assert (
        main(
            [
                "profile",
                "bundle",
                "models",
                "mobilenetv3_small_035",
                "-r",
                "64",
                "--quantize",
                "int8",
                "-o",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["precision"] == "int8"


# ---- the aarch64 check -------------------------------------------------------------------------


def _arm_tools():
    sys.path.insert(0, str(TOOLS))
    try:
        import check
        import emulate
        import sysroot
    finally:
        sys.path.remove(str(TOOLS))
    return check, emulate, sysroot


@pytest.mark.slow
def test_bundle_on_aarch64_under_qemu(tmp_path):
    """Kernels, blocks and networks (an FBNet sample, two task networks), float32 and int8: the
    bundle runs on Debian 12's arm64 python with PyPI's aarch64 LiteRT under qemu-user, imports as
    an emulated "ARM Cortex-A72", and every output matches x86 LiteRT (tools/arm/check.py)."""
    if os.environ.get("HWLAT_ARM_CHECK") != "1":
        pytest.skip("the aarch64 emulation check (~2 min) runs with `make arm-check` (HWLAT_ARM_CHECK=1)")
    check, emulate, sysroot = _arm_tools()
    why = emulate.missing()
    if why:
        pytest.skip(why)
    try:
        root = sysroot.build()
    except sysroot.SysrootUnavailable as e:
        pytest.skip(f"the arm64 root is not cached and cannot be built here: {e}")
    report = check.run_check(tmp_path, root)
    print(json.dumps({k: report[k] for k in ("seconds", "workloads", "devices", "max_errors")}, indent=1))
    errors = report["max_errors"]
    assert errors["int8 xnnpack"]["max_steps"] <= 1
    assert all(e["max_ratio"] <= 1 for e in errors.values())
    assert report["workloads"]["model"] == 4 and report["measurements"] == 2 * sum(
        report["workloads"].values()
    )
