"""The profiling farm: measure on many devices at once through Ray, into the one store here.

**Routing.** Devices are Ray custom resources named ``device:NAME``: a host started with
``ray start --address HEAD:6379 --resources '{"device:pixel7": 1}'`` takes pixel7's workloads,
one task per unit of the resource. On that host a worker measures the task's batch

- with the local runner of the requested runtime (LiteRT, ONNX Runtime, torch), pinned to one core;
- or, when the host's environment holds ``HWLAT_BUNDLE_CMD_<NAME>`` (NAME upper-cased, other
  characters as ``_``), by writing a bundle of the batch and running that shell command with
  ``{bundle}`` replaced by the bundle folder. The command runs ``run_bundle.py`` on the attached
  board or phone and leaves its ``results.jsonl`` in the folder (docs/profiling.md: "The profiling farm (Ray)").
- or, when it holds ``HWLAT_ADB_BENCHMARK_MODEL_<NAME>`` (the ``benchmark_model`` binary: a file on
  the host or a path on the phone; ``HWLAT_ADB_SERIAL_<NAME>`` picks the phone when several are
  attached), on the phone over adb (:mod:`hwlat.profiler.measure.adb`), with no command template.

**One writer.** Tasks only return results (a Ray streaming generator yields each workload as it is
measured); the driver commits each one at once to the one SQLite store, under the fingerprint the
worker reported for it. A result whose (workload, device, variant) is already stored (a retried
batch, another driver) is dropped and counted in ``duplicates``. A rerun resumes from the store.

**Faults.** A worker that dies (SIGKILL, its host lost) loses only the workloads it had not
reported yet: the driver resubmits exactly those, up to ``retries`` times, then records them as
failures. The tasks themselves run with ``max_retries=0`` so that a batch is never measured twice.

**Timing validity.** A worker takes a lock on a core (``flock`` on ``/tmp/hwlat-core-N.lock``)
before it pins to that core, so two measurements never share a core on one host, whatever the
resources say. By default a host takes one measuring slot in total (the sum of its local devices'
resources): more slots on one host disturb each other's timings (memory bandwidth, shared cache,
frequency) and need ``parallel_slots=True``, which warns with :data:`INTERFERENCE`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import shlex
import socket
import subprocess
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hwlat import __version__
from hwlat.archs.ir import ArchSpec
from hwlat.archs.pieces import Workload, from_spec, phase_anchor_workload
from hwlat.errors import ClusterError
from hwlat.files import dumps_strict
from hwlat.profiler.measure.profile import ProfileResult, batches, group_workloads
from hwlat.profiler.measure.timing import PhaseAnchor, Stats, TimingConfig, iter_interleaved
from hwlat.profiler.storage.device import DEFAULT_RUNTIME, RUNTIMES, device_key, device_label, pin_to_core
from hwlat.profiler.storage.store import Store, open_store

log = logging.getLogger(__name__)

RAY_HINT = "Ray is not installed: pip install 'hwlat[ray]'"
RESOURCE_PREFIX = "device:"
BUNDLE_ENV_PREFIX = "HWLAT_BUNDLE_CMD_"
ADB_ENV_PREFIX = "HWLAT_ADB_BENCHMARK_MODEL_"
ADB_SERIAL_ENV_PREFIX = "HWLAT_ADB_SERIAL_"
CONNECT_TIMEOUT_S = 20.0
"""An unreachable or silent Ray address is reported within this many seconds (plus a few)."""
RETRIES = 3
"""How often the workloads of a batch whose worker died are resubmitted."""
INTERFERENCE = (
    "+3.7 points on the median workload (+4.0 % and -1.2 % on the two cores, against "
    "-2.3 % for a second one-slot run) on hwlat's 2-core x86 VM with LiteRT, "
    "benchmarks/results/scale__farm-networks-12__x86_64.txt; measure your host: "
    "python benchmarks/bench_scale.py --only interference"
)
"""How much one measurement slows another on a second core of the same host, as measured by
``benchmarks/bench_scale.py`` (1 vs 2 parallel slots against a one-slot run). Shown whenever a
host is allowed more than one measuring slot."""
LOCK_DIR = Path(tempfile.gettempdir())


# -- Ray: optional, connected once ---------------------------------------------------------------
def require_ray():
    """The ``ray`` module, or :class:`ClusterError` saying which extra to install."""
    try:
        import ray
    except ImportError:
        raise ClusterError(RAY_HINT) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto``."""
    if address == "auto":
        return None
    m = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)/?", address)
    if not m:
        raise ClusterError(
            f"Ray address {address!r}: expected HOST:PORT (the head's "
            f"`ray start --head` port, default 6379), ray://HOST:PORT or auto"
        )
    return m.group(1), int(m.group(2))


