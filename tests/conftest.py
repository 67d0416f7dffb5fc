import sys
from pathlib import Path

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile("ci")
torch.set_num_threads(1)
# the build scripts in tools/ (not part of the package) are imported by the tests that check their output
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from hwlat.archs import zoo_names  # noqa: E402

ZOO_NAMES = zoo_names()

RAY_MODULES = {"test_farm", "test_parallel"}
"""Test files that start local Ray clusters: one xdist worker runs them all, one after another."""


def pytest_xdist_make_scheduler(config, log):
    """``pytest -n 2 --dist loadfile`` (``make test``): each file runs whole on one worker, so its
    module fixtures (measured stores) are built once, and the Ray files share one worker.

    (``--dist loadgroup`` with ``xdist_group`` marks does not group at all under pytest 9 and
    xdist 3.8: the group suffix it writes into ``item._nodeid`` is ignored.)
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesWithRayTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            stem = Path(nodeid.split("::", 1)[0]).stem
            return "ray" if stem in RAY_MODULES else stem

    return FilesWithRayTogether(config, log)


LONGEST_FIRST = (
    "test_demo",
    "test_latency_models",
    "test_parallel",
    "test_farm",
    "test_search",
    "test_devices",
)
"""Files that take minutes: scheduled first, so no worker ends the run alone on one of them."""


def pytest_collection_modifyitems(config, items):
    rank = {m: i for i, m in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(Path(str(it.path)).stem, len(rank)))


@pytest.fixture(params=ZOO_NAMES)
def zoo_name(request):
    return request.param


@pytest.fixture(scope="module")
def small_space_latency():
    """MobileNetV3-Small's search space at 32 px / 10 classes and a MAdds-proxy latency function
    over it (fitted on 4 seeded samples): the cheap setting of the NAS tests."""
    import numpy as np

    from hwlat.archs import SearchSpace, summary
    from hwlat.latency_models import make_predictor
    from hwlat.search import nas

    sp = SearchSpace.mobilenetv3_small(resolution=32, num_classes=10)
    rng = np.random.default_rng(0)
    archs = [sp.decode(sp.sample(rng)) for _ in range(4)]
    pred = make_predictor("madds").fit(archs, [summary(a)["madds"] / 1e6 * 0.3 + 0.05 for a in archs])
    return sp, nas.latency_function(pred, sp)
