"""ONNX export: a valid self-contained opset-17 file whose ONNX Runtime output equals torch."""

from itertools import groupby

import numpy as np
import onnx
import pytest
import torch
from tolerances import assert_float32_close, reduction_length

from hwlat.archs import Act, get_arch, layers
from hwlat.archs.layers import LayerSpec, OpKind
from hwlat.archs.segments import random_weights, torch_segment
from hwlat.archs.torch_builder import build_torch, fold_bn
from hwlat.profiler.export.onnx import build_onnx, onnx_segment, run_onnx

# ONNX Runtime's float32 kernels (MLAS) against torch's: the same arithmetic summed in another
# order, so rounding only; the bound is tolerances.float32_atol (eps·√ΣK scaled to max|ref|).


def _x(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal((1, *shape)) * scale).astype(np.float32)


def _check_file(model_bytes, in_shape, out_shape):
    m = onnx.load_from_string(model_bytes)
    onnx.checker.check_model(m, full_check=True)
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)]
    for t in m.graph.initializer:
        assert t.data_location != onnx.TensorProto.EXTERNAL and not t.external_data
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert [i.name for i in m.graph.input] == ["input"] and dims(m.graph.input[0]) == list(in_shape)
    assert [o.name for o in m.graph.output] == ["output"] and dims(m.graph.output[0]) == list(out_shape)


@pytest.mark.numerics
def test_zoo_matches_folded_torch(zoo_name):
    arch = get_arch(zoo_name, resolution=128)
    model = build_onnx(arch)
    _check_file(model, (1, 3, 128, 128), (1, arch.num_classes))
    x = _x((3, 128, 128))
    with torch.no_grad():
        ref = fold_bn(build_torch(arch)).eval()(torch.from_numpy(x)).numpy()
    y = run_onnx(model, x)
    assert y.shape == ref.shape
    assert_float32_close(y, ref, reduction_length(arch))


@pytest.mark.numerics
def test_build_onnx_uses_given_weights():
    rows = layers(get_arch("mobilenetv3_small_100", resolution=96))
    w = random_weights(rows, seed=5)
    x = _x((3, 96, 96), seed=5)
    with torch.no_grad():
        ref = torch_segment(rows, w)(torch.from_numpy(x)).numpy()
    y = run_onnx(build_onnx(get_arch("mobilenetv3_small_100", resolution=96), w), x)
    assert_float32_close(y, ref, reduction_length(rows))


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "mnasnet_a1"])
def test_block_segments(name):
    rows = layers(get_arch(name, resolution=64))
    for _, g in groupby([r for r in rows if r.stage == "block"], key=lambda r: r.block):
        seg = list(g)
        model = onnx_segment(seg, seed=2)
        _check_file(model, (1, *seg[0].in_shape), (1, *seg[-1].out_shape))
        x = _x(seg[0].in_shape)
        with torch.no_grad():
            ref = torch_segment(seg, seed=2)(torch.from_numpy(x)).numpy()
        assert_float32_close(run_onnx(model, x), ref, reduction_length(seg), msg=seg[0].name)


@pytest.mark.numerics
@pytest.mark.parametrize("act", list(Act))
def test_act_rows(act):
    shape = (8, 6, 6)
    row = LayerSpec("blocks.0.act", "block", 0, OpKind.ACT, shape, shape, act=act)
    x = _x(shape, scale=4.0)
    with torch.no_grad():
        ref = torch_segment([row])(torch.from_numpy(x)).numpy()
    assert_float32_close(run_onnx(onnx_segment([row]), x), ref, reduction_length([row]))
