"""The FBNet search space in the IR: grouped 1×1 convs, channel shuffle, skip layers, stem stride 1,
the space registry, the field's 22-index encoding, references on the command line."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_torch_builder import fvcore_conv_fc_madds
from tolerances import assert_float32_close, reduction_length

from hwlat.archs import (
    ArchSpec,
    BlockSpec,
    ConvSpec,
    HeadSpec,
    SkipSpec,
    decode,
    encode,
    get_space,
    layers,
    load_arch,
    summary,
    validate,
)
from hwlat.archs.layers import OpKind
from hwlat.archs.space import FBNET_OPS, SPACE_NAMES, LayerwiseSpace, SearchSpace, parse_ref, parse_sample
from hwlat.archs.torch_builder import ChannelShuffle, build_torch, count_params, fold_bn
from hwlat.errors import InvalidArchError

CIFAR = get_space("fbnet_cifar100")
IMAGENET = get_space("fbnet_imagenet")
FAST = settings(max_examples=40, deadline=None)
# Rows of HW-NAS-Bench's FBNet table (HELP's data/fbnet, see data README): idx -> op0..op21
ROWS = {
    0: (7, 8, 1, 8, 4, 8, 8, 8, 7, 4, 1, 4, 7, 3, 2, 7, 3, 2, 4, 2, 4, 5),
    1: (5, 3, 5, 5, 0, 4, 7, 5, 5, 2, 0, 2, 4, 5, 1, 3, 7, 2, 6, 0, 4, 0),
}


def fbnet_vectors(space=CIFAR):
    return st.tuples(*[st.integers(0, d - 1) for d in space.dims])


def tiny(*blocks, res=8, cin=16, stem_stride=1) -> ArchSpec:
    return ArchSpec(
        name="t",
        resolution=res,
        stem=ConvSpec(cin, 3, stem_stride, "relu"),
        blocks=blocks,
        head=HeadSpec(conv=32, conv_act="relu"),
        num_classes=10,
    )


# -- IR: counting ---------------------------------------------------------------------------------
def test_grouped_block_rows_and_counts():
    arch = tiny(BlockSpec(exp=32, out=16, kernel=5, groups=2))
    rows = {r.name: r for r in layers(arch)}
    e, sh, dw, pr = (rows[f"blocks.0.{n}"] for n in ("expand", "shuffle", "dw", "project"))
    assert (e.op, e.groups, e.madds, e.params) == (OpKind.CONV, 2, 64 * 32 * 8, 32 * 8 + 64)
    assert (sh.op, sh.groups, sh.madds, sh.params, sh.elementwise) == (OpKind.SHUFFLE, 2, 0, 0, 0)
    assert sh.in_shape == sh.out_shape == (32, 8, 8)
    assert (dw.op, dw.groups) == (OpKind.DWCONV, 32)
    assert (pr.groups, pr.madds, pr.params) == (2, 64 * 16 * 16, 16 * 16 + 32)
    assert "blocks.0.add" in rows  # stride 1, 16 -> 16
    names = [n for n in rows if n.startswith("blocks.0.")]
    assert names == ["blocks.0.expand", "blocks.0.shuffle", "blocks.0.dw", "blocks.0.project", "blocks.0.add"]


def test_forced_expansion_and_skip_layers():
    # e1: the expansion conv is there although exp == in (FBNet), and only when asked for
    assert "blocks.0.expand" in {r.name for r in layers(tiny(BlockSpec(exp=16, out=16, expand=True)))}
    assert "blocks.0.expand" not in {r.name for r in layers(tiny(BlockSpec(exp=16, out=16)))}
    # an identity skip has no rows; a skip that changes stride or width is one 1×1 conv + BN + ReLU
    ident = tiny(SkipSpec(16), BlockSpec(exp=32, out=24))
    assert not [r for r in layers(ident) if r.block == 0]
    conv = [r for r in layers(tiny(SkipSpec(24, stride=2))) if r.block == 0]
    assert [(r.name, r.op, r.kernel, r.stride, r.bn, r.act.value, r.out_shape) for r in conv] == [
        ("blocks.0.conv", OpKind.CONV, 1, 2, True, "relu", (24, 4, 4))
    ]
    assert conv[0].madds == 16 * 16 * 24 and conv[0].params == 16 * 24 + 48


@pytest.mark.parametrize(
    "change, message",
    [
        (BlockSpec(exp=32, out=16, groups=3), "block 0.groups: input channels 16 are not divisible by 3"),
        (BlockSpec(exp=33, out=16, groups=2), "block 0.groups: exp channels 33"),
        (BlockSpec(exp=32, out=15, groups=2), "block 0.groups: out channels 15"),
        (
            BlockSpec(exp=16, out=16, groups=2),
            "block 0.groups: grouped 1x1 convs (2 groups) need the expansion",
        ),
        (BlockSpec(exp=16, out=16, groups=0), "block 0.groups: must be >= 1"),
        (BlockSpec(exp=32, out=16, expand=False), "block 0.expand: false needs exp == input channels"),
        (BlockSpec(exp=32, out=16, expand="yes"), "block 0.expand: expected true, false or null"),
        (SkipSpec(out=0), "block 0.out: must be >= 1"),
        (SkipSpec(out=16, stride=3), "block 0.stride: stride must be 1 or 2"),
    ],
)
def test_validation_names_block_and_field(change, message):
    with pytest.raises(InvalidArchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(tiny(change))


def test_stem_stride_1_keeps_the_resolution():
    rows = layers(CIFAR.decode(ROWS[0]))
    assert rows[0].name == "stem" and rows[0].stride == 1 and rows[0].out_shape == (16, 32, 32)


# -- codec and JSON -------------------------------------------------------------------------------
def test_codec_tokens():
    arch = CIFAR.decode(ROWS[0])
    s = encode(arch)
    toks = s.split(",")
    assert toks[:4] == ["in32", "stem_k3_s1_c16_re", "ir_k5_s1_e96_c16_re", "skip_s1_c24_re"]
    assert toks[4] == "ir_k3_s1_e24_g2_pw_c24_re"  # k3_e1_g2: grouped, forced expansion
    assert toks[-2:] == ["head_c1504_re", "fc100"]
    back = decode(s)
    assert replace(back, name=arch.name) == arch and encode(back) == s
    assert decode("in8,stem_k3_s1_c16_re,ir_k3_s1_e16_nopw_c16_re,head_c8_re,fc10").blocks[0].expand is False


@pytest.mark.parametrize(
    "text, message",
    [
        ("in8,stem_k3_s1_c16_re,skip_s1_c16,head_c8_re,fc10", "token 2 'skip_s1_c16': not a valid skip"),
        ("in8,stem_k3_s1_c16_re,ir_k3_s1_e16_g2_c16_re,head_c8_re,fc10", "block 0.groups"),
        ("in8,stem_k3_s1_c16_re,ir_k3_s1_e16_gx_c16_re,head_c8_re,fc10", "token 2"),
    ],
)
def test_codec_errors(text, message):
    with pytest.raises(InvalidArchError, match=message):
        decode(text)


@given(v=fbnet_vectors())
@FAST
def test_codec_and_json_round_trip_fbnet(v):
    arch = CIFAR.decode(v)
    assert replace(decode(encode(arch)), name=arch.name) == arch
    back = ArchSpec.from_dict(json.loads(arch.to_json()))
    assert back == arch and CIFAR.encode_arch(back) == v


def test_json_skip_blocks_are_typed_and_strict():
    d = json.loads(tiny(SkipSpec(24, stride=2)).to_json())
    assert d["blocks"][0] == {"type": "skip", "out": 24, "stride": 2, "act": "relu"}
    d["blocks"][0]["type"] = "pool"
    with pytest.raises(InvalidArchError, match="block 0.type: unknown block type 'pool'"):
        ArchSpec.from_dict(d)
    d["blocks"][0] = {"type": "skip", "out": 24, "kernel": 3}
    with pytest.raises(InvalidArchError, match=r"block 0: unknown field\(s\) \['kernel'\]"):
        ArchSpec.from_dict(d)


# -- PyTorch builder ------------------------------------------------------------------------------
def test_channel_shuffle_permutes_like_shufflenet():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert ChannelShuffle(3)(x).flatten().tolist() == [0, 2, 4, 1, 3, 5]


@pytest.mark.numerics
@pytest.mark.parametrize(
    "space, v",
    [(CIFAR, ROWS[0]), (CIFAR, ROWS[1]), (CIFAR, (8,) * 22), (CIFAR, (1,) * 22), (IMAGENET, (5,) * 22)],
)
def test_torch_params_and_fvcore_madds_match_the_count(space, v):
    arch = space.decode(v)
    if space is IMAGENET:
        arch = arch.with_resolution(64)  # the same layers, quicker
    torch.manual_seed(0)  # weights and input independent of the tests run before
    model = build_torch(arch).eval()
    s = summary(arch)
    assert count_params(model) == s["params"]
    x = torch.randn(2, 3, arch.resolution, arch.resolution)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, arch.num_classes)
        # float32 rounding only (folded weights rounded once more): atol scaled to max|y|, since
        # a relative tolerance fails on logits near zero (one of 200 was, on another CPU)
        assert_float32_close(fold_bn(model)(x), y, reduction_length(arch))
    assert fvcore_conv_fc_madds(fold_bn(model), x[:1]) == s["madds"]
    assert len(model.features) == 1 + len(arch.blocks)  # an identity skip is a module too


# -- the spaces -------------------------------------------------------------------------------------
def test_registry():
    assert SPACE_NAMES == ("large", "small", "fbnet_cifar100", "fbnet_imagenet")
    assert isinstance(get_space("large"), SearchSpace) and isinstance(CIFAR, LayerwiseSpace)
    assert get_space("fbnet_cifar100") is CIFAR  # a value, cached
    assert get_space("small", resolution=160).resolution == 160
    assert get_space("fbnet_cifar100", resolution=64).decode((0,) * 22).resolution == 64
    with pytest.raises(InvalidArchError, match="unknown search space 'fbnet'.*fbnet_cifar100"):
        get_space("fbnet")


def test_fbnet_settings():
    assert CIFAR.dims == (9,) * 22 and CIFAR.size == 9**22
    assert [op.name for op in FBNET_OPS] == [
        "k3_e1",
        "k3_e1_g2",
        "k3_e3",
        "k3_e6",
        "k5_e1",
        "k5_e1_g2",
        "k5_e3",
        "k5_e6",
        "skip",
    ]
    assert CIFAR.options_at(21) == tuple(op.name for op in FBNET_OPS)
    c, i = CIFAR.decode((0,) * 22), IMAGENET.decode((0,) * 22)
    assert (c.resolution, c.stem.stride, c.head.conv, c.num_classes) == (32, 1, 1504, 100)
    assert (i.resolution, i.stem.stride, i.head.conv, i.num_classes) == (224, 2, 1984, 1000)
    assert [b.out for b in c.blocks] == [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 + [184] * 4 + [352]
    assert [j for j, b in enumerate(c.blocks) if b.stride == 2] == [5, 9, 17]
    assert [j for j, b in enumerate(i.blocks) if b.stride == 2] == [1, 5, 9, 17]
    # the op table: kK_eE[_gG] from the input width, skip
    blocks = CIFAR.decode((0, 1, 2, 3, 4, 5, 6, 7, 8) + (0,) * 13).blocks
    assert blocks[0] == BlockSpec(exp=16, out=16, kernel=3, groups=1, expand=True)
    assert blocks[1] == BlockSpec(exp=16, out=24, kernel=3, groups=2, expand=True)
    assert blocks[2] == BlockSpec(exp=72, out=24, kernel=3)
    assert blocks[3] == BlockSpec(exp=144, out=24, kernel=3)
    assert blocks[5] == BlockSpec(exp=24, out=32, kernel=5, stride=2, groups=2, expand=True)
    assert blocks[6] == BlockSpec(exp=96, out=32, kernel=5)
    assert blocks[8] == SkipSpec(out=32)


def test_published_rows_decode_and_encode_back():
    for _idx, v in ROWS.items():
        arch = CIFAR.decode(v)
        assert arch.name == "fbnet_cifar100-" + ".".join(map(str, v))
        assert dict(arch.meta) == {"space": "fbnet_cifar100", "vector": v}
        assert CIFAR.encode_arch(arch) == v


def test_cifar_madds_are_plausible():
    # HW-NAS-Bench's CIFAR FBNet networks: tens of M MAdds at 32x32. Measured over the 4,000
    # published rows: 29.8 to 103.6 M, median 64.4 M (the all-skip network is the floor).
    assert summary(CIFAR.decode(ROWS[0]))["madds"] == 67_605_376
    assert summary(CIFAR.decode(ROWS[1]))["madds"] == 61_564_288
    assert summary(CIFAR.decode((8,) * 22))["madds"] == 11_608_960
    assert summary(CIFAR.decode((7,) * 22))["madds"] == 160_926_080
    m = [summary(a)["madds"] / 1e6 for a in CIFAR.sample_archs(200, seed=0)]
    assert 20 < min(m) and max(m) < 120 and 45 < float(np.median(m)) < 85


@given(v=fbnet_vectors(IMAGENET))
@FAST
def test_encode_arch_inverts_decode(v):
    assert IMAGENET.encode_arch(IMAGENET.decode(v)) == v


@given(seed=st.integers(0, 2**32 - 1))
@FAST
def test_encode_arch_inverts_decode_in_the_v3_spaces(seed):
    for name in ("large", "small"):
        space = get_space(name)
        v = space.sample(np.random.default_rng(seed))
        assert space.encode_arch(space.decode(v)) == v


def test_encode_arch_names_what_is_not_in_the_space():
    arch = CIFAR.decode(ROWS[0])
    blocks = list(arch.blocks)
    blocks[3] = BlockSpec(exp=48, out=24, kernel=3)
    with pytest.raises(
        InvalidArchError, match=r"block 3: .* none of the ops .*position 3 \(op3: stage 1, layer 2\)"
    ):
        CIFAR.encode_arch(replace(arch, blocks=tuple(blocks)))
    with pytest.raises(InvalidArchError, match="arch.blocks: 21 blocks"):
        CIFAR.encode_arch(replace(arch, blocks=arch.blocks[:-1]))
    with pytest.raises(InvalidArchError, match="arch.resolution: 64"):
        CIFAR.encode_arch(arch.with_resolution(64))
    with pytest.raises(InvalidArchError, match="arch.stem: .* not in space 'fbnet_imagenet'"):
        IMAGENET.encode_arch(replace(arch, resolution=224, num_classes=1000))
    with pytest.raises(InvalidArchError, match="arch.head"):
        CIFAR.encode_arch(replace(arch, head=HeadSpec(conv=1504)))
    large = get_space("large")
    v3 = large.decode(large.reference_vector)
    with pytest.raises(InvalidArchError, match="block 0.exp"):
        large.encode_arch(replace(v3, blocks=(replace(v3.blocks[0], exp=40),) + v3.blocks[1:]))
    with pytest.raises(
        InvalidArchError, match="not in space 'mnas_mobilenetv3_large'.*kernel: 9 is not an option"
    ):
        large.encode_arch(replace(v3, blocks=(replace(v3.blocks[0], kernel=9),) + v3.blocks[1:]))
    b = list(v3.blocks)
    b[4] = replace(b[4], se=replace(b[4].se, squeeze=8))
    with pytest.raises(InvalidArchError, match="block 4: not in space 'mnas_mobilenetv3_large'"):
        large.encode_arch(replace(v3, blocks=tuple(b)))


def test_vector_errors_name_the_op_column():
    with pytest.raises(
        ValueError, match=r"position 21 \(op21: stage 6, layer 0\): index 9 out of range 0..8"
    ):
        CIFAR.decode(ROWS[0][:-1] + (9,))
    with pytest.raises(ValueError, match=r"expected 22 entries \(22 positions\), got 21"):
        CIFAR.decode(ROWS[0][:-1])


def test_sampler_is_seeded():
    a, b = CIFAR.sample_archs(5, seed=3), CIFAR.sample_archs(5, seed=3)
    assert a == b and a != CIFAR.sample_archs(5, seed=4)
    v = CIFAR.sample(np.random.default_rng(0))
    m = CIFAR.mutate(v, np.random.default_rng(0), n=3)
    assert sum(x != y for x, y in zip(v, m)) == 3


# -- references ------------------------------------------------------------------------------------
def test_space_references():
    ref = "fbnet_cifar100:" + ",".join(map(str, ROWS[0]))
    assert parse_ref(ref) == CIFAR.decode(ROWS[0]) == load_arch(ref)
    assert load_arch(ref, resolution=64).resolution == 64
    assert load_arch(" fbnet_cifar100: 7, 8,1,8,4,8,8,8,7,4,1,4,7,3,2,7,3,2,4,2,4,5 ") == CIFAR.decode(
        ROWS[0]
    )
    large = get_space("large")
    assert load_arch("large:" + ",".join(map(str, large.reference_vector))) == large.decode(
        large.reference_vector
    )


@pytest.mark.parametrize(
    "ref, message",
    [
        ("fbnet_cifar100:1,2", "space 'fbnet_cifar100': vector: expected 22 entries"),
        (
            "fbnet_cifar100:" + "0," * 21 + "x",
            r"position 21 \(op21: stage 6, layer 0\) is 'x', not an integer",
        ),
        ("fbnet_cifar100:", "expected 22 entries"),
        ("fbnet_cifar100:" + "0," * 21 + "9", "index 9 out of range"),
    ],
)
def test_space_reference_errors(ref, message):
    with pytest.raises(InvalidArchError, match=message):
        load_arch(ref)


def test_parse_sample():
    assert parse_sample("20") == ("large", 20)
    assert parse_sample("20", "small") == ("small", 20)
    assert parse_sample("fbnet_cifar100:3") == ("fbnet_cifar100", 3)
    assert parse_sample(0) == ("large", 0)
    with pytest.raises(InvalidArchError, match="unknown search space 'fbnet'"):
        parse_sample("fbnet:3")
    with pytest.raises(InvalidArchError, match="N a non-negative integer"):
        parse_sample("fbnet_cifar100:x")


# -- command line -----------------------------------------------------------------------------------
REF0 = "fbnet_cifar100:" + ",".join(map(str, ROWS[0]))


def run(capsys, *argv):
    from hwlat.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_arch_show_and_madds(capsys):
    code, out, _ = run(capsys, "arch", "show", REF0)
    assert code == 0 and "fbnet_cifar100-7.8.1" in out and "blocks.2.shuffle" in out
    assert "blocks.1.conv" in out and "67.61 M MAdds" in out
    code, out, _ = run(capsys, "arch", "madds", REF0, "fbnet_imagenet:" + ",".join(["8"] * 22), "--json")
    got = json.loads(out)
    assert code == 0 and [g["madds"] for g in got] == [
        67_605_376,
        summary(IMAGENET.decode((8,) * 22))["madds"],
    ]
    assert got[1]["resolution"] == 224


def test_cli_reference_errors_are_one_line(capsys):
    code, _, err = run(capsys, "arch", "madds", "fbnet_cifar100:1,2")
    assert code == 2 and err.count("\n") == 1 and "expected 22 entries" in err


def test_cli_sample_space():
    from hwlat.cli import build_parser
    from hwlat.cli._common import archs as _archs

    archs = _archs([], None, "fbnet_cifar100:3", seed=1)
    assert archs == CIFAR.sample_archs(3, seed=1)
    assert _archs([], None, "2", "small", seed=0) == get_space("small").sample_archs(2, seed=0)
    assert _archs([], 64, "fbnet_imagenet:1")[0].resolution == 64
    args = build_parser().parse_args(
        ["profile", "blocks", "--sample-space", "fbnet_cifar100:20", "--store", "x"]
    )
    assert args.sample_space == "fbnet_cifar100:20"
    args = build_parser().parse_args(
        ["profile", "blocks", "--sample-space", "5", "--space", "fbnet_imagenet", "--store", "x"]
    )
    assert _archs([], None, args.sample_space, args.space) == IMAGENET.sample_archs(5, seed=0)


# -- exporters --------------------------------------------------------------------------------------
@pytest.mark.numerics
@pytest.mark.parametrize("v", [ROWS[0], (1,) * 22, (5,) * 22, (8,) * 22])
def test_tflite_and_onnx_match_torch(v):
    from hwlat.profiler.export.onnx import build_onnx, run_onnx
    from hwlat.profiler.export.tflite import build_tflite, op_names, run_tflite

    arch = CIFAR.decode(v)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = fold_bn(build_torch(arch)).eval()(torch.from_numpy(x)).numpy()
    for grouped in ("conv", "split"):
        model = build_tflite(arch, grouped=grouped)
        for xnnpack in (True, False):  # LiteRT's float32 kernels against torch's: rounding only
            assert_float32_close(
                run_tflite(model, x, use_xnnpack=xnnpack),
                ref,
                reduction_length(arch),
                msg=f"{grouped}, xnnpack={xnnpack}",
            )
        ops = op_names(model)
        if 1 in v or 5 in v:
            assert {"RESHAPE", "TRANSPOSE"} <= set(ops)
            assert ("SPLIT" in ops and "CONCATENATION" in ops) == (grouped == "split")
    assert_float32_close(run_onnx(build_onnx(arch), x), ref, reduction_length(arch))


def test_grouped_conv_is_one_conv_2d_of_version_6():
    from ai_edge_litert import schema_py_generated as fb

    from hwlat.profiler.export.tflite import tflite_segment

    rows = [r for r in layers(CIFAR.decode((1,) * 22)) if r.block == 2]
    m = fb.ModelT.InitFromPackedBuf(tflite_segment(rows), 0)
    convs = [
        (c.version, list(m.subgraphs[0].tensors[o.inputs[1]].shape))
        for o in m.subgraphs[0].operators
        for c in [m.operatorCodes[o.opcodeIndex]]
        if c.builtinCode == fb.BuiltinOperator.CONV_2D
    ]
    assert convs == [(6, [24, 1, 1, 12]), (6, [24, 1, 1, 12])]  # OHWI with C_in / groups
    with pytest.raises(ValueError, match="grouped: expected one of"):
        tflite_segment(rows, grouped="loop")


@pytest.mark.numerics
@pytest.mark.parametrize("grouped", ["conv", "split"])
def test_int8_fbnet_blocks_track_float(grouped):
    from hwlat.archs.segments import torch_segment
    from hwlat.profiler.export.tflite import run_tflite, tflite_segment

    rows = layers(CIFAR.decode((1, 1, 5, 8, 1, 5, 2, 8, 5) + (1,) * 13))
    for b in range(9):
        seg = [r for r in rows if r.block == b]
        if not seg:
            continue  # an identity skip
        x = np.random.default_rng(b).standard_normal((1, *seg[0].in_shape)).astype(np.float32)
        with torch.no_grad():
            ref = torch_segment(seg)(torch.from_numpy(x)).numpy()
        y = run_tflite(tflite_segment(seg, quantize="int8", grouped=grouped), x)
        assert np.sqrt(((y - ref) ** 2).mean() / (ref**2).mean()) < 0.08, b


# -- profiler pieces ----------------------------------------------------------------------------------
def test_pieces_cover_the_network_and_keys_are_canonical():
    from hwlat.archs.pieces import blocks, kernels

    for v in (ROWS[0], ROWS[1], (8,) * 22, (1,) * 22):
        arch, s = CIFAR.decode(v), summary(CIFAR.decode(v))
        for ws in (blocks(arch), kernels(arch)):
            assert sum(w.madds for w in ws) == s["madds"] and sum(w.params for w in ws) == s["params"]
    bl = blocks(CIFAR.decode((8,) * 22))
    # stem, the 4 skip convs that change stride or width (identity skips are no piece), head
    assert [w.label.split(" @")[0] for w in bl] == [
        "stem 3->16",
        "skip s1 16->24 relu",
        "skip s2 24->32 relu",
        "skip s2 32->64 relu",
        "skip s1 64->112 relu",
        "skip s2 112->184 relu",
        "skip s1 184->352 relu",
        "head 352->100",
    ]
    k = kernels(CIFAR.decode((1,) * 22))
    assert "shuffle g2 @16x32x32" in {w.label for w in k}
    # the same block in two architectures has one key; a grouped block differs from the dense one
    a, b = blocks(CIFAR.decode((1,) * 22)), blocks(CIFAR.decode((1,) * 21 + (0,)))
    assert a[1].key == b[1].key and a[-2].key != b[-2].key


@pytest.mark.slow
def test_profile_fbnet_sample_with_litert_and_compile_space(tmp_path, capsys):
    """`hwlat profile models --with-blocks --sample-space fbnet_cifar100:N` on this CPU, then
    compile_space over the FBNet space agrees with per-architecture prediction."""
    from hwlat.latency_models import TrainingData, make_predictor
    from hwlat.latency_models.space_table import compile_space

    store = str(tmp_path / "fb.db")
    code, out, _ = run(
        capsys,
        "profile",
        "models",
        "--with-blocks",
        "--sample-space",
        "fbnet_cifar100:4",
        "--store",
        store,
        "--target",
        "0.2",
        "--max-seconds",
        "0.3",
        "-q",
    )
    assert code == 0 and "of 4 archs" in out and "0 failed" in out
    code, out, _ = run(
        capsys, "profile", "blocks", "--sample-space", "fbnet_cifar100:4", "--store", store, "-q"
    )
    assert code == 0 and "0 measured" in out  # all already stored: canonical keys
    data = TrainingData.from_store(store, "litert")
    assert len(data.archs()) == 4 and {a.resolution for a in data.archs()} == {32}
    rng = np.random.default_rng(3)
    V = np.array([CIFAR.sample(rng) for _ in range(30)] + [(8,) * 22, (1,) * 22])
    for kind in ("calibrated", "regression"):
        pred = make_predictor(kind).fit(data.archs(), data.latency_ms, pieces=data.pieces)
        compiled = compile_space(pred, CIFAR)
        np.testing.assert_allclose(
            compiled.predict(V), pred.predict_many([CIFAR.decode(v) for v in V]), rtol=1e-9
        )
    with pytest.raises(
        ValueError, match=r"vector 1: position 21 \(op21: stage 6, layer 0\): index 9 out of range"
    ):
        compiled.predict(np.array([V[0], (0,) * 21 + (9,)]))


def test_cli_export_grouped_variants(capsys, tmp_path):
    from hwlat.profiler.export.tflite import op_names

    ref = "fbnet_cifar100:" + ",".join(["1"] * 22)
    for grouped in ("conv", "split"):
        out = tmp_path / f"{grouped}.tflite"
        code, text, _ = run(capsys, "export", "tflite", ref, "--grouped", grouped, "-o", str(out))
        assert code == 0 and "fbnet_cifar100-1.1" in text
        assert ("SPLIT" in op_names(out.read_bytes())) == (grouped == "split")
    code, _, err = run(capsys, "export", "onnx", ref, "--grouped", "split", "-o", str(tmp_path / "x.onnx"))
    assert code == 2 and "--grouped apply to tflite export only" in err


def test_invalid_layerwise_spaces_are_refused():
    from hwlat.archs.space import LayerOp, LayerStage

    with pytest.raises(ValueError, match="LayerStage.depth"):
        LayerStage(0, 16, 1)
    with pytest.raises(ValueError, match="LayerStage.stride"):
        LayerStage(1, 16, 3)
    base = dict(
        name="t", resolution=8, stem=ConvSpec(16, 3, 1, "relu"), head=HeadSpec(conv=32), num_classes=10
    )
    with pytest.raises(ValueError, match="op 1: expected a LayerOp"):
        LayerwiseSpace(stages=(LayerStage(2, 16, 1),), ops=(FBNET_OPS[0], "k3"), **base)
    # groups that do not divide a width fail when the space is built, naming the block and field
    with pytest.raises(ValueError, match="LayerwiseSpace 't' at resolution 8: block 0.groups"):
        LayerwiseSpace(stages=(LayerStage(1, 16, 1),), ops=(LayerOp("k3_e1_g3", 3, 1, 3),), **base)
    with pytest.raises(ValueError, match="resolution 2: .*too small"):
        LayerwiseSpace(
            stages=(LayerStage(1, 16, 2), LayerStage(1, 16, 2)), ops=FBNET_OPS, **{**base, "resolution": 2}
        )
    tiny_space = LayerwiseSpace(stages=(LayerStage(2, 16, 1), LayerStage(1, 24, 2)), ops=FBNET_OPS, **base)
    assert tiny_space.dims == (9, 9, 9) and tiny_space.encode_arch(tiny_space.decode((8, 1, 5))) == (8, 1, 5)


def test_calibration_set_of_the_fbnet_space():
    from hwlat.archs.calibration import calibration_set, coverage_tokens

    a = calibration_set(CIFAR, n=6, seed=0, pool=200)
    assert a == calibration_set(CIFAR, n=6, seed=0, pool=200) and len({encode(x) for x in a}) == 6
    tokens = set().union(*map(coverage_tokens, a))
    assert ("pw", True, "relu") in tokens  # grouped 1x1 convs
    assert {("skip", 1, False), ("skip", 2, True)} <= tokens  # identity and strided skip
