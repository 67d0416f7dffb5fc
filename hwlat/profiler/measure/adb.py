"""Phones over adb: TFLite's classic ``benchmark_model``, single-threaded, pinned to one fast core.

This is how the paper measured (the TFLite benchmark tool, one thread, Pixel phones), and how
nn-Meter, LitePred and HW-NAS-Bench measure phones::

    adb push benchmark_model net.tflite /data/local/tmp/
    adb shell taskset MASK /data/local/tmp/benchmark_model --graph=… --num_threads=1

* **The binary** is the user's: a path on this machine (pushed once to :data:`REMOTE_DIR`, again
  only when its content changes) or a path already on the phone. hwlat never downloads it.
* **One core of the fastest cluster:** the core with the highest ``cpuinfo_max_freq`` (ties go to
  the last), as a ``taskset`` mask; ``--num_threads=1``.
* **Timing** follows :class:`~hwlat.profiler.measure.timing.TimingConfig`: ``--warmup_runs``
  ``min_warmup``, ``--warmup_min_secs`` ``warmup_seconds``, ``--num_runs`` ``max_samples``,
  ``--max_secs`` ``max_seconds``. A repeat is one invocation; repeats are passes over all the
  workloads, so the repeats of one workload are minutes apart, as locally.
* **The fingerprint** (:func:`phone_fingerprint`): the phone's model, manufacturer and SoC, its
  serial (two phones never share a device key), the pinned core's part, maximum frequency and
  governor (a changed governor starts a new device), Android's version, the binary's SHA-256 and
  XNNPACK on or off. An Android emulator is marked ``extra.emulated``.

Every adb call is a separate process with a timeout; an error is a one-line :class:`PhoneError`.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hwlat.errors import PhoneError
from hwlat.profiler.measure.timing import TimingConfig
from hwlat.profiler.storage.benchmark_log import BenchmarkLog, BenchmarkLogError, parse_log
from hwlat.profiler.storage.device import arm_core_name

ADB_HINT = "install Android platform-tools (Debian: apt-get install adb) or put adb on PATH"
REMOTE_DIR = "/data/local/tmp/hwlat"
RUNTIME = "benchmark_model"
"""The fingerprint's ``runtime`` of measurements taken with the TFLite benchmark tool."""
TIMEOUT_S = 60.0
"""Seconds an adb call may take, beyond a benchmark's own ``max_seconds``."""

_RC = "__hwlat_rc="


class GraphRefusedError(PhoneError):
    """``benchmark_model`` ran but printed no timings for a graph (an op it lacks, a failed
    allocation): the workload is recorded as a failure and the run goes on."""


def _problem(text: str, serial: str | None) -> str:
    """adb's own error as one line naming the phone and what to do."""
    low = text.lower()
    who = f"phone {serial}" if serial else "the phone"
    if "unauthorized" in low:
        return f"{who} is unauthorized: unlock it and accept the USB debugging prompt"
    if "offline" in low:
        return f"{who} is offline: reconnect its cable (or restart adb: adb kill-server)"
    if "not found" in low and "device" in low or "no devices" in low:
        return f"{who} is not attached (unplugged?): adb devices does not list it"
    if "more than one" in low:
        return "several phones attached: choose one with --adb SERIAL"
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")
    return f"adb failed for {who}: {line}"


@dataclass
class Adb:
    """The ``adb`` executable, addressed to one phone (``serial``) or to none yet."""

    serial: str | None = None
    exe: str | None = None
    timeout_s: float = TIMEOUT_S

    def __post_init__(self):
        self.exe = self.exe or shutil.which("adb")
        if not self.exe:
            raise PhoneError(f"adb not found: {ADB_HINT}")

    def run(self, *args: str, timeout_s: float | None = None) -> str:
        """``adb [-s SERIAL] ARGS…``'s stdout; :class:`PhoneError` when adb fails or hangs."""
        cmd = [self.exe, *(["-s", self.serial] if self.serial else []), *args]
        try:
            p = subprocess.run(
                cmd, capture_output=True, text=True, errors="replace", timeout=timeout_s or self.timeout_s
            )
        except FileNotFoundError:
            raise PhoneError(f"adb not found at {self.exe}: {ADB_HINT}") from None
        except subprocess.TimeoutExpired:
            raise PhoneError(
                f"adb {args[0]}: no answer from phone {self.serial} within "
                f"{timeout_s or self.timeout_s:.0f} s"
            ) from None
        if p.returncode != 0:
            raise PhoneError(_problem(p.stderr + p.stdout, self.serial))
        return p.stdout

    def shell(self, command: str, timeout_s: float | None = None) -> tuple[int, str]:
        """``(exit status, stdout and stderr)`` of a shell command on the phone (the status read
        from the shell itself: old adb does not pass it on)."""
        out = self.run("shell", f"{{ {command} ; }} 2>&1; echo {_RC}$?", timeout_s=timeout_s)
        body, sep, rest = out.rpartition(_RC)
        rc = re.match(r"\d+", rest)
        if not sep or not rc:
            raise PhoneError(f"phone {self.serial}: the shell ended early ({out.strip()[-120:]!r})")
        return int(rc.group()), body

    def devices(self) -> list[tuple[str, str]]:
        """``(serial, state)`` of every attached device (``device``, ``unauthorized``, ``offline``…)."""
        out = Adb(exe=self.exe, timeout_s=self.timeout_s).run("devices")
        rows = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith(("List of", "*")):
                rows.append((parts[0], parts[1]))
        return rows


