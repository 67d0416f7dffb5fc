"""The main job on the embedded default: this machine's CPU, LiteRT, the built-in data.

1. profile with LiteRT (1 thread) what the zoo grid, the reference networks, the paper's ablation
   variants and a sample of the search space need: each whole network together with its blocks
   (a rerun reuses the store and measures only what is missing);
2. fit the predictors and score them on held-out networks beside the MAdds proxy;
3. run NetAdapt on the built-in digits task with the fitted predictor, measure the seed and the
   result with LiteRT, and train uniform width scaling at the same measured latency beside it;
4. build the self-contained HTML report.

Everything is written under ``out`` (default ``out/demo``). ``quick=True`` is a small version of the
same path, the one the tests run. Each stage prints its wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _ablations(quick: bool) -> list:
    """V3-Large 1.0 and the paper's ablation variants of it (none in the quick demo)."""
    from hwlat.archs import mobilenetv3
    from hwlat.archs.zoo import ablation_variants

    if quick:
        return []
    return [mobilenetv3("large")] + [mobilenetv3("large", **kw) for _, _, kw, _ in ablation_variants()]


NETADAPT_SEED = ("mobilenetv3_small_100", 112)
"""The demo's NetAdapt seed and resolution: large enough that channel cuts, not fixed per-op costs,
decide its latency, small enough that NetAdapt and uniform scaling train within one demo run (the
demo prints each stage's wall time)."""
QUICK_NETADAPT_SEED = ("mobilenetv3_small_050", 96)


DEMO_RATIO = 0.75
"""NetAdapt's target in the demo, as a share of the seed's predicted latency: the goal is ≤ 0.80 of the
seed's *measured* latency, and 0.75 leaves room for the predictor's error on one network."""
FLOOR_MARGIN = 0.35
"""The demo's target never asks for more than ``1 - FLOOR_MARGIN`` of what channel cuts can remove
(:func:`hwlat.search.netadapt.channel_floor`): on a host where fixed per-op costs are a larger share
of the seed, the target rises with the floor instead of demanding cuts to 8 channels."""


DEMO_DELTA = 0.04
"""NetAdapt's step in the demo, as a share of the seed's predicted latency (the paper's 0.01 would take
about 25 steps to 0.75; a step that too few layers can meet halves, see NetAdaptConfig)."""
SHORT_STEPS = {False: 8, True: 2}
"""Fine-tune steps per proposal (the quick demo: True)."""


def demo_target_ratio(floor) -> float:
    """NetAdapt's target in the demo as a share of the seed's predicted latency, from what this host's
    predictor says of the seed and its channel floor: :data:`DEMO_RATIO`, or higher when the floor is."""
    return max(DEMO_RATIO, floor.share + FLOOR_MARGIN * (1 - floor.share))


def _netadapt_seed(quick: bool):
    """The NetAdapt seed as it is trained and deployed: the digits task's 10 classes and resolution."""
    from hwlat.archs import load_arch
    from hwlat.search.evaluators import DigitsTask

    name, res = QUICK_NETADAPT_SEED if quick else NETADAPT_SEED
    return DigitsTask(res).adapt(load_arch(name)), name, res


def _archs(quick: bool):
    from hwlat.archs import SearchSpace, encode, get_arch
    from hwlat.archs.zoo import paper_grid

    grid = paper_grid(("small",), (0.5, 1.0), (96, 160)) if quick else paper_grid()
    archs = [get_arch(name, resolution=r) for name, r in grid]
    extras = (
        ["mobilenetv3_small_minimal_100"]
        if quick
        else [
            "mobilenetv3_large_minimal_100",
            "mobilenetv3_small_minimal_100",
            "mobilenetv2_100",
            "mobilenetv2_035",
            "mnasnet_a1",
        ]
    )
    archs += [get_arch(n) for n in extras]
    archs += _ablations(quick)
    rng = np.random.default_rng(0)
    space = SearchSpace.mobilenetv3_small(resolution=128 if quick else 160)
    archs += [space.sample_arch(rng) for _ in range(3 if quick else 12)]
    archs.append(_netadapt_seed(quick)[0])  # NetAdapt's seed with its 10-class head, measured too
    return list({encode(a): a for a in archs}.values())  # V3-Large 1.0 is in the grid and the ablations


