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

import hashlib
import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hwlat import __version__
from hwlat.archs.codec import decode, encode
from hwlat.archs.ir import ArchSpec, resolution_str
from hwlat.archs.layers import layers
from hwlat.archs.pieces import model
from hwlat.archs.segments import canonical
from hwlat.errors import StoreError, TableError
from hwlat.profiler.storage.device import device_key
from hwlat.profiler.storage.store import Store, canonical_json, now

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
    progress: bool = False,
) -> dict:
    """Import the latency ``column`` (ms) of the CSV ``path`` as model measurements of the device
    named ``device`` into ``store`` (created if missing); all or nothing.

    Returns counts and the device: ``rows``, ``added``, ``skipped`` (already stored, same value),
    ``device_key``. ``source`` defaults to the file name and column. ``progress`` shows a bar
    while the workloads are built and written.

    Each distinct architecture's workload is built once (for a layer-wise space from pieces
    cached per position and choice, :class:`_SpaceSpecs`), and everything is written in one
    transaction (``executemany``). A file whose rows are all stored already, with the same
    latencies, is checked without writing anything.
    """
    items = _fast_items(path, column, space, progress)
    n_rows = None
    if items is None:  # the exact row-by-row reader: its messages, or the tables it alone accepts
        table = read_table(path, column, space)
        n_rows = len(table.archs)
        items = _items_of_archs(table, progress)
    else:
        items, n_rows = items
    fp = table_fingerprint(device, source or f"{Path(path).name}, column {column}", runtime)
    own = not isinstance(store, Store)
    st = Store(store) if own else store
    try:
        key = device_key(fp)
        added, skipped = _write(
            st, fp, key, items, f"import-table:{Path(path).name}:{column}", path, column, device, progress
        )
    finally:
        if own:
            st.close()
    return {
        "rows": n_rows,
        "added": added,
        "skipped": skipped,
        "device_key": key,
        "distinct": len(items),
    }


# -- the fast path ------------------------------------------------------------------------------


@dataclass
class _Item:
    """One distinct architecture of a table: its model workload (spec as canonical JSON text)
    and its latency, with the CSV line it was first seen on."""

    key: str
    spec: str
    madds: int
    params: int
    ms: float
    line: int
    vec: tuple[int, ...] | None = field(default=None, compare=False)


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="row", disable=not progress, dynamic_ncols=True, leave=False)


def _item_of(w, ms: float, line: int) -> _Item:
    return _Item(w.key, canonical_json(w.spec()), w.madds, w.params, ms, line)


def _items_of_archs(table: Table, progress: bool) -> list[_Item]:
    """The distinct workloads of checked rows (``read_table`` has refused conflicting twins)."""
    items: dict[str, _Item] = {}
    with _bar(len(table.archs), "workloads", progress) as bar:
        for arch, ms, ln in zip(table.archs, table.latency_ms, table.lines):
            w = model(arch)
            if w.key not in items:
                items[w.key] = _item_of(w, ms, ln)
            bar.update()
    return list(items.values())


def _fast_items(path, column: str, space: str | None, progress: bool) -> tuple[list[_Item], int] | None:
    """The distinct workloads of a clean space table, read column-wise; ``None`` when the table
    is anything else (a codec-string table, a damaged cell, an unusual spelling of a number,
    a space without per-position pieces): :func:`read_table` then reads it row by row, with
    its exact messages."""
    if space is None:
        return None
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception:  # noqa: BLE001 - read_table names the problem
        return None
    df.columns = [c.strip() for c in df.columns]
    specs = _SpaceSpecs.of(space)
    if specs is None or df.empty or column not in df.columns:
        return None
    cols = [f"op{i}" for i in range(specs.n)]
    if any(c not in df.columns for c in cols):
        return None
    index = {str(i): i for i in range(specs.n_ops)}
    vecs = df[cols].apply(lambda s: s.map(index))
    if vecs.isna().to_numpy().any():
        return None
    try:
        lat = [float(x) for x in df[column]]
    except ValueError:
        return None
    if not all(math.isfinite(v) and v > 0 for v in lat):
        return None
    items: dict[str, _Item] = {}
    first: dict[str, int] = {}
    with _bar(len(lat), "workloads", progress) as bar:
        for i, (vec, ms) in enumerate(zip(vecs.itertuples(index=False, name=None), lat)):
            code = specs.code(vec)
            j = first.setdefault(code, i)
            if j != i:
                if not _same(lat[j], ms):
                    raise TableError(
                        f"{path}, line {i + 2}, column {column!r}: the architecture of line "
                        f"{j + 2} again, with a different latency ({ms:g} ms against "
                        f"{lat[j]:g} ms)"
                    )
            else:
                items[code] = specs.item(vec, code, ms, i + 2)
            bar.update()
    if not specs.checked(items.values(), space):
        return None
    return list(items.values()), len(lat)


