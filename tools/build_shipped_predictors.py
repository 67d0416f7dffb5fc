"""The ARM block tables shipped with hwlat: ``@pixel3`` and ``@raspi4``.

The ``pixel3`` and ``raspi4`` columns of the published FBNet table (``data/README.md``) are exact
sums of per-block lookup-table entries, so an :class:`~hwlat.latency_models.e2e.EndToEnd` fit on
:data:`N_TRAIN` of their rows recovers every block's cost. The shipped files hold that fitted state
(no training rows: they are the published CSV's rows listed in ``provenance``).

Rebuild them with ``python tools/build_shipped_predictors.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwlat.latency_models import persist
from hwlat.latency_models.e2e import EndToEnd

COLUMNS = ("pixel3", "raspi4")
N_TRAIN = 900
SEED = 0
SPACE = "fbnet_cifar100"
SOURCE = "published: HW-NAS-Bench via HELP (hwlat data/fbnet_cifar100_latency_ms.csv)"


def split(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows) of the published table: the first :data:`N_TRAIN` of a
    seeded permutation, and the rest."""
    perm = np.random.default_rng(SEED).permutation(n_rows)
    return np.sort(perm[:N_TRAIN]), np.sort(perm[N_TRAIN:])


def fbnet_archs(rows=None) -> list:
    """The architectures of the published table (``rows``: their positions), decoded by the space."""
    from hwlat.paper import fbnet_latencies
    from hwlat.profiler.storage.tables import space_of

    df = fbnet_latencies()
    sp = space_of(SPACE)
    ops = df[[f"op{i}" for i in range(len(sp.dims))]].to_numpy()
    idx = range(len(df)) if rows is None else rows
    return [sp.decode(ops[i]) for i in idx]


def build(column: str) -> dict:
    """The predictor state of the block table of ``column``, fitted on the training rows (without
    the training networks themselves: ``provenance`` names the rows of the shipped CSV)."""
    from hwlat.paper import fbnet_latencies
    from hwlat.profiler.storage.tables import table_fingerprint

    df = fbnet_latencies()
    tr, _ = split(len(df))
    pred = EndToEnd().fit(
        fbnet_archs(tr),
        df[column].to_numpy(float)[tr],
        fingerprint=table_fingerprint(column, SOURCE, runtime="tflite"),
        runtime="tflite",
    )
    state = pred.get_state()
    state["train"] = {"archs": [], "names": [], "latency_ms": []}  # the CSV rows below
    state["provenance"] = {
        "data": "fbnet_cifar100_latency_ms.csv",
        "column": column,
        "space": SPACE,
        "rows": f"numpy.random.default_rng({SEED}).permutation({len(df)})[:{N_TRAIN}]",
        "idx": [int(i) for i in df["idx"].to_numpy()[tr]],
    }
    return state


def main(out: str | Path | None = None) -> None:
    """Write ``data/predictors/{pixel3,raspi4}.json`` of this checkout (or ``out``)."""
    folder = Path(out) if out else Path(__file__).resolve().parents[1] / "data" / "predictors"
    folder.mkdir(parents=True, exist_ok=True)
    for col in COLUMNS:
        path = persist.write(folder / f"{col}.json", EndToEnd.__name__, build(col))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
