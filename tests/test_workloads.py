"""Workload decomposition, canonical keys, the torch segment reference, the timing loop."""

import time

import numpy as np
import pytest
import torch

from hwlat.archs import get_arch, layers, mobilenetv3, summary
from hwlat.archs.pieces import blocks, collect, from_spec, kernels, model
from hwlat.archs.segments import canonical, random_weights, segment_ops, torch_segment, weights_from_torch
from hwlat.archs.torch_builder import build_torch, fold_bn
from hwlat.profiler.measure.timing import TimingConfig, measure_interleaved, median_ci_halfwidth


@pytest.mark.parametrize("decompose", [kernels, blocks, lambda a: [model(a)]])
def test_pieces_cover_the_network_once(zoo_name, decompose):
    arch = get_arch(zoo_name, resolution=160)
    ws = decompose(arch)
    s = summary(arch)
    assert sum(w.madds for w in ws) == s["madds"]
    assert sum(w.params for w in ws) == s["params"]
    for w in ws:
        back = from_spec(w.key, w.spec())
        assert canonical(back.rows) == canonical(w.rows) and back.key == w.key


def test_kernel_decomposition_follows_litert_fusion():
    ws = kernels(get_arch("mobilenetv3_large_100"))
    labels = [w.label for w in ws]
    assert labels[0].startswith("conv k3 s2 3->16 identity") and labels[1].startswith("hswish")
    assert any(lbl.startswith("dwconv k3 s1 16->16 relu") for lbl in labels)  # ReLU fused
    assert sum(lbl.startswith("se ") for lbl in labels) == 8  # 8 SE blocks in Large
    assert labels[-1].startswith("fc")


def test_keys_dedupe_across_architectures():
    grid = [
        mobilenetv3(f, width_mult=m, resolution=r)
        for f in ("large", "small")
        for m in (0.75, 1.0)
        for r in (160, 224)
    ]
    per_arch = sum(len(blocks(a)) for a in grid)
    uniq = collect(grid, "block")
    assert len(uniq) < per_arch and len({w.key for w in uniq}) == len(uniq)
    # the same bottleneck at the same input shape in two archs has one key
    a = blocks(get_arch("mobilenetv3_large_100"))
    b = blocks(mobilenetv3("large", last_stage="original"))
    assert a[5].key == b[5].key and a[-1].key != b[-1].key
    assert len(collect(grid, "model")) == len(grid)
    with pytest.raises(ValueError, match="granularity"):
        collect(grid, "layer")


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["mobilenetv3_large_075", "mobilenetv3_small_100", "mnasnet_a1"])
def test_torch_segment_of_all_rows_equals_the_built_network(name):
    arch = get_arch(name, resolution=128)
    rows = layers(arch)
    net = fold_bn(build_torch(arch))
    seg = torch_segment(rows, weights_from_torch(net, rows))
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(seg(x), net(x))


@pytest.mark.numerics
def test_block_segments_chain_to_the_model():
    arch = get_arch("mobilenetv3_small_075", resolution=96)
    rows = layers(arch)
    w = random_weights(rows, seed=5)
    whole = torch_segment(rows, w)
    x = torch.randn(1, 3, 96, 96)
    y, start = x, 0
    for b in blocks(arch):
        n = len(b.rows)
        sub = {i - start: w[i] for i in range(start, start + n) if i in w}
        y = torch_segment(b.rows, sub)(y)
        start += n
    with torch.no_grad():
        torch.testing.assert_close(y, whole(x))


def test_segment_rejects_broken_rows():
    rows = layers(get_arch("mobilenetv3_small_100"))
    se_start = next(i for i, r in enumerate(rows) if r.name.endswith("se.pool"))
    with pytest.raises(ValueError, match="incomplete squeeze-excite"):
        segment_ops(rows[se_start : se_start + 2])
    with pytest.raises(ValueError, match="does not follow"):
        segment_ops([rows[0], rows[-1]])
    with pytest.raises(ValueError, match="empty segment"):
        segment_ops([])


def test_median_ci():
    rng = np.random.default_rng(0)
    wide, narrow = rng.normal(10, 2, 200), rng.normal(10, 0.1, 200)
    assert median_ci_halfwidth(narrow) < median_ci_halfwidth(wide)
    assert median_ci_halfwidth(np.ones(3)) == float("inf")


def test_interleaved_measurement_of_real_torch_kernels():
    from hwlat.profiler.measure.runners import TorchRunner

    runner = TorchRunner()
    ws = kernels(get_arch("mobilenetv3_small_050", resolution=96))[:6]
    prepared = {w.key: runner.prepare(w) for w in ws}
    seen = []
    cfg = TimingConfig(max_seconds=2.0, min_sample_ms=0.2)
    stats = measure_interleaved(
        {k: p[0] for k, p in prepared.items()}, cfg, on_done=lambda k, s: seen.append(k)
    )
    assert set(seen) == set(stats) == {w.key for w in ws}
    for s in stats.values():
        assert 0 < s.p10_ms <= s.median_ms <= s.p90_ms and s.n >= cfg.min_samples and s.warmup >= 3


