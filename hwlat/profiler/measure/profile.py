"""Profile architectures into the measurement store: dedupe, resume, measure, commit one by one.

Model files (``.tflite``, ``.onnx``: :func:`file_workload`) are model workloads too, keyed by their
content, measured with the same repeats, fingerprint and resume (``profile(..., workloads=...)``)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from hwlat import __version__
from hwlat.archs.ir import ArchSpec
from hwlat.archs.pieces import Workload, collect, from_spec, phase_anchor_workload
from hwlat.profiler.measure.runners import Runner, file_content, frozen_heap, get_runner, release_batch
from hwlat.profiler.measure.timing import PhaseAnchor, Stats, TimingConfig, measure_interleaved
from hwlat.profiler.storage.device import DEFAULT_RUNTIME, pin_to_core
from hwlat.profiler.storage.store import Store, open_store

CLI_REPEATS = 3
"""Fresh runtime instances per workload that the ``hwlat profile`` commands take by default: the
median of 3 repeats minutes apart does not hang on one phase of the machine (docs/profiling.md,
"Repeats"). The library call :func:`profile` keeps 1: its callers set their own (``make demo``
profiles with 1 for its time budget)."""

log = logging.getLogger(__name__)


@dataclass
class ProfileResult:
    """What a profiling run did. ``measured`` and ``skipped`` are workload keys."""

    store: str
    device_id: int
    run_id: str
    total: int
    measured: list[str] = field(default_factory=list)  # one entry per stored repeat
    skipped: list[str] = field(default_factory=list)  # workloads that had all their repeats
    failed: dict[str, str] = field(default_factory=dict)
    slow: list[str] = field(default_factory=list)  # measured with slow-round samples only
    duplicates: list[str] = field(default_factory=list)  # results already stored, dropped
    resubmitted: list[str] = field(default_factory=list)  # lost with a dead worker, sent again
    seconds: float = 0.0  # wall time of the run
    timed_seconds: float = 0.0  # of it, inside timed invocations of the workloads (every sample)

    @property
    def measuring_share(self) -> float | None:
        """The fraction of the run's wall time spent timing its workloads (None: nothing ran).
        The rest went to exporting, loading, warm-up, the phase reference and the store."""
        return self.timed_seconds / self.seconds if self.seconds > 0 and self.timed_seconds else None

    def timing_line(self) -> str:
        """``measured in 36 s, 71 % of it timing the workloads``, or '' when nothing was timed."""
        share = self.measuring_share
        return (
            ""
            if share is None
            else f"measured in {self.seconds:.0f} s, {share:.0%} of it timing the workloads"
        )


def profile(
    archs: Iterable[ArchSpec],
    granularity: str | Sequence[str],
    store: str | Store,
    runtime: str | Runner = DEFAULT_RUNTIME,
    variant: str = "warm",
    config: TimingConfig = TimingConfig(),
    batch: int = 8,
    progress: bool = True,
    pin: bool = True,
    repeats: int = 1,
    reference: bool = True,
    workloads: Sequence[Workload] = (),
    on_round: Callable[[int, str, list, bool, int], None] | None = None,
) -> ProfileResult:
    """Measure every distinct ``granularity`` workload of ``archs`` not yet in ``store`` for this device.

    Each result is committed as soon as it is measured; a rerun of the same call resumes. A workload
    that fails inside the runtime is recorded as a failure with its error and the run goes on.
    ``batch`` workloads are loaded at a time and measured in interleaved rounds, then released.

    ``repeats`` R: every workload is measured R times, each in a fresh runtime instance, in R
    passes over all the workloads, so its repeats are minutes apart and its stored value (the
    median of the repeats) does not hang on one phase of the machine. ``reference``: a fixed small
    network is timed in every round, and its time stored with each measurement as the phase
    indicator ``ref_ms`` (see :mod:`hwlat.profiler.measure.timing`).

    Several granularities, e.g. ``("model", "block")``, measure each architecture's missing
    workloads of all of them together in one interleaved batch, so that a slow phase of the machine
    hits a network and its pieces alike (their ratio is what the predictors calibrate on).

    ``workloads``: built workloads measured with those of ``archs``, e.g. model files
    (:func:`file_workload`); a file whose format the runtime does not run is a ``ValueError``
    before anything is measured.

    ``on_round(repeat, key, samples, slow, inner)`` sees every round's samples of every workload
    (:data:`~hwlat.profiler.measure.timing.RoundHook`, with the repeat first): what a study of
    stopping rules replays (``benchmarks/bench_new_device.py``).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    runner = get_runner(runtime) if isinstance(runtime, str) else runtime
    for w in workloads:
        if w.file is not None:
            file_content(w, runner.name)  # the runtime runs its format, and its bytes are here
    affinity = os.sched_getaffinity(0) if pin and hasattr(os, "sched_getaffinity") else None
    if pin:
        pin_to_core()
    try:
        with frozen_heap():
            return _profile(
                archs,
                granularity,
                store,
                runner,
                variant,
                config,
                batch,
                progress,
                repeats,
                reference,
                workloads,
                on_round,
            )
    finally:
        if affinity is not None:  # give the caller's process its cores back
            os.sched_setaffinity(0, affinity)