@dataclass
class Stage:
    """One stage of the demo: ``status`` is ``"ran"``, ``"short"`` (ran, stopped short of its goal: a
    result), ``"failed"`` or ``"skipped"`` (needs a stage that failed); ``seconds`` of wall time."""

    name: str
    status: str = "skipped"
    detail: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        what = {"ran": "ran", "short": "ran, short of its goal", "failed": "FAILED", "skipped": "did not run"}
        return f"{self.name}: {what[self.status]} ({self.seconds / 60:.1f} min)" + (
            f": {self.detail}" if self.detail else ""
        )


@dataclass
class DemoResult:
    """What :func:`run_demo` did: the report (None if it could not be written) and every stage."""

    report: Path | None
    stages: list[Stage] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every stage ran (a NetAdapt run short of its target counts: it is a result)."""
        return all(s.status in ("ran", "short") for s in self.stages)


def _stage(stages: list[Stage], name: str, fn, *needs):
    """Run ``fn()`` as the stage ``name`` unless a stage it ``needs`` has no result; a failure is one
    line and the demo goes on. ``fn`` returns its result, or ``(result, "short", detail)``."""
    st = Stage(name)
    stages.append(st)
    missing = [n for n in needs if n is None]
    if missing:
        st.detail = "needs an earlier stage that failed"
        print(f"      skipped: {st.detail}")
        return None
    t0 = time.perf_counter()
    try:
        res = fn()
        st.status = "ran"
        if isinstance(res, tuple) and len(res) == 3 and res[1] == "short":
            res, st.status, st.detail = res
        return res
    except Exception as e:  # noqa: BLE001 - a stage that fails must not end the demo
        st.status, st.detail = "failed", f"{type(e).__name__}: {' '.join(str(e).split())}"
        print(f"      {name} failed: {st.detail}")
        return None
    finally:
        st.seconds = time.perf_counter() - t0


def run_demo(out: str | Path = "out/demo", quick: bool = False, progress: bool = True) -> DemoResult:
    """Run the whole job; no stage ends it early (a failed stage is reported, the rest goes on).

    Returns the report's path and each stage's status; the last line printed says what ran."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "lat.db"
    t0 = time.perf_counter()
    stages: list[Stage] = []
    archs = _archs(quick)
    print(f"[1/5] profiling {len(archs)} networks and their blocks with LiteRT on this CPU -> {store}")
    profiled = _stage(stages, "profiling", lambda: _profile(archs, store, quick, progress))
    print("[2/5] fitting predictors, scoring on held-out networks (30 %, split by architecture)")
    fitted = _stage(stages, "fitting", lambda: _fit(out, store, quick), profiled)
    paths, pred = fitted if fitted else ([], None)
    print("[3/5] NetAdapt on the digits task with the calibrated predictor, against uniform scaling")
    _stage(stages, "NetAdapt", lambda: _netadapt(out, pred, quick), pred)
    print("[4/5] real ARM phones: the published FBNet latencies of two phones, e2e and transfer")
    phones = _stage(stages, "phones", lambda: _phones(out, store, quick))
    paths += phones or []
    print("[5/5] building the report")
    notes = [f"Stage {s.line()}." for s in stages if s.status not in ("ran",)]
    report = _stage(stages, "report", lambda: _report(out, store, paths, notes))
    result = DemoResult(report, stages)
    print("      stage times: " + ", ".join(f"{s.name} {s.seconds / 60:.1f} min" for s in stages))
    took = f"done in {(time.perf_counter() - t0) / 60:.1f} min"
    if result.complete:
        print(f"{took}, every stage ran; report: {report.resolve()}")
    else:
        bad = "; ".join(s.line() for s in stages if s.status not in ("ran", "short"))
        print(
            f"{took}, NOT every stage ran ({bad}); "
            + (f"report: {report.resolve()}" if report else "no report was written")
        )
    return result


