import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile("ci")
torch.set_num_threads(1)

from hwlat.archs import zoo_names  # noqa: E402

ZOO_NAMES = zoo_names()


@pytest.fixture(params=ZOO_NAMES)
def zoo_name(request):
    return request.param