def select_phone(serial: str | None = None, exe: str | None = None) -> Adb:
    """The attached phone ``serial``, or the only one attached, ready for commands."""
    adb = Adb(exe=exe)
    devices = adb.devices()
    listed = ", ".join(f"{s} ({st})" for s, st in devices) or "none"
    if serial is None:
        if not devices:
            raise PhoneError("no phone attached (adb devices lists none): connect one with USB debugging on")
        if len(devices) > 1:
            raise PhoneError(f"several phones attached ({listed}): choose one with --adb SERIAL")
        serial = devices[0][0]
    state = dict(devices).get(serial)
    if state is None:
        raise PhoneError(f"phone {serial} is not attached (adb devices lists: {listed})")
    if state != "device":
        raise PhoneError(_problem(state, serial))
    return Adb(serial=serial, exe=adb.exe)


def getprops(adb: Adb) -> dict[str, str]:
    """Android's system properties (``getprop``'s ``[key]: [value]`` lines)."""
    _, out = adb.shell("getprop")
    return dict(re.findall(r"^\[([^\]]+)\]: \[(.*)\]\s*$", out, re.M))


def max_freqs_khz(adb: Adb) -> dict[int, int | None]:
    """Each core's ``cpuinfo_max_freq`` (kHz; ``None`` where unreadable)."""
    _, out = adb.shell(
        "for c in /sys/devices/system/cpu/cpu[0-9]*; do "
        "echo ${c##*cpu} $(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null); done"
    )
    freqs = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            freqs[int(parts[0])] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    if not freqs:
        raise PhoneError(f"phone {adb.serial}: no cores under /sys/devices/system/cpu")
    return freqs


def fastest_core(freqs: dict[int, int | None]) -> int:
    """The core of the highest maximum frequency; ties (and unreadable ones) go to the last."""
    return max(freqs, key=lambda c: (freqs[c] or 0, c))


def _sha256(adb: Adb, path: str) -> str | None:
    rc, out = adb.shell(f"sha256sum {shlex.quote(path)} 2>/dev/null || toybox sha256sum {shlex.quote(path)}")
    m = re.match(r"^([0-9a-f]{64})\b", out.strip())
    return m.group(1) if rc == 0 and m else None


def install_binary(adb: Adb, benchmark_model: str | Path) -> str:
    """The path on the phone of the ``benchmark_model`` to run: a file here is pushed to
    :data:`REMOTE_DIR` (unless the phone has it already), another path must be executable there."""
    local = Path(benchmark_model)
    if local.is_file():
        remote = f"{REMOTE_DIR}/benchmark_model"
        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        adb.shell(f"mkdir -p {REMOTE_DIR}")
        if _sha256(adb, remote) != digest:
            adb.run("push", str(local), remote, timeout_s=300)
        adb.shell(f"chmod 755 {remote}")
    else:
        remote = str(benchmark_model)
    rc, _ = adb.shell(f"test -x {shlex.quote(remote)}")
    if rc != 0:
        where = "is not a file here and" if not local.is_file() else "was pushed but"
        raise PhoneError(f"benchmark_model {benchmark_model} {where} is not executable on phone {adb.serial}")
    return remote


