"""Search spaces as data: named values with choices per position, a decoder to :class:`ArchSpec`,
an encoder back, and a seeded sampler.

Every space maps a *choice vector* (one option index per position; :attr:`dims` options each) to an
architecture: ``decode(vector) -> ArchSpec``, ``encode_arch(arch) -> vector``, ``sample(rng)``,
``mutate(vector, rng)``, ``check_vector(vector)``. The registry names them (:func:`get_space`,
:data:`SPACE_NAMES`):

=====================  ========================================================================
name                   space
=====================  ========================================================================
``large``, ``small``   :class:`SearchSpace`: MnasNet-style block-wise spaces centred on
                       MobileNetV3-Large / -Small (36 / 30 positions; below), 224 px
``fbnet_cifar100``     :class:`LayerwiseSpace`: the FBNet space of HW-NAS-Bench in its CIFAR-100
                       setting (22 positions × 9 blocks, 32 px, stem stride 1, 100 classes)
``fbnet_imagenet``     the same space in its ImageNet setting (224 px, stem stride 2, 1000 classes)
=====================  ========================================================================

An architecture of a space is written on the command line as ``SPACE:i,j,k,...`` (the vector,
comma-separated), e.g. ``fbnet_cifar100:7,8,1,8,4,8,8,8,7,4,1,4,7,3,2,7,3,2,4,2,4,5``
(:func:`parse_ref`).

The FBNet spaces
----------------
Layer-wise (Wu et al. 2019; HW-NAS-Bench, Li et al. 2021): a fixed stem, 22 searchable layers in 7
stages of ``[1, 4, 4, 4, 4, 4, 1]`` layers with output widths ``[16, 24, 32, 64, 112, 184, 352]``
and first-layer strides ``[1, 1, 2, 2, 1, 2, 1]`` (ImageNet: ``[1, 2, 2, 2, 1, 2, 1]``), each layer
choosing one of 9 blocks (:data:`FBNET_OPS`, in the field's index order ``0..8``: ``k3_e1``,
``k3_e1_g2``, ``k3_e3``, ``k3_e6``, ``k5_e1``, ``k5_e1_g2``, ``k5_e3``, ``k5_e6``, ``skip``), then a
1×1 conv to 1504 (ImageNet 1984) channels + BN + ReLU, pooling and the classifier. The vector is
exactly HW-NAS-Bench's ``op_idx_list`` (the columns ``op0 … op21`` of the published tables).
``kK_eE[_gG]`` is a :class:`~hwlat.archs.ir.BlockSpec` with ``E·C_in`` expansion channels (the
expansion conv is present even at ``E = 1``), ``G`` groups on both 1×1 convs and a channel shuffle
after the expansion when ``G > 1``, ReLU, no SE; ``skip`` is a :class:`~hwlat.archs.ir.SkipSpec`.

The MobileNetV3 spaces
----------------------
A :class:`SearchSpace` is a fixed stem, a sequence of stages (:class:`StageSpace`), a fixed head and
a classifier. Following MnasNet (Tan et al. 2019, §4.1), each stage makes **one** choice for each
decision and every layer of the stage shares it:

==========  ===================================================================================
decision    meaning
==========  ===================================================================================
``kernel``  depthwise kernel size (3, 5 or 7)
``ratio``   expansion ratio; expansion channels are ``make_divisible(cin · ratio, 8)`` where
            ``cin`` is the layer's input channels. Ratio 1 means no expansion conv (exp = cin).
``se``      squeeze-excite on/off (squeeze ``make_divisible(exp/4, 8)``, ReLU, hard-sigmoid gate)
``act``     activation after the expansion and depthwise convs (ReLU or h-swish)
``depth``   number of bottleneck layers in the stage
``width``   output channels of every layer of the stage (absolute, a multiple of 8)
==========  ===================================================================================

The first layer of a stage has the stage's fixed ``stride``; the others have stride 1. Residual
shortcuts are automatic (``BlockSpec.residual = None``).

Choice vectors of the block-wise spaces
---------------------------------------
An architecture is a tuple of ``6 · len(stages)`` integers, one index per (stage, decision) in the
order of :data:`DECISIONS`: ``(k0, r0, se0, a0, d0, w0, k1, r1, ...)``. Position ``6·s + j`` indexes
the options of decision ``DECISIONS[j]`` of stage ``s``. :attr:`SearchSpace.dims` gives the number
of options per position. The construction checks guarantee that distinct vectors decode to distinct
networks, so :attr:`SearchSpace.size` (the product of ``dims``) is the number of distinct
architectures. Two conditions make this true and are enforced when the space is built:

* the expansion ratios of a stage give distinct expansion channel counts for every possible input
  width of the stage's first layer;
* a stride-1 stage shares no width option with the stage before it (otherwise a 3+2 and a 2+3 split
  of identical layers would be the same network).

The paper's networks in them
----------------------------
:meth:`SearchSpace.mobilenetv3_large` and :meth:`SearchSpace.mobilenetv3_small` group the bottlenecks
of the paper's Tables 1 and 2 into stages at each change of output width (every stride-2 layer starts
one). Stem (16, h-swish, stride 2) and the efficient last stage (Large 960→1280, Small 576→1024) are
fixed, as in :func:`hwlat.archs.zoo.mobilenetv3`. :attr:`SearchSpace.reference` holds the paper's
choices. Because the paper's expansion widths differ between layers of some stages (NetAdapt shrank
them after the search), the paper's network is **not exactly** a point of a space whose layers share
one ratio per stage:

* Large stage 1 (out 24) expands 64, 72 (ratios 4, 3) — the reference uses ratio 4: 64, 96;
* Large stage 3 (out 80) expands 240, 200, 184, 184 (ratios 6, 2.5, 2.3, 2.3) — the reference uses
  ratio 3: 120, 240, 240, 240;
* Small stage 1 (out 24) expands 72, 88 (ratios 4.5, 3.67) — the reference uses ratio 3: 48, 72;
* Small stage 2 (out 40) expands 96, 240, 240 (ratios 4, 6, 6) — the reference uses ratio 6:
  144, 240, 240.

Every other stage, and every kernel, stride, width, depth, SE and activation choice, is exactly the
paper's, so decoding the reference gives the paper's blocks except ``exp`` (and the SE squeeze
derived from it) in those four stages. The reference ratios of those stages are the combination
that minimises ``|Δmadds|/madds + |Δparams|/params`` against :func:`hwlat.archs.zoo.mobilenetv3`:
Large 220.1 M multiply-adds / 5.49 M parameters (paper network: 216.6 M / 5.48 M), Small
55.5 M / 2.55 M (paper network: 56.5 M / 2.54 M).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from hwlat.archs.ir import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, SESpec, SkipSpec
from hwlat.archs.layers import layers
from hwlat.archs.zoo import CHANNEL_DIVISOR, make_divisible, se_squeeze
from hwlat.errors import InvalidArchError

__all__ = [
    "DECISIONS",
    "KERNELS",
    "expansion",
    "Space",
    "StageChoice",
    "StageSpace",
    "SearchSpace",
    "LayerOp",
    "LayerStage",
    "LayerwiseSpace",
    "FBNET_OPS",
    "fbnet_space",
    "SPACE_NAMES",
    "DEFAULT_SPACE",
    "get_space",
    "is_space_ref",
    "parse_ref",
    "parse_sample",
]

#: The per-stage decisions, in vector order.
DECISIONS = ("kernel", "ratio", "se", "act", "depth", "width")
#: Allowed depthwise kernel sizes.
KERNELS = (3, 5, 7)
# decision name -> StageSpace field holding its options
_OPTION_FIELD = {
    "kernel": "kernels",
    "ratio": "ratios",
    "se": "se",
    "act": "acts",
    "depth": "depths",
    "width": "widths",
}


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def expansion(cin: int, ratio: float) -> int:
    """Expansion channels of a layer with ``cin`` input channels: ``cin`` for ratio 1, else
    ``make_divisible(cin · ratio, 8)``."""
    return cin if ratio == 1 else make_divisible(cin * ratio)


class Space:
    """What every search space offers, on top of ``dims`` and ``describe_position`` (subclasses).

    Subclasses are frozen dataclasses with ``name``, ``resolution`` and ``num_classes`` and define
    :meth:`decode` and :meth:`encode_arch`.
    """

    name: str
    resolution: int
    num_classes: int

    dims: tuple[int, ...]  # number of options per vector position

    @property
    def size(self) -> int:
        """Number of distinct vectors (product of ``dims``)."""
        return math.prod(self.dims)

    def describe_position(self, i: int) -> str:  # pragma: no cover - overridden
        return f"position {i}"

    def options_at(self, i: int) -> tuple:  # pragma: no cover - overridden
        """The options of vector position ``i``, in index order."""
        raise NotImplementedError

    def decode(self, vector: Sequence[int]) -> ArchSpec:  # pragma: no cover - overridden
        raise NotImplementedError

    def encode_arch(self, arch: ArchSpec) -> tuple[int, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _layout(self) -> str:
        return f"{len(self.dims)} positions"

    def check_vector(self, vector: Sequence[int]) -> tuple[int, ...]:
        """Validate ``vector`` and return it as a tuple of Python ints.

        Raises
        ------
        ValueError
            Wrong length, a non-integer entry or an index out of range; the message names the
            position (and its stage).
        """
        if isinstance(vector, np.ndarray):
            if vector.ndim != 1:
                raise ValueError(f"vector: expected a 1-D sequence, got an array of shape {vector.shape}")
            vector = list(vector)
        if isinstance(vector, (str, bytes, Mapping)) or not isinstance(vector, Sequence):
            raise ValueError(f"vector: expected a sequence of integers, got {type(vector).__name__}")
        n = len(self.dims)
        if len(vector) != n:
            i = min(len(vector), n)
            what = "missing" if len(vector) < n else "unexpected"
            pos = self.describe_position(i) if i < n else f"position {i} (past the last one)"
            raise ValueError(
                f"vector: expected {n} entries ({self._layout()}), got {len(vector)}; "
                f"first {what} entry is {pos}"
            )
        out = []
        for i, (x, d) in enumerate(zip(vector, self.dims)):
            if not _is_int(x):
                raise ValueError(f"vector {self.describe_position(i)}: expected an integer index, got {x!r}")
            if not 0 <= x < d:
                raise ValueError(
                    f"vector {self.describe_position(i)}: index {int(x)} out of range 0..{d - 1}"
                )
            out.append(int(x))
        return tuple(out)

    def _arch(self, stem: ConvSpec, blocks: Sequence, head: HeadSpec, vector: tuple[int, ...]) -> ArchSpec:
        return ArchSpec(
            name=f"{self.name}-{'.'.join(map(str, vector))}",
            resolution=self.resolution,
            stem=stem,
            blocks=tuple(blocks),
            head=head,
            num_classes=self.num_classes,
            meta={"space": self.name, "vector": vector},
        )

    def _check_fixed(self, arch: ArchSpec, stem: ConvSpec, head: HeadSpec) -> None:
        """Raise ``InvalidArchError`` naming the first fixed part of ``arch`` the space does not have."""
        if not isinstance(arch, ArchSpec):
            raise TypeError(f"expected an ArchSpec, got {type(arch).__name__}")
        for what, got, want in (
            ("resolution", arch.resolution, self.resolution),
            ("num_classes", arch.num_classes, self.num_classes),
            ("in_channels", arch.in_channels, 3),
            ("stem", arch.stem, stem),
            ("head", arch.head, head),
        ):
            if got != want:
                raise InvalidArchError(f"arch.{what}: {got} is not in space {self.name!r} (which has {want})")

    # -- random access -----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random vector drawn from ``rng`` (a ``numpy.random.Generator``)."""
        _check_rng(rng)
        return tuple(int(x) for x in rng.integers(0, np.asarray(self.dims)))

    def sample_arch(self, rng: np.random.Generator) -> ArchSpec:
        """``decode(sample(rng))``."""
        return self.decode(self.sample(rng))

    def sample_archs(self, n: int, seed: int = 0) -> list[ArchSpec]:
        """``n`` architectures sampled with ``numpy.random.default_rng(seed)`` (deterministic)."""
        rng = np.random.default_rng(seed)
        return [self.sample_arch(rng) for _ in range(n)]

    def mutate(self, vector: Sequence[int], rng: np.random.Generator, n: int = 1) -> tuple[int, ...]:
        """A copy of ``vector`` with exactly ``n`` distinct positions changed to a different index.

        Positions are drawn uniformly among those with more than one option, new indices uniformly
        among the other options. Raises ``ValueError`` if ``n`` exceeds that number of positions.
        """
        _check_rng(rng)
        v = list(self.check_vector(vector))
        mutable = [i for i, d in enumerate(self.dims) if d > 1]
        if not _is_int(n) or not 0 <= n <= len(mutable):
            raise ValueError(
                f"mutate: n must be an integer in 0..{len(mutable)} (positions with "
                f"more than one option), got {n!r}"
            )
        for p in sorted(int(p) for p in rng.choice(len(mutable), size=int(n), replace=False)):
            i = mutable[p]
            new = int(rng.integers(0, self.dims[i] - 1))
            v[i] = new + 1 if new >= v[i] else new
        return tuple(v)


