"""Hypothesis strategies for valid architectures."""

from hypothesis import strategies as st

from hwlat.archs import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, SESpec, SkipSpec

acts = st.sampled_from(list(Act))
chans = st.integers(1, 64)


@st.composite
def blocks(draw, cin):
    """A bottleneck (grouped 1×1 convs and forced expansion included) or, sometimes, a skip layer."""
    stride = draw(st.sampled_from([1, 2]))
    if draw(st.integers(0, 7)) == 0:
        return SkipSpec(out=draw(st.one_of(st.just(cin), chans)), stride=stride, act=draw(acts))
    groups = draw(st.sampled_from([1, 1, 1, 2, 4]))
    if cin % groups:
        groups = 1
    g_chans = st.integers(1, 16).map(lambda n: n * groups)
    exp = draw(st.one_of(st.just(cin), g_chans))
    out = draw(st.one_of(st.just(cin), g_chans))
    if groups > 1 or exp != cin:
        expand = draw(st.sampled_from([None, True]))
        if groups > 1 and exp == cin:
            expand = True
    else:
        expand = draw(st.sampled_from([None, True, False]))
    se = draw(st.one_of(st.none(), st.builds(SESpec, chans, acts, acts)))
    match = stride == 1 and cin == out
    residual = draw(st.sampled_from([None, False, True] if match else [None, False]))
    return BlockSpec(
        exp=exp,
        out=out,
        kernel=draw(st.sampled_from([1, 3, 5, 7])),
        stride=stride,
        act=draw(acts),
        se=se,
        dilation=draw(st.sampled_from([1, 1, 2])),
        residual=residual,
        groups=groups,
        expand=expand,
    )


@st.composite
def archs(draw):
    stem = ConvSpec(
        out=draw(chans),
        kernel=draw(st.sampled_from([1, 3, 5])),
        stride=draw(st.sampled_from([1, 2])),
        act=draw(acts),
    )
    n = draw(st.integers(1, 6))
    bl, cin = [], stem.out
    for _ in range(n):
        b = draw(blocks(cin))
        bl.append(b)
        cin = b.out
    n_s2 = stem.stride // 2 + sum(b.stride // 2 for b in bl)
    res = draw(st.integers(2**n_s2, 2**n_s2 + 40))
    head = HeadSpec(
        conv=draw(st.integers(0, 64)),
        conv_act=draw(acts),
        hidden=draw(st.integers(0, 64)),
        hidden_act=draw(acts),
        dropout=draw(st.sampled_from([0.0, 0.2, 0.25, 0.5])),
    )
    return ArchSpec(
        name="custom",
        resolution=res,
        stem=stem,
        blocks=tuple(bl),
        head=head,
        num_classes=draw(st.integers(1, 1000)),
        in_channels=draw(st.sampled_from([1, 3, 4])),
    )
