"""NAS and NetAdapt training on a real local Ray cluster: parallel equals serial where the order is
fixed, asynchronous evolution resumes, and without Ray `--ray` says what to install."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from hwlat.archs import SearchSpace, decode, summary
from hwlat.cli import main
from hwlat.latency_models import make_predictor
from hwlat.search import nas
from hwlat.search.evaluators import DigitsTask

TINY = (
    "in16,stem_k3_s2_c16_hs,ir_k3_s1_e16_c16_re,ir_k3_s2_e64_c24_se16_re,ir_k3_s1_e72_c24_hs,"
    "ir_k5_s2_e96_c40_se24_hs,head_c96_hs_h128_hs,fc10"
)


def _pred_file(tmp_path, archs):
    from hwlat.profiler.measure.runners import get_runner

    pred = make_predictor("madds").fit(
        archs,
        [summary(a)["madds"] / 1e6 + 0.05 for a in archs],
        fingerprint=get_runner("litert").fingerprint(),
        runtime="litert",
    )
    path = tmp_path / "pred.json"
    pred.save(path)
    return path


def test_without_ray_the_flag_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["profile", "blocks", TINY, "--store", str(tmp_path / "x.db"), "--ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hwlat: error: Ray is not installed: pip install 'hwlat[ray]'"
    sp = SearchSpace.mobilenetv3_small(resolution=32, num_classes=10)
    rng = np.random.default_rng(0)
    path = _pred_file(tmp_path, [sp.decode(sp.sample(rng)) for _ in range(3)])
    assert (
        main(
            [
                "search",
                "--target-ms",
                "5",
                "--budget",
                "1",
                "--predictor",
                str(path),
                "--out",
                str(tmp_path / "s"),
                "--latency-resolution",
                "32",
                "--ray",
            ]
        )
        == 2
    )
    assert "pip install 'hwlat[ray]'" in capsys.readouterr().err
    # and without --ray the same commands need no Ray at all (the search runs serially)
    assert (
        main(
            [
                "search",
                "--target-ms",
                "5",
                "--budget",
                "1",
                "--predictor",
                str(path),
                "--out",
                str(tmp_path / "s"),
                "--latency-resolution",
                "32",
                "--train-steps",
                "1",
            ]
        )
        == 0
    )


def test_target_above_every_network_warns(tmp_path, capsys):
    sp = SearchSpace.mobilenetv3_small(resolution=32, num_classes=10)
    rng = np.random.default_rng(0)
    path = _pred_file(tmp_path, [sp.decode(sp.sample(rng)) for _ in range(3)])
    assert (
        main(
            [
                "search",
                "--target-ms",
                "1e6",
                "--budget",
                "1",
                "--predictor",
                str(path),
                "--out",
                str(tmp_path / "s"),
                "--train-steps",
                "1",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "above every one of 300 sampled networks at 224 px" in err


ray = pytest.importorskip("ray")
from hwlat.profiler.measure import farm  # noqa: E402
from hwlat.search.parallel import RayPool  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    r = farm.connect(num_cpus=2)
    yield r
    farm.disconnect()


@pytest.fixture(scope="module")
def task():
    return DigitsTask(32, scratch_steps=3, batch_size=16)


@pytest.fixture(scope="module")
def space_lat(small_space_latency):
    return small_space_latency


@pytest.mark.slow
def test_rl_batches_in_parallel_equal_the_serial_run(cluster, task, space_lat):
    sp, lat = space_lat
    run = lambda pool: nas.search(
        sp,
        nas.make_controller("rl", sp, seed=3),
        nas.CachedAccuracy(task.evaluate),
        lat,
        0.3,
        6,
        np.random.default_rng(3),
        batch=3,
        pool=pool,
    )
    serial = run(None)
    with RayPool(task, workers=2, progress=False) as pool:
        parallel = run(pool)
        assert len(pool._hosts) >= 1 and sum(pool._hosts.values()) == len(pool.cache)
    for key in ("vector", "accuracy", "reward"):
        assert [c[key] for c in parallel["candidates"]] == [c[key] for c in serial["candidates"]], key


@pytest.mark.slow
def test_asynchronous_evolution_runs_and_resumes(cluster, task, space_lat, tmp_path):
    sp, lat = space_lat
    seen = []
    with RayPool(task, workers=2, progress=False) as pool:
        h = nas.search(
            sp,
            nas.make_controller("evolution", sp, population=3, sample=2),
            nas.CachedAccuracy(task.evaluate),
            lat,
            0.3,
            5,
            np.random.default_rng(0),
            out_dir=tmp_path,
            pool=pool,
            callback=lambda ev: seen.append(len(ev["batch"])),
        )
        assert seen == [1] * 5  # learned from each candidate as it finished
        first = [c["vector"] for c in h["candidates"]]
        resumed = nas.search(
            sp,
            nas.make_controller("evolution", sp, population=3, sample=2),
            nas.CachedAccuracy(task.evaluate),
            lat,
            0.3,
            8,
            np.random.default_rng(0),
            out_dir=tmp_path,
            pool=pool,
        )
    assert [c["vector"] for c in resumed["candidates"][:5]] == first
    assert [c["i"] for c in resumed["candidates"]] == list(range(8))
    on_disk = json.loads((tmp_path / "history.json").read_text())
    assert len(on_disk["candidates"]) == 8 and on_disk["best"]["reward"] == max(
        c["reward"] for c in on_disk["candidates"]
    )
    # each candidate's accuracy is what the serial evaluator gives it (seeds are passed in)
    c = resumed["candidates"][-1]
    assert c["accuracy"] == task.evaluate(sp.decode(c["vector"]))


@pytest.mark.slow
def test_parallel_netadapt_step_equals_serial(cluster, tmp_path):
    from hwlat.search.netadapt import NetAdaptConfig, candidates, netadapt

    tiny = decode(TINY, name="tiny")
    t = DigitsTask(16, scratch_steps=5, batch_size=16)
    archs = [tiny] + [c[3] for c in candidates(tiny)[::5]]
    pred = make_predictor("madds").fit(archs, [summary(a)["madds"] / 1e6 + 0.05 for a in archs])
    cfg = NetAdaptConfig(
        target_ms=float(pred.predict(tiny)) * 0.9, short_steps=3, long_steps=2, delta_fraction=0.05
    )
    serial = netadapt(tiny, None, t, pred, cfg, tmp_path / "serial", seed_train_steps=5)
    with RayPool(t, workers=2, progress=False) as pool:
        par = netadapt(tiny, None, t, pred, cfg, tmp_path / "parallel", seed_train_steps=5, pool=pool)
    strip = lambda h: [{k: v for k, v in s.items() if k != "seconds"} for s in h["steps"]]
    assert strip(par.history) == strip(serial.history) and len(serial.history["steps"]) >= 1
    assert par.history["final"] == serial.history["final"]


@pytest.mark.slow
def test_cli_search_and_netadapt_with_ray(cluster, tmp_path, capsys):
    sp = SearchSpace.mobilenetv3_small(resolution=32, num_classes=10)
    rng = np.random.default_rng(0)
    tiny = decode(TINY, name="tiny")
    path = _pred_file(tmp_path, [tiny] + [sp.decode(sp.sample(rng)) for _ in range(3)])
    out = tmp_path / "s"
    assert (
        main(
            [
                "search",
                "--controller",
                "evolution",
                "--target-ms",
                "5",
                "--budget",
                "3",
                "--predictor",
                str(path),
                "--out",
                str(out),
                "--latency-resolution",
                "32",
                "--train-steps",
                "1",
                "--ray",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    h = json.loads((out / "history.json").read_text())
    assert len(h["candidates"]) == 3 and (out / "arch.json").exists()
    assert "predicted at 32 px (trained at 32 px)" in capsys.readouterr().out
    spec = tmp_path / "tiny.json"
    spec.write_text(tiny.to_json())
    assert (
        main(
            [
                "netadapt",
                str(spec),
                "--target-ratio",
                "0.9",
                "--predictor",
                str(path),
                "--out",
                str(tmp_path / "na"),
                "-r",
                "16",
                "--seed-steps",
                "2",
                "--short-steps",
                "1",
                "--long-steps",
                "1",
                "--ray",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "na" / "history.json").read_text())["final"]
    assert ray.is_initialized()  # the CLI left the session it did not open