def _check_reachable(address: str, timeout_s: float) -> None:
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=min(timeout_s, 10.0)):
            pass
    except OSError as e:
        raise ClusterError(
            f"Ray address {address}: cannot connect ({e.strerror or e}); is "
            f"`ray start --head` running there and the port open?"
        ) from None


def _init_within(ray, timeout_s: float, message: str, **kw) -> None:
    """``ray.init(**kw)`` in a helper thread; :class:`ClusterError` if it has not returned within
    ``timeout_s`` (Ray's own connection retries run for minutes in C++, out of reach of signals)."""
    import threading

    outcome: list = []

    def run() -> None:
        try:
            outcome.append(ray.init(**kw))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            outcome.append(e)

    t = threading.Thread(target=run, name="hwlat-ray-init", daemon=True)
    t.start()
    t.join(timeout_s)
    if not outcome:
        raise ClusterError(message)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    resources: dict[str, float] | None = None,
    timeout_s: float = CONNECT_TIMEOUT_S,
):
    """Connect this process to the Ray cluster at ``address``, or start a local one.

    A local cluster (``address=None``) gets ``num_cpus`` and the custom ``resources`` (e.g.
    ``{"device:litert": 1}``). An address that does not answer raises :class:`ClusterError`
    within ``timeout_s``. Returns the ``ray`` module; :func:`disconnect` ends the session.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    quiet = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
    if address:
        _check_reachable(address, timeout_s)
        msg = (
            f"Ray address {address}: no Ray cluster answered within {timeout_s:.0f} s "
            f"(is it a Ray head of the same Ray version?)"
        )
        try:
            _init_within(ray, timeout_s, msg, address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ClusterError(f"Ray address {address}: {str(e).splitlines()[0]}") from None
    else:
        ray.init(num_cpus=num_cpus, resources=resources or {}, include_dashboard=False, **quiet)
    return ray


def local_resources(devices: Sequence[FarmDevice], parallel_slots: bool = False) -> dict[str, int]:
    """The custom resources of a local cluster offering ``devices``: one measuring slot each (in
    all one per host, unless ``parallel_slots``: then ``cores // len(devices)`` slots each)."""
    slots = max(1, (os.cpu_count() or 1) // len(devices)) if parallel_slots else 1
    return {d.resource: slots for d in devices}


@contextlib.contextmanager
def session(address: str | None = None, **kw):
    """:func:`connect` for the ``with`` block, and :func:`disconnect` after it if this call
    connected (a session opened before is left open)."""
    ray = require_ray()
    opened = not ray.is_initialized()
    connect(address, **kw)
    try:
        yield ray
    finally:
        if opened:
            disconnect()


def disconnect() -> None:
    """End this process's Ray session (and a local cluster it started); a no-op without one."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


# -- devices ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FarmDevice:
    """A device of the farm: the Ray resource ``device:NAME`` and the runtime to measure with there
    (``options`` go to :func:`~hwlat.profiler.measure.runners.get_runner`; a bundle device runs LiteRT)."""

    name: str
    runtime: str = DEFAULT_RUNTIME
    options: dict = field(default_factory=dict, hash=False)

    @property
    def resource(self) -> str:
        return RESOURCE_PREFIX + self.name


def parse_device(text: str, runtime: str = DEFAULT_RUNTIME, options: dict | None = None) -> FarmDevice:
    """``NAME`` or ``NAME=RUNTIME`` (the CLI's ``--device``) as a :class:`FarmDevice`."""
    name, _, rt = text.partition("=")
    rt = rt or runtime
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name or ""):
        raise ValueError(f"--device {text!r}: NAME must be letters, digits, '_', '.', '-'")
    if rt not in RUNTIMES:
        raise ValueError(f"--device {text!r}: unknown runtime {rt!r} (one of {', '.join(RUNTIMES)})")
    return FarmDevice(name, rt, dict(options or {}) if rt == "litert" else {})


def offered(ray) -> dict[str, dict[str, float]]:
    """Device name → {node id: slots} over the cluster's live nodes."""
    out: dict[str, dict[str, float]] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        for res, amount in node.get("Resources", {}).items():
            if res.startswith(RESOURCE_PREFIX):
                out.setdefault(res[len(RESOURCE_PREFIX) :], {})[node["NodeID"]] = amount
    return out


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _bundle_cmd(name: str) -> str | None:
    return os.environ.get(BUNDLE_ENV_PREFIX + _env_name(name))


def _adb_phone(name: str) -> tuple[str | None, str] | None:
    """``(serial, benchmark_model)`` when this host measures device ``name`` on a phone over adb."""
    binary = os.environ.get(ADB_ENV_PREFIX + _env_name(name))
    return (os.environ.get(ADB_SERIAL_ENV_PREFIX + _env_name(name)) or None, binary) if binary else None


def _connect_phone(device: FarmDevice, serial: str | None, binary: str):
    from hwlat.profiler.measure import adb

    return adb.connect(
        serial, binary, xnnpack=device.options.get("xnnpack", True), quantize=device.options.get("quantize")
    )


# -- the worker side -------------------------------------------------------------------------------
@contextlib.contextmanager
def measuring_core() -> Iterator[int | None]:
    """Lock a free core of this host (fastest first), pin this process to it, and yield it.

    The lock (``flock``) is shared by every hwlat worker on the host, so two measurements never
    run on one core; without a free core this waits. The affinity is restored afterwards.
    """
    if not hasattr(os, "sched_getaffinity"):
        yield None
        return
    from hwlat.profiler.storage.device import _max_freq_khz

    before = os.sched_getaffinity(0)
    order = sorted(before, key=lambda c: (_max_freq_khz(c) or 0, c), reverse=True)
    while True:
        for core in order:
            f = open(LOCK_DIR / f"hwlat-core-{core}.lock", "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield pin_to_core(core)
            finally:
                os.sched_setaffinity(0, before)
                fcntl.flock(f, fcntl.LOCK_UN)
                f.close()
            return
        time.sleep(0.2)


def _start(fp: dict, core: int | None) -> dict:
    return {
        "type": "start",
        "host": socket.gethostname(),
        "core": core,
        "fingerprint": fp,
        "pid": os.getpid(),
    }


def _measure_local(
    device: FarmDevice, ws: Sequence[Workload], cfg: TimingConfig, variant: str, reference: bool
):
    from hwlat.profiler.measure.runners import frozen_heap, get_runner, release_batch

    with measuring_core() as core:
        runner = get_runner(device.runtime, **device.options)
        yield _start(runner.fingerprint(), core)
        # collects the previous batch's runtimes (release_batch below does not wait for it), then
        # hides the worker's own heap from the collector while this batch measures
        with frozen_heap():
            invokes, releases = {}, {}
            ref = _reference(device, runner, cfg) if reference else None
            for w in ws:
                try:
                    invokes[w.key], releases[w.key] = runner.prepare(w)
                except Exception as exc:  # noqa: BLE001 - recorded by the driver, the batch goes on
                    yield {"type": "failure", "key": w.key, "error": f"{type(exc).__name__}: {exc}"}
            try:
                for key, res in iter_interleaved(invokes, cfg, variant, ref):
                    releases.pop(key)()
                    if isinstance(res, Stats):
                        yield {
                            "type": "measurement",
                            "key": key,
                            "stats": res.as_dict(),
                            "timed_s": res.timed_s,
                        }
                    else:
                        yield {"type": "failure", "key": key, "error": f"{type(res).__name__}: {res}"}
            finally:
                release_batch(invokes, releases, collect=False)


_REFERENCES: dict = {}
"""Per worker process: the phase reference of each (runtime, options, timing config), prepared
once (an ONNX export of it takes seconds) and kept across batches, as one profiling run keeps it."""


def _reference(device: FarmDevice, runner, cfg: TimingConfig) -> PhaseAnchor:
    key = (device.runtime, dumps_strict(device.options, sort_keys=True), cfg)
    if key not in _REFERENCES:
        invoke, _release = runner.prepare(phase_anchor_workload())
        _REFERENCES[key] = PhaseAnchor(invoke, cfg)
    return _REFERENCES[key]


def _die_with_parent() -> None:
    """In a child process: get SIGKILL when the worker that started it dies (Linux)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run_bundle(name: str, cmd: str, ws: Sequence[Workload], cfg: TimingConfig, variant: str):
    """Write a bundle of ``ws``, run ``cmd`` on it, and yield its records as they appear."""
    from hwlat.profiler.measure.bundle import RESULTS, write_workloads

    with tempfile.TemporaryDirectory(prefix="hwlat-bundle-") as d:
        write_workloads(ws, d, cfg, variant)
        results = Path(d) / RESULTS
        proc = subprocess.Popen(
            cmd.replace("{bundle}", shlex.quote(d)),
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        pos = 0
        try:
            while True:
                running = proc.poll() is None
                if results.exists():
                    with open(results) as f:
                        f.seek(pos)
                        chunk = f.read()
                    complete = chunk[: chunk.rfind("\n") + 1]
                    pos += len(complete.encode())
                    for line in complete.splitlines():
                        with contextlib.suppress(ValueError):
                            yield json.loads(line)
                if not running:
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            proc.wait()
        if proc.returncode:
            tail = " | ".join(err.strip().splitlines()[-3:])
            raise RuntimeError(
                f"bundle command for device {name!r} exited with status {proc.returncode}: {tail}"
            )


def _measure_adb(device: FarmDevice, serial: str | None, binary: str, ws, cfg: TimingConfig):
    """The batch on this host's phone (:mod:`hwlat.profiler.measure.adb`): one invocation each,
    its raw output and per-op times (networks) sent with the measurement."""
    from hwlat.profiler.export.tflite import tflite_segment
    from hwlat.profiler.measure import adb

    phone = _connect_phone(device, serial, binary)
    yield _start(phone.fingerprint, phone.core)
    with tempfile.TemporaryDirectory(prefix="hwlat-adb-") as tmp:
        for w in ws:
            model = tflite_segment(w.rows, outputs=w.outputs or None, quantize=phone.quantize)
            graph = adb.push_model(phone, w.key, model, Path(tmp))
            started = time.time()
            try:
                log_ = adb.run_benchmark(phone, graph, cfg, w.granularity == "model", Path(tmp))
            except adb.GraphRefusedError as e:
                yield {"type": "failure", "key": w.key, "error": str(e)}
                continue
            stats = {**log_.stats(), "started_at": started, "finished_at": time.time()}
            yield {
                "type": "measurement",
                "key": w.key,
                "stats": stats,
                "raw_output": log_.raw,
                "ops": [op.__dict__ for op in log_.ops] or None,
            }


def _measure_bundle(device: FarmDevice, cmd: str, ws, cfg, variant):
    for rec in _run_bundle(device.name, cmd, ws, cfg, variant):
        if rec.get("type") == "run":
            yield _start(rec["fingerprint"], rec.get("pinned_core"))
        elif rec.get("type") in ("measurement", "failure"):
            yield {k: rec[k] for k in ("type", "key", "stats", "error") if k in rec}


def measure_batch(
    device: FarmDevice, items: list[tuple[str, str]], config: dict, variant: str, reference: bool = True
):
    """The Ray task body (a generator): measure ``items`` (workload key, spec JSON) on this host's
    ``device`` and yield a ``start`` record (host, core, fingerprint), then one ``measurement``
    or ``failure`` record per workload, each as soon as it is known. ``reference``: time the
    phase reference network in every round (local runners; see :mod:`hwlat.profiler.measure.timing`)."""
    ws = [from_spec(key, json.loads(spec)) for key, spec in items]
    cfg = TimingConfig(**config)
    cmd, phone = _bundle_cmd(device.name), _adb_phone(device.name)
    if phone:
        yield from _measure_adb(device, *phone, ws, cfg)
    elif cmd:
        yield from _measure_bundle(device, cmd, ws, cfg, variant)
    else:
        yield from _measure_local(device, ws, cfg, variant, reference)


def probe(device: FarmDevice) -> dict:
    """Run on a host offering ``device``: how it measures there (``local`` or ``bundle``), the
    fingerprint its results will carry, the host name and its core count."""
    cmd, phone = _bundle_cmd(device.name), _adb_phone(device.name)
    if phone:
        ph = _connect_phone(device, *phone)
        fp, kind = ph.fingerprint, "adb"
    elif cmd:
        recs = [
            r for r in _run_bundle(device.name, cmd, [], TimingConfig(), "warm") if r.get("type") == "run"
        ]
        if not recs:
            raise RuntimeError(
                f"bundle command for device {device.name!r} left no run record in results.jsonl: {cmd}"
            )
        fp, kind = recs[0]["fingerprint"], "bundle"
    else:
        from hwlat.profiler.measure.runners import get_runner

        fp, kind = get_runner(device.runtime, **device.options).fingerprint(), "local"
    return {
        "kind": kind,
        "fingerprint": fp,
        "host": socket.gethostname(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


# -- the driver ------------------------------------------------------------------------------------
@dataclass
class _Flight:
    device: FarmDevice
    workloads: dict[str, Workload]  # not yet reported
    repeat: int
    attempt: int
    where: str = "starting"
    device_id: int | None = None


def check_devices(ray, devices: Sequence[FarmDevice], parallel_slots: bool = False) -> dict[str, dict]:
    """Before any work is queued: every device is offered by a live node, each device has one
    fingerprint, and no host measures in more slots than allowed. Returns name → probe info
    (plus ``slots``, its total over the cluster)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    have = offered(ray)
    missing = [d.name for d in devices if d.name not in have]
    if missing:
        names = ", ".join(sorted(have)) or "none"
        raise ClusterError(
            f"no Ray worker offers {', '.join(RESOURCE_PREFIX + m for m in missing)} (offered: "
            f"{names}); start a host with `ray start --address HEAD:PORT --resources "
            f"'{{\"{RESOURCE_PREFIX}{missing[0]}\": 1}}'`"
        )
    task = ray.remote(num_cpus=0, max_retries=0)(probe)
    calls = {
        (d.name, node): task.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
        ).remote(d)
        for d in devices
        for node in have[d.name]
    }
    try:
        found = dict(zip(calls, ray.get(list(calls.values()), timeout=120)))
    except ray.exceptions.RayTaskError as e:
        raise ClusterError(f"probing the devices failed: {str(e).splitlines()[-1]}") from None
    info, per_host = {}, {}
    for d in devices:
        nodes = have[d.name]
        keys = {device_key(found[(d.name, n)]["fingerprint"]): found[(d.name, n)]["host"] for n in nodes}
        if len(keys) > 1:
            raise ClusterError(
                f"{d.resource} is offered by hosts with different fingerprints "
                f"({', '.join(sorted(keys.values()))}); give each its own name"
            )
        first = found[(d.name, next(iter(nodes)))]
        slots = sum(nodes.values())
        if slots != int(slots) or slots < 1:
            raise ClusterError(f"{d.resource}: a whole number of slots is needed, got {slots}")
        info[d.name] = {**first, "slots": int(slots)}
        for n, amount in nodes.items():
            probe_ = found[(d.name, n)]
            if probe_["kind"] == "local":
                host = per_host.setdefault(
                    n, {"host": probe_["host"], "cores": probe_["cores"], "slots": 0, "devices": []}
                )
                host["slots"] += int(amount)
                host["devices"].append(d.name)
    for h in per_host.values():
        what = f"host {h['host']} measures {', '.join(h['devices'])} in {h['slots']} slots"
        if h["slots"] > h["cores"]:
            raise ClusterError(f"{what} but has {h['cores']} cores: never two measurements on one core")
        if h["slots"] > 1 and not parallel_slots:
            raise ClusterError(
                f"{what}; parallel measurements disturb each other ({INTERFERENCE}); "
                f"offer one slot per host, or accept it with --parallel-slots"
            )
        if h["slots"] > 1:
            log.warning("%s at once: a measurement slows another on a second core by %s", what, INTERFERENCE)
    return info


def farm_profile(
    archs: Iterable[ArchSpec],
    granularity: str | Sequence[str],
    store: str | Store,
    devices: Sequence[FarmDevice],
    *,
    variant: str = "warm",
    config: TimingConfig = TimingConfig(),
    batch: int = 8,
    progress: bool = True,
    parallel_slots: bool = False,
    retries: int = RETRIES,
    repeats: int = 1,
    reference: bool = True,
) -> dict[str, ProfileResult]:
    """Measure every distinct ``granularity`` workload of ``archs`` on each device of the connected
    Ray cluster (see :func:`connect`); return one :class:`ProfileResult` per device name.

    Batches and ``repeats`` passes are formed as in :func:`~hwlat.profiler.measure.profile.profile`
    (``reference`` likewise); each device runs as many batches at once as its resource has slots.
    Results are committed here as they stream in.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    ray = require_ray()
    if not ray.is_initialized():
        raise ClusterError("not connected to Ray: call hwlat.profiler.measure.farm.connect() first")
    if not devices:
        raise ValueError("no devices given")
    info = check_devices(ray, devices, parallel_slots)
    grans, groups = group_workloads(archs, granularity)
    workloads = [w for g in groups for w in g]
    with open_store(store) as st:
        for w in workloads:
            st.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
        results, queues = {}, {}
        for d in devices:
            device_id = st.add_device(info[d.name]["fingerprint"])
            passes = [
                batches(grans, groups, st.measured(device_id, variant=variant, repeat=r), batch)
                for r in range(repeats)
            ]
            missing = {w.key for p in passes for b in p for w in b}
            results[d.name] = ProfileResult(
                str(st.path),
                device_id,
                uuid.uuid4().hex[:12],
                len(workloads),
                skipped=[w.key for w in workloads if w.key not in missing],
            )
            queues[d.name] = deque((b, r, 0) for r, p in enumerate(passes) for b in p)
        started = time.perf_counter()
        _Driver(ray, st, devices, info, results, queues, variant, config, progress, retries, reference).run()
        for res in results.values():  # the devices measured at once: each took the run's wall time
            res.seconds = time.perf_counter() - started
        return results


class _Driver:
    """Keeps each device's slots busy, commits what streams back, resubmits what a dead worker lost."""

    def __init__(
        self, ray, st, devices, info, results, queues, variant, config, progress, retries, reference
    ):
        from tqdm import tqdm

        self.ray, self.st, self.results, self.queues = ray, st, results, queues
        self.devices, self.info, self.variant, self.retries = devices, info, variant, retries
        self.config, self.reference = dataclasses.asdict(config), reference
        self.task = ray.remote(num_cpus=0, max_retries=0)(measure_batch)
        self.flights: dict = {}
        self.device_ids: dict[str, int] = {}
        self.bars = {
            d.name: tqdm(
                total=sum(len(b) for b, _, _ in queues[d.name]),
                position=i,
                desc=f"{d.name} ({d.runtime})",
                unit="wl",
                dynamic_ncols=True,
                disable=not progress,
            )
            for i, d in enumerate(devices)
        }

    def run(self) -> None:
        try:
            while True:
                self._fill()
                if not self.flights:
                    return
                ready, _ = self.ray.wait(list(self.flights), num_returns=1, timeout=1.0)
                for gen in ready:
                    self._advance(gen)
        except BaseException:
            for gen in list(self.flights):
                with contextlib.suppress(Exception):
                    self.ray.cancel(gen, force=True)
            raise
        finally:
            for bar in self.bars.values():
                bar.close()

    def _fill(self) -> None:
        for d in self.devices:
            running = sum(f.device.name == d.name for f in self.flights.values())
            q = self.queues[d.name]
            while q and running < self.info[d.name]["slots"]:
                ws, repeat, attempt = q.popleft()
                items = [(w.key, dumps_strict(w.spec())) for w in ws]
                gen = self.task.options(resources={d.resource: 1}).remote(
                    d, items, self.config, self.variant, self.reference
                )
                self.flights[gen] = _Flight(d, {w.key: w for w in ws}, repeat, attempt)
                running += 1
            self._show(d.name)

    def _show(self, name: str) -> None:
        where = [f.where for f in self.flights.values() if f.device.name == name]
        self.bars[name].set_postfix_str(
            f"running {len(where)}" + (f" on {', '.join(where)}" if where else "")
        )

    def _advance(self, gen) -> None:
        fl = self.flights[gen]
        try:
            rec = self.ray.get(next(gen))
        except StopIteration:
            del self.flights[gen]
            if fl.workloads:  # the task ended without reporting some: measure them again
                self._lost(fl, "the worker reported no result")
        except self.ray.exceptions.RayTaskError as e:
            del self.flights[gen]
            raise ClusterError(
                f"device {fl.device.name} on {fl.where}: {str(e).strip().splitlines()[-1]}"
            ) from None
        except self.ray.exceptions.RayError as e:  # the worker or its node died
            del self.flights[gen]
            self._lost(fl, f"{type(e).__name__}: {str(e).strip().splitlines()[0]}")
        else:
            self._commit(fl, rec)
        self._show(fl.device.name)

    def _lost(self, fl: _Flight, why: str) -> None:
        ws = list(fl.workloads.values())
        log.warning(
            "device %s on %s: worker lost (%s); %d workload(s) in flight %s",
            fl.device.name,
            fl.where,
            why,
            len(ws),
            "resubmitted" if fl.attempt < self.retries else "failed",
        )
        res = self.results[fl.device.name]
        if fl.attempt < self.retries:
            self.queues[fl.device.name].appendleft((ws, fl.repeat, fl.attempt + 1))
            res.resubmitted += [w.key for w in ws]
            return
        device_id = fl.device_id or res.device_id
        for w in ws:
            self.st.add_failure(
                w.key,
                device_id,
                f"worker lost {self.retries + 1} times: {why}",
                res.run_id,
                variant=self.variant,
            )
            res.failed[w.key] = why
            self.bars[fl.device.name].update(1)

    def _commit(self, fl: _Flight, rec: dict) -> None:
        """Store one record of a worker; measurements already stored are counted as duplicates."""
        res = self.results[fl.device.name]
        if rec["type"] == "start":
            fp = rec["fingerprint"]
            fl.device_id = self.st.add_device(fp)
            if fl.device_id != res.device_id:
                log.warning(
                    "device %s: worker on %s reports fingerprint %s, not %s; its results "
                    "are stored under its own",
                    fl.device.name,
                    rec["host"],
                    device_key(fp),
                    self.info[fl.device.name]["fingerprint"],
                )
            core = f" core {rec['core']}" if rec.get("core") is not None else ""
            fl.where = f"{rec['host']}{core}"
            self.bars[fl.device.name].set_description_str(
                f"{fl.device.name} ({fl.device.runtime}) {device_label(fp)}"
            )
            return
        key = rec["key"]
        if fl.workloads.pop(key, None) is None:
            return  # not one of this batch's (a replayed record)
        if rec["type"] == "measurement":
            new = self.st.add_measurement(
                key,
                fl.device_id,
                rec["stats"],
                res.run_id,
                variant=self.variant,
                hwlat_version=__version__,
                repeat=fl.repeat,
                raw_output=rec.get("raw_output"),
                ops=rec.get("ops"),
            )
            (res.measured if new else res.duplicates).append(key)
            res.timed_seconds += rec.get("timed_s", 0.0)  # a local worker's; bundles and phones send none
        else:
            log.warning("workload %s failed on %s: %s", key, fl.device.name, rec["error"])
            self.st.add_failure(key, fl.device_id, rec["error"], res.run_id, variant=self.variant)
            res.failed[key] = rec["error"]
        self.bars[fl.device.name].update(1)
