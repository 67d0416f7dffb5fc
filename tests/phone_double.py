"""A recorded phone behind an ``adb`` executable, for the tests of the adb runner (no phone here).

``make_phone(tmp_path, ...)`` writes a folder that plays one Android phone:

* ``bin/adb`` answers ``devices``, ``push``, ``pull`` and ``shell`` like adb does, and logs every
  call to ``calls.log``. Shell commands really run (``sh -c``) in a tree that stands for the
  phone's file system: ``/data/local/tmp``, ``/sys/devices/system/cpu`` (a big.LITTLE layout whose
  fastest core is 7), ``/proc/cpuinfo`` (Cortex-A55 ×7 + Cortex-X1), ``getprop`` (a Pixel 6's
  properties) and ``taskset`` (logs its mask, then runs the command).
* ``benchmark_model`` (the user's binary, a script) prints a recorded output: the verbatim
  EfficientDet-Lite0 log of tests/data/benchmark_logs, or an error for a file holding ``REFUSE``;
  asked for a proto op profile, it writes ``recorded_ops.pb`` (the MobileNet V1 log's 31 ops).
* ``unplug_after=N`` makes every adb call fail as an unplugged phone does once N benchmarks ran.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

LOG = Path(__file__).parent / "data" / "benchmark_logs" / "efficientdet_lite0_x86_xnnpack.txt"

PROPS = {
    "ro.product.manufacturer": "Google",
    "ro.product.model": "Pixel 6",
    "ro.soc.model": "GS101",
    "ro.serialno": "FA6AB0301234",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.hardware": "oriole",
}
FREQS = {0: 1803000, 1: 1803000, 2: 1803000, 3: 1803000, 4: 2253000, 5: 2253000, 6: 2802000, 7: 2802000}
PARTS = {0: "0xd05", 1: "0xd05", 2: "0xd05", 3: "0xd05", 4: "0xd0d", 5: "0xd0d", 6: "0xd44", 7: "0xd44"}

ADB = r"""#!/usr/bin/env python3
import json, os, shutil, subprocess, sys
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cfg = json.load(open(os.path.join(ROOT, "phone.json")))
args = sys.argv[1:]
with open(os.path.join(ROOT, "calls.log"), "a") as f:
    f.write(json.dumps(args) + "\n")
serial = None
if args[:1] == ["-s"]:
    serial, args = args[1], args[2:]
if args[:1] == ["devices"]:
    print("List of devices attached")
    for s, state in cfg["devices"]:
        print(f"{s}\t{state}")
    print()
    sys.exit(0)
runs = os.path.join(ROOT, "benchmark_runs")
n_runs = len(open(runs).read().splitlines()) if os.path.exists(runs) else 0
if cfg.get("unplug_after") is not None and n_runs >= cfg["unplug_after"]:
    print(f"error: device '{serial}' not found", file=sys.stderr)
    sys.exit(1)
states = dict(cfg["devices"])
if serial not in states:
    print(f"error: device '{serial}' not found", file=sys.stderr)
    sys.exit(1)
if states[serial] != "device":
    print(f"error: device {states[serial]}", file=sys.stderr)
    sys.exit(1)
def phone(path):
    return os.path.join(ROOT, "fs", path.lstrip("/"))
def rewrite(cmd):
    for p in ("/data/local/tmp", "/sys/devices/system/cpu", "/proc/cpuinfo"):
        cmd = cmd.replace(p, phone(p))
    return cmd
if args[0] == "push":
    os.makedirs(os.path.dirname(phone(args[2])), exist_ok=True)
    shutil.copy(args[1], phone(args[2]))
    print(f"{args[1]}: 1 file pushed.")
elif args[0] == "pull":
    shutil.copy(phone(args[1]), args[2])
elif args[0] == "shell":
    env = dict(os.environ, PATH=os.path.join(ROOT, "fs", "bin") + ":" + os.environ["PATH"], PHONE_ROOT=ROOT)
    p = subprocess.run(["sh", "-c", rewrite(" ".join(args[1:]))], capture_output=True, text=True, env=env)
    sys.stdout.write(p.stdout + p.stderr)