def _profile(archs, store: Path, quick: bool, progress: bool):
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.timing import TimingConfig
    from hwlat.profiler.storage.device import DEFAULT_RUNTIME

    cfg = TimingConfig(max_seconds=1.0 if quick else 2.0)
    # the ablation variants and their baseline first, as one interleaved batch: the report shows
    # their latency differences, which a slow phase between separate batches would swamp
    abl = _ablations(quick)
    if abl:
        profile(abl, "model", store, DEFAULT_RUNTIME, config=cfg, batch=len(abl), progress=progress)
    # each network with its blocks in one interleaved batch: a slow phase hits both alike
    res = profile(archs, ("model", "block"), store, DEFAULT_RUNTIME, config=cfg, progress=progress)
    print(
        f"      {len(res.measured)} workloads measured, {len(res.skipped)} reused, {len(res.failed)} failed"
        + (f"; {res.timing_line()}" if res.timing_line() else "")
    )
    if not res.measured and not res.skipped:
        raise ValueError(f"no workload could be measured ({len(res.failed)} failed)")
    return res


def _fit(out: Path, store: Path, quick: bool):
    """Score the predictors on held-out networks, then refit on every network; ``(files, calibrated)``."""
    from hwlat.latency_models import TrainingData, make_predictor
    from hwlat.latency_models.evaluate import holdout
    from hwlat.profiler.storage.device import DEFAULT_RUNTIME

    data = TrainingData.from_store(store, DEFAULT_RUNTIME)
    kinds = ("lut", "calibrated") if quick else ("lut", "regression", "calibrated")
    report, _ = holdout(data, kinds=kinds, test_fraction=0.3, seed=0)
    cols = [c for c in ("predictor", "n", "rmspe", "acc5", "acc10", "kendall_tau") if c in report]
    print(report[cols].round(3).to_string(index=False))
    paths = []
    for kind in ("madds", "calibrated"):  # refit on every measured network for the report and NetAdapt
        pred = make_predictor(kind).fit(
            data.archs(),
            data.latency_ms,
            pieces=data.pieces,
            fingerprint=data.fingerprint,
            runtime=data.runtime,
        )
        paths.append(out / f"pred_{kind}.json")
        pred.save(paths[-1])
    return paths, pred


def _report(out: Path, store: Path, paths: list[Path], notes: list[str]) -> Path:
    from hwlat.dashboards.report import build_report

    return build_report(store, predictor_paths=paths, runs_dir=out, out=out / "report.html", notes=notes)


def _netadapt(out: Path, pred, quick: bool):
    """NetAdapt to :func:`demo_target_ratio` of the seed's predicted latency, the long fine-tune, the
    seed and result measured with LiteRT, and uniform width scaling at the same measured latency
    beside it (:func:`hwlat.experiments.compare.compare`, NAS skipped). A run short of its target is a
    result: the stage says so."""
    from hwlat.experiments.compare import CompareConfig, compare
    from hwlat.search.netadapt import channel_floor

    seed, name, res = _netadapt_seed(quick)
    floor = channel_floor(seed, pred)
    ratio = demo_target_ratio(floor)
    print(
        f"      seed {name} @{res} px, 10 classes; {floor.describe()}; target {ratio:.2f} of its "
        f"predicted latency"
    )
    cfg = CompareConfig(
        seed_arch=name,
        resolution=res,
        seed_steps=30 if quick else 150,
        short_steps=SHORT_STEPS[quick],
        long_steps=10 if quick else 100,
        delta=DEMO_DELTA,
        ratio=ratio,
        skip=frozenset({"nas"}),
        max_seconds=1.0 if quick else 3.0,
        threads=1 if quick else None,
    )
    run = out / f"netadapt_{name}_{res}"  # a folder per seed: a rerun with another seed starts afresh
    r = compare(pred, run, cfg, log=lambda s: print(f"      {s}"))
    na, un = r["netadapt"], r.get("uniform")
    print(
        f"      NetAdapt: seed {na['seed_predicted_ms']:.3f} ms predicted / {na['seed_measured_ms']:.3f} ms "
        f"measured, acc {na['seed_accuracy']:.3f} -> final {na['final_predicted_ms']:.3f} / "
        f"{na['final_measured_ms']:.3f} ms, acc {na['final_accuracy']:.3f} ({na['steps']} steps; "
        f"measured ratio {na['measured_ratio']:.2f}, goal <= 0.80)"
    )
    if un:
        print(
            f"      uniform width x{un['width_mult']:g} (the widest not slower than NetAdapt's result, measured): "
            f"{un['predicted_ms']:.3f} ms predicted / "
            f"{un['measured_ms']:.3f} ms measured ({un['measured_ms'] / na['seed_measured_ms']:.2f} of "
            f"the seed), acc {un['accuracy']:.3f}, trained {un['train_steps']} steps from scratch"
        )
    print(f"      history: {run / 'netadapt' / 'history.json'}; all numbers: {run / 'compare.json'}")
    if not na["reached_target"]:
        return r, "short", na["stopped"]
    return r