class _SpaceSpecs:
    """The model workloads of a layer-wise space, assembled from pieces cached per position and
    choice: in such a space a position's input shape does not depend on the other choices, so
    its block's codec token, layer rows and costs do not either. The assembled key, spec text,
    MAdds and params equal those of ``model(space.decode(vector))`` (checked on a few rows of
    every import, :meth:`checked`; any difference sends the import down the exact path)."""

    _cache: dict[str, _SpaceSpecs | None] = {}

    @classmethod
    def of(cls, name: str) -> _SpaceSpecs | None:
        if name not in cls._cache:
            sp = space_of(name)
            cls._cache[name] = cls(sp) if hasattr(sp, "layer_plan") and hasattr(sp, "ops") else None
        return cls._cache[name]

    def __init__(self, sp):
        self.space = sp
        self.n, self.n_ops = len(sp.dims), len(sp.ops)
        self.tokens, self.rows, self.madds, self.params = [], [], [], []
        for c in range(self.n_ops):
            arch = sp.decode((c,) * self.n)
            toks = encode(arch).split(",")
            rows = layers(arch)
            if len(toks) != self.n + 4:  # in, stem, one per position, head, fc
                raise ValueError(f"space {sp.name}: unexpected codec string {','.join(toks)}")
            self.head_code, self.tail_code = toks[:2], toks[-2:]
            self.tokens.append(toks[2:-2])
            by_block = [[r for r in rows if r.block == p] for p in range(self.n)]
            self.rows.append(by_block)
            self.madds.append([sum(r.madds for r in b) for b in by_block])
            self.params.append([sum(r.params for r in b) for b in by_block])
            n_stem = next(i for i, r in enumerate(rows) if r.block >= 0)
            n_head = next(i for i, r in enumerate(reversed(rows)) if r.block >= 0)
            self.stem, self.head = rows[:n_stem], rows[len(rows) - n_head :]
        self.fixed_madds = sum(r.madds for r in (*self.stem, *self.head))
        self.fixed_params = sum(r.params for r in (*self.stem, *self.head))
        self._frags: dict[tuple[int, int, int], str] = {}
        self.stem_json = _rows_json(self.stem, 0)
        self.head_json = _rows_json(self.head, 0)
        self.resolution = resolution_str(sp.resolution)

    def code(self, vec) -> str:
        return ",".join((*self.head_code, *(self.tokens[c][p] for p, c in enumerate(vec)), *self.tail_code))

    def item(self, vec, code: str, ms: float, line: int) -> _Item:
        first = next((p for p, c in enumerate(vec) if self.rows[c][p]), 0)
        frags = [self.stem_json]
        for p, c in enumerate(vec):
            f = self._frags.get((p, c, first))
            if f is None:
                f = self._frags[p, c, first] = _rows_json(self.rows[c][p], first)
            if f:
                frags.append(f)
        frags.append(self.head_json)
        name = f"{self.space.name}-{'.'.join(map(str, vec))}"
        label = f"{name} @{self.resolution}"
        spec = (
            f'{{"arch":{json.dumps(code)},"granularity":"model","label":{json.dumps(label)},'
            f'"name":{json.dumps(name)},"rows":[{",".join(f for f in frags if f)}]}}'
        )
        madds = self.fixed_madds + sum(self.madds[c][p] for p, c in enumerate(vec))
        params = self.fixed_params + sum(self.params[c][p] for p, c in enumerate(vec))
        key = f"model:{hashlib.sha1(json.dumps([{'arch': code}], separators=(',', ':')).encode()).hexdigest()[:20]}"
        return _Item(key, spec, madds, params, ms, line, tuple(vec))

    def checked(self, items, space: str, k: int = 4) -> bool:
        """Whether the first ``k`` items (and one per first-block offset) equal the exact path's."""
        picked: dict[object, _Item] = {}
        for i, it in enumerate(items):
            first = next((p for p, c in enumerate(it.vec) if self.rows[c][p]), 0)
            picked.setdefault(("first", first), it)
            if i < k:
                picked.setdefault(i, it)
        for it in picked.values():
            ref = _item_of(model(self.space.decode(it.vec)), it.ms, it.line)
            if ref != it:
                return False
        return True