else:
    print(f"adb: unknown command {args[0]}", file=sys.stderr)
    sys.exit(1)
"""

TASKSET = """#!/bin/sh
echo "$1" >> "$PHONE_ROOT/taskset.log"
shift
exec "$@"
"""

BENCHMARK_MODEL = """#!/bin/sh
echo "$*" >> "$PHONE_ROOT/benchmark_runs"
for a in "$@"; do case "$a" in --graph=*) graph="${a#--graph=}";; esac; done
if grep -q REFUSE "$graph" 2>/dev/null; then
  echo "ERROR: Didn't find op for builtin opcode 'CONV_3D' version '1'"
  echo "ERROR: Failed to initialize the interpreter"
  exit 1
fi
for a in "$@"; do case "$a" in --op_profiling_output_file=*) cp "$PHONE_ROOT/recorded_ops.pb" "${a#*=}";; esac; done
cat "$PHONE_ROOT/recorded.log"
"""


def _ops_proto() -> bytes:
    """The op profile of the MobileNet V1 log as a ``BenchmarkProfilingData`` proto."""
    from ai_edge_litert import profiling_info_pb2 as pb

    from hwlat.profiler.storage.benchmark_log import read_log

    msg = pb.BenchmarkProfilingData(model_name="recorded")
    sg = msg.runtime_profile.subgraph_profiles.add(subgraph_name="main", subgraph_index=0)
    for op in read_log(LOG.parent / "mobilenet_v1_riscv64_tf28_op_profiling.txt").ops:
        row = sg.per_op_profiles.add(node_type=op.node_type, name=op.name, times_called=1, run_order=op.order)
        row.inference_microseconds.avg = int(round(op.avg_ms * 1000))
    return msg.SerializeToString()


def _exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def make_phone(
    tmp_path: Path,
    devices=(("FA6AB0301234", "device"),),
    unplug_after: int | None = None,
    governor: str = "schedutil",
) -> dict:
    """The phone folder; returns paths: ``adb``, ``binary`` (the user's benchmark_model), ``root``."""
    root = tmp_path / "phone"
    fs = root / "fs"
    (root / "phone.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "phone.json").write_text(
        json.dumps({"devices": [list(d) for d in devices], "unplug_after": unplug_after})
    )
    (root / "recorded.log").write_text(LOG.read_text())
    (root / "recorded_ops.pb").write_bytes(_ops_proto())
    _exe(root / "bin" / "adb", ADB)
    _exe(fs / "bin" / "taskset", TASKSET)
    props = "".join(f"[{k}]: [{v}]\n" for k, v in PROPS.items())
    _exe(fs / "bin" / "getprop", f"#!/bin/sh\ncat <<'EOF'\n{props}EOF\n")
    cpuinfo = "\n".join(
        f"processor\t: {c}\nCPU implementer\t: 0x41\nCPU part\t: {p}\n" for c, p in PARTS.items()
    )
    (fs / "proc").mkdir(parents=True)
    (fs / "proc" / "cpuinfo").write_text(cpuinfo)
    for c, f in FREQS.items():
        d = fs / "sys" / "devices" / "system" / "cpu" / f"cpu{c}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{f}\n")
        (d / "scaling_governor").write_text(f"{governor}\n")
    (fs / "data" / "local" / "tmp").mkdir(parents=True)
    binary = tmp_path / "host" / "benchmark_model"
    _exe(binary, BENCHMARK_MODEL)
    return {"adb": str(root / "bin" / "adb"), "binary": str(binary), "root": root}


def calls(phone: dict) -> list[list[str]]:
    """Every adb call so far, as argv lists."""
    path = phone["root"] / "calls.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def benchmark_runs(phone: dict) -> list[str]:
    """The argument lines of every benchmark_model invocation so far."""
    path = phone["root"] / "benchmark_runs"
    return path.read_text().splitlines() if path.exists() else []


def set_devices(phone: dict, devices, unplug_after: int | None = None) -> None:
    (phone["root"] / "phone.json").write_text(
        json.dumps({"devices": [list(d) for d in devices], "unplug_after": unplug_after})
    )
