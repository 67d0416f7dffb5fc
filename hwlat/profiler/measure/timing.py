"""Timing: warm up, sample until the median is known to a target precision, interleave workloads.

One *sample* is the mean time of ``inner`` back-to-back invocations, with ``inner`` chosen so that a
sample lasts at least ``min_sample_ms`` (tiny kernels are otherwise dominated by timer jitter).
Sampling stops when the 95 % confidence half-width of the median (distribution-free,
binomial order statistics) is within ``target`` of the median, or when ``max_samples`` or
``max_seconds`` per workload is reached. Rounds are interleaved across the workloads of a batch
so that a slow phase of the machine hits all of them alike.

Phases of the machine. A shared host has slow phases, lasting seconds to minutes (how far the
reference workload drifts is the ``phase reference`` line of
``benchmarks/results/fidelity__litert__large-60__small-60__repeats-3__block-repeats-3__train-candidates-150__seed-1__x86_64.txt``
and the ``reference workload`` line of ``benchmarks/results/tasks__litert__repeats-5__full__x86_64.txt``). Two
indicators are kept with every measurement: ``ref_ms``, the median time of a fixed *reference*
workload timed in the same interleaved rounds (its drift is the phase), and ``steal_pct``, the CPU
steal time of the measuring core over the rounds the workload sampled in (``/proc/stat``). A round
whose reference is more than ``phase_tolerance`` slower than the fastest round so far is a slow
round: its samples are kept apart (``slow_round_samples`` of each workload, fewer than in a normal
round, so that the phase is checked again soon and little time goes to samples rarely used), and a
workload is summarised from its normal-round samples when it has at least ``min_samples`` of them
(it keeps sampling for them, within its limits).

Warm-up. Before its first round a workload is invoked ``min_warmup`` times and for at least
``warmup_seconds``, which sizes ``inner`` from the fastest of those invocations. That is short on
purpose: the first invocation of a fresh interpreter pays its lazy set-up, the next few settle
within a few per cent, and the rounds themselves keep every workload warm.

``variant="cold"`` evicts caches before every single invocation (a sample is one invocation), so
weights come from memory as they do for late blocks inside a large network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Invoke = Callable[[], object]


@dataclass(frozen=True)
class TimingConfig:
    """How precisely to measure. Times in milliseconds unless named otherwise."""

    target: float = 0.02  # relative 95 % CI half-width of the stop_quantile
    stop_quantile: float = 0.5  # the quantile of the samples whose precision stops sampling
    min_samples: int = 10
    max_samples: int = 200
    max_seconds: float = 10.0  # per workload
    warmup_seconds: float = 0.002  # at least this long (two samples' worth) and min_warmup invocations
    min_warmup: int = 3
    min_sample_ms: float = 1.0
    max_inner: int = 1000
    round_samples: int = 5  # samples per workload per interleaved round
    reference_samples: int = 3  # samples of the phase reference per timing (their median is ref_ms)
    reference_every_ms: float = 200.0  # rounds within this of the last reference timing reuse it
    slow_round_samples: int = 1  # samples per workload in a slow round (kept apart, rarely used)
    evict_mb: int = 64
    phase_tolerance: float = 0.15  # a round whose reference is this much slower is a slow round


@dataclass
class Stats:
    """Robust statistics of one workload's samples (milliseconds per invocation).

    ``ci95_ms`` is None when too few samples bound the median (fewer than 6); :meth:`as_dict` is
    strict-JSON ready (no NaN or infinity: None instead)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    ci95_ms: float | None
    n: int
    warmup: int
    inner: int
    started_at: float
    finished_at: float
    ref_ms: float | None = None  # the reference workload's median over the rounds used
    steal_pct: float | None = None  # CPU steal time of the measuring core while sampling (%)
    timed_s: float = 0.0  # seconds in this workload's timed invocations, every sample (not stored)

    def as_dict(self) -> dict:
        """The stored fields (``timed_s`` is the profiler's own accounting, not a measurement)."""
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in self.__dict__.items()
            if k != "timed_s"
        }


