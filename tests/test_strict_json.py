"""Every JSON hwlat writes is strict (RFC 8259): no NaN or Infinity. An undefined value (the CI of
too few samples) is null, and the readers take null back where older files had Infinity."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hwlat.archs import get_arch, summary, zoo_names
from hwlat.archs.pieces import collect
from hwlat.files import atomic_write_json, dumps_strict, finite_or_none
from hwlat.profiler.measure.bundle import import_results, read_results, write_workloads
from hwlat.profiler.measure.timing import TimingConfig, summarize
from hwlat.profiler.storage.device import fingerprint
from hwlat.profiler.storage.store import Store, check_stats


def _refuse(constant):
    raise ValueError(f"not strict JSON: {constant}")


def strict_loads(text: str):
    """``json.loads`` that refuses NaN, Infinity and -Infinity (Python's reader takes them)."""
    return json.loads(text, parse_constant=_refuse)


def test_strict_loads_refuses_what_python_writes_by_default():
    for v in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="not strict JSON"):
            strict_loads(json.dumps({"x": v}))
    assert strict_loads('{"x": null}') == {"x": None}


# -- the helpers (hwlat.files) ------------------------------------------------------------------


def test_dumps_strict_names_the_value(tmp_path):
    assert dumps_strict({"a": [1.5, None]}, sort_keys=True) == '{"a": [1.5, null]}'
    with pytest.raises(ValueError, match=r"a\[1\]\.b is nan .*write None"):
        dumps_strict({"a": [1, {"b": float("nan")}]})
    with pytest.raises(ValueError, match=r"stats\.ci95_ms is inf"):
        dumps_strict({"stats": {"ci95_ms": np.float64("inf")}})
    with pytest.raises(ValueError, match="Circular"):  # other ValueErrors as json raises them
        loop = []
        loop.append(loop)
        dumps_strict(loop)