def _phones(out: Path, store: Path, quick: bool) -> list[Path]:
    """Import the ``samsung_a50`` and ``pixel2`` columns of the shipped FBNet table (a seeded subset
    of rows, written to ``out/fbnet_phones.csv``) as two devices; fit ``e2e`` on the Samsung's
    networks and ``transfer`` to the Pixel 2 from 20 of its networks (chosen by ``suggest``) with
    the Samsung ``e2e`` and the shipped Pixel 3 table as sources. Returns the predictor files."""
    from hwlat.latency_models import TrainingData, Transfer, load, make_predictor
    from hwlat.latency_models.metrics import metrics
    from hwlat.latency_models.suggest import suggest
    from hwlat.paper import fbnet_latencies
    from hwlat.profiler.storage.tables import import_table

    df = fbnet_latencies()
    rows = np.sort(np.random.default_rng(0).permutation(len(df))[: 300 if quick else 1000])
    table = out / "fbnet_phones.csv"
    df.iloc[rows][["idx", *[f"op{i}" for i in range(22)], "samsung_a50", "pixel2"]].to_csv(table, index=False)
    for col in ("samsung_a50", "pixel2"):
        c = import_table(
            table,
            store,
            col,
            col,
            space="fbnet_cifar100",
            runtime="tflite",
            source="published: HW-NAS-Bench via HELP (hwlat data/fbnet_cifar100_latency_ms.csv)",
        )
        print(f"      imported {c['rows']} networks of {col} [{c['device_key']}]")
    sam = TrainingData.from_store(store, device="samsung_a50")
    archs, y = sam.archs(), sam.latency_ms
    half = len(y) // 2
    e2e = make_predictor("e2e").fit(archs[:half], y[:half], fingerprint=sam.fingerprint, runtime=sam.runtime)
    m = metrics(y[half:], e2e.predict_many(archs[half:]))
    print(
        f"      e2e on {half} samsung_a50 networks, the other {len(y) - half}: acc10 {m['acc10']:.2f}, "
        f"Spearman {m['spearman']:.2f}"
    )
    px = TrainingData.from_store(store, device="pixel2")
    parch, py = px.archs(), px.latency_ms
    sources = [e2e, load("@pixel3")]
    vectors = [_vector(a) for a in parch]
    chosen = {p.vector for p in suggest(sources, "fbnet_cifar100", 20, candidates=vectors)}
    idx = [i for i, v in enumerate(vectors) if v in chosen]
    rest = [i for i in range(len(py)) if i not in set(idx)]
    tr = Transfer(sources=sources).fit(
        [parch[i] for i in idx], py[idx], fingerprint=px.fingerprint, runtime=px.runtime
    )
    m = metrics(py[rest], tr.predict_many([parch[i] for i in rest]))
    print(
        f"      transfer to pixel2 from {len(idx)} suggested networks ({', '.join(tr.source_names_)}), "
        f"the other {len(rest)}: acc10 {m['acc10']:.2f}, Spearman {m['spearman']:.2f}"
    )
    paths = [out / "pred_e2e_samsung_a50.json", out / "pred_transfer_pixel2.json"]
    e2e.save(paths[0])
    tr.save(paths[1])
    return paths


def _vector(arch) -> tuple[int, ...]:
    from hwlat.archs.space import get_space

    return tuple(get_space("fbnet_cifar100").encode_arch(arch))
