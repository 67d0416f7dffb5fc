"""IR: JSON and codec round trips, validation errors that name the block and the field."""

import dataclasses
import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import archs

from hwlat.archs import (
    Act,
    ArchSpec,
    BlockSpec,
    SESpec,
    decode,
    encode,
    get_arch,
    layers,
    layers_frame,
    summary,
    validate,
)


def test_json_round_trip(zoo_name):
    arch = get_arch(zoo_name)
    text = arch.to_json()
    back = ArchSpec.from_json(text)
    assert back == arch
    assert json.loads(text)["schema"] == "hwlat.arch/1"
    assert dict(back.meta) == dict(arch.meta)


def test_codec_round_trip(zoo_name):
    arch = get_arch(zoo_name, resolution=192)
    s = encode(arch)
    back = decode(s, name=arch.name)
    assert back == arch
    assert encode(back) == s
    assert s.count(",") == len(arch.blocks) + 3  # one token per block + in, stem, head, fc


@given(archs())
def test_codec_and_json_round_trip_random(arch):
    validate(arch)
    assert decode(encode(arch)) == arch
    assert ArchSpec.from_dict(json.loads(arch.to_json())) == arch


@given(archs())
def test_layers_shapes_chain_and_counts_add_up(arch):
    rows = layers(arch)
    s = summary(arch)
    assert s["madds"] == sum(r.madds for r in rows) > 0
    assert rows[0].in_shape == (arch.in_channels, arch.resolution, arch.resolution)
    assert rows[-1].out_shape == (arch.num_classes, 1, 1)
    main_path = [r for r in rows if ".se." not in r.name and r.op.value not in ("add",)]
    for a, b in zip(main_path, main_path[1:]):
        assert a.out_shape == b.in_shape, (a.name, b.name)
    df = layers_frame(arch)
    assert len(df) == len(rows) and int(df["params"].sum()) == s["params"]


def test_layer_table_of_large():
    df = layers_frame(get_arch("mobilenetv3_large_100"))
    first = df.iloc[0]
    assert (first["name"], first["op"], first["out_c"], first["out_h"], first["act"]) == (
        "stem",
        "conv",
        16,
        112,
        "hswish",
    )
    # block 0 has no expansion conv (exp == in == 16) and a residual add
    b0 = df[df["block"] == 0]["name"].tolist()
    assert b0 == ["blocks.0.dw", "blocks.0.project", "blocks.0.add"]
    last_block = df[df["block"] == 14]
    assert last_block.iloc[0]["in_h"] == 7
    assert set(df["op"]) == {"conv", "dwconv", "pool", "mul", "add", "fc"}


# --- bad input -------------------------------------------------------------------------------
BASE = "in224,stem_k3_s2_c16_hs,ir_k3_s1_e16_c16_re,ir_k3_s2_e64_c24_re,head_c96_hs_h128_hs,fc10"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("in224,stem_k3_s2_c16_hs", "token"),
        (BASE.replace("ir_k3_s2_e64", "ir_k3_s3_e64"), "block 1.stride: stride must be 1 or 2"),
        (BASE.replace("_re,ir", "_foo,ir"), "token 2"),
        (BASE.replace("c16_re,", "c16_re_bogus,"), "token 2"),
        (BASE.replace("e64_c24_re", "e64_c24_re_skip"), "block 1.residual"),
        (BASE.replace("ir_k3_s1_e16", "ir_k4_s1_e16"), "block 0.kernel: kernel must be odd"),
        (BASE.replace("in224", "in0"), "not a valid input"),
        (BASE.replace("e64_c24", "e0_c24"), "not a valid bottleneck"),
        (BASE.replace("in224", "in2"), "block 1: stride 2 receives a 1x1 input"),
        (BASE.replace("head_c96", "head_x96"), "not a valid head"),
        (BASE.replace("fc10", "fc10_drop1.5"), "not a valid classifier"),
        (BASE + ",extra", "not a valid"),
    ],
)
def test_decode_errors_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        decode(text)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(exp=0), "block 3.exp: must be >= 1"),
        (dict(out=-8), "block 3.out: must be >= 1"),
        (dict(stride=3), "block 3.stride: stride must be 1 or 2"),
        (dict(kernel=2), "block 3.kernel: kernel must be odd"),
        (dict(exp=7.5), "block 3.exp: expected an integer"),
        (dict(residual=True, out=48), "block 3.residual: shortcut between mismatched shapes"),
        (dict(se=SESpec(0)), "block 3.se.squeeze"),
        (dict(dilation=0), "block 3.dilation"),
    ],
)
def test_validate_names_block_and_field(change, message):
    arch = get_arch("mobilenetv3_small_100")
    blocks = list(arch.blocks)
    blocks[3] = dataclasses.replace(blocks[3], **change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate(dataclasses.replace(arch, blocks=tuple(blocks)))


@given(
    archs(), st.sampled_from(["exp", "out", "kernel", "stride", "dilation"]), st.integers(-3, 0), st.data()
)
def test_validate_rejects_nonpositive_fields_everywhere(arch, fld, bad, data):
    has = [j for j, b in enumerate(arch.blocks) if hasattr(b, fld)]  # skip layers: out, stride
    assume(has)
    i = data.draw(st.sampled_from(has))
    blocks = list(arch.blocks)
    blocks[i] = dataclasses.replace(blocks[i], **{fld: bad})
    with pytest.raises(ValueError, match=rf"block {i}\.{fld}"):
        validate(dataclasses.replace(arch, blocks=tuple(blocks)))


@pytest.mark.parametrize(
    "field_, value, message",
    [
        ("resolution", 0, "arch.resolution"),
        ("resolution", -224, "arch.resolution"),
        ("num_classes", 0, "arch.num_classes"),
        ("blocks", (), "at least one block"),
    ],
)
def test_validate_arch_fields(field_, value, message):
    with pytest.raises(ValueError, match=message):
        validate(dataclasses.replace(get_arch("mobilenetv3_small_100"), **{field_: value}))


def test_resolution_too_small_to_downsample():
    with pytest.raises(ValueError, match="too small"):
        validate(get_arch("mobilenetv3_large_100", resolution=8))


def test_unknown_activation_is_a_value_error():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        BlockSpec(exp=16, out=16, act="gelu")
    assert BlockSpec(exp=16, out=16, act="hs").act is Act.HSWISH


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(schema="hwlat.arch/99"), "unsupported schema"),
        (lambda d: d.update(bogus=1), "unknown field"),
        (lambda d: d["blocks"][2].update(depth=3), "block 2: unknown field"),
        (lambda d: d["blocks"][2].pop("exp"), "block 2: missing field"),
        (lambda d: d["stem"].update(act="gelu"), "unknown activation"),
        (lambda d: d.update(blocks="x"), "arch.blocks"),
    ],
)
def test_from_dict_is_strict(mutate, message):
    d = get_arch("mobilenetv3_small_100").to_dict()
    mutate(d)
    with pytest.raises(ValueError, match=message):
        ArchSpec.from_dict(d)


def test_from_json_rejects_garbage():
    with pytest.raises(ValueError, match="not valid JSON"):
        ArchSpec.from_json("{nope")