@dataclass(frozen=True)
class StageChoice:
    """One stage's decisions, as values (not indices).

    Attributes
    ----------
    kernel : depthwise kernel size (pixels).
    ratio : expansion ratio (expansion channels / input channels, before rounding to 8).
    se : squeeze-excite on every layer of the stage.
    act : activation of the expansion and depthwise convs.
    depth : number of layers.
    width : output channels of every layer.
    """

    kernel: int
    ratio: float
    se: bool
    act: Act
    depth: int
    width: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "act", Act.parse(self.act, "StageChoice.act"))


@dataclass(frozen=True)
class StageSpace:
    """The options of one stage; every layer of the stage shares the chosen values.

    Attributes
    ----------
    stride : stride of the stage's first layer (1 or 2); fixed, not a decision.
    widths : output-channel options (absolute channel counts, multiples of 8).
    kernels : depthwise kernel-size options, a subset of (3, 5, 7).
    ratios : expansion-ratio options (>= 1; 1 means no expansion conv).
    se : squeeze-excite options, ``(False, True)`` to search it.
    acts : activation options (:class:`~hwlat.archs.ir.Act` or names), e.g. ReLU and h-swish.
    depths : number-of-layers options (>= 1).

    Option tuples are ordered; a choice vector holds indices into them.
    """

    stride: int
    widths: tuple[int, ...]
    kernels: tuple[int, ...] = KERNELS
    ratios: tuple[float, ...] = (3, 4, 6)
    se: tuple[bool, ...] = (False, True)
    acts: tuple[Act, ...] = (Act.RELU, Act.HSWISH)
    depths: tuple[int, ...] = (1, 2, 3, 4)

    def __post_init__(self) -> None:
        if not _is_int(self.stride) or self.stride not in (1, 2):
            raise ValueError(f"StageSpace.stride: must be 1 or 2, got {self.stride!r}")
        for name in _OPTION_FIELD.values():
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ValueError(f"StageSpace.{name}: expected a sequence of options, got {value!r}")
            value = tuple(value)
            if not value:
                raise ValueError(f"StageSpace.{name}: needs at least one option")
            if name == "acts":
                value = tuple(Act.parse(a, "StageSpace.acts") for a in value)
            object.__setattr__(self, name, value)
            for v in value:
                _check_option(name, v)
            if len(set(value)) != len(value):
                raise ValueError(f"StageSpace.{name}: duplicate options in {value!r}")

    def options(self, decision: str) -> tuple:
        """The option tuple of ``decision`` (one of :data:`DECISIONS`)."""
        try:
            return getattr(self, _OPTION_FIELD[decision])
        except KeyError:
            raise ValueError(f"unknown decision {decision!r} (expected one of {DECISIONS})") from None

    @property
    def dims(self) -> tuple[int, ...]:
        """Number of options per decision, in :data:`DECISIONS` order."""
        return tuple(len(self.options(d)) for d in DECISIONS)


