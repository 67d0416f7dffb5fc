"""TFLite export without TensorFlow: LiteRT output equals the torch reference, and the file is a
well-formed flatbuffer of builtin ops."""

from itertools import groupby

import numpy as np
import pytest
import torch
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from hypothesis import HealthCheck, given, settings
from strategies import archs
from tolerances import assert_float32_close, reduction_length

from hwlat.archs import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, get_arch, layers
from hwlat.archs.layers import LayerSpec, OpKind
from hwlat.archs.segments import random_weights, torch_segment
from hwlat.archs.torch_builder import build_torch, fold_bn
from hwlat.profiler.export.tflite import build_tflite, op_names, run_tflite, tflite_segment


def _x(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal((1, *shape)) * scale).astype(np.float32)


def _torch_net(arch, x):
    with torch.no_grad():
        return fold_bn(build_torch(arch)).eval()(torch.from_numpy(x)).numpy()


def _torch_seg(rows, x, weights=None):
    with torch.no_grad():
        return torch_segment(rows, weights).eval()(torch.from_numpy(x)).numpy()


def _check(y, ref, rows):
    """LiteRT's float32 kernels (XNNPACK or builtin) against torch's: the same arithmetic in
    another order, so rounding only; ``rows`` (or an arch) give the reductions of the bound
    (:func:`tolerances.float32_atol`: eps·√ΣK scaled to max|ref|)."""
    return assert_float32_close(y, ref, reduction_length(rows))


# --- whole networks -----------------------------------------------------------------------------


@pytest.mark.numerics
def test_zoo_matches_folded_torch(zoo_name):
    arch = get_arch(zoo_name, resolution=160)
    x = _x((3, 160, 160))
    y, ref = run_tflite(build_tflite(arch), x), _torch_net(arch, x)
    assert y.shape == (1, arch.num_classes)
    _check(y, ref, arch)


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "mobilenetv3_small_100"])
def test_224_with_and_without_xnnpack(name):
    arch = get_arch(name, resolution=224)
    x = _x((3, 224, 224), seed=1)
    model, ref = build_tflite(arch), _torch_net(arch, x)
    _check(run_tflite(model, x), ref, arch)
    if name == "mobilenetv3_large_100":
        _check(run_tflite(model, x, use_xnnpack=False), ref, arch)


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "mnasnet_a1"])
def test_whole_network_with_random_weights(name):
    """He-initialised weights with biases keep activations O(1) through the network, unlike the
    builder's init whose logits are ~1e-2: a stricter check of every layer."""
    rows = layers(get_arch(name, resolution=128))
    w = random_weights(rows, seed=3)
    x = _x((3, 128, 128), seed=3)
    ref = _torch_seg(rows, x, w)
    assert np.abs(ref).max() > 0.1
    _check(run_tflite(tflite_segment(rows, w), x), ref, rows)


@pytest.mark.numerics
def test_batch_is_resized():
    rows = [r for r in layers(get_arch("mobilenetv3_small_050", resolution=96)) if r.block == 3]
    x = np.concatenate([_x(rows[0].in_shape, seed=s) for s in range(3)])
    _check(run_tflite(tflite_segment(rows), x), _torch_seg(rows, x), rows)


# --- segments -----------------------------------------------------------------------------------


@pytest.mark.numerics
@pytest.mark.parametrize(
    "name", ["mobilenetv3_large_100", "mobilenetv3_small_100", "mnasnet_a1", "mobilenetv2_100"]
)
def test_every_block_and_head_row(name):
    rows = layers(get_arch(name, resolution=96))
    segments = [list(g) for _, g in groupby(rows, key=lambda r: (r.stage, r.block))]
    segments += [[r] for r in rows if r.stage != "block"]  # stem, head conv, pool, hidden, fc
    for seg in segments:
        x = _x(seg[0].in_shape, seed=len(seg))
        for use_xnnpack in (True, False):
            _check(run_tflite(tflite_segment(seg), x, use_xnnpack), _torch_seg(seg, x), seg)


