"""``hwlat demo compare``: NetAdapt against uniform width scaling, and NAS with each controller,
on the built-in digits task with a fitted predictor.

- NetAdapt takes a trained seed (any architecture reference) down to ``ratio`` of its predicted latency
  (``DIR/netadapt/history.json``); the seed and the result are measured with LiteRT on this
  machine (``DIR/measure.db``).
- Uniform width scaling: the largest multiplier of the widths NetAdapt cuts (:func:`uniform_scale`)
  whose *measured* latency is at most NetAdapt's measured result, trained from scratch for as many
  steps as NetAdapt's seed plus its long fine-tune. The seed, NetAdapt's result and a ladder of
  uniform multipliers around the one matched on the predictor are measured side by side in one
  interleaved batch with 3 repeats (``DIR/measure.db``), so their ratios do not hang on the phases
  of the machine. It is recorded beside the run in its history (``baselines``),
  so the report draws it next to the NetAdapt trajectory.
- NAS: each controller on the small search space with a cheap evaluator
  (``DIR/nas_<controller>/history.json``).

Every number lands in ``DIR/compare.json`` (written after each part); latencies in ms. Reruns
resume each part.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwlat.files import atomic_write_json, format_tag
from hwlat.search import history as H
from hwlat.search.nas import CONTROLLERS
from hwlat.search.netadapt import HOLDOUT

FORMAT = format_tag("compare", 1)
"""The format of ``DIR/compare.json`` (its ``"schema"`` field)."""


@dataclass
class CompareConfig:
    """Settings of :func:`compare` (steps are training steps; ``ratio`` of the seed's predicted
    latency is NetAdapt's target; ``delta`` and ``decay`` its step schedule; ``holdout`` the share of
    the training images that ranks NetAdapt's proposals; ``threads`` torch threads for training, None:
    the fastest on this host, measured (:meth:`~hwlat.search.evaluators.TrainableTask.fastest_threads`);
    ``max_seconds`` caps each LiteRT measurement)."""

    seed_arch: str = "mobilenetv3_small_050"
    resolution: int = 96
    seed_steps: int = 150
    short_steps: int = 5
    long_steps: int = 100
    delta: float = 0.03
    decay: float = 1.0
    holdout: float = HOLDOUT
    ratio: float = 0.8
    nas_budget: int = 200
    nas_steps: int = 3
    nas_resolution: int = 32
    controllers: tuple[str, ...] = tuple(CONTROLLERS)
    threads: int | None = 1
    skip: frozenset[str] = field(default_factory=frozenset)
    max_seconds: float = 10.0

    def __post_init__(self):
        bad = set(self.skip) - {"netadapt", "uniform", "nas"}
        if bad:
            raise ValueError(f"--skip: unknown part(s) {sorted(bad)}; choose from netadapt, uniform, nas")
        bad = [c for c in self.controllers if c not in CONTROLLERS]
        if bad:
            raise ValueError(f"unknown NAS controller(s) {bad}; choose from {', '.join(CONTROLLERS)}")


def run_netadapt(
    seed,
    task,
    pred,
    out: str | Path,
    *,
    target_ms: float | None = None,
    target_ratio: float | None = None,
    check: bool = False,
    log: Callable[[str], None] = print,
    pool=None,
    seed_train_steps: int | None = None,
    **config,
):
    """The NetAdapt stage of ``hwlat netadapt``, ``hwlat demo compare`` and the demo: the channel
    floor of ``seed`` under ``pred`` (logged), the target (``target_ms``, or ``target_ratio`` of the
    seed's predicted latency; ``check``: refuse one cuts cannot reach), the run in ``out`` (resumed
    when it holds this run) with every step and the outcome logged. ``config`` are the other
    :class:`~hwlat.search.netadapt.NetAdaptConfig` fields. Returns ``(result, floor, target_ms)``."""
    from hwlat.search.netadapt import NetAdaptConfig, channel_floor, describe_step, netadapt, outcome

    if (target_ratio is None) == (target_ms is None):
        raise ValueError("give exactly one of a target ratio or a target latency (ms)")
    floor = channel_floor(seed, pred)
    target = float(target_ms if target_ms is not None else target_ratio * floor.seed_ms)
    log(f"netadapt: target {target:.3f} ms predicted; {floor.describe()}")
    if check:
        floor.check(target)

    def show(step: dict) -> None:
        for line in describe_step(step):
            log(f"  {line}")

    r = netadapt(
        seed,
        None,
        task,
        pred,
        NetAdaptConfig(target_ms=target, **config),
        Path(out),
        seed_train_steps=seed_train_steps,
        callback=show,
        pool=pool,
    )
    log(f"netadapt: {outcome(r.history)}")
    return r, floor, target


def _netadapt(
    pred, task, seed, cfg: CompareConfig, out: Path, log: Callable[[str], None]
) -> tuple[dict, object]:
    t = time.time()
    r, floor, target = run_netadapt(
        seed,
        task,
        pred,
        out / "netadapt",
        target_ratio=cfg.ratio,
        log=log,
        seed_train_steps=cfg.seed_steps,
        delta_fraction=cfg.delta,
        decay=cfg.decay,
        short_steps=cfg.short_steps,
        long_steps=cfg.long_steps,
    )
    fin = r.history["final"]
    return {
        "seed": seed.name,
        "resolution": cfg.resolution,
        "seed_predicted_ms": floor.seed_ms,
        "fixed_ms": floor.floor_ms,
        "seed_accuracy": r.history["seed"]["accuracy"],
        "target_predicted_ms": target,
        "final_predicted_ms": fin["predicted_ms"],
        "final_accuracy": fin["accuracy"],
        "accuracy_before_long": fin["accuracy_before_long"],
        "steps": len(r.history["steps"]),
        "reached_target": fin["reached_target"],
        "stopped": fin.get("stopped"),
        "evaluation_noise": next((s["noise"] for s in r.history["steps"] if "noise" in s), None),
        "seconds": time.time() - t,
        "final_arch": fin["arch"],
        "final_params": fin["params"],
    }, r.arch


def uniform_scale(arch, m: float):
    """``arch`` with the widths NetAdapt cuts (stem, expansions, bottleneck outputs, with the SE
    squeeze following the expansion) multiplied by ``m`` and rounded to a multiple of 8
    (``make_divisible``); the last stage stays, as NetAdapt leaves it. Blocks keep their structure
    (an expansion equal to its input stays equal; shortcuts stay as they are)."""
    from hwlat.archs import CHANNEL_DIVISOR, make_divisible, se_squeeze, validate
    from hwlat.archs.layers import residual_applies

    def w(c: int) -> int:
        return make_divisible(c * m)

    stem = dataclasses.replace(arch.stem, out=w(arch.stem.out))
    blocks, cin, new_cin = [], arch.stem.out, stem.out
    for b in arch.blocks:
        exp = (
            new_cin if b.exp == cin else w(b.exp) + CHANNEL_DIVISOR * (w(b.exp) == new_cin)
        )  # keep the expansion conv
        se = b.se and dataclasses.replace(b.se, squeeze=se_squeeze(exp))
        nb = dataclasses.replace(b, exp=exp, out=w(b.out), se=se)
        if residual_applies(nb, new_cin) != residual_applies(b, cin):  # widths rounded to equal
            nb = dataclasses.replace(nb, residual=False)
        blocks.append(nb)
        cin, new_cin = b.out, blocks[-1].out
    return validate(dataclasses.replace(arch, name=f"{arch.name}_x{m:g}", stem=stem, blocks=tuple(blocks)))


def uniform_baseline(pred, seed, max_ms: float) -> tuple[float, object] | None:
    """The largest multiplier ``m`` (steps of 0.025 from 1 down) whose :func:`uniform_scale` of
    ``seed`` is predicted at most ``max_ms``, with its architecture; None if none is."""
    for m in np.arange(1.0, 0.05, -0.025):
        arch = uniform_scale(seed, round(float(m), 3))
        if pred.predict(arch) <= max_ms:
            return round(float(m), 3), arch
    return None


UNIFORM_LADDER = (-0.2, 0.1)
"""The uniform multipliers measured beside NetAdapt's result: from the one matched on the predictor
minus 0.2 to plus 0.1 (at most 1), in steps of 0.025."""


def uniform_ladder(start: float, step: float = 0.025, lowest: float = 0.1) -> list[float]:
    """The multipliers of :data:`UNIFORM_LADDER` around ``start``, widest first."""
    lo, hi = max(lowest, start + UNIFORM_LADDER[0]), min(1.0, start + UNIFORM_LADDER[1])
    return [round(float(m), 3) for m in np.arange(hi, lo - 1e-9, -step)]


def widest_within(measured: dict[float, float], budget_ms: float) -> float | None:
    """The largest multiplier whose measured latency (ms) is at most ``budget_ms``; None if none is."""
    ok = [m for m, ms in measured.items() if ms <= budget_ms]
    return max(ok) if ok else None


def _measure(pred, seed, final, cfg: CompareConfig, out: Path, na: dict, with_uniform: bool) -> dict:
    """The seed, NetAdapt's result and the uniform ladder measured side by side (one interleaved
    batch, 3 passes of fresh interpreters), so their ratios do not hang on the machine's phases."""
    from hwlat.search.netadapt import measure_litert_side_by_side, record_result

    start = uniform_baseline(pred, seed, na["final_predicted_ms"]) if with_uniform else None
    ladder = uniform_ladder(start[0] if start else 1.0) if with_uniform else []
    archs = [seed, final] + [uniform_scale(seed, m) for m in ladder]
    ms = measure_litert_side_by_side(archs, out / "measure.db", repeats=3, max_seconds=cfg.max_seconds)
    seed_meas, fin_meas = ms[0], ms[1]
    record_result(out / "netadapt", measured_ms=fin_meas, seed_measured_ms=seed_meas)
    na.update(seed_measured_ms=seed_meas, final_measured_ms=fin_meas, measured_ratio=fin_meas / seed_meas)
    return {"ladder_ms": dict(zip(ladder, ms[2:])), "predicted_match_mult": start[0] if start else None}


