"""The model zoo: pure factories from keyword options to :class:`ArchSpec`.

Names follow timm: ``mobilenetv3_large_100`` is MobileNetV3-Large at width multiplier 1.0.
Every factory takes ``width_mult``, ``resolution`` (input side in pixels), ``num_classes`` and
``width_convention``; the MobileNetV3 factories also take the paper's ablations.

Width-multiplier conventions (implementations disagree; the reference README lists them)
-----------------------------------------------------------------------------------------
``"paper"`` (default) — TF-slim, the code of the paper's released checkpoints:
    every layer's output channels, the stem and the pre-pooling 1×1 conv included, become
    ``make_divisible(c·m, 8)``; expansion channels are ``make_divisible(scaled_input · ratio, 8)``
    with the table's ratio (e.g. 184/80); SE squeeze is ``make_divisible(exp/4, 8)``. The widest
    1×1 conv of the V3 last stage (1280 Large, 1024 Small) keeps its width at every multiplier:
    slim's ``finegrain_classification_mode`` replaces that layer's multiplier with the identity,
    below *and* above 1.0. This reproduces the published parameter counts of the 0.75 models (Large
    4.0 M, Small 2.0 M, paper v5 Table 3; shrinking the head too would give 3.4 M / 1.7 M) and of
    Large 1.25 (7.55 M, Table 9: 7.5 M; growing the head to 1600 would give 8.26 M). MobileNetV2's
    1280 conv follows slim's ``mobilenet_v2`` instead: kept below 1.0, grown above (V2 1.4: 1792).
``"torchvision"`` — torchvision's ``mobilenet_v3_*`` / ``mobilenet_v2``: the table's expansion
    channels are scaled directly (``make_divisible(exp·m, 8)``), the pre-pooling 1×1 conv is 6× the
    scaled last bottleneck width and the 1280/1024 head is scaled by m as well; V2 expands with
    ``round(input·t)`` and never shrinks its 1280 head.
At m = 1.0 both give the paper's Tables 1 and 2 exactly.

``make_divisible(v, 8)`` rounds to the nearest multiple of 8, at least 8, and never more than 10 %
below ``v``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from hwlat.archs.ir import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, SESpec

CONVENTIONS = ("paper", "torchvision")


def zoo_name(family: str, width_mult: float = 1.0) -> str:
    """The timm-style zoo name of ``family`` at ``width_mult``: ``("mobilenetv3_large", 0.75)`` →
    ``"mobilenetv3_large_075"``. MnasNet-A1 at 1.0 is plain ``"mnasnet_a1"``."""
    if family == "mnasnet_a1" and width_mult == 1.0:
        return family
    return f"{family}_{round(width_mult * 100):03d}"


CHANNEL_DIVISOR = 8
"""Channel counts of the zoo, the search spaces and the searches' cuts are multiples of this."""