def _check_option(name: str, v: object) -> None:
    where = f"StageSpace.{name}"
    if name == "se":
        if not isinstance(v, bool):
            raise ValueError(f"{where}: options must be True/False, got {v!r}")
    elif name == "ratios":
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 1:
            raise ValueError(f"{where}: ratios must be finite numbers >= 1, got {v!r}")
    elif name == "acts":
        pass  # parsed already
    elif not _is_int(v):
        raise ValueError(f"{where}: options must be integers, got {v!r}")
    elif name == "kernels" and v not in KERNELS:
        raise ValueError(f"{where}: kernel {v} not in {KERNELS}")
    elif name == "depths" and v < 1:
        raise ValueError(f"{where}: depths must be >= 1, got {v}")
    elif name == "widths" and (v < CHANNEL_DIVISOR or v % CHANNEL_DIVISOR):
        raise ValueError(f"{where}: widths must be positive multiples of {CHANNEL_DIVISOR}, got {v}")


@dataclass(frozen=True)
class SearchSpace(Space):
    """A block-wise search space: fixed stem, searched stages, fixed head (see module docstring).

    Attributes
    ----------
    name : space name; decoded architectures are named ``"{name}-{i.j.k...}"``.
    resolution : input side (pixels) of every decoded network.
    stem : the fixed stem convolution.
    stages : the searched stages, in order.
    head : the fixed last stage and classifier.
    num_classes : classifier outputs.
    reference : the choices of the network the space is centred on (the paper's), or ``None``.
    """

    name: str
    resolution: int
    stem: ConvSpec
    stages: tuple[StageSpace, ...]
    head: HeadSpec
    num_classes: int = 1000
    reference: tuple[StageChoice, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"SearchSpace.name: expected a non-empty string, got {self.name!r}")
        for attr in ("resolution", "num_classes"):
            v = getattr(self, attr)
            if not _is_int(v) or v < 1:
                raise ValueError(f"SearchSpace.{attr}: expected a positive integer, got {v!r}")
        if not isinstance(self.stem, ConvSpec):
            raise ValueError(f"SearchSpace.stem: expected a ConvSpec, got {type(self.stem).__name__}")
        if not isinstance(self.head, HeadSpec):
            raise ValueError(f"SearchSpace.head: expected a HeadSpec, got {type(self.head).__name__}")
        stages = tuple(self.stages)
        if not stages:
            raise ValueError("SearchSpace.stages: needs at least one stage")
        for s, st in enumerate(stages):
            if not isinstance(st, StageSpace):
                raise ValueError(f"stage {s}: expected a StageSpace, got {type(st).__name__}")
        object.__setattr__(self, "stages", stages)
        self._check_one_to_one()
        try:  # spatial sizes depend only on the fixed strides: one decode checks them all
            layers(self._build(self.choices((0,) * len(self.dims)), (0,) * len(self.dims)))
        except ValueError as e:
            raise ValueError(f"SearchSpace {self.name!r} at resolution {self.resolution}: {e}") from None
        if self.reference is not None:
            ref = tuple(c if isinstance(c, StageChoice) else StageChoice(**c) for c in self.reference)
            object.__setattr__(self, "reference", ref)
            self.encode(ref)  # raises if not in the space

    def _check_one_to_one(self) -> None:
        prev_widths: tuple[int, ...] = (self.stem.out,)
        for s, st in enumerate(self.stages):
            for cin in prev_widths:
                seen: dict[int, float] = {}
                for r in st.ratios:
                    e = expansion(cin, r)
                    if e in seen:
                        raise ValueError(
                            f"stage {s}.ratios: ratios {seen[e]} and {r} both give {e} expansion "
                            f"channels for {cin} input channels (the encoding would not be one-to-one)"
                        )
                    seen[e] = r
            if s > 0 and st.stride == 1:
                common = sorted(set(st.widths) & set(prev_widths))
                if common:
                    raise ValueError(
                        f"stage {s}.widths: a stride-1 stage shares width option(s) {common} with "
                        f"stage {s - 1}, so its stage boundary would be ambiguous"
                    )
            prev_widths = st.widths

    # -- shape of the encoding ---------------------------------------------------------------
    @cached_property
    def dims(self) -> tuple[int, ...]:
        """Number of options per vector position (``len(DECISIONS)`` positions per stage)."""
        return tuple(d for st in self.stages for d in st.dims)

    @cached_property
    def positions(self) -> tuple[tuple[int, str], ...]:
        """``(stage index, decision name)`` of every vector position."""
        return tuple((s, d) for s in range(len(self.stages)) for d in DECISIONS)

    @property
    def reference_vector(self) -> tuple[int, ...] | None:
        """:attr:`reference` encoded as a vector, or ``None``."""
        return None if self.reference is None else self.encode(self.reference)

    def describe_position(self, i: int) -> str:
        """Human-readable name of vector position ``i``, e.g. ``"position 7 (stage 1, ratio)"``."""
        s, d = self.positions[i]
        return f"position {i} (stage {s}, {d})"

    # -- vectors <-> choices <-> architectures ------------------------------------------------
    def _layout(self) -> str:
        return f"{len(self.stages)} stages x {len(DECISIONS)} decisions"

    def options_at(self, i: int) -> tuple:
        """The options of vector position ``i`` (values of its stage's decision)."""
        s, d = self.positions[i]
        return self.stages[s].options(d)

    def choices(self, vector: Sequence[int]) -> tuple[StageChoice, ...]:
        """The per-stage values selected by ``vector`` (inverse of :meth:`encode`)."""
        v = self.check_vector(vector)
        k = len(DECISIONS)
        return tuple(
            StageChoice(**{d: st.options(d)[v[k * s + j]] for j, d in enumerate(DECISIONS)})
            for s, st in enumerate(self.stages)
        )

    def encode(self, choices: Sequence[StageChoice | Mapping[str, Any]]) -> tuple[int, ...]:
        """Vector of option indices for per-stage ``choices`` (:class:`StageChoice` or mappings
        with the keys of :data:`DECISIONS`). Raises ``ValueError`` for a value not in the space."""
        if isinstance(choices, (str, bytes, Mapping)) or not isinstance(choices, Sequence):
            raise ValueError(f"choices: expected one entry per stage, got {type(choices).__name__}")
        if len(choices) != len(self.stages):
            raise ValueError(f"choices: expected {len(self.stages)} stages, got {len(choices)}")
        out = []
        for s, (st, c) in enumerate(zip(self.stages, choices)):
            if isinstance(c, Mapping):
                extra = set(c) - set(DECISIONS)
                missing = set(DECISIONS) - set(c)
                if extra or missing:
                    raise ValueError(
                        f"choices stage {s}: unknown keys {sorted(extra)}, missing keys {sorted(missing)}"
                    )
                get = c.__getitem__
            elif isinstance(c, StageChoice):
                get = lambda d, c=c: getattr(c, d)  # noqa: E731
            else:
                raise ValueError(
                    f"choices stage {s}: expected a StageChoice or mapping, got {type(c).__name__}"
                )
            for d in DECISIONS:
                out.append(_index(st.options(d), get(d), d, s))
        return tuple(out)

    def decode(self, vector: Sequence[int]) -> ArchSpec:
        """The architecture of ``vector`` (validated; see :meth:`check_vector`)."""
        v = self.check_vector(vector)
        return self._build(self.choices(v), v)

    def choices_to_arch(self, choices: Sequence[StageChoice | Mapping[str, Any]]) -> ArchSpec:
        """The architecture of per-stage ``choices`` (values, see :meth:`encode`)."""
        return self.decode(self.encode(choices))

    def _build(self, choices: tuple[StageChoice, ...], vector: tuple[int, ...]) -> ArchSpec:
        cin = self.stem.out
        blocks = []
        for st, c in zip(self.stages, choices):
            for j in range(c.depth):
                exp = expansion(cin, c.ratio)
                blocks.append(
                    BlockSpec(
                        exp=exp,
                        out=c.width,
                        kernel=c.kernel,
                        stride=st.stride if j == 0 else 1,
                        act=c.act,
                        se=SESpec(se_squeeze(exp)) if c.se else None,
                        residual=None,
                    )
                )
                cin = c.width
        return self._arch(self.stem, blocks, self.head, vector)

    def encode_arch(self, arch: ArchSpec) -> tuple[int, ...]:
        """The vector of ``arch`` (inverse of :meth:`decode`); ``InvalidArchError`` naming the first
        stage or block that is not a point of this space."""
        self._check_fixed(arch, self.stem, self.head)
        blocks, pos, cin, choices = arch.blocks, 0, self.stem.out, []
        for s, st in enumerate(self.stages):
            b = blocks[pos] if pos < len(blocks) else None
            if not isinstance(b, BlockSpec):
                raise InvalidArchError(
                    f"block {pos}: space {self.name!r} expects the first bottleneck "
                    f"of stage {s} here, got {'nothing' if b is None else b}"
                )
            ratio = next((r for r in st.ratios if expansion(cin, r) == b.exp), None)
            if ratio is None:
                raise InvalidArchError(
                    f"block {pos}.exp: {b.exp} channels from {cin} match no "
                    f"expansion ratio of stage {s} {st.ratios}"
                )
            depth = 1
            while (
                depth < max(st.depths)
                and pos + depth < len(blocks)
                and isinstance(nb := blocks[pos + depth], BlockSpec)
                and nb.stride == 1
                and nb.out == b.out
                and nb.exp == expansion(b.out, ratio)
            ):
                depth += 1
            choices.append(StageChoice(b.kernel, ratio, b.se is not None, b.act, depth, b.out))
            pos, cin = pos + depth, b.out
        try:
            v = self.encode(choices)
        except ValueError as e:
            raise InvalidArchError(f"arch is not in space {self.name!r}: {e}") from None
        got = self.decode(v).blocks
        if got != arch.blocks:
            j = next(
                (j for j, (x, y) in enumerate(zip(got, arch.blocks)) if x != y),
                min(len(got), len(arch.blocks)),
            )
            raise InvalidArchError(
                f"block {j}: not in space {self.name!r} (its nearest point "
                f"{'.'.join(map(str, v))} has {got[j] if j < len(got) else 'no block'})"
            )
        return v

    # -- the paper's spaces --------------------------------------------------------------------
    @classmethod
    def mobilenetv3_large(cls, resolution: int = 224, num_classes: int = 1000) -> SearchSpace:
        """Space centred on MobileNetV3-Large (paper Table 1); 6 stages, see module docstring."""
        return _v3_space("large", resolution, num_classes)

    @classmethod
    def mobilenetv3_small(cls, resolution: int = 224, num_classes: int = 1000) -> SearchSpace:
        """Space centred on MobileNetV3-Small (paper Table 2); 5 stages, see module docstring."""
        return _v3_space("small", resolution, num_classes)


