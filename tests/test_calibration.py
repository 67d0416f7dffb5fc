"""The calibration set hwlat chooses from a search space, and the command that measures it."""

import numpy as np
import pytest

from hwlat.archs import SearchSpace, encode
from hwlat.archs.calibration import calibration_set, coverage_report, coverage_tokens, weight_bytes
from hwlat.cli import main
from hwlat.profiler.storage.store import Store

POOL = 400  # smaller than the default pool: fast tests


@pytest.fixture(scope="module")
def large():
    return SearchSpace.mobilenetv3_large()


def test_deterministic_distinct_and_sized(large):
    a = calibration_set(large, 12, seed=3, resolutions=(160, 224), pool=POOL)
    b = calibration_set(large, 12, seed=3, resolutions=(160, 224), pool=POOL)
    assert [encode(x) for x in a] == [encode(x) for x in b]
    assert len({encode(x) for x in a}) == 12
    assert {x.resolution for x in a} == {160, 224}
    c = calibration_set(large, 12, seed=4, resolutions=(160, 224), pool=POOL)
    assert [encode(x) for x in a] != [encode(x) for x in c]


def test_covers_more_than_random_sets_of_the_same_size(large):
    chosen = calibration_set(large, 8, seed=0, pool=POOL)
    cov = coverage_report(chosen, large, pool=POOL)["covered"]
    rng = np.random.default_rng(0)
    random_cov = [
        coverage_report([large.sample_arch(rng) for _ in range(8)], large, pool=POOL)["covered"]
        for _ in range(5)
    ]
    assert cov > max(random_cov)
    kernels = {k for a in chosen for k in (b.kernel for b in a.blocks)}
    assert kernels == {3, 5, 7}  # 7x7 depthwise included
    foot = [weight_bytes(a) for a in chosen]  # the extremes of the pool's footprints
    pool_rng = np.random.default_rng(0)
    pool = [large.sample_arch(pool_rng) for _ in range(POOL)]
    assert min(foot) == min(map(weight_bytes, pool)) and max(foot) == max(map(weight_bytes, pool))


def test_tokens_name_depthwise_kernels(large):
    arch = large.sample_arch(np.random.default_rng(1))
    toks = coverage_tokens(arch)
    assert {t[1] for t in toks if t[0] == "dw"} == {b.kernel for b in arch.blocks}


@pytest.mark.parametrize("n", [0, -2, 2.5, True])
def test_bad_size(large, n):
    with pytest.raises(ValueError, match="positive integer"):
        calibration_set(large, n, pool=10)


def test_profile_calibration_command(tmp_path, capsys):
    store = tmp_path / "c.db"
    assert (
        main(
            [
                "profile",
                "calibration",
                "--space",
                "small",
                "-n",
                "2",
                "--resolutions",
                "96",
                "--store",
                str(store),
                "--max-seconds",
                "0.2",
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "calibration set of the small space: 2 networks" in out and str(store) in out
    with Store(store) as st:
        df = st.frame()
    assert (df.granularity == "model").sum() == 2 and (df.granularity == "block").sum() > 2
    assert main(["profile", "calibration", "-n", "0", "--store", str(store)]) == 2
    assert "must be at least 1" in capsys.readouterr().err
