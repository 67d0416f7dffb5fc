"""MnasNet-style block-wise (factorized hierarchical) search spaces centred on MobileNetV3.

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

Choice vectors
--------------
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

The MobileNetV3 spaces
----------------------
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

import math
import numbers
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from hwlat.archs.ir import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, SESpec
from hwlat.archs.layers import layers
from hwlat.archs.zoo import make_divisible

__all__ = ["DECISIONS", "KERNELS", "expansion", "StageChoice", "StageSpace", "SearchSpace"]

#: The per-stage decisions, in vector order.
DECISIONS = ("kernel", "ratio", "se", "act", "depth", "width")
#: Allowed depthwise kernel sizes.
KERNELS = (3, 5, 7)
# decision name -> StageSpace field holding its options
_OPTION_FIELD = {"kernel": "kernels", "ratio": "ratios", "se": "se", "act": "acts",
                 "depth": "depths", "width": "widths"}


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def expansion(cin: int, ratio: float) -> int:
    """Expansion channels of a layer with ``cin`` input channels: ``cin`` for ratio 1, else
    ``make_divisible(cin · ratio, 8)``."""
    return cin if ratio == 1 else make_divisible(cin * ratio)


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
    elif name == "widths" and (v < 8 or v % 8):
        raise ValueError(f"{where}: widths must be positive multiples of 8, got {v}")


@dataclass(frozen=True)
class SearchSpace:
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

    @cached_property
    def size(self) -> int:
        """Number of distinct architectures (= number of distinct vectors, product of ``dims``)."""
        return math.prod(self.dims)

    @property
    def reference_vector(self) -> tuple[int, ...] | None:
        """:attr:`reference` encoded as a vector, or ``None``."""
        return None if self.reference is None else self.encode(self.reference)

    def describe_position(self, i: int) -> str:
        """Human-readable name of vector position ``i``, e.g. ``"position 7 (stage 1, ratio)"``."""
        s, d = self.positions[i]
        return f"position {i} (stage {s}, {d})"

    # -- vectors <-> choices <-> architectures ------------------------------------------------
    def check_vector(self, vector: Sequence[int]) -> tuple[int, ...]:
        """Validate ``vector`` and return it as a tuple of Python ints.

        Raises
        ------
        ValueError
            Wrong length, a non-integer entry or an index out of range; the message names the
            position and its stage.
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
            pos = self.describe_position(i) if i < n else f"position {i} (past the last stage)"
            raise ValueError(
                f"vector: expected {n} entries ({len(self.stages)} stages x {len(DECISIONS)} "
                f"decisions), got {len(vector)}; first {what} entry is {pos}"
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
                    raise ValueError(f"choices stage {s}: unknown keys {sorted(extra)}, missing "
                                     f"keys {sorted(missing)}")
                get = c.__getitem__
            elif isinstance(c, StageChoice):
                get = lambda d, c=c: getattr(c, d)  # noqa: E731
            else:
                raise ValueError(f"choices stage {s}: expected a StageChoice or mapping, got "
                                 f"{type(c).__name__}")
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
                blocks.append(BlockSpec(
                    exp=exp, out=c.width, kernel=c.kernel, stride=st.stride if j == 0 else 1,
                    act=c.act, se=SESpec(make_divisible(exp / 4)) if c.se else None, residual=None,
                ))
                cin = c.width
        return ArchSpec(
            name=f"{self.name}-{'.'.join(map(str, vector))}",
            resolution=self.resolution,
            stem=self.stem,
            blocks=tuple(blocks),
            head=self.head,
            num_classes=self.num_classes,
            meta={"space": self.name, "vector": vector},
        )

    # -- random access -----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random vector drawn from ``rng`` (a ``numpy.random.Generator``)."""
        _check_rng(rng)
        return tuple(int(x) for x in rng.integers(0, np.asarray(self.dims)))

    def sample_arch(self, rng: np.random.Generator) -> ArchSpec:
        """``decode(sample(rng))``."""
        return self.decode(self.sample(rng))

    def mutate(self, vector: Sequence[int], rng: np.random.Generator, n: int = 1) -> tuple[int, ...]:
        """A copy of ``vector`` with exactly ``n`` distinct positions changed to a different index.

        Positions are drawn uniformly among those with more than one option, new indices uniformly
        among the other options. Raises ``ValueError`` if ``n`` exceeds that number of positions.
        """
        _check_rng(rng)
        v = list(self.check_vector(vector))
        mutable = [i for i, d in enumerate(self.dims) if d > 1]
        if not _is_int(n) or not 0 <= n <= len(mutable):
            raise ValueError(f"mutate: n must be an integer in 0..{len(mutable)} (positions with "
                             f"more than one option), got {n!r}")
        for p in sorted(int(p) for p in rng.choice(len(mutable), size=int(n), replace=False)):
            i = mutable[p]
            new = int(rng.integers(0, self.dims[i] - 1))
            v[i] = new + 1 if new >= v[i] else new
        return tuple(v)

    # -- the paper's spaces --------------------------------------------------------------------
    @classmethod
    def mobilenetv3_large(cls, resolution: int = 224, num_classes: int = 1000) -> "SearchSpace":
        """Space centred on MobileNetV3-Large (paper Table 1); 6 stages, see module docstring."""
        return _v3_space("large", resolution, num_classes)

    @classmethod
    def mobilenetv3_small(cls, resolution: int = 224, num_classes: int = 1000) -> "SearchSpace":
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
        raise TypeError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")


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
