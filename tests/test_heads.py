"""Task heads (SSDLite, LR-ASPP), multi-output networks and HxW inputs: IR, counting, codec,
torch builder, .tflite and ONNX export, the paper's Tables 6-8."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from tolerances import assert_float32_close, reduction_length

from hwlat.archs import (
    ArchSpec,
    NodeSpec,
    decode,
    encode,
    get_arch,
    layers,
    load_arch,
    summary,
    task_names,
    zoo_names,
)
from hwlat.archs.torch_builder import build_torch, count_params, fold_bn
from hwlat.errors import InvalidArchError
from hwlat.paper import paper_task_rows, zoo_vs_tasks
from hwlat.profiler.export.onnx import build_onnx, run_onnx_outputs
from hwlat.profiler.export.tflite import build_tflite, op_names, run_tflite_outputs

# A tiny network that uses every task-head op: taps of a block output and of an expansion,
# a strided average pooling, a sigmoid gate resized and multiplied, a broadcast (C, 1, 1) gate,
# concatenation along channels and along W, a depthwise conv, an add, SSD's anchor layout and a
# resize to the input size; two outputs.
TINY = (
    "in32x48,stem_k3_s2_c8_re,ir_k3_s2_e16_c8_re,"
    "@a=conv_k1_s1_c8_re<blocks.0,@p=avgpool_k3x4_s2x3<blocks.0.expand,"
    "@g=conv_k1_s1_c8_bias_sig<p,@u=resize_likea<g,@m=mul<a+u,@q=avgpool_k99_s1<a,"
    "@m2=mul<a+q,@c=concat_c<m+m2,@d=dw_k3_s2_re<c,@s=add<d+d,@b1=anchors_c4<s,"
    "@b2=conv_k1_s1_c8_bias_id<a,@f2=anchors_c4<b2,@boxes=concat_w<b1+f2,@up=resize_likeinput<m,"
    "out_n2_boxes+up"
)


def _by_name(arch):
    return {r.name: r for r in layers(arch)}


def test_tiny_hand_counts():
    arch = decode(TINY)
    assert arch.hw == (32, 48) and arch.outputs == ("boxes", "up") and arch.num_classes == 2
    r = _by_name(arch)
    # stem 3->8 at 16x24, block 0: expand 8->16 at 16x24, dw s2 -> 8x12, project -> 8
    assert r["blocks.0.expand"].out_shape == (16, 16, 24) and r["blocks.0.project"].out_shape == (8, 8, 12)
    a = r["a"]  # 1x1 conv 8->8 + BN + ReLU on 8x12
    assert (a.inputs, a.madds, a.params, a.elementwise) == (
        ("blocks.0.project",),
        8 * 12 * 8 * 8,
        8 * 8 + 2 * 8,
        8 * 8 * 12,
    )
    p = r["p"]  # VALID 3x4 pooling, stride 2x3: (16-3)//2+1 = 7, (24-4)//3+1 = 7; 12 adds per output
    assert p.inputs == ("blocks.0.expand",) and p.out_shape == (16, 7, 7)
    assert (p.kernel, p.stride, p.madds, p.elementwise) == ((3, 4), (2, 3), 0, 16 * 7 * 7 * 12)
    g = r["g"]  # 1x1 conv with bias, no BN, sigmoid
    assert (g.madds, g.params, g.elementwise, g.bn, g.bias) == (
        7 * 7 * 8 * 16,
        16 * 8 + 8,
        8 * 7 * 7,
        False,
        True,
    )
    assert (r["u"].out_shape, r["u"].elementwise) == ((8, 8, 12), 4 * 8 * 8 * 12)  # 4 per output
    assert (r["m"].out_shape, r["m"].elementwise) == ((8, 8, 12), 8 * 8 * 12)
    assert r["q"].out_shape == (8, 1, 1) and r["q"].kernel == (8, 12)  # clipped to the map
    assert r["m2"].inputs == ("a", "q") and r["m2"].elementwise == 8 * 8 * 12
    assert (r["c"].out_shape, r["c"].madds, r["c"].params, r["c"].elementwise) == ((16, 8, 12), 0, 0, 0)
    d = r["d"]  # depthwise 3x3 stride 2 on 16 channels: 4x6 out
    assert (d.out_shape, d.groups, d.madds, d.params) == ((16, 4, 6), 16, 4 * 6 * 16 * 9, 16 * 9 + 2 * 16)
    assert r["s"].inputs == ("d", "d") and r["s"].elementwise == 16 * 4 * 6
    assert r["b1"].out_shape == (4, 1, 4 * 6 * 4)  # A = 16 / 4 anchors per position
    assert r["f2"].out_shape == (4, 1, 8 * 12 * 2)
    assert r["boxes"].out_shape == (4, 1, 96 + 192) and r["boxes"].elementwise == 0
    assert (r["up"].out_shape, r["up"].elementwise) == ((8, 32, 48), 4 * 8 * 32 * 48)
    s = summary(arch)
    assert s["madds"] == sum(x.madds for x in layers(arch))
    assert count_params(build_torch(arch)) == s["params"]


@pytest.mark.numerics
def test_tiny_torch_tflite_onnx_agree():
    arch = decode(TINY)
    net = fold_bn(build_torch(arch, seed=3))
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 48)).astype(np.float32)
    with torch.no_grad():
        want = [t.numpy() for t in net(torch.from_numpy(x))]
    assert [w.shape for w in want] == [(1, 4, 1, 288), (1, 8, 32, 48)]
    model = build_tflite(arch, seed=3)
    assert {"AVERAGE_POOL_2D", "RESIZE_BILINEAR", "CONCATENATION", "RESHAPE", "MUL", "ADD"} <= set(
        op_names(model)
    )
    # LiteRT's and ONNX Runtime's float32 kernels against torch's: rounding only, each output
    # within eps·√ΣK of its own max|w| (tolerances.float32_atol; ΣK over every row: an upper bound)
    k = reduction_length(arch)
    for xnnpack in (True, False):
        got = run_tflite_outputs(model, x, use_xnnpack=xnnpack)
        for w, y in zip(want, got, strict=True):
            assert_float32_close(y, w, k, msg=f"xnnpack={xnnpack}")
    for w, y in zip(want, run_onnx_outputs(build_onnx(arch, seed=3), x), strict=True):
        assert_float32_close(y, w, k, msg="onnx")


def _rel_rms(y, ref):
    return float(np.sqrt(((y - ref) ** 2).mean() / (ref**2).mean()))


@pytest.mark.numerics
@pytest.mark.parametrize(
    "name,res,tol", [(None, (32, 48), 0.05), ("ssdlite_mobilenetv3_small_reduced", 288, 0.15)]
)
def test_int8_with_several_outputs_tracks_float(name, res, tol):
    arch = decode(TINY) if name is None else get_arch(name, resolution=res)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal((1, 3, *arch.hw)).astype(np.float32) for _ in range(4)]
    x = rng.standard_normal((1, 3, *arch.hw)).astype(np.float32)
    with torch.no_grad():
        want = [t.numpy() for t in fold_bn(build_torch(arch))(torch.from_numpy(x))]
    model = build_tflite(arch, quantize="int8", calibration=calib)
    for xnnpack in (True, False):
        got = run_tflite_outputs(model, x, use_xnnpack=xnnpack)
        for w, y in zip(want, got, strict=True):
            assert y.shape == w.shape and _rel_rms(y, w) < tol  # the zoo's whole-network bound: 0.15


@pytest.mark.numerics
@pytest.mark.parametrize(
    "name,res",
    [
        ("ssdlite_mobilenetv3_small_reduced", 288),
        ("lraspp_mobilenetv3_small_reduced", (128, 256)),
        ("lraspp_mobilenetv3_large", (64, 96)),
    ],
)
def test_zoo_task_networks_export_equal_to_torch(name, res):
    arch = get_arch(name, resolution=res)
    net = build_torch(arch)
    assert count_params(net) == summary(arch)["params"]
    net = fold_bn(net)
    x = np.random.default_rng(0).standard_normal((1, 3, *arch.hw)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x))
    want = [t.numpy() for t in (want if isinstance(want, tuple) else (want,))]
    assert len(want) == len(arch.outputs)
    for got in (run_tflite_outputs(build_tflite(arch), x), run_onnx_outputs(build_onnx(arch), x)):
        for w, y in zip(want, got, strict=True):  # float32 rounding only, as for TINY above
            assert_float32_close(y, w, reduction_length(arch))


def test_fvcore_counts_the_same_convs_and_resizes():
    arch = get_arch("lraspp_mobilenetv3_small_reduced", resolution=(128, 256))
    x = torch.randn(1, 3, 128, 256)
    fca = FlopCountAnalysis(fold_bn(build_torch(arch)), x).unsupported_ops_warnings(False)
    by_op = fca.uncalled_modules_warnings(False).by_operator()
    rows = layers(arch)
    assert by_op["conv"] == summary(arch)["madds"]
    assert by_op["upsample_bilinear2d"] == sum(r.elementwise for r in rows if r.op.value == "resize")


def test_ssdlite_layout():
    arch = get_arch("ssdlite_mobilenetv3_large")
    r = _by_name(arch)
    assert r["box0.dw"].inputs == ("blocks.12.expand",) and r["box0.dw"].in_shape == (672, 20, 20)
    assert r["lastconv"].out_shape == (960, 10, 10) and r["box1.dw"].inputs == ("lastconv",)
    assert [r[f"extra{i}.conv"].out_shape for i in range(1, 5)] == [
        (512, 5, 5),
        (256, 3, 3),
        (256, 2, 2),
        (128, 1, 1),
    ]
    assert r["boxes"].out_shape == (4, 1, 2034) and r["scores"].out_shape == (91, 1, 2034)
    red = _by_name(get_arch("ssdlite_mobilenetv3_large_reduced"))
    # the dagger rows: C4 keeps its 672, the blocks after it and C5 are halved
    assert red["blocks.12.expand"].cout == 672 and red["blocks.12.project"].cout == 80
    assert red["blocks.13.expand"].cout == 480 and red["lastconv"].cout == 480
    small = _by_name(get_arch("ssdlite_mobilenetv3_small_reduced"))
    assert small["box0.dw"].inputs == ("blocks.8.expand",) and small["lastconv"].cout == 288


def test_lraspp_layout():
    arch = get_arch("lraspp_mobilenetv3_large_reduced")
    assert arch.hw == (1024, 2048)
    r = _by_name(arch)
    assert r["blocks.12.dw"].stride == 1 and r["blocks.12.dw"].dilation == 1  # output stride 16
    assert r["blocks.13.dw"].dilation == 2 and r["blocks.14.dw"].dilation == 2
    assert r["blocks.12.expand"].cout == 336 and r["lastconv"].out_shape == (480, 64, 128)  # RF2
    assert r["aspp.pool"].kernel == 49 and r["aspp.pool"].stride == (16, 20)
    assert r["aspp.pool"].out_shape == (480, 1, 4) and r["aspp.up"].out_shape == (128, 64, 128)
    assert r["low.cls"].inputs == ("blocks.5.dw",) and r["low.cls"].in_shape == (120, 128, 256)
    assert r["seg"].out_shape == (19, 1024, 2048) and arch.outputs == ("seg",)
    os32 = _by_name(get_arch("lraspp_mobilenetv3_large_reduced", output_stride=32))
    assert os32["lastconv"].out_shape == (480, 32, 64) and os32["aspp.pool"].kernel == (32, 49)


def test_task_names_codec_and_json_round_trip():
    names = task_names()
    assert {
        "ssdlite_mobilenetv3_large",
        "ssdlite_mobilenetv3_small_reduced",
        "lraspp_mobilenetv3_large",
        "lraspp_mobilenetv3_small_reduced",
        "ssdlite_mobilenetv2_100",
        "ssdlite_mnasnet_a1_035",
    } <= set(names)
    assert not set(names) & set(zoo_names())  # @zoo and the grid stay classifiers
    for name in names:
        arch = get_arch(name)
        assert decode(encode(arch), name=arch.name) == arch
        assert ArchSpec.from_json(arch.to_json()) == arch
        assert load_arch(encode(arch)).outputs == arch.outputs


@pytest.mark.numerics
def test_hxw_inputs_and_square_codec_unchanged():
    sq = get_arch("mobilenetv3_small_100")
    assert encode(sq).startswith("in224,stem_k3_s2_c16_hs,") and "nodes" not in sq.to_dict()
    assert get_arch("mobilenetv3_small_100", resolution=(160, 160)).resolution == 160
    wide = get_arch("mobilenetv3_small_100", resolution=(128, 256))
    assert wide.resolution == (128, 256) and encode(wide).startswith("in128x256,")
    assert decode(encode(wide), name=wide.name) == wide and ArchSpec.from_json(wide.to_json()) == wide
    assert load_arch("mobilenetv3_small_100", "128x256") == wide
    assert layers(wide)[0].out_shape == (16, 64, 128)
    assert load_arch("large:" + ",".join(["0"] * 36), (96, 192)).hw == (96, 192)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 96)).astype(np.float32)
    arch = get_arch("mobilenetv3_small_050", resolution=(64, 96))
    with torch.no_grad():
        want = fold_bn(build_torch(arch))(torch.from_numpy(x)).numpy()
    assert_float32_close(run_tflite_outputs(build_tflite(arch), x)[0], want, reduction_length(arch))
    assert_float32_close(run_onnx_outputs(build_onnx(arch), x)[0], want, reduction_length(arch))


@pytest.mark.parametrize(
    "text,match",
    [
        (TINY.replace("<blocks.0,", "<blocks.9,"), r"node 0 \(a\)\.inputs: unknown tensor 'blocks\.9'"),
        (TINY.replace("@m=mul<a+u", "@m=mul<a+g"), r"node 4 \(m\)\.inputs: op 'mul' between shapes"),
        (TINY.replace("@up=", "@a="), r"node 14 \(a\)\.name: 'a' is already a tensor"),
        (TINY.replace("out_n2_boxes+up", "out_n2_boxes+zz"), r"arch\.outputs: 'zz' is not a node"),
        (TINY.replace("@p=avgpool_k3x4", "@p=maxpool_k3x4"), r"token 4 .*unknown node op 'maxpool'"),
        (
            TINY.replace("anchors_c4<s", "anchors_c5<s"),
            r"node 10 \(b1\)\.out: 16 channels are not a multiple",
        ),
        (TINY.replace("@b2=conv_k1_", "@b2=conv_k2_"), r"node 11 \(b2\)\.kernel: kernel must be odd"),
    ],
)
def test_invalid_task_heads_name_the_node(text, match):
    with pytest.raises(InvalidArchError, match=match):
        decode(text)


def test_heads_need_a_headless_network():
    arch = get_arch("mobilenetv3_small_100")
    with pytest.raises(InvalidArchError, match="task-head nodes need a network without a classifier"):
        layers(
            ArchSpec(
                **{
                    **arch.__dict__,
                    "nodes": (NodeSpec("a", "conv", ("blocks.0",), out=8),),
                    "outputs": ("a",),
                }
            )
        )
    with pytest.raises(InvalidArchError, match="needs task-head nodes and outputs"):
        layers(ArchSpec(**{**arch.__dict__, "head": None}))


def test_a_node_field_its_op_does_not_use_is_refused():
    arch = decode(TINY)
    nodes = list(arch.nodes)
    nodes[4] = NodeSpec("m", "mul", ("a", "u"), out=8)  # encode would drop it: refused instead
    with pytest.raises(InvalidArchError, match=r"node 4 \(m\)\.out: op 'mul' does not use it"):
        layers(ArchSpec(**{**arch.__dict__, "nodes": tuple(nodes)}))


def test_paper_tables_6_to_8():
    df = zoo_vs_tasks()
    det = df[df["table"] == "Table6"]
    assert len(det) == 10 and det["madds_diff_pct"].abs().max() < 5 and det["params_diff_pct"].abs().max() < 5
    v3 = det[det["arch"].str.contains("mobilenetv3")]
    assert v3["madds_diff_pct"].abs().max() < 1.5 and v3["params_diff_pct"].abs().max() < 1.2
    seg = df[df["table"] != "Table6"]
    assert seg["params_diff_pct"].abs().max() < 0.5  # the printed params: the same layers
    assert ((seg["madds_diff_pct"] < 0) & (seg["madds_diff_pct"] > -10)).all()  # README: the gap
    assert [p["table"] for p in paper_task_rows(get_arch("lraspp_mobilenetv3_small_reduced"))] == ["Table7"]
    assert paper_task_rows(get_arch("lraspp_mobilenetv3_small_reduced", resolution=(96, 96))) == []


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hwlat", *args], capture_output=True, text=True)


def test_cli_arch_madds_prints_the_paper_beside_the_count():
    p = _cli("arch", "madds", "ssdlite_mobilenetv3_large_reduced", "lraspp_mobilenetv3_small_reduced")
    assert p.returncode == 0, p.stderr
    assert "paper Table6 V3 dagger (reduced tail): 510 M MAdds" in p.stdout
    assert "1024x2048px" in p.stdout and "paper Table7 row 11" in p.stdout
    p = _cli("arch", "madds", "lraspp_mobilenetv3_large_reduced", "-r", "512x1024", "--json")
    rec = json.loads(p.stdout)[0]
    assert rec["resolution"] == [512, 1024] and rec["paper"][0]["table"] == "Table8"
    p = _cli("arch", "show", "mobilenetv3_small_100", "-r", "12y")
    assert p.returncode == 2 and p.stderr.startswith("hwlat: error: ") and "12y" in p.stderr
    p = _cli("arch", "list")
    assert "lraspp_mobilenetv3_large_reduced" in p.stdout.split()


# --- profiler workloads and predictor pieces of task-head networks -------------------------------


def test_task_network_pieces_cover_it_once():
    from hwlat.archs.pieces import blocks, kernels, model
    from hwlat.latency_models.features import piece_groups

    arch = get_arch("lraspp_mobilenetv3_small_reduced", resolution=(128, 256))
    s = summary(arch)
    for ws in (blocks(arch), kernels(arch)):
        assert sum(w.madds for w in ws) == s["madds"] and sum(w.params for w in ws) == s["params"]
    task = [w for w in blocks(arch) if w.rows[0].stage == "task"]
    assert [w.label.split()[1] for w in task] == ["lastconv", "aspp", "high", "low", "logits", "seg"]
    assert model(arch).outputs == ("seg",)
    for gran in ("block", "kernel"):
        groups = piece_groups(arch, gran)
        assert sum(g.madds for g in groups) == s["madds"] and sum(g.params for g in groups) == s["params"]
    # the cache of block decompositions keys on width as well as height
    a, b = (get_arch("mobilenetv3_small_050", resolution=r) for r in ((96, 96), (96, 192)))
    assert sum(g.madds for g in piece_groups(a)) == summary(a)["madds"]
    assert sum(g.madds for g in piece_groups(b)) == summary(b)["madds"] != summary(a)["madds"]


def test_multi_input_piece_runs_alike_everywhere():
    from ai_edge_litert.interpreter import Interpreter

    from hwlat.archs.pieces import blocks, from_spec
    from hwlat.archs.segments import segment_inputs, torch_segment
    from hwlat.profiler.export.onnx import onnx_segment
    from hwlat.profiler.export.tflite import tflite_segment

    arch = get_arch("ssdlite_mobilenetv3_small_reduced", resolution=288)
    boxes = next(w for w in blocks(arch) if w.label.startswith("task boxes"))
    w = from_spec(boxes.key, boxes.spec())  # as the store gives it back: inputs renamed in0..in5
    ins = segment_inputs(w.rows)
    # C4 (blocks.8.expand) is 18x18 at 288 px, with 3 anchors per position
    assert [n for n, _ in ins] == [f"in{i}" for i in range(6)] and ins[0][1] == (4, 1, 18 * 18 * 3)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, *shape)).astype(np.float32) for _, shape in ins]
    with torch.no_grad():
        want = torch_segment(w.rows)(*map(torch.from_numpy, xs)).numpy()
    assert want.shape == (1, 4, 1, 1692)
    it = Interpreter(model_content=tflite_segment(w.rows))
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs, strict=True):
        it.set_tensor(d["index"], x.transpose(0, 2, 3, 1).copy())
    it.invoke()
    np.testing.assert_array_equal(
        it.get_tensor(it.get_output_details()[0]["index"]).transpose(0, 3, 1, 2), want
    )
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_segment(w.rows))
    np.testing.assert_array_equal(sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})[0], want)


@pytest.mark.parametrize("runtime", ["litert", "onnxruntime", "torch"])
def test_runners_prepare_task_pieces_and_models(runtime):
    from hwlat.archs.pieces import blocks, kernels, model
    from hwlat.profiler.measure.runners import get_runner

    arch = get_arch("ssdlite_mobilenetv3_small_reduced", resolution=288)
    runner = get_runner(runtime)
    picks = [
        model(arch),
        next(w for w in blocks(arch) if w.label.startswith("task scores")),
        next(w for w in kernels(arch) if w.rows[0].op.value == "concat"),
    ]
    for w in picks:
        invoke, release = runner.prepare(w)
        invoke()
        release()