def test_failing_workload_is_reported_not_fatal():
    def boom():
        raise RuntimeError("kernel exploded")

    failed = {}
    stats = measure_interleaved(
        {"ok": lambda: None, "bad": boom},
        TimingConfig(max_seconds=0.5),
        on_fail=lambda k, e: failed.update({k: str(e)}),
    )
    assert set(stats) == {"ok"} and failed == {"bad": "kernel exploded"}
    with pytest.raises(RuntimeError):
        measure_interleaved({"bad": boom}, TimingConfig())


@pytest.mark.parametrize("n", [10, 20, 50, 101, 200, 500, 1000])
def test_median_ci_agrees_with_scipy_order_statistics(n):
    """The hand-written interval (normal approximation to the binomial order statistics; the bundle
    runner needs numpy only) is within one rank of scipy's exact quantile-test interval."""
    from scipy import stats

    x = np.sort(np.random.default_rng(n).lognormal(0, 0.2, n))
    ci = stats.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
    lo_rank, hi_rank = np.searchsorted(x, ci.low), np.searchsorted(x, ci.high)
    exact = (x[hi_rank] - x[lo_rank]) / 2
    ours = median_ci_halfwidth(x)
    # one rank either side of the exact interval bounds ours
    wider = (x[min(n - 1, hi_rank + 1)] - x[max(0, lo_rank - 1)]) / 2
    narrower = (x[hi_rank - 1] - x[lo_rank + 1]) / 2
    assert narrower <= ours <= wider, (ours, exact)


class _Clock:
    """An invoke whose duration is set by the test (busy-waits, so perf_counter sees it)."""

    def __init__(self, ms: float):
        self.ms, self.calls = ms, 0

    def __call__(self) -> None:
        self.calls += 1
        end = time.perf_counter() + self.ms / 1e3
        while time.perf_counter() < end:
            pass


def test_slow_rounds_take_fewer_samples_and_every_round_is_seen():
    """A round whose reference is slow samples each workload ``slow_round_samples`` times, and the
    round hook sees exactly the samples taken, with the round's flag."""
    ref = _Clock(0.3)
    work = _Clock(0.3)
    flips = iter([0.3] * 10 + [0.6] * 6 + [0.3] * 1000)  # the reference's time, call by call

    def reference() -> None:
        ref.ms = next(flips)
        ref()

    cfg = TimingConfig(
        min_samples=6, max_samples=40, target=1e-9, round_samples=4, slow_round_samples=1,
        reference_every_ms=0.0, min_sample_ms=0.2, warmup_seconds=0.0, min_warmup=1,
    )  # fmt: skip
    seen = []
    stats = measure_interleaved(
        {"w": work},
        cfg,
        reference=reference,
        on_round=lambda k, xs, slow, inner: seen.append((len(xs), slow)),
    )
    slow_rounds = [n for n, slow in seen if slow]
    assert slow_rounds and set(slow_rounds) == {1}
    assert {n for n, slow in seen if not slow} == {4}
    total = sum(n for n, _ in seen)
    assert 40 <= total < 40 + cfg.round_samples  # max_samples, checked after each round
    assert stats["w"].n == total - len(slow_rounds)  # summarised from the normal rounds' samples
    assert stats["w"].timed_s > 0 and "timed_s" not in stats["w"].as_dict()


def test_reference_is_timed_again_only_after_reference_every_ms():
    from hwlat.profiler.measure.timing import PhaseAnchor

    ref = _Clock(0.2)
    anchor = PhaseAnchor(ref, TimingConfig(reference_every_ms=10_000.0, min_sample_ms=0.2))
    before = ref.calls
    first = anchor.round()
    timed = ref.calls - before
    assert timed > 0 and all(anchor.round() is first for _ in range(5)) and ref.calls - before == timed
    fresh = PhaseAnchor(ref, TimingConfig(reference_every_ms=0.0, min_sample_ms=0.2))
    counts = []
    for _ in range(2):
        before = ref.calls
        fresh.round()
        counts.append(ref.calls - before)
    assert counts[0] > 0 and counts[1] > 0  # timed at every round


def test_frozen_heap_is_reentrant_and_restores_the_collector():
    import gc

    from hwlat.profiler.measure.runners import frozen_heap

    assert gc.get_freeze_count() == 0
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with frozen_heap():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen  # the inner block does not unfreeze
    assert gc.get_freeze_count() == 0