def _profile(
    archs,
    granularity,
    store,
    runner,
    variant,
    config,
    batch,
    progress,
    repeats,
    reference,
    extra=(),
    on_round=None,
) -> ProfileResult:
    started = time.perf_counter()
    release_ref = None
    with open_store(store) as st:
        extra = [_as_stored(st, w) for w in extra]
        grans, groups = group_workloads(archs, granularity, extra)
        workloads = [w for g in groups for w in g]
        device_id = st.add_device(runner.fingerprint())
        for w in workloads:
            st.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
        passes = []  # per repeat: the batches of workloads still missing that repeat
        for r in range(repeats):
            passes.append(batches(grans, groups, st.measured(device_id, variant=variant, repeat=r), batch))
        missing = {w.key for p in passes for g in p for w in g}
        res = ProfileResult(
            str(st.path),
            device_id,
            uuid.uuid4().hex[:12],
            len(workloads),
            skipped=[w.key for w in workloads if w.key not in missing],
        )
        total = sum(len(g) for p in passes for g in p)
        ref = None
        if reference and total:
            invoke, release_ref = runner.prepare(phase_anchor_workload())
            ref = PhaseAnchor(invoke, config)
        bar = tqdm(
            total=total,
            desc=f"{runner.name} {'+'.join(grans)}s",
            unit="wl",
            disable=not progress,
            dynamic_ncols=True,
        )
        try:
            for r, pass_ in enumerate(passes):
                if repeats > 1:
                    bar.set_postfix_str(f"repeat {r + 1}/{repeats}")
                for g in pass_:
                    hook = None if on_round is None else functools.partial(on_round, r)
                    _measure_batch(g, runner, st, device_id, variant, config, res, bar, r, ref, hook)
        finally:
            bar.close()
            if release_ref is not None:
                release_ref()
            res.seconds = time.perf_counter() - started
        return res


def group_workloads(
    archs: Iterable[ArchSpec], granularity: str | Sequence[str], extra: Sequence[Workload] = ()
) -> tuple[tuple[str, ...], list[list[Workload]]]:
    """``(granularities, groups)``: one group of all distinct workloads for one granularity, else
    one group per architecture (its workloads of every granularity, measured together). ``extra``
    built workloads (model files) join the one group, or form one group of their own."""
    grans = (granularity,) if isinstance(granularity, str) else tuple(granularity)
    groups = [collect(archs, grans[0])] if len(grans) == 1 else _per_arch(archs, grans)
    seen = {w.key for g in groups for w in g}
    extra = [w for w in dict((w.key, w) for w in extra).values() if w.key not in seen]
    if extra and len(grans) == 1:
        groups[0] = groups[0] + extra
    elif extra:
        groups.append(extra)
    return grans, groups


FILE_SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}
"""Model files hwlat times and imports, by suffix (the content decides: :func:`file_format`)."""


def file_format(path: str | os.PathLike, data: bytes) -> str:
    """``"tflite"`` or ``"onnx"``, from the content of the file at ``path``; a
    :class:`~hwlat.errors.FileFormatError` naming the file otherwise."""
    from hwlat.errors import FileFormatError

    if data[4:8] == b"TFL3":
        return "tflite"
    try:
        import onnx

        m = onnx.load_model_from_string(data)
        if m.ir_version > 0 and len(m.graph.node) > 0:
            return "onnx"
    except Exception:  # noqa: BLE001 - any parse failure: not an ONNX model
        pass
    raise FileFormatError(f"{path}: not a .tflite or .onnx model (no TFL3 flatbuffer, no ONNX graph)")


def file_key(data: bytes) -> str:
    """The workload key of a model file: ``file:`` and the first 16 hex digits of its SHA-256."""
    return f"file:{hashlib.sha256(data).hexdigest()[:16]}"


@dataclass(frozen=True)
class FileWorkload:
    """A model file as a workload (:func:`file_workload`): ``workload.arch`` is the codec string
    of the network it imports as, or None with ``why`` the importer's refusal."""

    workload: Workload
    path: str
    why: str | None = None


