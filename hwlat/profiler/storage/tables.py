"""Importing end-to-end latencies measured elsewhere: a published table, a phone's
``benchmark_model`` runs, a CSV the user wrote.

A table is a CSV file with one row per network and a latency column in milliseconds. A row's
architecture is given either

* by a search space's choice vector, columns ``op0 … op{n-1}`` (``space`` names the space, e.g.
  ``fbnet_cifar100``, whose 22 columns are exactly those of the published HW-NAS-Bench tables), or
* by a column ``arch`` of codec strings (``hwlat arch show`` prints an architecture's; an optional
  ``name`` column names the networks).

Each row becomes a model measurement (``n = 1``) of one device, identified by a name the user gives
and a ``source`` (:func:`table_fingerprint`). The import is all or nothing: every row is checked
first, and any problem (a missing column, a latency that is missing, not a number or not positive,
an index outside the space, a bad codec string, the same architecture twice with different
latencies, a different latency than the store already holds) raises :class:`TableError` naming the
file, the line and the column; then all rows are written in one transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hwlat.archs.codec import decode
from hwlat.archs.ir import ArchSpec
from hwlat.archs.pieces import model
from hwlat.errors import TableError
from hwlat.profiler.storage.store import Store

ARCH_COLUMN = "arch"
NAME_COLUMN = "name"


def table_fingerprint(name: str, source: str, runtime: str = "unknown") -> dict:
    """The fingerprint of a device known only by a table: its ``name`` and the ``runtime`` the
    numbers were measured with make its device key; the ``source`` of the numbers is recorded, not
    keyed (more rows of the same device may come from elsewhere)."""
    if not isinstance(name, str) or not name.strip():
        raise TableError("a device name is required (--device NAME)")
    name = name.strip()
    return {
        "name": name,
        "source": source,
        "imported": "table",
        "hostname": None,
        "board": name,
        "cpu": None,
        "machine": None,
        "cores": None,
        "governor": None,
        "runtime": runtime,
        "runtime_version": None,
        "threads": None,
        "delegate": None,
        "extra": {"imported": "table", "name": name},
    }


def space_of(name: str):
    """The registered search space ``name`` (the one place this module reads a space)."""
    from hwlat.archs.space import SPACE_NAMES, get_space

    if name not in SPACE_NAMES:
        raise TableError(f"unknown space {name!r} (expected one of {', '.join(SPACE_NAMES)})")
    return get_space(name)


@dataclass
class Table:
    """The checked rows of a table: architectures, latencies (ms) and their CSV line numbers."""

    archs: list[ArchSpec]
    latency_ms: list[float]
    lines: list[int]


def read_table(path: str | Path, column: str, space: str | None = None) -> Table:
    """Read and check every row of ``path`` (see the module docstring); nothing is written."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise TableError(f"{path}: not a CSV table ({str(e).splitlines()[0]})") from None
    df.columns = [c.strip() for c in df.columns]
    if column not in df.columns:
        raise TableError(f"{path}: no latency column {column!r} (columns: {_names(df.columns)})")
    if df.empty:
        raise TableError(f"{path}: no rows")
    line = lambda i: i + 2  # noqa: E731 - the header is line 1
    if space is not None:
        sp = space_of(space)
        cols = [f"op{i}" for i in range(len(sp.dims))]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise TableError(
                f"{path}: space {space} needs columns op0..op{len(cols) - 1}; missing {_names(missing)}"
            )
    elif ARCH_COLUMN not in df.columns:
        raise TableError(
            f"{path}: no {ARCH_COLUMN!r} column of codec strings; give --space SPACE "
            f"for tables with op0, op1, ... columns (columns: {_names(df.columns)})"
        )
    archs, lat = [], []
    for i, row in enumerate(df.to_dict("records")):
        where = f"{path}, line {line(i)}"
        lat.append(_latency(row[column], f"{where}, column {column!r}"))
        if space is not None:
            vec = []
            for j, c in enumerate(cols):
                vec.append(_index(row[c], sp.dims[j], f"{where}, column {c!r}", space))
            archs.append(sp.decode(vec))
        else:
            try:
                arch = decode(row[ARCH_COLUMN], name=row.get(NAME_COLUMN) or f"line{line(i)}")
            except ValueError as e:
                raise TableError(f"{where}, column {ARCH_COLUMN!r}: {e}") from None
            archs.append(arch)
    seen: dict[str, int] = {}
    for i, a in enumerate(archs):
        k = model(a).key
        if k in seen and not _same(lat[seen[k]], lat[i]):
            j = seen[k]
            raise TableError(
                f"{path}, line {line(i)}, column {column!r}: the architecture of line "
                f"{line(j)} again, with a different latency ({lat[i]:g} ms against "
                f"{lat[j]:g} ms)"
            )
        seen.setdefault(k, i)
    return Table(archs, lat, [line(i) for i in range(len(archs))])