def _index(options: tuple, value: Any, decision: str, stage: int) -> int:
    where = f"choices stage {stage}, {decision}"
    if decision == "act":
        value = Act.parse(value, where)
    elif decision == "se":
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{where}: expected True/False, got {value!r}")
        value = bool(value)
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    for i, o in enumerate(options):
        if o == value:
            return i
    raise ValueError(f"{where}: {value!r} is not an option (options: {options})")


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )


RE, HS = Act.RELU, Act.HSWISH
_FIRST = dict(ratios=(1, 3, 6), depths=(1, 2))  # first stage: ratio 1 = no expansion conv
# Per family: (stage options, paper choice (kernel, ratio, se, act, depth, width)) per stage.
# Width options are the paper's width ±~20 % rounded to multiples of 8, adjusted so that a stride-1
# stage shares no width with the stage before it.
_V3_STAGES = {
    "large": [
        (StageSpace(1, (8, 16, 24), **_FIRST), (3, 1, False, RE, 1, 16)),
        (StageSpace(2, (16, 24, 32)), (3, 4, False, RE, 2, 24)),  # paper exp 64, 72
        (StageSpace(2, (32, 40, 48)), (5, 3, True, RE, 3, 40)),
        (StageSpace(2, (64, 80, 96)), (3, 3, False, HS, 4, 80)),  # paper exp 240, 200, 184, 184
        (StageSpace(1, (88, 112, 136)), (3, 6, True, HS, 2, 112)),
        (StageSpace(2, (128, 160, 192)), (5, 6, True, HS, 3, 160)),
    ],
    "small": [
        (StageSpace(2, (8, 16, 24), **_FIRST), (3, 1, True, RE, 1, 16)),
        (StageSpace(2, (16, 24, 32)), (3, 3, False, RE, 2, 24)),  # paper exp 72, 88
        (StageSpace(2, (24, 32, 40)), (5, 6, True, HS, 3, 40)),  # paper exp 96, 240, 240
        (StageSpace(1, (48, 56, 64)), (5, 3, True, HS, 2, 48)),
        (StageSpace(2, (80, 96, 112)), (5, 6, True, HS, 3, 96)),
    ],
}
_V3_HEADS = {"large": (960, 1280), "small": (576, 1024)}