def _uniform(pred, task, seed, cfg: CompareConfig, out: Path, na: dict, measured: dict) -> dict | None:
    """Uniform width scaling at NetAdapt's *measured* latency: the widest multiplier of the ladder
    measured beside NetAdapt's result (:func:`_measure`) that is not slower than it, trained from
    scratch for the seed's and the long fine-tune's steps."""
    from hwlat.archs import summary
    from hwlat.search.netadapt import record_baseline

    m = widest_within(measured["ladder_ms"], na["final_measured_ms"])
    if m is None:
        return None
    arch = uniform_scale(seed, m)
    steps = cfg.seed_steps + cfg.long_steps
    model = task.train(arch, steps)
    rec = {
        "width_mult": m,
        "predicted_ms": pred.predict(arch),
        "accuracy": task.accuracy(model),
        "measured_ms": measured["ladder_ms"][m],
        "matched_on": "measured latency, side by side",
        "predicted_match_mult": measured["predicted_match_mult"],
        "tried_ms": {f"{k:g}": v for k, v in sorted(measured["ladder_ms"].items())},
        "train_steps": steps,
        "params": summary(arch)["params"],
    }
    record_baseline(out / "netadapt", "uniform", rec)
    return rec


def _nas(
    pred, cfg: CompareConfig, out: Path, res: dict, save: Callable[[], None], log: Callable[[str], None]
) -> None:
    from hwlat.archs import SearchSpace
    from hwlat.search.evaluators import DigitsTask
    from hwlat.search.nas import W_SMALL, CachedAccuracy, latency_function, make_controller, search

    space = SearchSpace.mobilenetv3_small(resolution=cfg.nas_resolution, num_classes=10)
    lat = latency_function(pred, space)
    log(f"nas: {lat.describe()}")
    # cheap: few steps, BatchNorm statistics recalibrated on one batch of training images
    cheap = DigitsTask(
        cfg.nas_resolution, scratch_steps=cfg.nas_steps, batch_size=32, bn_batches=1, threads=cfg.threads
    )
    ref = float(np.median(lat([space.sample(np.random.default_rng(7)) for _ in range(500)])))
    res["nas"] = {
        "space": f"mobilenetv3_small @{cfg.nas_resolution}px",
        "target_ms": ref,
        "w": W_SMALL,
        "evaluator": f"digits {cfg.nas_resolution}px, {cfg.nas_steps} training steps from scratch",
    }
    for c in cfg.controllers:
        t = time.time()
        h = search(
            space,
            make_controller(c, space),
            CachedAccuracy(cheap.evaluate),
            lat,
            ref,
            cfg.nas_budget,
            np.random.default_rng(0),
            w=W_SMALL,
            out_dir=out / f"nas_{c}",
        )
        b = h["best"]
        rw = [x["reward"] for x in h["candidates"]]
        res["nas"][c] = {
            "best_reward": b["reward"],
            "best_accuracy": b["accuracy"],
            "best_predicted_ms": b["predicted_ms"],
            "candidates": len(rw),
            "mean_reward_first50": float(np.mean(rw[:50])),
            "mean_reward_last50": float(np.mean(rw[-50:])),
            "seconds": time.time() - t,
        }
        save()
        log(f"nas {c}: best reward {b['reward']:.4f} (acc {b['accuracy']:.3f}, {b['predicted_ms']:.3f} ms)")