def _rows_json(rows, first: int) -> str:
    """Canonical JSON of layer rows (:func:`hwlat.archs.segments.canonical` of a whole network
    whose first block is ``first``), without the enclosing brackets."""
    if not rows:
        return ""
    recs = canonical(rows)
    for r, rec in zip(rows, recs):
        rec["b"] = r.block - first if r.block >= 0 else -1
    return ",".join(canonical_json(rec) for rec in recs)


def _stored(con, key: str) -> dict[str, float]:
    """The stored latency (median over repeats, warm first) of each model workload of the device
    ``key``, as :meth:`Store.frame` gives it."""
    per: dict[tuple[str, str], list[float]] = {}
    for k, variant, ms in con.execute(
        "SELECT m.workload_key, m.variant, m.median_ms FROM measurements m "
        "JOIN devices d ON d.id = m.device_id JOIN workloads w ON w.key = m.workload_key "
        "WHERE d.key = ? AND w.granularity = 'model' ORDER BY m.id",
        (key,),
    ):
        per.setdefault((k, variant), []).append(float(ms))
    out: dict[str, float] = {}
    for (k, variant), v in per.items():
        if variant == "warm" or k not in out:
            out[k] = float(np.median(v))
    return out


def _write(st: Store, fp, key, items, run_id, path, column, device, progress) -> tuple[int, int]:
    """Check ``items`` against what the store holds for the device and write the new ones, all
    in one transaction; nothing is written when every item is stored already."""

    def check(stored: dict[str, float]) -> list[_Item]:
        for it in items:
            if it.key in stored and not _same(stored[it.key], it.ms):
                raise TableError(
                    f"{path}, line {it.line}, column {column!r}: {st.path} already holds "
                    f"{stored[it.key]:g} ms for this architecture on device {device!r}, "
                    f"not {it.ms:g} ms"
                )
        return [it for it in items if it.key not in stored]

    con = st._db
    try:
        con.execute("BEGIN")  # one consistent snapshot for the read-only check
        try:
            todo = check(_stored(con, key))
            if not todo:
                _check_workloads(st, con, items)
        finally:
            con.execute("COMMIT")
    except sqlite3.Error as e:
        raise StoreError(f"{st.path}: {e}") from e
    if not todo:
        return 0, len(items)
    with st._tx() as con:
        todo = check(_stored(con, key))  # again under the write lock: another writer may have been first
        device_id = st._add_device_in(con, fp)
        new = _check_workloads(st, con, todo, spec=True)
        when, version, before = now(), __version__, con.total_changes
        with _bar(len(todo), "writing", progress) as bar:
            for lo in range(0, max(len(todo), 1), _CHUNK):
                part = todo[lo : lo + _CHUNK]
                con.executemany(
                    "INSERT INTO workloads (key, granularity, spec, madds, params) "
                    "VALUES (?, 'model', ?, ?, ?)",
                    [(it.key, it.spec, it.madds, it.params) for it in part if it.key in new],
                )
                con.executemany(
                    "INSERT INTO measurements (workload_key, device_id, variant, median_ms, n, "
                    "finished_at, run_id, hwlat_version, repeat) VALUES (?, ?, 'warm', ?, 1, ?, ?, ?, 0) "
                    "ON CONFLICT (workload_key, device_id, variant, repeat) DO NOTHING",
                    [(it.key, device_id, it.ms, when, run_id, version) for it in part],
                )
                bar.update(len(part))
        added = con.total_changes - before - len(new)
    return added, len(items) - added


_CHUNK = 5000


def _check_workloads(st: Store, con, items: list[_Item], spec: bool = False) -> set[str]:
    """The keys of ``items`` not yet in the store's workloads; a stored one with other content
    raises :class:`StoreError` as :meth:`Store.add_workload` does (the granularity, MAdds and
    params always, the spec with ``spec``: for the workloads about to be measured)."""
    keys = [it.key for it in items]
    have: dict[str, tuple] = {}
    for lo in range(0, len(keys), 900):
        part = keys[lo : lo + 900]
        for row in con.execute(
            f"SELECT key, granularity, madds, params{', spec' if spec else ''} FROM workloads "
            f"WHERE key IN ({','.join('?' * len(part))})",
            part,
        ):
            have[row[0]] = row[1:]
    for it in items:
        old = have.get(it.key)
        if old is None:
            continue
        fields = ("granularity", "madds", "params", "spec")
        diff = [f for f, a, b in zip(fields, old, ("model", it.madds, it.params, it.spec)) if a != b]
        if diff:
            raise StoreError(
                f"{st.path}: workload {it.key!r} already exists with a different {', '.join(diff)}"
            )
    return {k for k in keys if k not in have}