def _v3_space(family: str, resolution: int, num_classes: int) -> SearchSpace:
    rows = _V3_STAGES[family]
    conv, hidden = _V3_HEADS[family]
    return SearchSpace(
        name=f"mnas_mobilenetv3_{family}",
        resolution=resolution,
        stem=ConvSpec(out=16, kernel=3, stride=2, act=HS),
        stages=tuple(st for st, _ in rows),
        head=HeadSpec(conv=conv, conv_act=HS, hidden=hidden, hidden_act=HS, dropout=0.2),
        num_classes=num_classes,
        reference=tuple(StageChoice(*c) for _, c in rows),
    )


# -- layer-wise spaces (FBNet) ---------------------------------------------------------------------
@dataclass(frozen=True)
class LayerOp:
    """One block choice of a layer-wise space.

    ``kernel`` ``None`` is the ``skip`` layer (:class:`~hwlat.archs.ir.SkipSpec`); otherwise an
    inverted-residual block with ``kernel``×``kernel`` depthwise, ``expansion``·C_in expansion
    channels (the expansion conv is always present) and ``groups`` groups on its 1×1 convs.
    """

    name: str
    kernel: int | None = None
    expansion: int = 1
    groups: int = 1

    def block(self, cin: int, out: int, stride: int, act: Act) -> BlockSpec | SkipSpec:
        """The block of this choice for a layer with ``cin`` inputs, ``out`` outputs and ``stride``."""
        if self.kernel is None:
            return SkipSpec(out=out, stride=stride, act=act)
        exp = cin * self.expansion
        return BlockSpec(
            exp=exp,
            out=out,
            kernel=self.kernel,
            stride=stride,
            act=act,
            groups=self.groups,
            expand=True if exp == cin else None,
        )