def phone_fingerprint(
    adb: Adb,
    core: int,
    binary: str,
    xnnpack: bool = True,
    props: dict | None = None,
    freqs: dict | None = None,
    quantize: str | None = None,
) -> dict:
    """The device dict of :func:`hwlat.profiler.storage.device.fingerprint`, read over adb."""
    props = getprops(adb) if props is None else props
    freqs = max_freqs_khz(adb) if freqs is None else freqs
    _, cpuinfo = adb.shell("cat /proc/cpuinfo")
    _, governor = adb.shell(f"cat /sys/devices/system/cpu/cpu{core}/cpufreq/scaling_governor")
    soc = props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware")
    board = " ".join(p for p in (props.get("ro.product.manufacturer"), props.get("ro.product.model")) if p)
    emulated = props.get("ro.kernel.qemu") == "1" or props.get("ro.hardware") in ("ranchu", "goldfish")
    digest = _sha256(adb, binary)
    return {
        "hostname": props.get("ro.serialno") or adb.serial,
        "board": f"{board} ({soc})" if soc else board or None,
        "cpu": arm_core_name(cpuinfo, core) or props.get("ro.hardware") or "unknown",
        "cpu_parts": arm_core_name(cpuinfo, None),
        "machine": props.get("ro.product.cpu.abi") or None,
        "cores": len(freqs),
        "affinity": [core],
        "freq_cpu": core,
        "governor": governor.strip() or None,
        "max_freq_khz": freqs.get(core),
        "os": f"Android {props.get('ro.build.version.release', '?')} (SDK {props.get('ro.build.version.sdk', '?')})",
        "python": None,
        "runtime": RUNTIME,
        "runtime_version": f"sha256:{digest[:16]}" if digest else "unknown",
        "threads": 1,
        "delegate": "xnnpack" if xnnpack else "none",
        "extra": {
            "transport": "adb",
            "pinned_core": core,
            **({"precision": quantize} if quantize else {}),
            **({"emulated": True} if emulated else {}),
        },
    }


@dataclass
class Phone:
    """A phone ready to measure: its adb, the binary on it, the pinned core and its fingerprint."""

    adb: Adb
    binary: str
    core: int
    fingerprint: dict
    xnnpack: bool = True
    quantize: str | None = None
    pushed: set = field(default_factory=set)

    @property
    def mask(self) -> str:
        """The ``taskset`` mask of :attr:`core` (hex)."""
        return format(1 << self.core, "x")


def connect(
    serial: str | None,
    benchmark_model: str | Path,
    xnnpack: bool = True,
    exe: str | None = None,
    quantize: str | None = None,
) -> Phone:
    """Select the phone, install the binary, choose the core and read the fingerprint;
    ``quantize="int8"`` measures LiteRT int8 models (a device of its own, like locally)."""
    adb = select_phone(serial, exe)
    binary = install_binary(adb, benchmark_model)
    freqs = max_freqs_khz(adb)
    core = fastest_core(freqs)
    return Phone(
        adb=adb,
        binary=binary,
        core=core,
        xnnpack=xnnpack,
        quantize=quantize,
        fingerprint=phone_fingerprint(adb, core, binary, xnnpack, freqs=freqs, quantize=quantize),
    )


def benchmark_command(phone: Phone, graph: str, config: TimingConfig, op_profile: str | None = None) -> str:
    """The shell command of one invocation on ``graph`` (a path on the phone)."""
    args = [
        f"--graph={shlex.quote(graph)}",
        "--num_threads=1",
        f"--warmup_runs={config.min_warmup}",
        f"--warmup_min_secs={config.warmup_seconds:g}",
        f"--num_runs={config.max_samples}",
        "--min_secs=0",
        f"--max_secs={config.max_seconds:g}",
        f"--use_xnnpack={'true' if phone.xnnpack else 'false'}",
    ]
    if op_profile:
        args += [
            "--enable_op_profiling=true",
            "--op_profiling_output_mode=proto",
            f"--op_profiling_output_file={shlex.quote(op_profile)}",
        ]
    return f"taskset {phone.mask} {shlex.quote(phone.binary)} {' '.join(args)} 2>&1"


def push_model(phone: Phone, key: str, model_bytes: bytes, tmp_dir: Path) -> str:
    """The path on the phone of a workload's ``.tflite`` (pushed once per run)."""
    remote = f"{REMOTE_DIR}/{key}{'.' + phone.quantize if phone.quantize else ''}.tflite"
    if remote not in phone.pushed:
        local = tmp_dir / f"{key}.tflite"
        local.write_bytes(model_bytes)
        phone.adb.run("push", str(local), remote, timeout_s=300)
        phone.pushed.add(remote)
    return remote


