"""The calibration set: a few networks, chosen by hwlat from a search space, that cover it.

Measured end to end together with their blocks, they teach the predictors' network-level terms what
a network of this space costs beyond the sum of its pieces, so a user never has to measure the
candidates of a search themselves. The choice is a pure function of the space, the resolutions, the
size and the seed.

Coverage. Every candidate of a large seeded pool is described by *tokens*: each block's operator
(kernel size, stride, squeeze-excite, activation, groups; a skip layer by its stride and whether it
is a conv), its expansion ratio (bucketed), each
output width, the input resolution, and the network's count of each kernel size (0, 1–2, 3–5, 6+:
the pathological 7×7 depthwise convs of some runtimes show up in proportion). Weight footprint
(parameter bytes, float32) matters too: isolated blocks keep their weights in cache, inside a large
network they stream from memory. The set starts with the smallest and the largest footprint of the
pool, then greedily adds the candidate that covers the most tokens not covered yet, ties broken by
the largest log-footprint distance to the chosen ones.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from hwlat.archs.codec import encode
from hwlat.archs.ir import ArchSpec, SkipSpec
from hwlat.archs.layers import OpKind, layers, summary

DEFAULT_SIZE = 24
DEFAULT_POOL = 2000


class Sampler(Protocol):
    """What the chooser needs of a search space: seeded samples as :class:`ArchSpec`."""

    def sample_arch(self, rng: np.random.Generator) -> ArchSpec: ...


def _bucket(n: int) -> str:
    return "0" if n == 0 else "1-2" if n <= 2 else "3-5" if n <= 5 else "6+"


def coverage_tokens(arch: ArchSpec) -> frozenset:
    """The features of ``arch`` the calibration set should cover (see the module docstring)."""
    rows = layers(arch)
    tokens = {("resolution", arch.resolution)}
    kernels: Counter = Counter()
    for r in rows:
        if r.op is OpKind.DWCONV:
            kernels[r.kernel] += 1
            tokens.add(("dw", r.kernel, r.stride, r.act.value))
        elif r.op is OpKind.CONV and r.kernel == 1:
            tokens.add(("pw", r.groups > 1, r.act.value))
            tokens.add(("width", r.out_shape[0]))
    cin = arch.stem.out
    for blk in arch.blocks:
        if isinstance(blk, SkipSpec):  # FBNet's skip: identity, or a 1×1 conv changing stride/width
            tokens.add(("skip", blk.stride, cin != blk.out))
        else:
            tokens.add(("se", blk.se is not None, blk.kernel))
            tokens.add(("ratio", round(blk.exp / cin * 2) / 2))
        cin = blk.out
    tokens |= {("k-count", k, _bucket(n)) for k, n in kernels.items()}
    return frozenset(tokens)


def weight_bytes(arch: ArchSpec) -> int:
    """Float32 weight footprint of ``arch`` in bytes (4 per parameter)."""
    return 4 * summary(arch)["params"]


def calibration_set(
    space: Sampler,
    n: int = DEFAULT_SIZE,
    seed: int = 0,
    resolutions: Sequence[int] | None = None,
    pool: int = DEFAULT_POOL,
) -> list[ArchSpec]:
    """``n`` distinct networks of ``space`` that together cover its op types, kernel sizes, widths,
    resolutions and weight footprints (greedy set cover; see the module docstring).

    ``resolutions``: input sizes to draw from (each pool candidate gets one at random); default the
    space's own. Deterministic given the arguments.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"calibration set size must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    cands: dict[str, ArchSpec] = {}
    for _ in range(max(pool, n)):
        arch = space.sample_arch(rng)
        if resolutions:
            arch = arch.with_resolution(int(rng.choice(list(resolutions))))
        cands.setdefault(encode(arch), arch)
    archs = list(cands.values())
    if len(archs) < n:
        raise ValueError(
            f"the space gave only {len(archs)} distinct networks in {pool} samples; asked for {n}"
        )
    tokens = [coverage_tokens(a) for a in archs]
    logw = np.log([weight_bytes(a) for a in archs])
    chosen = [int(np.argmin(logw))]
    if n > 1:
        chosen.append(int(np.argmax(logw)))
    covered = set().union(*(tokens[i] for i in chosen))
    while len(chosen) < n:
        best, best_score = None, None
        for i in range(len(archs)):
            if i in chosen:
                continue
            new = len(tokens[i] - covered)
            spread = float(np.min(np.abs(logw[chosen] - logw[i])))
            score = (new, spread)
            if best_score is None or score > best_score:
                best, best_score = i, score
        chosen.append(best)
        covered |= tokens[best]
    return [archs[i] for i in chosen]


def coverage_report(
    archs: Sequence[ArchSpec],
    space: Sampler,
    seed: int = 0,
    resolutions: Sequence[int] | None = None,
    pool: int = DEFAULT_POOL,
) -> dict:
    """How much of a pool's token set ``archs`` cover: ``{"covered", "total", "fraction",
    "missing"}`` (missing: up to 20 uncovered tokens), and the footprint range in MB."""
    rng = np.random.default_rng(seed + 1)
    universe: set = set()
    for _ in range(pool):
        a = space.sample_arch(rng)
        if resolutions:
            a = a.with_resolution(int(rng.choice(list(resolutions))))
        universe |= coverage_tokens(a)
    have = set().union(*(coverage_tokens(a) for a in archs)) if archs else set()
    mb = [weight_bytes(a) / 2**20 for a in archs]
    return {
        "covered": len(universe & have),
        "total": len(universe),
        "fraction": len(universe & have) / max(1, len(universe)),
        "missing": sorted(map(str, universe - have))[:20],
        "weights_mb": (min(mb), max(mb)) if mb else (math.nan, math.nan),
    }