#: FBNet's block choices in the field's index order (HW-NAS-Bench ``op_idx_list``, ``op0..op21``).
FBNET_OPS = (
    LayerOp("k3_e1", 3, 1),
    LayerOp("k3_e1_g2", 3, 1, 2),
    LayerOp("k3_e3", 3, 3),
    LayerOp("k3_e6", 3, 6),
    LayerOp("k5_e1", 5, 1),
    LayerOp("k5_e1_g2", 5, 1, 2),
    LayerOp("k5_e3", 5, 3),
    LayerOp("k5_e6", 5, 6),
    LayerOp("skip"),
)


@dataclass(frozen=True)
class LayerStage:
    """``depth`` searchable layers with ``width`` output channels; the first has ``stride``."""

    depth: int
    width: int
    stride: int

    def __post_init__(self) -> None:
        for f in ("depth", "width"):
            if not _is_int(getattr(self, f)) or getattr(self, f) < 1:
                raise ValueError(f"LayerStage.{f}: expected a positive integer, got {getattr(self, f)!r}")
        if not _is_int(self.stride) or self.stride not in (1, 2):
            raise ValueError(f"LayerStage.stride: must be 1 or 2, got {self.stride!r}")


@dataclass(frozen=True)
class LayerwiseSpace(Space):
    """A layer-wise space: fixed stem, every layer of ``stages`` chooses one of ``ops``, fixed head.

    The vector has one entry per layer (``sum(depth)`` positions), the index of its op.
    """

    name: str
    resolution: int
    stem: ConvSpec
    stages: tuple[LayerStage, ...]
    ops: tuple[LayerOp, ...]
    head: HeadSpec
    num_classes: int = 1000
    act: Act = Act.RELU

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "ops", tuple(self.ops))
        if not self.stages or not self.ops:
            raise ValueError(f"LayerwiseSpace {self.name!r}: needs at least one stage and one op")
        for what, items, cls in (("stage", self.stages, LayerStage), ("op", self.ops, LayerOp)):
            for i, x in enumerate(items):
                if not isinstance(x, cls):
                    raise ValueError(
                        f"LayerwiseSpace {self.name!r} {what} {i}: expected a {cls.__name__}, "
                        f"got {type(x).__name__}"
                    )
        try:  # a decode at each op checks shapes and group divisibility everywhere
            for i in range(len(self.ops)):
                layers(self.decode((i,) * len(self.dims)))
        except ValueError as e:
            raise ValueError(f"LayerwiseSpace {self.name!r} at resolution {self.resolution}: {e}") from None

    @cached_property
    def layer_plan(self) -> tuple[tuple[int, int, int, int], ...]:
        """Per position: ``(stage, layer in stage, stride, width)``."""
        return tuple(
            (s, j, st.stride if j == 0 else 1, st.width)
            for s, st in enumerate(self.stages)
            for j in range(st.depth)
        )

    @cached_property
    def dims(self) -> tuple[int, ...]:
        return (len(self.ops),) * len(self.layer_plan)

    def describe_position(self, i: int) -> str:
        """E.g. ``"position 5 (op5: stage 2, layer 0)"``."""
        s, j, _, _ = self.layer_plan[i]
        return f"position {i} (op{i}: stage {s}, layer {j})"

    def options_at(self, i: int) -> tuple[str, ...]:
        return tuple(op.name for op in self.ops)

    def decode(self, vector: Sequence[int]) -> ArchSpec:
        """The architecture of ``vector`` (validated; see :meth:`check_vector`)."""
        v = self.check_vector(vector)
        cin, blocks = self.stem.out, []
        for (_, _, stride, width), i in zip(self.layer_plan, v):
            blocks.append(self.ops[i].block(cin, width, stride, self.act))
            cin = width
        return self._arch(self.stem, blocks, self.head, v)

    def encode_arch(self, arch: ArchSpec) -> tuple[int, ...]:
        """The vector of ``arch`` (inverse of :meth:`decode`); ``InvalidArchError`` naming the first
        block that is none of the space's ops."""
        self._check_fixed(arch, self.stem, self.head)
        if len(arch.blocks) != len(self.layer_plan):
            raise InvalidArchError(
                f"arch.blocks: {len(arch.blocks)} blocks; space {self.name!r} has "
                f"{len(self.layer_plan)} layers"
            )
        cin, out = self.stem.out, []
        for p, ((_, _, stride, width), b) in enumerate(zip(self.layer_plan, arch.blocks)):
            i = next(
                (i for i, op in enumerate(self.ops) if op.block(cin, width, stride, self.act) == b), None
            )
            if i is None:
                raise InvalidArchError(
                    f"block {p}: {b} is none of the ops of space {self.name!r} "
                    f"at {self.describe_position(p)} ({cin}->{width} ch, stride {stride})"
                )
            out.append(i)
            cin = width
        return tuple(out)