def compare(
    pred, out_dir: str | Path, cfg: CompareConfig = CompareConfig(), log: Callable[[str], None] = print
) -> dict:
    """Run the parts of the comparison not in ``cfg.skip``; return (and write) ``DIR/compare.json``."""
    from hwlat.archs import load_arch
    from hwlat.search.evaluators import DigitsTask

    out = H.out_dir(out_dir)
    res: dict = {"schema": FORMAT}
    save = lambda: atomic_write_json(out / "compare.json", res)  # noqa: E731
    task = DigitsTask(
        cfg.resolution,
        scratch_steps=cfg.seed_steps,
        batch_size=32,
        threads=cfg.threads,
        holdout_fraction=cfg.holdout,
    )
    seed = task.adapt(load_arch(cfg.seed_arch))
    if cfg.threads is None:  # what trains fastest here now: a busy core makes 2 threads slower than 1
        task.threads = task.fastest_threads(seed)
        log(f"training with {task.threads} torch thread(s), the fastest on this host now")
    res["train_threads"] = task.threads
    if "netadapt" not in cfg.skip:
        res["netadapt"], final = _netadapt(pred, task, seed, cfg, out, log)
        measured = _measure(
            pred, seed, final, cfg, out, res["netadapt"], with_uniform="uniform" not in cfg.skip
        )
        save()
        if "uniform" not in cfg.skip:
            res["uniform"] = _uniform(pred, task, seed, cfg, out, res["netadapt"], measured)
            save()
    if "nas" not in cfg.skip:
        _nas(pred, cfg, out, res, save, log)
    return res