def run_benchmark(
    phone: Phone, graph: str, config: TimingConfig, op_profile: bool = False, tmp_dir: Path | None = None
) -> BenchmarkLog:
    """One invocation on ``graph``; its parsed output (ops from the proto profile, pulled back).

    :class:`GraphRefusedError` when the tool prints no timings (the tool's first error line in it)."""
    proto = f"{graph}.ops.pb" if op_profile else None
    timeout = config.max_seconds * 2 + config.warmup_seconds + TIMEOUT_S
    _, out = phone.adb.shell(benchmark_command(phone, graph, config, proto), timeout_s=timeout)
    where = f"benchmark_model on phone {phone.adb.serial}, {Path(graph).name}"
    try:
        log = parse_log(out, where)
    except BenchmarkLogError:
        reason = next(
            (ln.strip() for ln in out.splitlines() if re.search(r"error|failed|not found|cannot", ln, re.I)),
            out.strip()[-200:] or "no output",
        )
        raise GraphRefusedError(f"{where}: no timings ({reason})") from None
    if proto and tmp_dir is not None:
        from hwlat.profiler.storage.benchmark_log import parse_op_proto

        local = tmp_dir / Path(proto).name
        try:
            phone.adb.run("pull", proto, str(local))
            log = BenchmarkLog(**{**log.__dict__, "ops": parse_op_proto(local.read_bytes(), proto)})
        except (PhoneError, BenchmarkLogError):
            pass  # keep the text tables the tool logged (if any): the timings stand on their own
    return log


def profile_phone(
    archs,
    granularity,
    store,
    phone: Phone,
    config: TimingConfig = TimingConfig(),
    repeats: int = 1,
    op_profile: bool = True,
    progress: bool = True,
):
    """Measure every distinct ``granularity`` workload of ``archs`` on ``phone`` into ``store``.

    Like :func:`hwlat.profiler.measure.profile.profile`: one invocation per workload and repeat,
    repeats as passes over all workloads, each result committed when it arrives (its raw output
    and, for models with ``op_profile``, its per-op times beside it), so a killed run resumes and a
    phone unplugged mid-run (a :class:`PhoneError`) loses only the workload in flight. A graph the
    tool refuses is recorded as a failure and the run goes on. Returns a ``ProfileResult``.
    """
    import tempfile
    import time
    import uuid

    from tqdm.auto import tqdm

    from hwlat import __version__
    from hwlat.profiler.export.tflite import tflite_segment
    from hwlat.profiler.measure.profile import ProfileResult, group_workloads
    from hwlat.profiler.storage.store import open_store

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    _, groups = group_workloads(archs, granularity)
    workloads = [w for g in groups for w in g]
    with open_store(store) as st, tempfile.TemporaryDirectory(prefix="hwlat-adb-") as tmp:
        device_id = st.add_device(phone.fingerprint)
        for w in workloads:
            st.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
        passes = [
            [w for w in workloads if w.key not in st.measured(device_id, repeat=r)] for r in range(repeats)
        ]
        missing = {w.key for p in passes for w in p}
        res = ProfileResult(
            str(st.path),
            device_id,
            uuid.uuid4().hex[:12],
            len(workloads),
            skipped=[w.key for w in workloads if w.key not in missing],
        )
        bar = tqdm(
            total=sum(map(len, passes)),
            desc=f"{phone.adb.serial} {granularity if isinstance(granularity, str) else '+'.join(granularity)}s",
            unit="wl",
            disable=not progress,
            dynamic_ncols=True,
        )
        try:
            for r, todo in enumerate(passes):
                for w in todo:
                    graph = push_model(
                        phone,
                        w.key,
                        tflite_segment(w.rows, outputs=w.outputs or None, quantize=phone.quantize),
                        Path(tmp),
                    )
                    started = time.time()
                    try:
                        log = run_benchmark(
                            phone, graph, config, op_profile and w.granularity == "model", Path(tmp)
                        )
                    except GraphRefusedError as e:
                        st.add_failure(w.key, device_id, str(e), res.run_id)
                        res.failed[w.key] = str(e)
                        bar.update(1)
                        continue
                    stats = {**log.stats(), "started_at": started, "finished_at": time.time()}
                    st.add_measurement(
                        w.key,
                        device_id,
                        stats,
                        res.run_id,
                        hwlat_version=__version__,
                        repeat=r,
                        raw_output=log.raw,
                        ops=[op.__dict__ for op in log.ops] or None,
                    )
                    res.measured.append(w.key)
                    bar.update(1)
        finally:
            bar.close()
        return res
