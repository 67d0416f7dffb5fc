"""Which networks to measure on a new device, for a ``transfer`` predictor.

HELP, NASFLAT and MultiPredict all find that the choice of the few measured networks matters. With
N measurements, ``transfer`` learns the new device's scale and how much each source's notion of
"expensive" applies; both are best pinned down by networks spread over the whole latency range that
between them contain every block choice. :func:`suggest` therefore

1. samples a pool of distinct architectures of the space (seeded);
2. scores each by the sources' predicted latency (mean of the per-source standardised logs);
3. walks N evenly spaced quantiles of that score and, among the pool networks nearest to each
   quantile, takes the one that adds the most (position, choice) pairs not yet covered.

Deterministic given the seed and the sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwlat.archs.codec import encode
from hwlat.archs.ir import ArchSpec


@dataclass(frozen=True)
class Pick:
    """One suggested network: ``ref`` (``SPACE:i,j,...``), its vector, architecture and the
    latency (ms) each source predicts for it."""

    ref: str
    vector: tuple[int, ...]
    arch: ArchSpec
    predicted_ms: tuple[float, ...]


def _space(name: str):
    from hwlat.profiler.storage.tables import space_of

    return space_of(name)


def suggest(
    sources: Sequence,
    space: str,
    n: int,
    seed: int = 0,
    pool: int = 2000,
    candidates: Sequence[Sequence[int]] | None = None,
) -> list[Pick]:
    """The ``n`` networks of ``space`` to measure (module docstring). ``candidates`` replaces the
    sampled pool with given vectors (e.g. the networks a benchmark has measurements of)."""
    if not sources:
        raise ValueError("suggest needs at least one source predictor")
    sp = _space(space)
    if candidates is None:
        rng = np.random.default_rng(seed)
        seen: dict[tuple[int, ...], None] = {}
        for _ in range(20 * pool):
            seen.setdefault(sp.sample(rng))
            if len(seen) >= pool:
                break
        vecs = list(seen)
    else:
        vecs = [sp.check_vector(v) for v in candidates]
    if n > len(vecs):
        raise ValueError(f"cannot suggest {n} networks from a pool of {len(vecs)}")
    archs = [sp.decode(v) for v in vecs]
    P = np.stack([np.asarray(s.predict_many(archs), dtype=float) for s in sources], 1)
    logs = np.log(P)
    z = (logs - logs.mean(0)) / np.where(logs.std(0) > 0, logs.std(0), 1.0)
    score = z.mean(1)
    order_q = np.quantile(score, (np.arange(n) + 0.5) / n)
    near = max(3, len(vecs) // (2 * n))
    chosen: list[int] = []
    covered: set[tuple[int, int]] = set()
    for q in order_q:
        dist = np.abs(score - q)
        dist[chosen] = np.inf
        cands = np.argsort(dist, kind="stable")[:near]
        gain = [len({(i, v) for i, v in enumerate(vecs[c])} - covered) for c in cands]
        best = cands[int(np.argmax(gain))]  # ties: the nearest to the quantile
        chosen.append(int(best))
        covered |= {(i, v) for i, v in enumerate(vecs[best])}
    return [
        Pick(
            f"{space}:{','.join(map(str, vecs[i]))}", tuple(vecs[i]), archs[i], tuple(float(x) for x in P[i])
        )
        for i in chosen
    ]


def write_csv(picks: Sequence[Pick], space: str, path: str | Path) -> Path:
    """A CSV to fill in: ``op0 … op{n-1}``, ``arch`` (codec string), ``name`` and an empty
    ``latency_ms`` column; ``hwlat profile import-table FILE --column latency_ms --space SPACE``
    reads it back."""
    import pandas as pd

    from hwlat.files import atomic_write

    rows = [
        {
            **{f"op{i}": v for i, v in enumerate(p.vector)},
            "arch": encode(p.arch),
            "name": p.arch.name,
            "latency_ms": "",
        }
        for p in picks
    ]
    df = pd.DataFrame(rows)
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
