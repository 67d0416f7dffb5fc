"""Pieces of a network cached per block config and input shape: the same keys as the profiler's."""

import pytest
from hypothesis import given
from strategies import archs

from hwlat.archs import BlockSpec, SearchSpace, get_arch, summary, zoo_names
from hwlat.archs.layers import block_groups, layers
from hwlat.archs.pieces import blocks, kernels
from hwlat.errors import InvalidArchError
from hwlat.latency_models.features import clear_piece_cache, piece_groups


def _keys(groups):
    return [w.key for g in groups for w in g.pieces]


@given(archs())
def test_groups_give_the_profilers_pieces(arch):
    for gran, decompose in (("block", blocks), ("kernel", kernels)):
        cold = piece_groups(arch, gran)
        assert _keys(cold) == [w.key for w in decompose(arch)]
        assert piece_groups(arch, gran) == cold  # the same cached groups, by identity
    assert sum(g.madds for g in cold) == summary(arch)["madds"]
    assert sum(g.params for g in cold) == summary(arch)["params"]


def test_groups_are_shared_across_networks_and_positions():
    import numpy as np

    space = SearchSpace.mobilenetv3_large(resolution=224)
    rng = np.random.default_rng(3)
    nets = [space.sample_arch(rng) for _ in range(40)] + [get_arch(n) for n in zoo_names()]
    for a in nets:  # fresh objects, equal specs: lookups, and still the profiler's keys
        assert _keys(piece_groups(a)) == [w.key for w in blocks(a)]
    n_groups = len({id(g) for a in nets for g in piece_groups(a)})
    assert n_groups < sum(len(a.blocks) + 2 for a in nets)


def test_block_groups_split_stem_blocks_and_head():
    rows = layers(get_arch("mobilenetv3_small_100"))
    groups = block_groups(rows)
    assert [g[0].stage for g in (groups[0], groups[1], groups[-1])] == ["stem", "block", "head"]
    assert len(groups) == 2 + 11 and sum(map(len, groups)) == len(rows)


def test_an_invalid_block_is_named_even_when_its_neighbours_are_cached():
    import dataclasses

    arch = get_arch("mobilenetv3_small_050", resolution=96)
    piece_groups(arch)
    bad = dataclasses.replace(
        arch, blocks=(*arch.blocks[:3], dataclasses.replace(arch.blocks[3], stride=3), *arch.blocks[4:])
    )
    with pytest.raises(InvalidArchError, match="block 3.stride"):
        piece_groups(bad)
    with pytest.raises(InvalidArchError, match="at least one"):
        piece_groups(dataclasses.replace(arch, blocks=()))
    with pytest.raises(ValueError, match="granularity"):
        piece_groups(arch, "layer")
    clear_piece_cache()
    assert _keys(piece_groups(arch)) == [w.key for w in blocks(arch)]
    assert isinstance(arch.blocks[0], BlockSpec)


def test_groups_memo_answers_each_network_object_once():
    import dataclasses

    from hwlat.latency_models import features
    from hwlat.latency_models.features import groups_memo, network_madds

    arch = get_arch("mobilenetv3_small_100")
    twin = dataclasses.replace(arch)  # equal, another object
    outside = piece_groups(arch)
    assert piece_groups(arch) is not outside  # no memo: a new list of the cached groups
    with groups_memo():
        first = piece_groups(arch)
        with groups_memo():  # re-entrant: the outer memo stays
            assert piece_groups(arch) is first
        assert piece_groups(arch) is first
        assert piece_groups(twin) is not first and piece_groups(twin) == first
        assert piece_groups(arch, "kernel") != first  # keyed by granularity too
        assert network_madds([arch, twin]).tolist() == [summary(arch)["madds"]] * 2
    assert features._MEMO is None  # dropped on exit, with the networks it held
    assert piece_groups(arch) is not first