_FBNET_DEPTHS = (1, 4, 4, 4, 4, 4, 1)
_FBNET_WIDTHS = (16, 24, 32, 64, 112, 184, 352)
_FBNET_STRIDES = {"cifar100": (1, 1, 2, 2, 1, 2, 1), "imagenet": (1, 2, 2, 2, 1, 2, 1)}
# setting -> (resolution, stem stride, head channels, classes)
_FBNET_SETTINGS = {"cifar100": (32, 1, 1504, 100), "imagenet": (224, 2, 1984, 1000)}


def fbnet_space(
    setting: str = "cifar100", resolution: int | None = None, num_classes: int | None = None
) -> LayerwiseSpace:
    """The FBNet space of HW-NAS-Bench in its ``"cifar100"`` or ``"imagenet"`` setting (module
    docstring); ``resolution`` (pixels) and ``num_classes`` override the setting's."""
    if setting not in _FBNET_SETTINGS:
        raise ValueError(
            f"fbnet_space: unknown setting {setting!r} (expected one of {sorted(_FBNET_SETTINGS)})"
        )
    res, stem_stride, head, classes = _FBNET_SETTINGS[setting]
    return LayerwiseSpace(
        name=f"fbnet_{setting}",
        resolution=res if resolution is None else resolution,
        stem=ConvSpec(out=16, kernel=3, stride=stem_stride, act=Act.RELU),
        stages=tuple(
            LayerStage(d, w, s) for d, w, s in zip(_FBNET_DEPTHS, _FBNET_WIDTHS, _FBNET_STRIDES[setting])
        ),
        ops=FBNET_OPS,
        head=HeadSpec(conv=head, conv_act=Act.RELU),
        num_classes=classes if num_classes is None else num_classes,
    )