def median_ci_halfwidth(samples: np.ndarray) -> float:
    """Half-width of the distribution-free 95 % confidence interval of the median (inf for fewer
    than 6 samples: no order statistics bound it)."""
    x = np.sort(samples)
    n = len(x)
    if n < 6:
        return math.inf
    d = 1.96 * math.sqrt(n) / 2
    lo, hi = max(0, int(math.floor(n / 2 - d))), min(n - 1, int(math.ceil(n / 2 + d)))
    return float(x[hi] - x[lo]) / 2


def summarize(
    samples: list[float],
    warmup: int,
    inner: int,
    started: float,
    ref_ms: float | None = None,
    steal_pct: float | None = None,
) -> Stats:
    x = np.asarray(samples, dtype=np.float64)
    ci = median_ci_halfwidth(x)
    return Stats(
        median_ms=float(np.median(x)),
        p10_ms=float(np.percentile(x, 10)),
        p90_ms=float(np.percentile(x, 90)),
        mean_ms=float(x.mean()),
        std_ms=float(x.std(ddof=1)) if len(x) > 1 else 0.0,
        ci95_ms=ci if math.isfinite(ci) else None,
        n=len(x),
        warmup=warmup,
        inner=inner,
        started_at=started,
        finished_at=time.time(),
        ref_ms=ref_ms,
        steal_pct=steal_pct,
    )


def cpu_times(cpu: int | None) -> tuple[int, int] | None:
    """``(steal, total)`` jiffies of one CPU (``None``: all CPUs) from ``/proc/stat``; None where
    the file does not exist (not Linux)."""
    label = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0].decode() == label:
                    vals = [int(v) for v in parts[1:9]]
                    return (vals[7] if len(vals) > 7 else 0), sum(vals)
    except OSError:
        return None
    return None


def current_cpu() -> int | None:
    """The one CPU this process is pinned to, else None."""
    import os

    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None
    return next(iter(cpus)) if len(cpus) == 1 else None


