"""Timing: warm up, sample until the median is known to a target precision, interleave workloads.

One *sample* is the mean time of ``inner`` back-to-back invocations, with ``inner`` chosen so that a
sample lasts at least ``min_sample_ms`` (tiny kernels are otherwise dominated by timer jitter).
Sampling stops when the 95 % confidence half-width of the median (distribution-free,
binomial order statistics) is within ``target`` of the median, or when ``max_samples`` or
``max_seconds`` per workload is reached. Rounds are interleaved across the workloads of a batch
so that a slow phase of the machine hits all of them alike.

``variant="cold"`` evicts caches before every single invocation (a sample is one invocation), so
weights come from memory as they do for late blocks inside a large network.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Invoke = Callable[[], object]


@dataclass(frozen=True)
class TimingConfig:
    """How precisely to measure. Times in milliseconds unless named otherwise."""

    target: float = 0.02  # relative 95 % CI half-width of the median
    min_samples: int = 10
    max_samples: int = 200
    max_seconds: float = 10.0  # per workload
    warmup_seconds: float = 0.05
    min_warmup: int = 3
    min_sample_ms: float = 1.0
    max_inner: int = 1000
    round_samples: int = 5  # samples per workload per interleaved round
    evict_mb: int = 64


@dataclass
class Stats:
    """Robust statistics of one workload's samples (milliseconds per invocation)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    ci95_ms: float
    n: int
    warmup: int
    inner: int
    started_at: float
    finished_at: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def median_ci_halfwidth(samples: np.ndarray) -> float:
    """Half-width of the distribution-free 95 % confidence interval of the median."""
    x = np.sort(samples)
    n = len(x)
    if n < 6:
        return math.inf
    d = 1.96 * math.sqrt(n) / 2
    lo, hi = max(0, int(math.floor(n / 2 - d))), min(n - 1, int(math.ceil(n / 2 + d)))
    return float(x[hi] - x[lo]) / 2


def summarize(samples: list[float], warmup: int, inner: int, started: float) -> Stats:
    x = np.asarray(samples, dtype=np.float64)
    return Stats(
        median_ms=float(np.median(x)), p10_ms=float(np.percentile(x, 10)),
        p90_ms=float(np.percentile(x, 90)), mean_ms=float(x.mean()),
        std_ms=float(x.std(ddof=1)) if len(x) > 1 else 0.0, ci95_ms=median_ci_halfwidth(x),
        n=len(x), warmup=warmup, inner=inner, started_at=started, finished_at=time.time(),
    )


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
    warmup: int = 0
    inner: int = 1


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
    n = len(job.samples)
    if n >= cfg.max_samples or time.perf_counter() - job.t0 > cfg.max_seconds:
        return True
    if n < cfg.min_samples:
        return False
    x = np.asarray(job.samples)
    return median_ci_halfwidth(x) <= cfg.target * float(np.median(x))


def measure_interleaved(invokes: dict[str, Invoke], cfg: TimingConfig = TimingConfig(),
                        variant: str = "warm", on_done: Callable[[str, Stats], None] | None = None,
                        on_fail: Callable[[str, Exception], None] | None = None) -> dict[str, Stats]:
    """Time every callable of ``invokes`` (key → zero-argument invoke) in interleaved rounds.

    ``on_done(key, stats)`` is called as soon as a workload meets its stopping rule, so the
    caller can store it at once. A workload whose invoke raises is dropped and reported to
    ``on_fail(key, error)``; without ``on_fail`` the error propagates.
    """
    if variant not in ("warm", "cold"):
        raise ValueError(f"variant: unknown {variant!r} (expected 'warm' or 'cold')")
    cold = variant == "cold"
    evict = _Evictor(cfg.evict_mb) if cold else None
    jobs = {k: _Job(f) for k, f in invokes.items()}

    def fail(key: str, exc: Exception) -> None:
        del jobs[key]
        if on_fail is None:
            raise exc
        on_fail(key, exc)

    for key in list(jobs):
        try:
            _warm(jobs[key], cfg, cold)
        except Exception as exc:  # noqa: BLE001 - a runtime failure is data, recorded by the caller
            fail(key, exc)
            continue
        jobs[key].t0 = time.perf_counter()
    out: dict[str, Stats] = {}
    while jobs:
        for key in list(jobs):
            job = jobs[key]
            try:
                for _ in range(cfg.round_samples):
                    if evict is not None:
                        evict()
                    t = time.perf_counter()
                    for _ in range(job.inner):
                        job.invoke()
                    job.samples.append((time.perf_counter() - t) * 1e3 / job.inner)
            except Exception as exc:  # noqa: BLE001
                fail(key, exc)
                continue
            if _done(job, cfg):
                out[key] = summarize(job.samples, job.warmup, job.inner, job.started)
                del jobs[key]
                if on_done is not None:
                    on_done(key, out[key])
    return out
