"""PyTorch builder: forward shapes, params parity, fvcore MAdds parity, BatchNorm folding."""

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from hypothesis import HealthCheck, given, settings
from strategies import archs
from tolerances import assert_float32_close, reduction_length

from hwlat.archs import get_arch, summary
from hwlat.archs.torch_builder import build_torch, count_params, fold_bn


def fvcore_conv_fc_madds(model, x) -> int:
    fca = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = fca.by_operator()
    assert set(by_op) <= {"conv", "linear", "adaptive_avg_pool2d"}, by_op  # BN folded away
    return by_op.get("conv", 0) + by_op.get("linear", 0)


@pytest.mark.numerics
@pytest.mark.parametrize("res", [160])
def test_build_params_forward_and_fvcore(zoo_name, res):
    arch = get_arch(zoo_name, resolution=res)
    model = build_torch(arch).eval()
    s = summary(arch)
    assert count_params(model) == s["params"]
    x = torch.randn(2, 3, res, res)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, arch.num_classes)
    folded = fold_bn(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        # folded weights are rounded once more and BN's few ops vanish: float32 rounding only
        assert_float32_close(folded(x), y, reduction_length(arch))
    assert fvcore_conv_fc_madds(folded, x[:1]) == s["madds"]


@pytest.mark.parametrize("res", [96, 117, 320])
def test_odd_and_extreme_resolutions(res):
    arch = get_arch("mobilenetv3_small_100", resolution=res)
    model = build_torch(arch).eval()
    x = torch.randn(1, 3, res, res)
    assert fvcore_conv_fc_madds(fold_bn(model), x) == summary(arch)["madds"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(archs())
def test_random_archs_build_and_count(arch):
    model = build_torch(arch).eval()
    assert count_params(model) == summary(arch)["params"]
    x = torch.randn(1, arch.in_channels, arch.resolution, arch.resolution)
    with torch.no_grad():
        assert model(x).shape == (1, arch.num_classes)
    assert fvcore_conv_fc_madds(fold_bn(model), x) == summary(arch)["madds"]


def test_seeded_init_is_deterministic():
    arch = get_arch("mobilenetv3_small_050", resolution=96)
    a, b = build_torch(arch, seed=3), build_torch(arch, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    c = build_torch(arch, seed=4)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


@pytest.mark.numerics
def test_fold_bn_with_trained_statistics():
    arch = get_arch("mobilenetv3_small_035", resolution=96)
    model = build_torch(arch)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # give BN non-trivial running statistics
            model(torch.randn(4, 3, 96, 96) * 3 + 1)
    model.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():  # a fold that drops the shift (bias - mean)·scale is off by O(max|y|)
        assert_float32_close(fold_bn(model)(x), model(x), reduction_length(arch))
