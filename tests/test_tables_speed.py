"""The fast path of ``import_table``: the same stored rows as the exact row-by-row path, a
re-import that writes nothing, and whole-file refusals (no timing assertions)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from hwlat.archs.pieces import model
from hwlat.archs.space import get_space
from hwlat.paper import fbnet_latencies
from hwlat.profiler.storage.store import Store, canonical_json
from hwlat.profiler.storage.tables import TableError, import_table, read_table, table_fingerprint

SPACE = "fbnet_cifar100"
OPS = [f"op{i}" for i in range(22)]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    df = fbnet_latencies().iloc[:40][["idx", *OPS, "samsung_a50"]].copy()
    df.loc[0, OPS] = 8  # every position a skip: the first block is an identity, no rows
    df.loc[1, "op0"] = 8
    path = tmp_path_factory.mktemp("t") / "t.csv"
    df.to_csv(path, index=False)
    return path


def _old_import(path, db, device, column):
    """What the row-by-row path stored: one add_workload/add_measurement per row."""
    table = read_table(path, column, SPACE)
    fp = table_fingerprint(device, f"{path.name}, column {column}", "tflite")
    with Store(db) as st:
        ws, rows = {}, []
        for arch, ms in zip(table.archs, table.latency_ms):
            w = model(arch)
            if w.key not in ws:
                ws[w.key] = dict(
                    key=w.key, granularity="model", spec=w.spec(), madds=w.madds, params=w.params
                )
                rows.append({"workload_key": w.key, "median_ms": ms, "n": 1})
        st.import_rows(fp, list(ws.values()), rows, run_id=f"import-table:{path.name}:{column}")


def test_fast_path_stores_what_the_exact_path_stored(tmp_path, small):
    _old_import(small, tmp_path / "old.db", "a50", "samsung_a50")
    c = import_table(small, tmp_path / "new.db", "a50", "samsung_a50", space=SPACE, runtime="tflite")
    assert (c["rows"], c["added"], c["skipped"]) == (40, 40, 0)
    with Store(tmp_path / "old.db") as a, Store(tmp_path / "new.db") as b:
        old, new = a.frame(), b.frame()
        cols = [col for col in old.columns if col != "finished_at"]
        pd.testing.assert_frame_equal(old[cols], new[cols])
        q = "SELECT key, granularity, spec, madds, params FROM workloads ORDER BY key"
        assert a._db.execute(q).fetchall() == b._db.execute(q).fetchall()
    sp = get_space(SPACE)
    arch = sp.decode([8] * 22)
    spec = dict(zip(new["key"], new["spec"]))[model(arch).key]
    assert spec == canonical_json(model(arch).spec())


def test_reimport_adds_nothing_and_writes_nothing(tmp_path, small):
    db = tmp_path / "s.db"
    import_table(small, db, "a50", "samsung_a50", space=SPACE, runtime="tflite")
    watch = sqlite3.connect(db)
    v0 = watch.execute("PRAGMA data_version").fetchone()[0]
    files = {p: p.stat().st_mtime_ns for p in tmp_path.glob("s.db*")}
    again = import_table(small, db, "a50", "samsung_a50", space=SPACE, runtime="tflite")
    assert (again["added"], again["skipped"]) == (0, 40)
    assert watch.execute("PRAGMA data_version").fetchone()[0] == v0
    assert {p: p.stat().st_mtime_ns for p in files} == files
    watch.close()
    with Store(db) as st:
        assert len(st.frame()) == 40


def test_partial_overlap_adds_only_the_new_rows(tmp_path, small):
    db = tmp_path / "s.db"
    df = pd.read_csv(small)
    df.iloc[:25].to_csv(tmp_path / "a.csv", index=False)
    assert import_table(tmp_path / "a.csv", db, "a50", "samsung_a50", space=SPACE)["added"] == 25
    c = import_table(small, db, "a50", "samsung_a50", space=SPACE)
    assert (c["added"], c["skipped"]) == (15, 25)


@pytest.mark.parametrize(
    "cell, value, message",
    [
        ("samsung_a50", "fast", "line 7, column 'samsung_a50': latency 'fast' is not a number"),
        ("op3", "11", "line 7, column 'op3': index 11 is outside space"),
        ("samsung_a50", "-1", "line 7, column 'samsung_a50': latency must be a positive number"),
    ],
)
def test_a_damaged_row_refuses_the_whole_file_in_one_line(tmp_path, small, cell, value, message):
    db = tmp_path / "s.db"
    df = pd.read_csv(small, dtype=str)
    df.loc[5, cell] = value
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(TableError) as e:
        import_table(tmp_path / "bad.csv", db, "a50", "samsung_a50", space=SPACE)
    assert message in str(e.value) and "\n" not in str(e.value)
    with Store(db) as st:
        assert len(st.frame()) == 0


def test_unusual_spellings_take_the_exact_path(tmp_path, small):
    df = pd.read_csv(small, dtype=str)
    df["samsung_a50"] = [f"{v} " for v in df["samsung_a50"]]  # float() accepts the trailing space
    df.to_csv(tmp_path / "odd.csv", index=False)
    c = import_table(tmp_path / "odd.csv", tmp_path / "s.db", "a50", "samsung_a50", space=SPACE)
    assert c["added"] == 40
    with Store(tmp_path / "s.db") as st:
        np.testing.assert_allclose(st.frame()["median_ms"], pd.read_csv(small)["samsung_a50"])