# -- the registry ----------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., Space]] = {
    "large": lambda resolution=None, num_classes=None: SearchSpace.mobilenetv3_large(
        resolution or 224, num_classes or 1000
    ),
    "small": lambda resolution=None, num_classes=None: SearchSpace.mobilenetv3_small(
        resolution or 224, num_classes or 1000
    ),
    "fbnet_cifar100": functools.partial(fbnet_space, "cifar100"),
    "fbnet_imagenet": functools.partial(fbnet_space, "imagenet"),
}
#: Names of the registered spaces (``get_space(name)``); ``large`` is the default.
SPACE_NAMES = tuple(_REGISTRY)
DEFAULT_SPACE = "large"


@functools.lru_cache(maxsize=64)
def get_space(name: str, resolution: int | None = None, num_classes: int | None = None) -> Space:
    """The registered space ``name`` (see :data:`SPACE_NAMES`), at its own input resolution and
    classes unless ``resolution`` (pixels) / ``num_classes`` are given."""
    if name not in _REGISTRY:
        raise InvalidArchError(f"unknown search space {name!r} (expected one of {', '.join(SPACE_NAMES)})")
    return _REGISTRY[name](resolution=resolution, num_classes=num_classes)


def _split_ref(ref: str) -> tuple[str, str] | None:
    name, sep, rest = ref.partition(":")
    return (name, rest) if sep and name in _REGISTRY else None


def is_space_ref(ref: str) -> bool:
    """Whether ``ref`` starts with a registered space name and a colon (``fbnet_cifar100:...``)."""
    return isinstance(ref, str) and _split_ref(ref.strip()) is not None


def parse_ref(ref: str, resolution: int | None = None) -> ArchSpec:
    """The architecture of a ``SPACE:i,j,k,...`` reference (the space's vector, comma-separated).

    ``resolution`` decodes it in the space at that input resolution. Raises ``InvalidArchError``
    naming the space and the position of a bad entry.
    """
    split = _split_ref(ref.strip()) if isinstance(ref, str) else None
    if split is None:
        raise InvalidArchError(
            f"{ref!r}: not a search-space reference SPACE:i,j,k,... (spaces: {', '.join(SPACE_NAMES)})"
        )
    name, text = split
    space = get_space(name, resolution)
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    try:
        vector = [int(p) for p in parts]
    except ValueError:
        bad = next(i for i, p in enumerate(parts) if not p.lstrip("-").isdigit())
        raise InvalidArchError(
            f"{ref!r}: {space.describe_position(bad) if bad < len(space.dims) else f'entry {bad}'}"
            f" is {parts[bad]!r}, not an integer"
        ) from None
    try:
        return space.decode(vector)
    except InvalidArchError:
        raise
    except ValueError as e:
        raise InvalidArchError(f"space {name!r}: {e}") from None


def parse_sample(text: str, default_space: str = DEFAULT_SPACE) -> tuple[str, int]:
    """Parse a ``--sample-space`` value: ``N`` (N architectures of ``default_space``) or ``SPACE:N``."""
    text = str(text).strip()
    name, sep, count = text.rpartition(":")
    name = name if sep else default_space
    if name not in _REGISTRY:
        raise InvalidArchError(
            f"--sample-space {text!r}: unknown search space {name!r} "
            f"(expected N or SPACE:N with SPACE one of {', '.join(SPACE_NAMES)})"
        )
    if not count.isdigit():
        raise InvalidArchError(
            f"--sample-space {text!r}: expected N or SPACE:N with N a non-negative integer"
        )
    return name, int(count)