@pytest.mark.numerics
@pytest.mark.parametrize("act", list(Act))
def test_act_rows(act):
    shape = (8, 6, 6)
    row = LayerSpec("blocks.0.act", "block", 0, OpKind.ACT, shape, shape, act=act)
    x = _x(shape, scale=4.0)  # spans the kinks of hard-swish / hard-sigmoid at ±3
    for use_xnnpack in (True, False):
        _check(run_tflite(tflite_segment([row]), x, use_xnnpack), _torch_seg([row], x), [row])


def _conv_row(cin, cout, h, k, s, d=1, dw=False, act=Act.IDENTITY):
    pad = d * (k - 1) // 2
    oh = (h + 2 * pad - d * (k - 1) - 1) // s + 1
    return LayerSpec(
        "blocks.0.dw" if dw else "blocks.0.expand",
        "block",
        0,
        OpKind.DWCONV if dw else OpKind.CONV,
        (cin, h, h),
        (cout, oh, oh),
        kernel=k,
        stride=s,
        dilation=d,
        groups=cin if dw else 1,
        act=act,
        bias=True,
    )


@pytest.mark.numerics
@pytest.mark.parametrize(
    "k,s,d,dw,h",
    [
        (3, 1, 2, True, 13),
        (5, 1, 2, True, 12),
        (3, 2, 2, True, 15),
        (5, 2, 1, True, 17),
        (7, 2, 1, True, 16),
        (5, 2, 1, False, 11),
        (7, 2, 1, False, 14),
        (3, 2, 1, False, 9),
        (1, 2, 1, False, 9),
        (7, 1, 1, False, 8),
        (3, 1, 3, False, 10),
    ],
)
@pytest.mark.parametrize("act", [Act.RELU6, Act.HSWISH, Act.SWISH])
def test_conv_rows(k, s, d, dw, h, act):
    row = _conv_row(16, 16 if dw else 24, h, k, s, d, dw, act)
    x = _x(row.in_shape)
    _check(run_tflite(tflite_segment([row]), x), _torch_seg([row], x), [row])


@pytest.mark.numerics
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(archs())
def test_random_arch_blocks(arch):
    """Every bottleneck of a random architecture: all activations as block, SE inner and gate
    acts, dilation 2, kernels 1-7, forced and absent residuals."""
    rows = layers(arch)
    for _, g in groupby([r for r in rows if r.stage == "block"], key=lambda r: r.block):
        seg = list(g)
        x = _x(seg[0].in_shape)
        _check(run_tflite(tflite_segment(seg, seed=1), x), _torch_seg(seg, x, random_weights(seg, 1)), seg)


@pytest.mark.numerics
def test_identity_segment_has_an_output():
    shape = (4, 3, 3)
    row = LayerSpec("act", "block", 0, OpKind.ACT, shape, shape, act=Act.IDENTITY)
    x = _x(shape)
    np.testing.assert_array_equal(run_tflite(tflite_segment([row]), x), x)


# --- the file -----------------------------------------------------------------------------------


