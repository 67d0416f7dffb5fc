"""NetAdapt's schedule never dead-ends: a step too large for any one proposal halves, a run that
cannot reach its target stops short with its best network, the long fine-tune, ``final`` and the
reason; the CLI exits 3 for such a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwlat.archs import decode, summary
from hwlat.latency_models import make_predictor
from hwlat.search.evaluators import DigitsTask
from hwlat.search.netadapt import (
    NetAdaptConfig,
    candidates,
    channel_floor,
    meeting_proposals,
    netadapt,
    outcome,
    smallest_reachable,
)

TINY = (
    "in16,stem_k3_s2_c16_hs,ir_k3_s1_e16_c16_re,ir_k3_s2_e64_c24_se16_re,ir_k3_s1_e72_c24_hs,"
    "ir_k5_s2_e96_c40_se24_hs,head_c96_hs_h128_hs,fc10"
)
FIXED_MS = 0.5
"""A per-network cost no channel cut removes: most of the tiny seed's predicted latency, as on a host
whose per-op overheads dominate."""


@pytest.fixture(scope="module")
def tiny():
    return decode(TINY, name="tiny")


@pytest.fixture(scope="module")
def task():
    return DigitsTask(16, scratch_steps=30, batch_size=32, holdout_fraction=0.2)


@pytest.fixture(scope="module")
def fixed_cost_pred(tiny):
    """MAdds plus a large fixed cost, fitted on the seed, its cuts and its floor (no extrapolation)."""
    archs = [tiny, smallest_reachable(tiny)] + [c[3] for c in candidates(tiny)]
    return make_predictor("madds").fit(archs, [summary(a)["madds"] / 1e6 + FIXED_MS for a in archs])


@pytest.fixture(scope="module")
def seed_model(tiny, task):
    return task.train(tiny)


def _cfg(target_ms, **kw):
    return NetAdaptConfig(
        target_ms=target_ms, **{"short_steps": 2, "long_steps": 3, "noise_repeats": 1, **kw}
    )


def test_a_step_halves_until_enough_proposals_meet_it():
    cands = [("expansion", 0, w, f"e{w}") for w in (16, 8)] + [
        ("expansion", 1, 8, "f8"),
        ("bottleneck", 24, 16, "b16"),
    ]
    lat = 1.0
    ms = [0.90, 0.80, 0.97, 0.99]  # gains 0.10, 0.20 | 0.03 | 0.01
    best, step, halvings = meeting_proposals(cands, ms, lat, 0.4, min_proposals=2, min_gain=1e-4)
    assert (step, halvings) == (0.025, 4)  # 0.4 -> 0.2 -> 0.1 -> 0.05 -> 0.025: two kinds meet it
    assert best == {("expansion", 0): (16, "e16", 0.90), ("expansion", 1): (8, "f8", 0.97)}
    # every kind that some cut speeds up, when fewer than min_proposals exist
    best, step, _ = meeting_proposals(cands, ms, lat, 0.4, min_proposals=10, min_gain=1e-4)
    assert set(best) == {("expansion", 0), ("expansion", 1), ("bottleneck", 24)} and step <= 0.01
    # a step some proposals meet does not shrink (the paper's schedule)
    assert meeting_proposals(cands, ms, lat, 0.1, min_proposals=1, min_gain=1e-4)[1:] == (0.1, 0)
    # nothing lowers the latency (by more than min_gain): no proposal, the caller stops
    assert meeting_proposals(cands, [1.0, 1.2, 1.00001, 1.0], lat, 0.1, 3, 1e-4)[0] == {}


def test_a_fixed_step_no_single_proposal_meets_still_reaches_a_reachable_target(
    tiny, task, fixed_cost_pred, seed_model, tmp_path
):
    floor = channel_floor(tiny, fixed_cost_pred)
    assert floor.share > 0.6
    target = floor.floor_ms + 0.6 * (floor.seed_ms - floor.floor_ms)  # above the floor: reachable
    best_single_cut = max(
        floor.seed_ms - m for m in fixed_cost_pred.predict_many([c[3] for c in candidates(tiny)])
    )
    delta = 0.5 * (floor.seed_ms - floor.floor_ms) / floor.seed_ms  # half of what cuts can remove ...
    assert delta * floor.seed_ms > best_single_cut  # ... more than any one cut gives
    res = netadapt(tiny, seed_model, task, fixed_cost_pred, _cfg(target, delta_fraction=delta), tmp_path)
    h = res.history
    assert h["final"]["reached_target"] and h["final"]["stopped"] is None
    assert h["final"]["predicted_ms"] <= target
    assert h["steps"][0]["halvings"] >= 1 and h["steps"][0]["step_ms"] < h["steps"][0]["delta_ms"]
    lats = [floor.seed_ms] + [s["predicted_ms"] for s in h["steps"]]
    for s, before, after in zip(h["steps"], lats, lats[1:]):
        assert after <= before - s["step_ms"] + 1e-12  # each step meets its (halved) step
        assert len(s["candidates"]) >= 2  # a choice, not the one layer left
        assert s["accuracy_spread"] == pytest.approx(
            max(c["holdout_accuracy"] for c in s["candidates"])
            - min(c["holdout_accuracy"] for c in s["candidates"])
        )
    noise = h["steps"][0]["noise"]
    assert (
        len(noise["holdout_accuracies"]) == 2
        and noise["std"] >= 0
        and noise["holdout_size"] == len(task.holdout_y)
    )
    assert h["ranked_on"].startswith("a holdout of") and "reached its target" in outcome(h)


class BandedLatency:
    """A device whose latency (ms) falls with MAdds except in a band of MAdds, where it is slower by
    ``penalty`` (as when small channel counts fall off a fast kernel path). NetAdapt takes no cut that
    raises the predicted latency, so from above the band it cannot reach a target below it, though
    the all-8-channel floor predicts lower still."""

    def __init__(self, lo: float, hi: float, penalty: float):
        self.lo, self.hi, self.penalty = lo, hi, penalty

    def _ms(self, arch) -> float:
        m = summary(arch)["madds"] / 1e6
        return m + FIXED_MS + (self.penalty if self.lo <= m <= self.hi else 0.0)

    def predict_many(self, archs):
        return np.array([self._ms(a) for a in archs])

    def predict(self, arch) -> float:
        return self._ms(arch)


def test_an_unreachable_target_ends_with_the_best_network_final_and_the_reason(
    tiny, task, seed_model, tmp_path
):
    m_seed, m_floor = summary(tiny)["madds"] / 1e6, summary(smallest_reachable(tiny))["madds"] / 1e6
    lo, hi = m_floor + 0.1 * (m_seed - m_floor), m_floor + 0.7 * (m_seed - m_floor)
    pred = BandedLatency(lo, hi, penalty=m_seed)  # inside the band: slower than the seed
    floor = channel_floor(tiny, pred)
    target = FIXED_MS + 0.5 * (lo + hi)  # above the floor, but behind the band
    assert floor.floor_ms < target < floor.seed_ms
    res = netadapt(tiny, seed_model, task, pred, _cfg(target, delta_fraction=0.05), tmp_path)
    h = res.history
    fin = h["final"]
    assert not fin["reached_target"] and "no channel cut lowers the predicted latency" in fin["stopped"]
    # the best network is the last one reached, just above the band: no cut lowers its prediction
    assert fin["predicted_ms"] == h["steps"][-1]["predicted_ms"] < floor.seed_ms
    assert fin["predicted_ms"] > FIXED_MS + hi
    assert all(
        m > fin["predicted_ms"] - 1e-4 * floor.seed_ms
        for m in pred.predict_many([c[3] for c in candidates(res.arch)])
    )
    # fine-tuned long-term and written
    assert fin["arch"] == h["steps"][-1]["arch"] and (tmp_path / "weights" / "final.pt").is_file()
    assert json.loads((tmp_path / "arch.json").read_text())["blocks"]
    assert h["weights"] == "weights/final.pt" and 0 <= fin["accuracy"] <= 1
    line = outcome(h)
    assert "stopped short" in line and f"{target:.3f}" in line and fin["stopped"] in line
    # max_steps is a stop short too, with its own reason
    res = netadapt(
        tiny, seed_model, task, pred, _cfg(target, delta_fraction=0.05, max_steps=1), tmp_path / "one"
    )
    assert len(res.history["steps"]) == 1 and res.history["final"]["stopped"] == "max_steps (1) reached"


def test_cli_exits_3_for_a_run_short_of_its_target(tiny, fixed_cost_pred, tmp_path, capsys):
    from hwlat.cli import main

    path = tmp_path / "pred.json"
    fixed_cost_pred.save(path)
    spec = tmp_path / "tiny.json"
    spec.write_text(tiny.to_json())
    argv = [
        "netadapt",
        str(spec),
        "--target-ratio",
        "0.8",
        "--predictor",
        str(path),
        "--runtime",
        "litert",
        "--allow-other-device",
        "--task",
        "digits",
        "-r",
        "16",
        "--seed-steps",
        "5",
        "--short-steps",
        "1",
        "--long-steps",
        "1",
        "--delta",
        "0.02",
        "--max-steps",
        "1",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert (
        "stopped short" in out and "max_steps (1) reached" in out and "proposals ranked on a holdout" in out
    )
    assert json.loads((tmp_path / "o" / "history.json").read_text())["final"]["reached_target"] is False
    assert np.isfinite(json.loads((tmp_path / "o" / "history.json").read_text())["final"]["accuracy"])


def test_training_threads_are_measured_not_assumed(tiny, task):
    import torch

    before = torch.get_num_threads()
    assert task.fastest_threads(tiny, choices=(1, 2), steps=1) in (1, 2)
    assert task.fastest_threads(tiny, choices=(1,)) == 1
    assert torch.get_num_threads() == before
