"""hwlat.search: reward, controllers, NetAdapt surgery and loop, evaluators, CLI bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from hwlat.archs import SearchSpace, decode, layers, summary
from hwlat.latency_models import make_predictor
from hwlat.search import nas
from hwlat.search.evaluators import DigitsTask, ImageFolderTask, PublishedTable, make_task
from hwlat.search.netadapt import (
    NetAdaptConfig,
    apply_proposal,
    candidates,
    inherit_weights,
    netadapt,
    structure,
)

TINY = (
    "in16,stem_k3_s2_c16_hs,ir_k3_s1_e16_c16_re,ir_k3_s2_e64_c24_se16_re,ir_k3_s1_e72_c24_hs,"
    "ir_k5_s2_e96_c40_se24_hs,head_c96_hs_h128_hs,fc10"
)


def _madds_pred(archs, fingerprint=None, runtime=None):
    return make_predictor("madds").fit(
        archs, [summary(a)["madds"] / 1e6 + 0.05 for a in archs], fingerprint=fingerprint, runtime=runtime
    )


@pytest.fixture(scope="module")
def tiny():
    return decode(TINY, name="tiny")


@pytest.fixture(scope="module")
def task():
    return DigitsTask(16, scratch_steps=30, batch_size=32)


@pytest.fixture(scope="module")
def pred(tiny):
    archs = [tiny] + [c[3] for c in candidates(tiny)[::5]]
    return _madds_pred(archs)


# -- reward ----------------------------------------------------------------------------------------
def test_mnas_reward_formula():
    assert nas.mnas_reward(0.75, 80, 80) == pytest.approx(0.75)
    assert nas.mnas_reward(0.75, 160, 80) == pytest.approx(0.75 * 2**-0.07)
    assert nas.mnas_reward(0.75, 40, 80, w=-0.15) == pytest.approx(0.75 * 0.5**-0.15)
    assert nas.mnas_reward(0.75, 40, 80, form="hard") == pytest.approx(0.75)
    assert nas.mnas_reward(0.75, 160, 80, form="hard") == pytest.approx(0.375)
    r = nas.mnas_reward(np.array([0.5, 0.6]), np.array([10.0, 20.0]), 10.0)
    assert r.shape == (2,) and r[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="soft"):
        nas.mnas_reward(0.5, 1, 1, form="medium")
    with pytest.raises(ValueError, match="positive"):
        nas.mnas_reward(0.5, 1, 0)
    assert nas.W_DEFAULT == -0.07 and nas.W_SMALL == -0.15


# -- controllers -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def space_setup(small_space_latency):
    return small_space_latency


def _proxy_acc(arch):
    return min(1.0, np.log(summary(arch)["params"]) / 15)


@pytest.mark.parametrize("name", ["random", "evolution", "rl"])
def test_controller_budget_determinism_and_resume(space_setup, name, tmp_path):
    sp, lat = space_setup
    run = lambda budget, d: nas.search(
        sp,
        nas.make_controller(name, sp),
        _proxy_acc,
        lat,
        0.3,
        budget,
        np.random.default_rng(1),
        batch=10,
        out_dir=d,
    )
    full = run(60, tmp_path / "a")
    assert len(full["candidates"]) == 60
    again = run(60, tmp_path / "b")
    assert [c["vector"] for c in again["candidates"]] == [c["vector"] for c in full["candidates"]]
    # interrupted after 30, resumed to 60: the same trajectory
    run(30, tmp_path / "c")
    resumed = run(60, tmp_path / "c")
    assert [c["vector"] for c in resumed["candidates"]] == [c["vector"] for c in full["candidates"]]
    h = json.loads((tmp_path / "c" / "history.json").read_text())
    assert len(h["candidates"]) == 60 and h["best"]["reward"] == max(c["reward"] for c in h["candidates"])
    with pytest.raises(ValueError, match="another search"):
        nas.search(
            sp,
            nas.make_controller(name, sp),
            _proxy_acc,
            lat,
            0.5,
            60,
            np.random.default_rng(1),
            out_dir=tmp_path / "c",
        )


def test_learning_controllers_beat_their_start(space_setup):
    sp, lat = space_setup
    for name in ["evolution", "rl"]:
        h = nas.search(sp, nas.make_controller(name, sp), _proxy_acc, lat, 0.3, 200, np.random.default_rng(1))
        r = [c["reward"] for c in h["candidates"]]
        assert np.mean(r[-50:]) > np.mean(r[:50]), name


def test_search_bad_input(space_setup):
    sp, lat = space_setup
    with pytest.raises(TypeError, match="Generator"):
        nas.search(sp, nas.RandomSearch(sp), _proxy_acc, lat, 0.3, 10, 0)
    with pytest.raises(ValueError, match="budget"):
        nas.search(sp, nas.RandomSearch(sp), _proxy_acc, lat, 0.3, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown controller"):
        nas.make_controller("bayes", sp)


# -- NetAdapt proposals and weight surgery ---------------------------------------------------------------
def test_proposals_keep_structure_and_multiples_of_8(tiny):
    cands = candidates(tiny)
    assert cands and {k for k, *_ in cands} == {"expansion", "bottleneck"}
    for _kind, _key, new, arch in cands:
        layers(arch)
        assert structure(arch) == structure(tiny)
        assert new % 8 == 0
        assert all(b.exp % 8 == 0 and b.out % 8 == 0 for b in arch.blocks)
    # shrinking the shared 16-wide bottleneck moves the stem, block 0 (no expansion) and block 1's input
    a = apply_proposal(tiny, "bottleneck", 16, 8)
    assert a.stem.out == 8 and a.blocks[0].exp == 8 and a.blocks[0].out == 8
    # a cut that would remove an expansion conv (exp == input width) is refused
    assert apply_proposal(tiny, "expansion", 2, 24) is None


def test_inherit_weights_params_and_forward(tiny):
    from hwlat.archs.torch_builder import build_torch

    torch.manual_seed(0)
    model = build_torch(tiny, seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    for _kind, _key, _new, arch in candidates(tiny):
        net = inherit_weights(model, tiny, arch)
        assert sum(p.numel() for p in net.parameters()) == summary(arch)["params"]
        assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 10)
    # surviving filters are the largest-L2 ones, copied exactly
    arch = apply_proposal(tiny, "expansion", 1, 48)
    net = inherit_weights(model, tiny, arch)
    w_old = model.features[2].expand[0].weight
    keep = torch.sort(torch.argsort(w_old.flatten(1).pow(2).sum(1), descending=True)[:48]).values
    assert torch.equal(net.features[2].expand[0].weight, w_old[keep])
    assert torch.equal(net.features[2].project[0].weight, model.features[2].project[0].weight[:, keep])
    # no change: the same function
    same = inherit_weights(model, tiny, tiny)
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    assert torch.allclose(same(x), model(x), atol=1e-6)


def test_netadapt_reduces_latency_and_resumes(tiny, task, pred, tmp_path):
    seed_ms = pred.predict(tiny)
    model = task.train(tiny)
    cfg = NetAdaptConfig(target_ms=0.8 * seed_ms, delta_fraction=0.06, short_steps=3, long_steps=5)
    res = netadapt(tiny, model, task, pred, cfg, tmp_path)
    h = res.history
    lats = [seed_ms] + [s["predicted_ms"] for s in h["steps"]]
    assert all(b <= a - 0.06 * seed_ms + 1e-9 for a, b in zip(lats, lats[1:]))
    assert h["final"]["predicted_ms"] <= cfg.target_ms and h["final"]["reached_target"]
    for s in h["steps"]:
        assert s["candidates"] and s["chosen"] in s["candidates"]
        assert 0 <= s["accuracy"] <= 1
    layers(res.arch)
    assert sum(p.numel() for p in res.model.parameters()) == summary(res.arch)["params"]
    assert res.model(task.val_x[:4]).shape == (4, 10)
    assert json.loads((tmp_path / "arch.json").read_text())["blocks"]
    # a finished run is returned as it is
    again = netadapt(tiny, None, task, pred, cfg, tmp_path)
    assert again.history["steps"] == h["steps"]
    # a history that is cut back to one step (an interrupted run) resumes to the same end
    d2 = tmp_path / "resume"
    d2.mkdir()
    cfg2 = NetAdaptConfig(
        target_ms=0.8 * seed_ms, delta_fraction=0.06, short_steps=3, long_steps=5, max_steps=1
    )
    netadapt(tiny, model, task, pred, cfg2, d2)
    part = json.loads((d2 / "history.json").read_text())
    part["config"] = json.loads((tmp_path / "history.json").read_text())["config"]
    part["final"] = None
    (d2 / "history.json").write_text(json.dumps(part))
    res2 = netadapt(tiny, None, task, pred, cfg, d2)
    assert res2.history["steps"][0] == part["steps"][0]
    assert res2.history["final"]["predicted_ms"] <= cfg.target_ms
    with pytest.raises(ValueError, match="another run"):
        netadapt(tiny, None, task, pred, NetAdaptConfig(target_ms=0.7 * seed_ms, long_steps=200), tmp_path)


def test_netadapt_bad_targets(tiny, task, pred, tmp_path):
    seed_ms = pred.predict(tiny)
    with pytest.raises(ValueError, match="not below"):
        netadapt(
            tiny, None, task, pred, NetAdaptConfig(target_ms=seed_ms * 1.1, long_steps=200), tmp_path / "a"
        )
    with pytest.raises(ValueError, match="below what channel cuts can reach"):
        netadapt(tiny, None, task, pred, NetAdaptConfig(target_ms=0.001, long_steps=200), tmp_path / "b")
    with pytest.raises(ValueError, match="criterion"):
        NetAdaptConfig(target_ms=1.0, criterion="fastest")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "history.json").write_text('{"kind": "netad')
    with pytest.raises(ValueError, match="corrupt history"):
        netadapt(
            tiny, None, task, pred, NetAdaptConfig(target_ms=0.9 * seed_ms, long_steps=200), tmp_path / "c"
        )


# -- evaluators -------------------------------------------------------------------------------------
def test_digits_training_is_deterministic_and_learns(tiny, task):
    a = task.train(tiny, 25)
    b = task.train(tiny, 25)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    acc = task.accuracy(a)
    assert acc > 0.2  # chance is 0.1
    assert task.evaluate(tiny, a) == acc
    assert len(task.val_y) == 359 and task.train_x.shape[1:] == (3, 16, 16)
    with pytest.raises(ValueError, match="classes"):
        task.train(decode(TINY.replace("fc10", "fc5")))


def test_imagefolder(tmp_path, tiny):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ["cat", "dog"]:
        (tmp_path / c).mkdir()
        for i in range(6):
            px = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
            Image.fromarray(px).save(tmp_path / c / f"{i}.png")
    t = ImageFolderTask(tmp_path, 16, scratch_steps=2, batch_size=4)
    assert t.num_classes == 2 and t.classes == ["cat", "dog"] and len(t.val_y) + len(t.train_y) == 12
    arch = t.adapt(tiny)
    assert 0 <= t.evaluate(arch) <= 1
    (tmp_path / "dog" / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="corrupt"):
        ImageFolderTask(tmp_path, 16)
    (tmp_path / "empty").mkdir()
    (tmp_path / "e2").mkdir()
    (tmp_path / "e2" / "x").mkdir()
    (tmp_path / "e2" / "y").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageFolderTask(tmp_path / "e2", 16)
    with pytest.raises(ValueError, match="at least 2 class"):
        ImageFolderTask(tmp_path / "empty", 16)
    with pytest.raises(ValueError, match="does not exist"):
        make_task(str(tmp_path / "nope"))


def test_published_table():
    from hwlat.archs import get_arch

    t = PublishedTable()
    assert t.evaluate(get_arch("mobilenetv3_large_100")) == pytest.approx(0.752)
    assert t.evaluate(get_arch("mobilenetv3_small_075")) == pytest.approx(0.654)
    assert t.evaluate(get_arch("mobilenetv3_small_100", resolution=160)) == pytest.approx(0.628)
    assert t.evaluate(get_arch("mnasnet_a1")) == pytest.approx(0.752)
    assert "published" in t.label
    with pytest.raises(ValueError, match="no published"):
        t.evaluate(get_arch("mobilenetv3_small_100", resolution=200))


# -- CLI ---------------------------------------------------------------------------------------------
def _cli(argv):
    from hwlat.cli.search import add_parsers

    p = argparse.ArgumentParser()
    add_parsers(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_bad_input(tmp_path, tiny):
    other = _madds_pred(
        [tiny, decode(TINY.replace("c40", "c48"))],
        fingerprint={"hostname": "elsewhere", "cpu": "ARM"},
        runtime="litert",
    )
    path = tmp_path / "other.json"
    other.save(path)
    spec = tmp_path / "tiny.json"
    spec.write_text(tiny.to_json())
    with pytest.raises(ValueError, match="device mismatch"):
        _cli(
            [
                "netadapt",
                str(spec),
                "--target-ratio",
                "0.8",
                "--predictor",
                str(path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
    with pytest.raises(ValueError, match="no such predictor"):
        _cli(
            [
                "netadapt",
                str(spec),
                "--target-ratio",
                "0.8",
                "--predictor",
                str(tmp_path / "x.json"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
    with pytest.raises(ValueError, match="between 0 and 1"):
        _cli(
            [
                "netadapt",
                str(spec),
                "--target-ratio",
                "1.5",
                "--predictor",
                str(path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
    with pytest.raises(ValueError, match="exactly one"):
        _cli(["netadapt", str(spec), "--predictor", str(path), "--out", str(tmp_path / "o")])


def _local_pred_file(tmp_path, archs):
    from hwlat.profiler.measure.runners import get_runner

    p = _madds_pred(archs, fingerprint=get_runner("litert").fingerprint(), runtime="litert")
    path = tmp_path / "pred.json"
    p.save(path)
    return path


@pytest.mark.slow
def test_cli_netadapt_and_search_end_to_end(tmp_path, tiny, capsys):
    spec = tmp_path / "tiny.json"
    spec.write_text(tiny.to_json())
    sp = SearchSpace.mobilenetv3_small(resolution=32, num_classes=10)
    rng = np.random.default_rng(0)
    path = _local_pred_file(
        tmp_path,
        [tiny, *[c[3] for c in candidates(tiny)[::6]], *[sp.decode(sp.sample(rng)) for _ in range(3)]],
    )
    out = tmp_path / "na"
    argv = [
        "netadapt",
        str(spec),
        "--target-ratio",
        "0.85",
        "--predictor",
        str(path),
        "--out",
        str(out),
        "-r",
        "16",
        "--seed-steps",
        "10",
        "--short-steps",
        "2",
        "--long-steps",
        "2",
    ]
    assert _cli(argv) == 0
    h = json.loads((out / "history.json").read_text())
    assert h["final"]["predicted_ms"] <= h["config"]["target_ms"] and (out / "arch.json").exists()
    assert _cli(argv + ["--measure"]) == 0  # finished: returned as is, then measured with its seed
    printed = capsys.readouterr().out
    assert "final" in printed and "ms measured" in printed
    fin = json.loads((out / "history.json").read_text())["final"]
    assert fin["measured_ms"] > 0 and fin["seed_measured_ms"] > 0
    with pytest.raises(ValueError, match="not below"):
        _cli(
            [
                "netadapt",
                str(spec),
                "--target-ms",
                "1000",
                "--predictor",
                str(path),
                "--out",
                str(tmp_path / "x"),
                "-r",
                "16",
            ]
        )
    out = tmp_path / "nas"
    assert (
        _cli(
            [
                "search",
                "--controller",
                "evolution",
                "--target-ms",
                "2.0",
                "--budget",
                "12",
                "--batch",
                "4",
                "--predictor",
                str(path),
                "--out",
                str(out),
                "--train-steps",
                "1",
                "--latency-resolution",
                "32",
            ]
        )
        == 0
    )
    h = json.loads((out / "history.json").read_text())
    assert len(h["candidates"]) == 12 and (out / "arch.json").exists()
    assert h["settings"]["latency_resolution"] == 32
    with pytest.raises(ValueError, match="below what the space reaches at 32 px"):
        _cli(
            [
                "search",
                "--target-ms",
                "0.0001",
                "--budget",
                "2",
                "--predictor",
                str(path),
                "--out",
                str(out),
                "--latency-resolution",
                "32",
            ]
        )
    # by default latency is predicted for the deployed 224 px network, not the 32 px proxy: a
    # target that 32 px networks meet is out of reach there
    with pytest.raises(ValueError, match="below what the space reaches at 224 px"):
        _cli(["search", "--target-ms", "2.0", "--budget", "2", "--predictor", str(path), "--out", str(out)])


@pytest.mark.slow
def test_netadapt_with_profiled_regression_predictor(tmp_path, tiny, task):
    """A block-level Regression fitted on a tiny LiteRT store answers NetAdapt's unmeasured widths."""
    from hwlat.latency_models import TrainingData
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.timing import TimingConfig

    archs = [
        tiny,
        apply_proposal(tiny, "bottleneck", 24, 16),
        apply_proposal(tiny, "expansion", 3, 48),
        apply_proposal(tiny, "bottleneck", 40, 24),
    ]
    store = tmp_path / "lat.db"
    cfg = TimingConfig(max_seconds=0.3, target=0.05)
    profile(archs, "block", str(store), "litert", config=cfg, progress=False)
    profile(archs, "model", str(store), "litert", config=cfg, progress=False)
    data = TrainingData.from_store(str(store))
    pred = make_predictor("regression").fit(
        data.archs(), data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
    )
    cands = candidates(tiny)
    ms = pred.predict_many([c[3] for c in cands])  # widths never measured, one batch
    assert len(ms) == len(cands) and np.all(np.isfinite(ms)) and np.all(ms > 0)
