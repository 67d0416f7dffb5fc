"""Tests for hwlat.archs.space: encoding, sampling, mutation, validation, the paper's point."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwlat.archs.ir import Act, ConvSpec, HeadSpec
from hwlat.archs.layers import layers, summary
from hwlat.archs.space import DECISIONS, SearchSpace, StageChoice, StageSpace
from hwlat.archs.zoo import make_divisible, mobilenetv3

LARGE = SearchSpace.mobilenetv3_large()
SMALL = SearchSpace.mobilenetv3_small()
SPACES = {"large": LARGE, "small": SMALL}
# Stages whose paper expansions differ between layers (see the space.py docstring).
EXP_DIFFERS = {"large": (1, 3), "small": (1, 2)}

FAST = settings(max_examples=60, deadline=None)


def vectors(space: SearchSpace):
    return st.tuples(*[st.integers(0, d - 1) for d in space.dims])


space_and_vector = st.sampled_from(sorted(SPACES)).flatmap(
    lambda fam: st.tuples(st.just(SPACES[fam]), vectors(SPACES[fam]))
)


def tiny_space(**kw) -> SearchSpace:
    stages = kw.pop(
        "stages",
        (
            StageSpace(1, (16, 24), kernels=(3, 5), ratios=(1, 3), depths=(1, 2)),
            StageSpace(2, (24, 32), kernels=(3,), ratios=(3, 6), depths=(1, 2)),
            StageSpace(
                1, (40, 48), kernels=(5, 7), ratios=(4,), se=(True,), acts=("hswish",), depths=(1, 2, 3)
            ),
        ),
    )
    return SearchSpace(
        name="tiny",
        resolution=64,
        stem=ConvSpec(16),
        stages=stages,
        head=HeadSpec(conv=64, hidden=128),
        num_classes=10,
        **kw,
    )


# -- size / dims -----------------------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES.values(), ids=list(SPACES))
def test_size_is_product_of_dims(space):
    assert len(space.dims) == len(DECISIONS) * len(space.stages) == len(space.positions)
    assert space.size == math.prod(space.dims)
    assert isinstance(space.size, int) and space.size > 10**12


def test_sizes_of_the_v3_spaces():
    assert LARGE.size == 216 * 432**5 == 3_249_918_613_389_312
    assert SMALL.size == 216 * 432**4 == 7_522_959_753_216


def test_size_counts_distinct_architectures_exhaustively():
    space = tiny_space()
    archs = {space.decode(v).blocks for v in itertools.product(*map(range, space.dims))}
    assert len(archs) == space.size == math.prod(space.dims)


# -- sampling ----------------------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1))
@FAST
def test_sample_is_deterministic_for_a_seed(seed):
    for space in SPACES.values():
        a = space.sample(np.random.default_rng(seed))
        b = space.sample(np.random.default_rng(seed))
        assert a == b
        assert all(type(x) is int and 0 <= x < d for x, d in zip(a, space.dims))
        assert space.sample_arch(np.random.default_rng(seed)) == space.decode(a)


def test_sample_varies_and_covers_all_options():
    rng = np.random.default_rng(0)
    vs = np.array([LARGE.sample(rng) for _ in range(300)])
    assert len({tuple(v) for v in vs}) == 300
    for i, d in enumerate(LARGE.dims):
        assert set(vs[:, i]) == set(range(d))


@pytest.mark.parametrize("bad", [0, None, np.random.RandomState(0), __import__("random").Random(0)])
def test_non_generator_rng_raises_type_error(bad):
    v = LARGE.sample(np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        LARGE.sample(bad)
    with pytest.raises(TypeError, match="Generator"):
        LARGE.sample_arch(bad)
    with pytest.raises(TypeError, match="Generator"):
        LARGE.mutate(v, bad)


# -- round trips -------------------------------------------------------------------------------
@given(sv=space_and_vector)
@FAST
def test_encode_decode_round_trip(sv):
    space, v = sv
    ch = space.choices(v)
    assert space.encode(ch) == v
    # mappings and Act names are accepted too
    assert space.encode([{**c.__dict__, "act": c.act.value} for c in ch]) == v
    arch = space.decode(v)
    assert space.choices_to_arch(ch) == arch
    assert dict(arch.meta)["vector"] == v


@given(sv=space_and_vector)
@FAST
def test_decoded_arch_follows_the_choices(sv):
    space, v = sv
    arch = space.decode(v)
    blocks = iter(arch.blocks)
    cin = space.stem.out
    for stage, c in zip(space.stages, space.choices(v)):
        for j in range(c.depth):
            b = next(blocks)
            exp = cin if c.ratio == 1 else make_divisible(cin * c.ratio)
            assert (b.exp, b.out, b.kernel, b.act) == (exp, c.width, c.kernel, c.act)
            assert b.stride == (stage.stride if j == 0 else 1)
            assert b.residual is None and b.dilation == 1
            if c.se:
                assert b.se.squeeze == make_divisible(exp / 4) and b.se.gate is Act.HSIGMOID
            else:
                assert b.se is None
            cin = c.width
    assert next(blocks, None) is None
    assert (arch.stem, arch.head, arch.resolution) == (space.stem, space.head, space.resolution)


@given(sv=space_and_vector)
@FAST
def test_every_decoded_arch_validates_with_positive_costs(sv):
    space, v = sv
    arch = space.decode(v)
    assert layers(arch)
    s = summary(arch)
    assert s["madds"] > 0 and s["params"] > 0


def test_sampled_archs_validate_at_other_resolutions():
    rng = np.random.default_rng(1)
    for res in (32, 96, 160, 256):
        space = SearchSpace.mobilenetv3_small(resolution=res, num_classes=10)
        for _ in range(5):
            arch = space.sample_arch(rng)
            assert arch.resolution == res and arch.num_classes == 10
            layers(arch)


def test_too_small_resolution_rejected_at_construction():
    with pytest.raises(ValueError, match="resolution 16"):
        SearchSpace.mobilenetv3_large(resolution=16)


# -- mutation ----------------------------------------------------------------------------------
@given(sv=space_and_vector, seed=st.integers(0, 2**32 - 1), n=st.integers(0, 8))
@FAST
def test_mutate_changes_exactly_n_positions(sv, seed, n):
    space, v = sv
    m = space.mutate(v, np.random.default_rng(seed), n=n)
    assert sum(a != b for a, b in zip(v, m)) == n
    assert m == space.check_vector(m)
    assert m == space.mutate(v, np.random.default_rng(seed), n=n)


def test_mutate_skips_single_option_positions_and_bounds_n():
    space = tiny_space()
    fixed = [i for i, d in enumerate(space.dims) if d == 1]
    mutable = len(space.dims) - len(fixed)
    v = (0,) * len(space.dims)
    m = space.mutate(v, np.random.default_rng(3), n=mutable)
    assert sum(a != b for a, b in zip(v, m)) == mutable
    assert all(m[i] == 0 for i in fixed)
    for bad in (mutable + 1, -1, 1.0, True):
        with pytest.raises(ValueError, match="n must be"):
            space.mutate(v, np.random.default_rng(3), n=bad)


# -- bad input ---------------------------------------------------------------------------------
def test_wrong_length_names_position_and_stage():
    v = LARGE.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"expected 36 entries.*position 35 \(stage 5, width\)"):
        LARGE.decode(v[:-1])
    with pytest.raises(ValueError, match=r"got 37.*position 36"):
        LARGE.decode(v + (0,))
    with pytest.raises(ValueError, match=r"position 0 \(stage 0, kernel\)"):
        LARGE.decode(())


@given(sv=space_and_vector, data=st.data())
@FAST
def test_out_of_range_index_names_position_and_stage(sv, data):
    space, v = sv
    i = data.draw(st.integers(0, len(v) - 1))
    bad = data.draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=space.dims[i])))
    w = list(v)
    w[i] = bad
    s, d = space.positions[i]
    with pytest.raises(ValueError, match=rf"position {i} \(stage {s}, {d}\).*out of range"):
        space.decode(w)


@pytest.mark.parametrize("bad", [1.0, "1", None, True, np.float64(0)])
def test_non_int_entry_names_position_and_stage(bad):
    v = list(SMALL.sample(np.random.default_rng(0)))
    v[9] = bad
    with pytest.raises(ValueError, match=r"position 9 \(stage 1, act\).*integer"):
        SMALL.decode(v)
    with pytest.raises(ValueError, match=r"position 9 \(stage 1, act\)"):
        SMALL.mutate(v, np.random.default_rng(0))


def test_numpy_vectors_accepted_and_other_containers_rejected():
    v = LARGE.sample(np.random.default_rng(0))
    assert LARGE.decode(np.array(v)) == LARGE.decode(v)
    assert LARGE.decode(list(v)) == LARGE.decode(v)
    for bad in ("0" * 36, 5, {i: 0 for i in range(36)}, np.zeros((6, 6), dtype=int)):
        with pytest.raises(ValueError, match="vector"):
            LARGE.decode(bad)


def test_encode_rejects_values_outside_the_space():
    ch = list(LARGE.reference)
    with pytest.raises(ValueError, match=r"stage 2, kernel.*9 is not an option"):
        LARGE.encode(ch[:2] + [replace(ch[2], kernel=9)] + ch[3:])
    with pytest.raises(ValueError, match=r"stage 0, ratio"):
        LARGE.encode([{**ch[0].__dict__, "ratio": 2}] + ch[1:])
    with pytest.raises(ValueError, match="expected 6 stages"):
        LARGE.encode(ch[:-1])
    with pytest.raises(ValueError, match="missing keys"):
        LARGE.encode([{"kernel": 3}] + ch[1:])


def test_invalid_spaces_rejected():
    with pytest.raises(ValueError, match="kernel 4"):
        StageSpace(1, (16,), kernels=(3, 4))
    with pytest.raises(ValueError, match="multiples of 8"):
        StageSpace(1, (20,))
    with pytest.raises(ValueError, match="duplicate"):
        StageSpace(1, (16, 16))
    with pytest.raises(ValueError, match="stride"):
        StageSpace(3, (16,))
    with pytest.raises(ValueError, match="ratios"):
        StageSpace(1, (16,), ratios=(0.5,))
    # a stride-1 stage sharing a width with its predecessor makes the encoding ambiguous
    with pytest.raises(ValueError, match="stage 1.widths.*ambiguous"):
        tiny_space(stages=(StageSpace(2, (16, 24)), StageSpace(1, (24, 32))))
    # ratios that round to the same expansion width
    with pytest.raises(ValueError, match="stage 0.ratios.*not be one-to-one"):
        tiny_space(stages=(StageSpace(2, (16,), ratios=(3, 3.2)),))


def test_spaces_are_frozen_and_hashable():
    assert hash(LARGE) == hash(SearchSpace.mobilenetv3_large())
    assert LARGE == SearchSpace.mobilenetv3_large() and LARGE != SMALL
    with pytest.raises(AttributeError):
        LARGE.resolution = 192


# -- the paper's network -----------------------------------------------------------------------
def _stage_slices(space, choices):
    start = 0
    for c in choices:
        yield slice(start, start + c.depth)
        start += c.depth


@pytest.mark.parametrize("family", ["large", "small"])
def test_paper_network_is_in_the_space(family):
    """Stage structure (count, strides, widths, kernels, SE, act) is exactly the paper's; blocks
    are exactly equal except ``exp``/SE squeeze in the stages whose paper expansion varies."""
    space, paper = SPACES[family], mobilenetv3(family)
    ref = space.decode(space.reference_vector)
    assert (ref.stem, ref.head, ref.resolution, ref.num_classes) == (
        paper.stem,
        paper.head,
        paper.resolution,
        paper.num_classes,
    )
    assert len(ref.blocks) == len(paper.blocks)
    for a, b in zip(ref.blocks, paper.blocks):
        assert (a.out, a.kernel, a.stride, a.act, a.se is None, a.residual, a.dilation) == (
            b.out,
            b.kernel,
            b.stride,
            b.act,
            b.se is None,
            b.residual,
            b.dilation,
        )
    for s, sl in enumerate(_stage_slices(space, space.reference)):
        same = ref.blocks[sl] == paper.blocks[sl]
        assert same == (s not in EXP_DIFFERS[family]), f"stage {s}"
    rs, ps = summary(ref), summary(paper)
    assert abs(rs["madds"] - ps["madds"]) / ps["madds"] < 0.02
    assert abs(rs["params"] - ps["params"]) / ps["params"] < 0.005


@pytest.mark.parametrize("family", ["large", "small"])
def test_reference_ratios_are_the_closest_in_cost(family):
    space, paper = SPACES[family], mobilenetv3(family)
    ps = summary(paper)

    def err(choices):
        s = summary(space.choices_to_arch(choices))
        return abs(s["madds"] - ps["madds"]) / ps["madds"] + abs(s["params"] - ps["params"]) / ps["params"]

    stages = EXP_DIFFERS[family]
    best = min(
        itertools.product(*[space.stages[s].ratios for s in stages]),
        key=lambda rs: err(
            [replace(c, ratio=dict(zip(stages, rs)).get(i, c.ratio)) for i, c in enumerate(space.reference)]
        ),
    )
    assert best == tuple(space.reference[s].ratio for s in stages)


def test_reference_expansions():
    """The reference shares one ratio per stage: Large stage 1 at ratio 4 and stage 3 at ratio 3
    replace the paper's 64, 72 and 240, 200, 184, 184; Small stage 1 at ratio 3 and stage 2 at 6
    replace 72, 88 and 96, 240, 240. Every other expansion is the paper's."""
    large = [b.exp for b in LARGE.decode(LARGE.reference_vector).blocks]
    assert large == [16, 64, 96, 72, 120, 120, 120, 240, 240, 240, 480, 672, 672, 960, 960]
    small = [b.exp for b in SMALL.decode(SMALL.reference_vector).blocks]
    assert small == [16, 48, 72, 144, 240, 240, 120, 144, 288, 576, 576]
    assert all(isinstance(c, StageChoice) for c in LARGE.reference + SMALL.reference)
    assert [b.exp for b in mobilenetv3("small").blocks] == [16, 72, 88, 96, 240, 240, 120, 144, 288, 576, 576]