def test_file_is_valid_builtin_flatbuffer():
    model = build_tflite(get_arch("mobilenetv3_large_100", resolution=160))
    assert model[4:8] == b"TFL3"
    m = fb.ModelT.InitFromPackedBuf(model, 0)
    assert m.version == 3 and len(m.subgraphs) == 1
    assert m.buffers[0].data is None
    for code in m.operatorCodes:
        assert code.builtinCode != fb.BuiltinOperator.CUSTOM and code.customCode is None
        assert code.deprecatedBuiltinCode == min(code.builtinCode, 127)
    names = op_names(model)
    assert "HARD_SWISH" in names and "CUSTOM" not in names and "UNKNOWN" not in names
    # every strided k>1 conv reads the output of a PAD and uses VALID padding
    sg = m.subgraphs[0]
    producer = {o.outputs[0]: i for i, o in enumerate(sg.operators)}
    strided = 0
    for op, name in zip(sg.operators, names):
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and op.builtinOptions.strideH == 2:
            k = sg.tensors[op.inputs[1]].shape[1]
            if k > 1:
                strided += 1
                assert names[producer[op.inputs[0]]] == "PAD"
                assert op.builtinOptions.padding == fb.Padding.VALID
    assert strided == 5  # stem + 4 downsampling depthwise convs
    # the builtin resolver (no delegate) sees the same op list
    interp = Interpreter(
        model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interp.allocate_tensors()
    assert [d["op_name"] for d in interp._get_ops_details()] == names
    assert interp.get_input_details()[0]["shape"].tolist() == [1, 160, 160, 3]
    assert interp.get_output_details()[0]["shape"].tolist() == [1, 1000]
    assert interp.get_signature_list() == {"serving_default": {"inputs": ["input"], "outputs": ["output"]}}


def test_constant_buffers_are_aligned():
    model = tflite_segment(layers(get_arch("mobilenetv3_small_050", resolution=96))[:2])
    root = fb.Model.GetRootAs(model, 0)
    for i in range(1, root.BuffersLength()):
        buf = root.Buffers(i)
        if buf.DataLength():
            start = buf._tab.Vector(buf._tab.Offset(4))
            assert start % 16 == 0


# --- errors -------------------------------------------------------------------------------------


def test_inconsistent_depthwise_is_refused_with_row_and_op():
    row = LayerSpec(
        "blocks.0.dw", "block", 0, OpKind.DWCONV, (4, 5, 5), (8, 5, 5), kernel=3, groups=2, bias=True
    )
    with pytest.raises(ValueError, match=r"row 0 \(blocks.0.dw\).*'dwconv' with groups=2"):
        tflite_segment([row])


def test_missing_weights_and_bad_rows_are_refused():
    rows = layers(get_arch("mobilenetv3_small_050", resolution=96))[:2]
    with pytest.raises(ValueError, match=r"row 1 \(blocks.0.dw\).*no weights"):
        tflite_segment(rows, {0: random_weights(rows)[0]})
    fc = LayerSpec("classifier", "head", -1, OpKind.FC, (8, 2, 2), (10, 1, 1), bias=True)
    with pytest.raises(ValueError, match=r"row 0 \(classifier\).*'fc'"):
        tflite_segment([fc], {0: (np.zeros((10, 8), np.float32), np.zeros(10, np.float32))})
    mul = LayerSpec("blocks.0.se.scale", "block", 0, OpKind.MUL, (8, 2, 2), (8, 2, 2))
    with pytest.raises(ValueError, match=r"row 0 \(blocks.0.se.scale\).*'mul'"):
        tflite_segment([mul])


# --- int8 post-training quantisation ------------------------------------------------------------


def _rel_rms(y, ref):
    return float(np.sqrt(((y - ref) ** 2).mean() / (ref**2).mean()))


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["mobilenetv3_large_100", "mnasnet_a1"])
def test_int8_blocks_track_float(name):
    rows = layers(get_arch(name, resolution=64))
    segments = [list(g) for _, g in groupby(rows, key=lambda r: (r.stage, r.block))]
    for seg in segments:
        x = _x(seg[0].in_shape, seed=7)
        model = tflite_segment(seg, quantize="int8")
        ref = _torch_seg(seg, x)
        y, y_ref_kernels = run_tflite(model, x), run_tflite(model, x, use_xnnpack=False)
        assert _rel_rms(y, ref) < 0.08, seg[0].name
        assert _rel_rms(y, y_ref_kernels) < 0.03, seg[0].name  # XNNPACK vs builtin int8 kernels


@pytest.mark.numerics
@pytest.mark.parametrize("act", list(Act))
def test_int8_act_rows(act):
    shape = (8, 6, 6)
    row = LayerSpec("blocks.0.act", "block", 0, OpKind.ACT, shape, shape, act=act)
    x = _x(shape, scale=4.0)
    y = run_tflite(tflite_segment([row], quantize="int8", calibration=[x]), x)
    assert _rel_rms(y, _torch_seg([row], x)) < 0.02