def make_divisible(v: float, divisor: int = CHANNEL_DIVISOR, min_value: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor`` (nearest, >= min_value, never 10 % below ``v``)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def se_squeeze(exp: int) -> int:
    """The squeeze channels of a MobileNetV3-style squeeze-excite after ``exp`` expansion channels:
    a quarter of them, ``make_divisible(exp / 4)``."""
    return make_divisible(exp / 4)


@dataclass(frozen=True)
class _Row:
    """One bottleneck row of a paper table at multiplier 1.0."""

    inp: int
    exp: int
    out: int
    kernel: int
    stride: int
    se: bool
    act: Act


RE, HS, R6 = Act.RELU, Act.HSWISH, Act.RELU6

# Paper Table 1 (MobileNetV3-Large), bottleneck rows: in, exp, out, kernel, stride, SE, NL.
V3_LARGE = tuple(
    _Row(*r)
    for r in [
        (16, 16, 16, 3, 1, False, RE),
        (16, 64, 24, 3, 2, False, RE),
        (24, 72, 24, 3, 1, False, RE),
        (24, 72, 40, 5, 2, True, RE),
        (40, 120, 40, 5, 1, True, RE),
        (40, 120, 40, 5, 1, True, RE),
        (40, 240, 80, 3, 2, False, HS),
        (80, 200, 80, 3, 1, False, HS),
        (80, 184, 80, 3, 1, False, HS),
        (80, 184, 80, 3, 1, False, HS),
        (80, 480, 112, 3, 1, True, HS),
        (112, 672, 112, 3, 1, True, HS),
        (112, 672, 160, 5, 2, True, HS),
        (160, 960, 160, 5, 1, True, HS),
        (160, 960, 160, 5, 1, True, HS),
    ]
)
# Paper Table 2 (MobileNetV3-Small). The table also marks SE on the 576-channel 1×1 conv; no
# released implementation (TF-slim, torchvision, timm, Keras) has it, and neither do we.
V3_SMALL = tuple(
    _Row(*r)
    for r in [
        (16, 16, 16, 3, 2, True, RE),
        (16, 72, 24, 3, 2, False, RE),
        (24, 88, 24, 3, 1, False, RE),
        (24, 96, 40, 5, 2, True, HS),
        (40, 240, 40, 5, 1, True, HS),
        (40, 240, 40, 5, 1, True, HS),
        (40, 120, 48, 5, 1, True, HS),
        (48, 144, 48, 5, 1, True, HS),
        (48, 288, 96, 5, 2, True, HS),
        (96, 576, 96, 5, 1, True, HS),
        (96, 576, 96, 5, 1, True, HS),
    ]
)
# Last stage of each family: (1×1 conv before pooling, 1×1 conv after pooling).
_V3_HEAD = {"large": (960, 1280), "small": (576, 1024)}
_V3_ROWS = {"large": V3_LARGE, "small": V3_SMALL}
_V3_HSWISH_DEFAULT = {"large": 80, "small": 40}


def _scale_rows(rows, m: float, convention: str, stem: int) -> list[tuple[_Row, int, int]]:
    """Scale table rows; return (row, exp, out) with absolute channels (input follows the chain)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"width_convention: unknown {convention!r} (expected one of {CONVENTIONS})")
    out, cin = [], stem
    for r in rows:
        cout = make_divisible(r.out * m)
        if r.exp == r.inp:
            exp = cin
        elif convention == "paper":
            exp = make_divisible(cin * r.exp / r.inp)
        else:
            exp = make_divisible(r.exp * m)
        out.append((r, exp, cout))
        cin = cout
    return out


def _check_mult(width_mult: float) -> None:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise ValueError(f"width_mult: must be a positive number, got {width_mult!r}")


def mobilenetv3(
    family: str = "large",
    *,
    width_mult: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    last_stage: str = "efficient",
    stem_channels: int = 16,
    stem_act: Act | str | None = None,
    hswish_from: int | None = -1,
    se: bool = True,
    minimal: bool = False,
    width_convention: str = "paper",
    dropout: float = 0.2,
) -> ArchSpec:
    """MobileNetV3-Large or -Small (paper Tables 1 and 2) with the paper's ablations.

    Parameters
    ----------
    family : ``"large"`` or ``"small"``.
    width_mult : channel multiplier (paper: 0.35–1.25); see the module docstring for rounding.
    resolution : input side in pixels.
    last_stage : ``"efficient"`` (paper Figure 5, default) or ``"original"``: an extra
        bottleneck (3×3, expansion = the last-stage conv width, out = 2× the last bottleneck width:
        960→320 for Large) followed by the 1280/1024-channel 1×1 conv *before* pooling.
    stem_channels, stem_act : the stem conv (paper: 16 h-swish; ablation: 32 ReLU). ``stem_act``
        defaults to h-swish, or ReLU when ``hswish_from`` is None.
    hswish_from : h-swish placement (paper Table 5): the bottlenecks from the first one whose
        paper-table output width is this number use h-swish, the earlier ones ReLU. Default
        (-1): the paper's placement (from 80 for Large, from 40 for Small). ``16``: everywhere;
        ``112``: from the 112-channel layers (Large); ``None``: ReLU everywhere, head included.
    se : keep the squeeze-excite modules (1/4 of the expansion, hard-sigmoid gate).
    minimal : the "minimalistic" variant: no SE, no h-swish, 3×3 depthwise only.
    """
    if family not in _V3_ROWS:
        raise ValueError(f"family: unknown {family!r} (expected 'large' or 'small')")
    _check_mult(width_mult)
    if last_stage not in ("efficient", "original"):
        raise ValueError(f"last_stage: unknown {last_stage!r} (expected 'efficient' or 'original')")
    if minimal:
        se, hswish_from = False, None
    if hswish_from == -1:
        hswish_from = _V3_HSWISH_DEFAULT[family]
    first_hs = _v3_first_hswish(family, hswish_from)
    stem_act = (
        Act.parse(stem_act, "stem_act") if stem_act is not None else (HS if hswish_from is not None else RE)
    )
    head_act = HS if hswish_from is not None else RE
    stem = make_divisible(stem_channels * width_mult)
    blocks = [
        BlockSpec(
            exp=exp,
            out=out,
            kernel=3 if minimal else r.kernel,
            stride=r.stride,
            act=HS if i >= first_hs else RE,
            se=SESpec(se_squeeze(exp)) if (se and r.se) else None,
        )
        for i, (r, exp, out) in enumerate(_scale_rows(_V3_ROWS[family], width_mult, width_convention, stem))
    ]
    head = _v3_last_stage(family, blocks, width_mult, width_convention, last_stage, head_act, dropout)
    fam_name = f"mobilenetv3_{family}{'_minimal' if minimal else ''}"
    suffix = _v3_variant_suffix(
        family, minimal, last_stage, stem_channels, stem_act, hswish_from, se, width_convention
    )
    return ArchSpec(
        name="-".join([zoo_name(fam_name, width_mult), *suffix]),
        resolution=resolution,
        stem=ConvSpec(out=stem, kernel=3, stride=2, act=stem_act),
        blocks=tuple(blocks),
        head=head,
        num_classes=num_classes,
        meta={
            "family": fam_name,
            "width_mult": width_mult,
            "last_stage": last_stage,
            "width_convention": width_convention,
        },
    )


def _v3_first_hswish(family: str, hswish_from: int | None) -> int:
    """Index of the first h-swish bottleneck (Table 5 placement); ``len(rows)`` for ReLU everywhere."""
    outs = [r.out for r in _V3_ROWS[family]]
    if hswish_from is None:
        return len(outs)
    if hswish_from not in outs:
        raise ValueError(
            f"hswish_from: no {family} bottleneck has {hswish_from!r} output channels "
            f"(choose from {sorted(set(outs))} or None)"
        )
    return outs.index(hswish_from)


def _v3_last_stage(
    family: str,
    blocks: list[BlockSpec],
    width_mult: float,
    width_convention: str,
    last_stage: str,
    act: Act,
    dropout: float,
) -> HeadSpec:
    """The head; for ``last_stage="original"`` the extra bottleneck is appended to ``blocks``."""
    conv, hidden = _V3_HEAD[family]
    last = blocks[-1].out
    conv = make_divisible(conv * width_mult) if width_convention == "paper" else 6 * last
    hidden = hidden if width_convention == "paper" else make_divisible(hidden * width_mult)
    if last_stage == "original":
        blocks.append(BlockSpec(exp=conv, out=2 * last, kernel=3, stride=1, act=act))
        return HeadSpec(conv=hidden, conv_act=act, hidden=0, dropout=dropout)
    return HeadSpec(conv=conv, conv_act=act, hidden=hidden, hidden_act=act, dropout=dropout)


def _v3_variant_suffix(
    family, minimal, last_stage, stem_channels, stem_act, hswish_from, se, width_convention
) -> list[str]:
    """Name suffixes of the ablations that differ from the paper's model (``origlast``, ``relu``...)."""
    suffix = []
    if last_stage == "original":
        suffix.append("origlast")
    if (stem_channels, stem_act) != (16, HS) and not minimal and hswish_from is not None:
        suffix.append(f"stem{stem_channels}{stem_act.short}")
    if not minimal and hswish_from != _V3_HSWISH_DEFAULT[family]:
        suffix.append("relu" if hswish_from is None else f"hs{hswish_from}")
    if not se and not minimal:
        suffix.append("nose")
    if width_convention != "paper":
        suffix.append(width_convention)
    return suffix


# MobileNetV2 (Sandler et al. 2018, Table 2): expansion t, channels c, repeats n, stride s.
_V2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenetv2(
    *,
    width_mult: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    width_convention: str = "paper",
    dropout: float = 0.2,
) -> ArchSpec:
    """MobileNetV2 (ReLU6, 32-channel stem, 1280-channel last conv before pooling)."""
    _check_mult(width_mult)
    if width_convention not in CONVENTIONS:
        raise ValueError(f"width_convention: unknown {width_convention!r} (expected one of {CONVENTIONS})")
    stem = make_divisible(32 * width_mult)
    blocks, cin = [], stem
    for t, c, n, s in _V2_STAGES:
        out = make_divisible(c * width_mult)
        for j in range(n):
            if t == 1:
                exp = cin
            elif width_convention == "paper":
                exp = make_divisible(cin * t)
            else:
                exp = int(round(cin * t))
            blocks.append(BlockSpec(exp=exp, out=out, kernel=3, stride=s if j == 0 else 1, act=R6))
            cin = out
    head = make_divisible(1280 * max(1.0, width_mult))
    return ArchSpec(
        name=zoo_name("mobilenetv2", width_mult)
        + ("" if width_convention == "paper" else f"-{width_convention}"),
        resolution=resolution,
        stem=ConvSpec(out=stem, kernel=3, stride=2, act=R6),
        blocks=tuple(blocks),
        head=HeadSpec(conv=head, conv_act=R6, hidden=0, dropout=dropout),
        num_classes=num_classes,
        meta={"family": "mobilenetv2", "width_mult": width_mult, "width_convention": width_convention},
    )


# MnasNet-A1 (Tan et al. 2019, Figure 7; TF mnasnet_models.mnasnet_a1): expansion, kernel,
# channels, repeats, stride, SE. SE squeezes to 1/4 of the block's *input* channels (int), sigmoid gate.
_MNAS_A1 = [
    (1, 3, 16, 1, 1, False),
    (6, 3, 24, 2, 2, False),
    (3, 5, 40, 3, 2, True),
    (6, 3, 80, 4, 2, False),
    (6, 3, 112, 2, 1, True),
    (6, 5, 160, 3, 2, True),
    (6, 3, 320, 1, 1, False),
]


def mnasnet_a1(
    *,
    width_mult: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    dropout: float = 0.2,
) -> ArchSpec:
    """MnasNet-A1, the seed of the paper's Large search (ReLU, SE with sigmoid gate)."""
    _check_mult(width_mult)
    stem = make_divisible(32 * width_mult)
    blocks, cin = [], stem
    for t, k, c, n, s, has_se in _MNAS_A1:
        out = make_divisible(c * width_mult)
        for j in range(n):
            exp = cin * t
            se = SESpec(max(1, int(cin * 0.25)), gate=Act.SIGMOID) if has_se else None
            blocks.append(BlockSpec(exp=exp, out=out, kernel=k, stride=s if j == 0 else 1, act=RE, se=se))
            cin = out
    return ArchSpec(
        name=zoo_name("mnasnet_a1", width_mult),
        resolution=resolution,
        stem=ConvSpec(out=stem, kernel=3, stride=2, act=RE),
        blocks=tuple(blocks),
        head=HeadSpec(conv=1280, conv_act=RE, hidden=0, dropout=dropout),
        num_classes=num_classes,
        meta={"family": "mnasnet_a1", "width_mult": width_mult},
    )


V3_MULTIPLIERS = (0.35, 0.5, 0.75, 1.0, 1.25)
"""The width multipliers of the paper's Tables 3 and 9, registered for Large and Small."""

GRID_RESOLUTIONS = (96, 128, 160, 192, 224, 256)
"""The input sizes (px) of the paper's Figure 7 grid (:func:`paper_grid`)."""

GRID_FAMILIES = ("large", "small")


def paper_grid(
    families: tuple[str, ...] = GRID_FAMILIES,
    multipliers: tuple[float, ...] = V3_MULTIPLIERS,
    resolutions: tuple[int, ...] = GRID_RESOLUTIONS,
) -> list[tuple[str, int]]:
    """The paper's Figure 7 grid as ``(zoo name, resolution)`` pairs: MobileNetV3 Large and Small
    × :data:`V3_MULTIPLIERS` × :data:`GRID_RESOLUTIONS` (a subset with the arguments)."""
    return [(zoo_name(f"mobilenetv3_{f}", m), r) for f in families for m in multipliers for r in resolutions]


REF_SETS = {"@zoo": "every classifier of the zoo", "@grid": "the paper's Figure 7 grid"}
"""References that stand for several architectures (:func:`expand_refs`)."""


def expand_refs(refs) -> list[tuple[str, int | None]]:
    """Architecture references with ``@zoo`` (:func:`zoo_names`) and ``@grid`` (:func:`paper_grid`)
    expanded: ``(reference, resolution)`` pairs, resolution None where the caller's applies (every
    reference but a grid point, which has its own)."""
    out: list[tuple[str, int | None]] = []
    for ref in refs:
        if ref == "@zoo":
            out += [(n, None) for n in zoo_names()]
        elif ref == "@grid":
            out += paper_grid()
        else:
            out.append((ref, None))
    return out


def _register() -> tuple[dict[str, Callable[..., ArchSpec]], dict[str, tuple[str, float]]]:
    zoo: dict[str, Callable[..., ArchSpec]] = {}
    families: dict[str, tuple[str, float]] = {}

    def add(family: str, mult: float, factory: Callable[..., ArchSpec]) -> None:
        name = zoo_name(family, mult)
        zoo[name], families[name] = factory, (family, mult)

    for fam in ("large", "small"):
        for m in V3_MULTIPLIERS:
            add(f"mobilenetv3_{fam}", m, functools.partial(mobilenetv3, fam, width_mult=m))
        add(f"mobilenetv3_{fam}_minimal", 1.0, functools.partial(mobilenetv3, fam, minimal=True))
    for m in (1.0, 0.35):
        add("mobilenetv2", m, functools.partial(mobilenetv2, width_mult=m))
    add("mnasnet_a1", 1.0, mnasnet_a1)
    return zoo, families


ZOO, _FAMILIES = _register()
TASK_ZOO: dict[str, Callable[..., ArchSpec]] = {}
"""The detection and segmentation networks of the paper's Section 6, apart from :data:`ZOO` (the
classifiers, which ``@zoo`` and the zoo grid cover); :mod:`hwlat.archs.tasks`, which builds on the
factories here, registers them when the package is imported."""


def zoo_family(name: str) -> tuple[str, float] | None:
    """``(family, width multiplier)`` of a registered zoo name (``"mobilenetv3_large_075"`` →
    ``("mobilenetv3_large", 0.75)``), or None for any other name."""
    return _FAMILIES.get(name)


# The paper's ablations of V3-Large 1.0 at 224: (ablation, variant, mobilenetv3 options of the variant,
# options of its baseline). Table 5 (h-swish placement) and Section 5.1 (last stage, stem).
ABLATIONS: tuple[tuple[str, str, dict, dict], ...] = (
    ("h-swish placement (Table 5)", "ReLU everywhere", {"hswish_from": None}, {}),
    ("h-swish placement (Table 5)", "h-swish@16", {"hswish_from": 16}, {}),
    ("h-swish placement (Table 5)", "h-swish@112", {"hswish_from": 112}, {}),
    ("efficient last stage (Sec. 5.1)", "original last stage", {"last_stage": "original"}, {}),
    ("stem (Sec. 5.1)", "32-filter ReLU stem", {"stem_channels": 32, "stem_act": "relu"}, {}),
)


def ablation_variants() -> list[tuple[str, str, dict, dict]]:
    """:data:`ABLATIONS` as a list (fresh option dicts, safe to modify)."""
    return [(a, v, dict(kw), dict(base)) for a, v, kw, base in ABLATIONS]


def zoo_names() -> list[str]:
    """The registered classifiers (:data:`ZOO`)."""
    return list(ZOO)


def task_names() -> list[str]:
    """The registered detection and segmentation networks (:data:`TASK_ZOO`)."""
    return list(TASK_ZOO)


def get_arch(name: str, **options) -> ArchSpec:
    """Build the zoo architecture ``name`` (:data:`ZOO` or :data:`TASK_ZOO`) with keyword
    ``options`` (e.g. ``resolution=192``, or ``(1024, 2048)``)."""
    factory = ZOO.get(name) or TASK_ZOO.get(name)
    if factory is None:
        raise ValueError(f"unknown architecture {name!r}; `hwlat arch list` shows the zoo")
    fn = factory.func if isinstance(factory, functools.partial) else factory
    allowed = set(inspect.signature(fn).parameters) - {"family", "backbone"}
    bad = set(options) - allowed
    if bad:
        raise ValueError(f"{name}: unknown option(s) {sorted(bad)} (allowed: {sorted(allowed)})")
    return factory(**options)
