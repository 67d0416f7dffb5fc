import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile("ci")
torch.set_num_threads(1)

from hwlat.archs import zoo_names  # noqa: E402

ZOO_NAMES = zoo_names()

RAY_MODULES = {"test_farm", "test_parallel"}
"""Test files that start local Ray clusters: one xdist worker runs them all, one after another."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N --dist loadgroup`` (``make test-fast``), a file's tests stay on one worker, so
    its module fixtures (e.g. measured stores) are built once; the Ray files share one worker."""
    for item in items:
        mod = item.module.__name__.rsplit(".", 1)[-1] if item.module else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group("ray" if mod in RAY_MODULES else mod))


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