def file_workload(path: str | os.PathLike) -> FileWorkload:
    """The model workload of a ``.tflite`` or ``.onnx`` file: its bytes, keyed by their content
    (:func:`file_key`), its spec naming the file, its format, SHA-256 and size, and, when
    :func:`hwlat.archs.import_file` imports it whole, the network's codec string (``arch``: what
    ``hwlat predict`` and ``evaluate`` join on; its layer rows give the MAdds and params stored).
    A file that does not import is measured all the same (``why`` says why it did not); it stays a
    key of its own even when it imports as a network also measured as a ``model`` workload (the
    file is what was measured)."""
    from pathlib import Path

    from hwlat.archs import encode, layers

    path = Path(path)
    data = path.read_bytes()
    fmt = file_format(path, data)
    info = {"name": path.name, "format": fmt, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    arch, why = None, None
    try:
        from hwlat.archs import import_file

        arch = import_file(path).arch
    except Exception as e:  # noqa: BLE001 - a file is measured even when it does not import
        why = f"{type(e).__name__}: {' '.join(str(e).split())}"
    if arch is None and why is None:
        why = "the importer placed no network"
    w = Workload(
        file_key(data),
        "model",
        tuple(layers(arch)) if arch is not None else (),
        f"{path.name} ({fmt})",
        encode(arch) if arch is not None else None,
        file=info,
        content=data,
    )
    return FileWorkload(w, str(path), why)


def _as_stored(st: Store, w: Workload) -> Workload:
    """File workload ``w`` as the store already holds its key (the first name and import it was
    stored with), with its bytes; ``w`` itself when new or not a file."""
    if w.file is None:
        return w
    rows = st._query("SELECT spec FROM workloads WHERE key = ?", (w.key,))
    if rows.empty:
        return w
    old = from_spec(w.key, json.loads(rows["spec"].iloc[0]))
    if old.file is None or old.file.get("sha256") != w.file["sha256"]:
        return w  # a different workload under this key: add_workload names the conflict
    return dataclasses.replace(old, content=w.content)


def batches(
    grans: Sequence[str], groups: list[list[Workload]], done: set[str], batch: int
) -> list[list[Workload]]:
    """The workloads not in ``done``, as the batches measured together: ``batch`` at a time for
    one granularity, else one batch per group (an architecture with its pieces)."""
    todo = [[w for w in g if w.key not in done] for g in groups]
    if len(grans) == 1:
        todo = [todo[0][i : i + batch] for i in range(0, len(todo[0]), batch)]
    return [g for g in todo if g]


def _per_arch(archs: Iterable[ArchSpec], grans: Sequence[str]) -> list[list[Workload]]:
    """Per architecture, its workloads of every granularity not already in an earlier group."""
    seen: set[str] = set()
    groups = []
    for arch in archs:
        group = []
        for gran in grans:
            for w in collect([arch], gran):
                if w.key not in seen:
                    seen.add(w.key)
                    group.append(w)
        groups.append(group)
    return groups


def _measure_batch(
    ws: Sequence[Workload],
    runner: Runner,
    st: Store,
    device_id: int,
    variant: str,
    config: TimingConfig,
    res: ProfileResult,
    bar,
    repeat: int = 0,
    ref: PhaseAnchor | None = None,
    on_round=None,
) -> None:
    invokes, releases = {}, {}
    for w in ws:
        try:
            invokes[w.key], releases[w.key] = runner.prepare(w)
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            _failed(w.key, exc, st, device_id, variant, res, bar)

    def done(key: str, stats: Stats) -> None:
        releases.pop(key)()
        res.timed_seconds += stats.timed_s
        st.add_measurement(
            key,
            device_id,
            stats.as_dict(),
            res.run_id,
            variant=variant,
            hwlat_version=__version__,
            repeat=repeat,
        )
        res.measured.append(key)
        bar.update(1)

    def fail(key: str, exc: Exception) -> None:
        releases.pop(key)()
        _failed(key, exc, st, device_id, variant, res, bar)

    try:
        measure_interleaved(
            invokes, config, variant=variant, on_done=done, on_fail=fail, reference=ref, on_round=on_round
        )
    finally:
        release_batch(invokes, releases)


def _failed(
    key: str, exc: Exception, st: Store, device_id: int, variant: str, res: ProfileResult, bar
) -> None:
    msg = f"{type(exc).__name__}: {exc}"
    log.warning("workload %s failed: %s", key, msg)
    st.add_failure(key, device_id, msg, res.run_id, variant=variant)
    res.failed[key] = msg
    bar.update(1)