@pytest.mark.numerics
def test_int8_whole_network_and_file():
    arch = get_arch("mobilenetv3_small_100", resolution=96)
    calib = [_x((3, 96, 96), seed=s) for s in range(4)]
    model = build_tflite(arch, quantize="int8", calibration=calib)
    x = _x((3, 96, 96), seed=11)
    assert _rel_rms(run_tflite(model, x), _torch_net(arch, x)) < 0.15
    assert len(model) < 0.35 * len(build_tflite(arch))
    m = fb.ModelT.InitFromPackedBuf(model, 0)
    sg, names = m.subgraphs[0], op_names(model)
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE" and "HARD_SWISH" in names
    assert sg.tensors[sg.inputs[0]].type == fb.TensorType.FLOAT32
    assert sg.tensors[sg.outputs[0]].type == fb.TensorType.FLOAT32
    code_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    versions = {code_names[c.builtinCode]: c.version for c in m.operatorCodes}
    assert versions["CONV_2D"] == 3 and versions["DEPTHWISE_CONV_2D"] == 3
    assert versions["FULLY_CONNECTED"] == 4
    for op, name in zip(sg.operators, names):
        t_in, t_out = (sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]])
        if name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        assert t_in.type == t_out.type == fb.TensorType.INT8, name
        assert len(t_out.quantization.scale) == len(t_out.quantization.zeroPoint) == 1
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w, b = sg.tensors[op.inputs[1]], sg.tensors[op.inputs[2]]
            axis = 3 if name == "DEPTHWISE_CONV_2D" else 0
            assert w.type == fb.TensorType.INT8 and b.type == fb.TensorType.INT32
            assert w.quantization.quantizedDimension == axis
            assert len(w.quantization.scale) == w.shape[axis] == len(b.quantization.scale)
            assert not any(w.quantization.zeroPoint)
            np.testing.assert_allclose(
                b.quantization.scale, np.multiply(t_in.quantization.scale[0], w.quantization.scale), rtol=1e-6
            )
        if name in ("PAD", "RESHAPE"):
            assert (t_out.quantization.scale, t_out.quantization.zeroPoint) == (
                t_in.quantization.scale,
                t_in.quantization.zeroPoint,
            )


def test_int8_logistic_output_params_and_bad_mode():
    shape = (8, 4, 4)
    row = LayerSpec("blocks.0.act", "block", 0, OpKind.ACT, shape, shape, act=Act.SIGMOID)
    sg = fb.ModelT.InitFromPackedBuf(tflite_segment([row], quantize="int8"), 0).subgraphs[0]
    q = sg.tensors[sg.operators[1].outputs[0]].quantization
    assert (q.scale[0], q.zeroPoint[0]) == (1 / 256, -128)
    with pytest.raises(ValueError, match="quantize"):
        tflite_segment([row], quantize="fp16")


@pytest.mark.numerics
def test_int8_degenerate_ranges_still_load_in_xnnpack():
    """ReLU outputs that are zero on every calibration sample used to get a ~0 scale, whose
    requantisation multiplier XNNPACK refuses at prepare time."""
    arch = ArchSpec(
        name="tiny",
        resolution=1,
        stem=ConvSpec(out=1, kernel=1, stride=1, act=Act.RELU),
        blocks=(BlockSpec(exp=1, out=1, kernel=1, act=Act.RELU),),
        head=HeadSpec(conv=0, conv_act=Act.RELU, hidden=0, dropout=0.0),
        num_classes=1,
        in_channels=1,
    )
    rows = layers(arch)
    x = _x((1, 1, 1))
    for seed in range(4):
        model = tflite_segment(rows, seed=seed, quantize="int8")
        y = run_tflite(model, x)
        assert np.isfinite(y).all()
        np.testing.assert_allclose(y, run_tflite(model, x, use_xnnpack=False), atol=0.05)