def test_atomic_write_json_refuses_nan_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"x": 1.0})
    with pytest.raises(ValueError, match=rf"{path.name}: not strict JSON: x is nan"):
        atomic_write_json(path, {"x": float("nan")})
    with pytest.raises(ValueError, match=r"x\[0\] is -inf"):
        atomic_write_json(tmp_path / "new.json", {"x": [-math.inf]})
    assert strict_loads(path.read_text()) == {"x": 1.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary file left


def test_finite_or_none():
    assert finite_or_none({"a": (1.0, math.nan), "b": {"c": -math.inf}, "d": "NaN", "e": 3}) == {
        "a": [1.0, None],
        "b": {"c": None},
        "d": "NaN",
        "e": 3,
    }


# -- timing statistics and bundles ----------------------------------------------------------------


@pytest.mark.parametrize("samples", [[1.0], [1.0, 1.2], [1.0, 1.1, 1.2, 1.3, 1.4]])
def test_stats_of_few_samples_have_a_null_ci(samples):
    st = summarize(samples, warmup=3, inner=1, started=1.7e9)
    assert st.ci95_ms is None and st.n == len(samples)
    d = st.as_dict()
    assert strict_loads(dumps_strict(d))["ci95_ms"] is None
    assert check_stats(d)[8] is None  # the store takes it: NULL


def test_stats_of_enough_samples_keep_their_ci():
    st = summarize(list(np.linspace(1.0, 1.5, 20)), warmup=3, inner=1, started=1.7e9)
    assert st.ci95_ms is not None and math.isfinite(st.ci95_ms) and st.ci95_ms > 0


@pytest.fixture(scope="module")
def few_sample_bundle(tmp_path_factory):
    """A bundle of two block workloads, measured by its own runner with at most 2 samples each."""
    out = tmp_path_factory.mktemp("strict") / "bundle"
    ws = collect([get_arch("mobilenetv3_small_035", resolution=96)], "block")[:2]
    cfg = TimingConfig(
        min_samples=1, max_samples=2, round_samples=2, max_seconds=5.0, warmup_seconds=0.0, min_warmup=1
    )
    write_workloads(ws, out, cfg)
    r = subprocess.run(
        [sys.executable, str(out / "run_bundle.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out.parent,
    )
    assert r.returncode == 0, r.stderr
    return out


def test_bundle_with_few_samples_writes_strict_json_with_null_ci(few_sample_bundle, tmp_path):
    out = few_sample_bundle
    strict_loads((out / "manifest.json").read_text())
    lines = (out / "results.jsonl").read_text().splitlines()
    recs = [strict_loads(line) for line in lines]
    meas = [r for r in recs if r["type"] == "measurement"]
    assert len(meas) == 2 and all(r["stats"]["n"] <= 2 for r in meas)
    assert all(r["stats"]["ci95_ms"] is None for r in meas)
    assert all('"ci95_ms": null' in line for line in lines if '"measurement"' in line)
    # the reader takes null back, and the store keeps it as NULL
    res = read_results(out)
    assert [m["stats"]["ci95_ms"] for m in res.measurements] == [None, None]
    assert import_results(out, tmp_path / "s.db")["added"] == 2
    with Store(tmp_path / "s.db") as st:
        df = st.frame()
    assert len(df) == 2 and df["ci95_ms"].isna().all() and (df["median_ms"] > 0).all()


def test_bundle_results_with_infinity_from_older_runners_still_import(few_sample_bundle, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text((few_sample_bundle / "manifest.json").read_text())
    text = (few_sample_bundle / "results.jsonl").read_text()
    (old / "results.jsonl").write_text(text.replace('"ci95_ms": null', '"ci95_ms": Infinity'))
    assert "Infinity" in (old / "results.jsonl").read_text()
    assert import_results(old, tmp_path / "s.db")["added"] == 2
    with Store(tmp_path / "s.db") as st:
        assert st.frame()["ci95_ms"].isna().all()


def test_store_export_json_is_strict(tmp_path):
    with Store(tmp_path / "s.db") as st:
        dev = st.add_device(fingerprint("onnxruntime", "1.17", threads=1))
        st.add_workload("kernel:0", "kernel", {"op": "conv"}, 10, 1)
        st.add_measurement(
            "kernel:0", dev, {**summarize([1.0, 1.1], 3, 1, 1.7e9).as_dict(), "p10_ms": float("nan")}, "r"
        )
        path = st.export(tmp_path / "out.json")
    rows = strict_loads(path.read_text())
    assert len(rows) == 1 and rows[0]["ci95_ms"] is None and rows[0]["p10_ms"] is None


def test_fingerprint_extra_must_be_strict_json():
    with pytest.raises(ValueError, match="extra must be JSON-serialisable"):
        fingerprint("onnxruntime", "1.17", extra={"clock": float("nan")})


# -- predictor files ----------------------------------------------------------------------------


def test_predictor_with_infinite_parameters_round_trips_strictly(tmp_path):
    from hwlat.latency_models import persist
    from hwlat.latency_models.e2e import EndToEnd
    from hwlat.latency_models.kinds import load

    archs = [get_arch(n) for n in zoo_names()[:12]]
    y = np.array([summary(a)["madds"] / 1e7 + 1.0 for a in archs])
    p = EndToEnd(block_ridge=math.inf, cache_mb=math.inf).fit(archs, y)
    path = tmp_path / "p.json"
    p.save(path)
    doc = strict_loads(path.read_text())
    assert doc["state"]["params"]["block_ridge"] == "inf" and doc["state"]["learned"]["cache_mb"] is None
    q = load(path)
    assert q.block_ridge == math.inf and q.cache_mb == math.inf and q.feature_ridge is None
    np.testing.assert_allclose(q.predict_many(archs), p.predict_many(archs))
    # a file of an older hwlat (Infinity in the params) is read as before
    path.write_text(path.read_text().replace('"block_ridge": "inf"', '"block_ridge": Infinity'))
    assert load(path).block_ridge == math.inf
    # any other NaN is refused when writing, naming the file and the field; nothing is written
    with pytest.raises(ValueError, match=r"bad\.json: not strict JSON: state\.train\.latency_ms\[1\] is nan"):
        persist.write(
            tmp_path / "bad.json", "EndToEnd", {"params": {}, "train": {"latency_ms": [1.0, math.nan]}}
        )
    assert not (tmp_path / "bad.json").exists()


# -- search histories and dashboards ------------------------------------------------------------


def test_history_write_is_strict_and_dashboards_read_null(tmp_path):
    from hwlat.dashboards.frames import read_history
    from hwlat.search import history as H

    hist = {
        "schema": 1,
        "kind": "nas",
        "settings": {},
        "budget": 2,
        "rng_state": {},
        "candidates": [
            {
                "i": 0,
                "vector": [0],
                "arch": "a",
                "predicted_ms": 2.0,
                "accuracy": 0.5,
                "reward": 0.4,
                "measured_ms": None,
            }
        ],
        "best": {"i": 0},
    }
    path = tmp_path / "history.json"
    H.write(path, hist)
    assert strict_loads(path.read_text()) == hist and H.read(path, "nas") == hist
    with pytest.raises(ValueError, match=r"history\.json: not strict JSON: candidates\[0\]\.reward is nan"):
        H.write(path, {**hist, "candidates": [{**hist["candidates"][0], "reward": math.nan}]})
    assert strict_loads(path.read_text()) == hist  # the previous step stays
    df = read_history(path)
    assert len(df) == 1 and df["latency_ms"][0] == 2.0 and pd.isna(df["measured_ms"][0])


def test_netadapt_history_with_null_measurements_reads_in_dashboards(tmp_path):
    from hwlat.dashboards.frames import read_history

    hist = {
        "schema": 2,
        "kind": "netadapt",
        "seed_arch": "s",
        "seed": {"predicted_ms": 3.0, "accuracy": 0.6},
        "steps": [
            {
                "step": 0,
                "predicted_ms": 2.5,
                "accuracy": 0.55,
                "arch": "a",
                "chosen": {"kind": "exp", "key": 1, "width": 16},
            }
        ],
        "final": {
            "predicted_ms": 2.4,
            "accuracy": 0.58,
            "arch": "b",
            "measured_ms": None,
            "seed_measured_ms": None,
        },
        "baselines": {
            "uniform": {"width_mult": 0.75, "predicted_ms": 2.4, "accuracy": 0.5, "measured_ms": None}
        },
    }
    path = tmp_path / "history.json"
    atomic_write_json(path, hist)
    df = read_history(path)
    assert list(df["phase"]) == ["seed", "step", "final", "uniform"]
    assert df["measured_ms"].isna().all()
    assert pd.isna(df["arch"].iloc[-1])  # a baseline has no arch: missing, not the text "NaN"


def test_dashboard_figures_serialise_nan_as_null():
    from hwlat.dashboards import figures as F

    steps = pd.DataFrame(
        {
            "step": [0, 1],
            "latency_ms": [2.0, np.nan],
            "accuracy": [np.nan, 0.5],
            "reward": np.nan,
            "proposal": None,
        }
    )
    fig = F.search_trajectory(steps)
    strict_loads(fig.to_json())
    html = fig.to_html(full_html=False, include_plotlyjs=False)
    assert "NaN" not in html and "Infinity" not in html