class _Evictor:
    """Touches a buffer larger than the last-level cache to push everything else out."""

    def __init__(self, mb: int):
        self.buf = np.ones(mb * 1024 * 1024 // 8, dtype=np.float64)

    def __call__(self) -> None:
        self.buf += 1.0


@dataclass
class _Job:
    invoke: Invoke
    started: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    samples: list = field(default_factory=list)
    slow: list = field(default_factory=list)  # True for samples taken in a slow round
    refs: list = field(default_factory=list)  # reference ms of each round this job sampled in
    steal: list = field(default_factory=lambda: [0, 0])  # steal, total jiffies while sampling
    warmup: int = 0
    inner: int = 1
    timed_s: float = 0.0  # seconds inside timed sample loops

    def normal(self) -> list[float]:
        return [x for x, slow in zip(self.samples, self.slow) if not slow]

    def stats(self, cfg: TimingConfig) -> Stats:
        """Summary of the normal-round samples if there are enough of them, else of all."""
        normal = self.normal()
        only_normal = len(normal) >= cfg.min_samples
        refs = [r for r, slow in self.refs if not (only_normal and slow)]
        steal, total = self.steal
        stats = summarize(
            normal if only_normal else self.samples,
            self.warmup,
            self.inner,
            self.started,
            ref_ms=float(np.median(refs)) if refs else None,
            steal_pct=100.0 * steal / total if total else None,
        )
        stats.timed_s = self.timed_s
        return stats


def _warm(job: _Job, cfg: TimingConfig, cold: bool) -> None:
    t_end = time.perf_counter() + cfg.warmup_seconds
    per = math.inf
    while job.warmup < cfg.min_warmup or time.perf_counter() < t_end:
        t = time.perf_counter()
        job.invoke()
        per = min(per, time.perf_counter() - t)
        job.warmup += 1
    if not cold:
        job.inner = int(min(cfg.max_inner, max(1, math.ceil(cfg.min_sample_ms / 1e3 / max(per, 1e-9)))))


def _done(job: _Job, cfg: TimingConfig) -> bool:
    return should_stop(job.samples, job.slow, time.perf_counter() - job.t0, cfg)


def should_stop(samples: list[float], slow: list[bool], elapsed_s: float, cfg: TimingConfig) -> bool:
    """The stopping rule: ``max_samples`` or ``max_seconds`` reached, or the 95 % confidence
    half-width of the ``cfg.stop_quantile`` of the normal-round samples within ``cfg.target`` of it
    (with at least ``min_samples`` of them). A pure function of what was sampled, so that a study
    replays it on recorded rounds (``benchmarks/bench_new_device.py``)."""
    if len(samples) >= cfg.max_samples or elapsed_s > cfg.max_seconds:
        return True
    normal = [x for x, s in zip(samples, slow) if not s]
    if len(normal) < cfg.min_samples:
        return False
    # in plain Python: called for every workload in every round, where numpy's per-call overhead
    # would cost more than the sort
    x = sorted(normal)
    half, value = _quantile_ci(x, cfg.stop_quantile)
    return half <= cfg.target * value


def _quantile_ci(x: list[float], q: float) -> tuple[float, float]:
    """``(95 % CI half-width, value)`` of quantile ``q`` of sorted ``x``: distribution-free, by
    binomial order statistics (normal approximation). The half-width is inf until the lower rank
    is a sample (n ≥ 3.84 (1 - q) / q: 4 for the median, 35 for p10)."""
    n = len(x)
    pos = n * q
    value = x[min(n - 1, int(pos))] if q != 0.5 else (x[n // 2] if n % 2 else (x[n // 2 - 1] + x[n // 2]) / 2)
    d = 1.96 * math.sqrt(n * q * (1 - q))
    if pos - d < 0 or n < 6:
        return math.inf, value
    lo, hi = int(math.floor(pos - d)), min(n - 1, int(math.ceil(pos + d)))
    return (x[hi] - x[lo]) / 2, value


RoundHook = Callable[[str, list, bool, int], None]
"""``on_round(key, samples, slow, inner)``: one workload's samples (ms per invocation) of one round,
whether the round was slow, and the invocations per sample."""


def measure_interleaved(
    invokes: dict[str, Invoke],
    cfg: TimingConfig = TimingConfig(),
    variant: str = "warm",
    on_done: Callable[[str, Stats], None] | None = None,
    on_fail: Callable[[str, Exception], None] | None = None,
    reference: PhaseAnchor | Invoke | None = None,
    on_round: RoundHook | None = None,
) -> dict[str, Stats]:
    """Time every callable of ``invokes`` (key → zero-argument invoke) in interleaved rounds.

    ``on_done(key, stats)`` is called as soon as a workload meets its stopping rule, so the
    caller can store it at once. A workload whose invoke raises is dropped and reported to
    ``on_fail(key, error)``; without ``on_fail`` the error propagates. ``reference`` (a small
    fixed workload, or a :class:`PhaseAnchor` shared across batches so that "fastest round so
    far" spans a whole run) is timed at the start of every round: see the module docstring.
    ``on_round`` sees every round's samples (:data:`RoundHook`; stopping-rule studies record them).
    """
    out: dict[str, Stats] = {}
    for key, result in iter_interleaved(invokes, cfg, variant, reference, on_round):
        if isinstance(result, Stats):
            out[key] = result
            if on_done is not None:
                on_done(key, result)
        elif on_fail is None:
            raise result
        else:
            on_fail(key, result)
    return out


def iter_interleaved(
    invokes: dict[str, Invoke],
    cfg: TimingConfig = TimingConfig(),
    variant: str = "warm",
    reference: PhaseAnchor | Invoke | None = None,
    on_round: RoundHook | None = None,
):
    """:func:`measure_interleaved` as a generator: yields ``(key, Stats)`` as soon as a workload
    meets its stopping rule and ``(key, exception)`` for a workload whose invoke raised."""
    if variant not in ("warm", "cold"):
        raise ValueError(f"variant: unknown {variant!r} (expected 'warm' or 'cold')")
    cold = variant == "cold"
    evict = _Evictor(cfg.evict_mb) if cold else None
    jobs = {k: _Job(f) for k, f in invokes.items()}
    for key in list(jobs):
        try:
            _warm(jobs[key], cfg, cold)
        except Exception as exc:  # noqa: BLE001 - a runtime failure is data, recorded by the caller
            del jobs[key]
            yield key, exc
            continue
        jobs[key].t0 = time.perf_counter()
    ref = (
        reference if isinstance(reference, PhaseAnchor) or reference is None else PhaseAnchor(reference, cfg)
    )
    cpu = current_cpu()
    while jobs:
        before = cpu_times(cpu)  # steal over the round, counted for each workload sampled in it
        ref_ms, slow = ref.round() if ref is not None else (None, False)
        sampled = []
        for key in list(jobs):
            job = jobs[key]
            try:
                for _ in range(cfg.slow_round_samples if slow else cfg.round_samples):
                    if evict is not None:
                        evict()
                    t = time.perf_counter()
                    for _ in range(job.inner):
                        job.invoke()
                    dt = time.perf_counter() - t
                    job.timed_s += dt
                    job.samples.append(dt * 1e3 / job.inner)
                    job.slow.append(slow)
            except Exception as exc:  # noqa: BLE001
                del jobs[key]
                yield key, exc
                continue
            sampled.append(job)
            if on_round is not None:
                k = cfg.slow_round_samples if slow else cfg.round_samples
                on_round(key, job.samples[-k:], slow, job.inner)
            if ref_ms is not None:
                job.refs.append((ref_ms, slow))
        after = cpu_times(cpu)
        for job in sampled:
            if before is not None and after is not None:
                job.steal[0] += after[0] - before[0]
                job.steal[1] += after[1] - before[1]
        for key in [k for k, job in jobs.items() if _done(job, cfg)]:
            yield key, jobs.pop(key).stats(cfg)


class PhaseAnchor:
    """The phase anchor: a fixed workload, timed at the start of every round (its ``ref_ms``); flags
    slow rounds.

    A round is slow when the reference (the median of its ``cfg.reference_samples`` samples) is more
    than ``cfg.phase_tolerance`` slower than in the fastest round this object has seen.
    """

    def __init__(self, invoke: Invoke, cfg: TimingConfig):
        self.invoke, self.cfg = invoke, cfg
        job = _Job(invoke)
        _warm(job, cfg, cold=False)
        self.inner = job.inner
        self.fastest = math.inf
        self.last: tuple[float, bool] | None = None
        self.timed_at = -math.inf

    def round(self) -> tuple[float, bool]:
        """``(reference ms this round, whether the round is slow)``, timed again when the last
        timing is ``cfg.reference_every_ms`` old (a phase lasts seconds; the short rounds at the end
        of a batch would otherwise pay a timing each). A sample is ``inner``
        invocations sized like a workload's (``cfg.min_sample_ms``): single invocations of the
        reference jitter enough that the fastest round so far drifts down and flags normal rounds
        as slow."""
        if (
            self.last is not None
            and (time.perf_counter() - self.timed_at) * 1e3 < self.cfg.reference_every_ms
        ):
            return self.last
        self.timed_at = time.perf_counter()
        times = []
        for _ in range(self.cfg.reference_samples):
            t = time.perf_counter()
            for _ in range(self.inner):
                self.invoke()
            times.append((time.perf_counter() - t) * 1e3 / self.inner)
        ms = float(np.median(times))
        self.fastest = min(self.fastest, ms)
        self.last = ms, ms > (1 + self.cfg.phase_tolerance) * self.fastest
        return self.last