def _names(cols) -> str:
    cols = list(cols)
    return ", ".join(map(repr, cols[:12])) + (", ..." if len(cols) > 12 else "")


def _latency(text: str, where: str) -> float:
    if text is None or str(text).strip() == "":
        raise TableError(f"{where}: no latency (empty cell)")
    try:
        v = float(text)
    except ValueError:
        raise TableError(f"{where}: latency {text!r} is not a number (ms)") from None
    if not math.isfinite(v) or v <= 0:
        raise TableError(f"{where}: latency must be a positive number of ms, got {text!r}")
    return v


def _index(text: str, n: int, where: str, space: str) -> int:
    try:
        v = int(str(text).strip())
    except ValueError:
        raise TableError(
            f"{where}: {text!r} is not an option index of space {space} (an integer 0..{n - 1})"
        ) from None
    if not 0 <= v < n:
        raise TableError(f"{where}: index {v} is outside space {space} (0..{n - 1})")
    return v


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def import_table(
    path: str | Path,
    store: str | Path | Store,
    device: str,
    column: str,
    space: str | None = None,
    source: str | None = None,
    runtime: str = "unknown",
) -> dict:
    """Import the latency ``column`` (ms) of the CSV ``path`` as model measurements of the device
    named ``device`` into ``store`` (created if missing); all or nothing.

    Returns counts and the device: ``rows``, ``added``, ``skipped`` (already stored, same value),
    ``device_key``. ``source`` defaults to the file name and column.
    """
    table = read_table(path, column, space)
    fp = table_fingerprint(device, source or f"{Path(path).name}, column {column}", runtime)
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    try:
        from hwlat.profiler.storage.device import device_key

        key = device_key(fp)
        stored = st.frame(granularity="model")
        stored = dict(
            zip(
                stored.loc[stored["device_key"] == key, "key"],
                stored.loc[stored["device_key"] == key, "median_ms"],
            )
        )
        workloads, rows = {}, []
        for arch, ms, ln in zip(table.archs, table.latency_ms, table.lines):
            w = model(arch)
            if w.key in stored and not _same(stored[w.key], ms):
                raise TableError(
                    f"{path}, line {ln}, column {column!r}: {st.path} already holds "
                    f"{stored[w.key]:g} ms for this architecture on device {device!r}, "
                    f"not {ms:g} ms"
                )
            if w.key in workloads:
                continue
            workloads[w.key] = {
                "key": w.key,
                "granularity": "model",
                "spec": w.spec(),
                "madds": w.madds,
                "params": w.params,
            }
            rows.append({"workload_key": w.key, "median_ms": ms, "n": 1})
        added, skipped = st.import_rows(
            fp, list(workloads.values()), rows, run_id=f"import-table:{Path(path).name}:{column}"
        )
    finally:
        if own:
            st.close()
    return {
        "rows": len(table.archs),
        "added": added,
        "skipped": skipped,
        "device_key": key,
        "distinct": len(rows),
    }
