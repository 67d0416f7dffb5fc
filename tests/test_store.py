"""Measurement store and device fingerprints: round trips, resume, concurrency, crash safety,
refusal of foreign files."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hwlat.profiler.storage import device
from hwlat.profiler.storage.device import KEY_FIELDS, device_key, fingerprint, pin_to_core
from hwlat.profiler.storage.store import FRAME_COLUMNS, REPEAT_COLUMNS, SCHEMA_VERSION, Store, StoreError

ROOT = Path(__file__).resolve().parents[1]
STATS = {
    "median_ms": 1.25,
    "p10_ms": 1.0,
    "p90_ms": 1.5,
    "mean_ms": 1.3,
    "std_ms": 0.2,
    "n": 50,
    "warmup": 10,
    "ci95_ms": 0.05,
    "started_at": "2025-01-01T00:00:00+00:00",
}


def spawn(code: str, *args: str, **kw) -> subprocess.Popen:
    """A separate Python process running ``code`` with ``args`` in sys.argv[1:]."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def fill(store: Store, runtime="onnxruntime", n=3) -> int:
    dev = store.add_device(fingerprint(runtime, "1.17", threads=1))
    for i in range(n):
        gran = ("kernel", "block", "model")[i % 3]
        store.add_workload(
            f"{gran}:{i}", gran, {"op": "conv", "i": i, "shape": [1, 16, 8, 8]}, 1000 * i, 10 * i
        )
        assert store.add_measurement(f"{gran}:{i}", dev, {**STATS, "median_ms": 1.0 + i}, "run1")
    return dev


def snapshot(path: Path):
    return path.read_bytes(), path.stat().st_mtime_ns


# -- schema, round trips ------------------------------------------------------------------------


def test_new_store_schema(tmp_path):
    path = tmp_path / "s.db"
    with Store(path):
        pass
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(con.execute("SELECT key, value FROM meta"))
    assert meta["app"] == "hwlat" and meta["schema_version"] == str(SCHEMA_VERSION)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "devices", "workloads", "measurements", "failures"} <= tables
    con.close()
    with Store(path, create=False) as s:  # reopening an existing store works
        assert s._con.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert s.frame().empty and list(s.frame().columns) == FRAME_COLUMNS


def test_round_trip_and_exports(tmp_path):
    with Store(tmp_path / "s.db") as s:
        d1 = fill(s, "onnxruntime", n=6)
        d2 = fill(s, "litert", n=3)
        df = s.frame()
        assert list(df.columns) == FRAME_COLUMNS and len(df) == 9
        row = df[(df.key == "block:1") & (df.runtime == "onnxruntime")].iloc[0]
        assert row.median_ms == 2.0 and row.p10_ms == 1.0 and row.n == 50 and row.warmup == 10
        assert row.madds == 1000 and row.params == 10 and row.variant == "warm"
        assert row.run_id == "run1" and row.device_id == d1 and "(" in row.device
        assert json.loads(row.spec) == {"op": "conv", "i": 1, "shape": [1, 16, 8, 8]}
        assert len(s.frame(device_id=d2)) == 3 and len(s.frame(runtime="litert")) == 3
        assert set(s.frame(granularity="model").key) == {"model:2", "model:5"}
        assert len(s.devices()) == 2
        summary = s.summary()
        assert summary.measured.sum() == 9 and set(summary.runtime) == {"onnxruntime", "litert"}

        cols = [
            "key",
            "granularity",
            "runtime",
            "device_key",
            "median_ms",
            "p90_ms",
            "n",
            "madds",
            "params",
            "run_id",
            "finished_at",
            "spec",
        ]
        readers = {
            ".csv": pd.read_csv,
            ".parquet": pd.read_parquet,
            ".json": lambda p: pd.read_json(p, orient="records", dtype=False),
        }
        for suffix, read in readers.items():
            out = s.export(tmp_path / f"m{suffix}")
            back = read(out)
            assert list(back.columns) == FRAME_COLUMNS, suffix
            pd.testing.assert_frame_equal(back[cols].astype(str), df[cols].astype(str), obj=suffix)
        assert len(pd.read_csv(s.export(tmp_path / "l.csv", runtime="litert"))) == 3
        with pytest.raises(ValueError, match="unknown export format"):
            s.export(tmp_path / "m.xlsx")
        assert not (tmp_path / "m.xlsx").exists()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_workloads_are_idempotent_and_never_redefined(tmp_path):
    with Store(tmp_path / "s.db") as s:
        assert s.add_workload("block:a", "block", {"x": 1, "y": [1, 2]}, 5, 6) is True
        assert s.add_workload("block:a", "block", '{"y": [1, 2],  "x": 1}', 5, 6) is False
        with pytest.raises(StoreError, match="different spec"):
            s.add_workload("block:a", "block", {"x": 2, "y": [1, 2]}, 5, 6)
        with pytest.raises(StoreError, match="different madds"):
            s.add_workload("block:a", "block", {"x": 1, "y": [1, 2]}, 7, 6)
        with pytest.raises(ValueError, match="granularity"):
            s.add_workload("layer:b", "layer", {}, 1, 1)


def test_duplicate_measurement_is_ignored_not_overwritten(tmp_path):
    with Store(tmp_path / "s.db") as s:
        dev = fill(s, n=1)
        assert s.add_measurement("kernel:0", dev, {"median_ms": 99.0, "n": 3}, "run2") is False
        assert s.add_measurement("kernel:0", dev, {"median_ms": 5.0, "n": 3}, "run2", variant="cold") is True
        df = s.frame()
        assert len(df) == 2
        warm = df[df.variant == "warm"].iloc[0]
        assert warm.median_ms == 1.0 and warm.run_id == "run1"
        count = s._con.execute(
            "SELECT count(*) FROM measurements WHERE workload_key = 'kernel:0' AND variant = 'warm'"
        ).fetchone()[0]
        assert count == 1


def test_measurement_validation(tmp_path):
    with Store(tmp_path / "s.db") as s:
        dev = fill(s, n=1)
        with pytest.raises(StoreError, match="add_workload"):
            s.add_measurement("kernel:missing", dev, STATS, "r")
        for bad, msg in [
            ({"n": 3}, "median_ms"),
            ({"median_ms": -1.0, "n": 3}, ">= 0"),
            ({"median_ms": float("inf"), "n": 3}, "finite"),
            ({"median_ms": 1.0, "n": 0}, "n"),
            ({"median": 1.0, "n": 3}, "unknown"),
        ]:
            with pytest.raises(ValueError, match=msg):
                s.add_measurement("kernel:0", dev, bad, "r", variant="cold")
        with pytest.raises(ValueError, match="variant"):
            s.add_measurement("kernel:0", dev, STATS, "r", variant="hot")
        assert len(s.frame()) == 1


def test_timing_stats_as_produced_by_the_profiler(tmp_path):
    stats = {
        "median_ms": 0.8,
        "p10_ms": 0.7,
        "p90_ms": 0.9,
        "mean_ms": 0.81,
        "std_ms": 0.0,
        "ci95_ms": float("inf"),
        "n": 5,
        "warmup": 3,
        "inner": 12,
        "started_at": 1_700_000_000.25,
        "finished_at": 1_700_000_001.5,
    }
    with Store(tmp_path / "s.db") as s:
        dev = fill(s, n=1)
        assert s.add_measurement("kernel:0", dev, stats, "r", variant="cold", hwlat_version="9.9")
        row = s.frame(device_id=dev).set_index("variant").loc["cold"]
        assert pd.isna(row.ci95_ms) and row.inner == 12 and row.hwlat_version == "9.9"
        assert row.started_at == "2023-11-14T22:13:20.250+00:00"
        assert row.finished_at == "2023-11-14T22:13:21.500+00:00"


def test_resume_and_failures(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        dev = fill(s, n=3)
        s.add_workload("block:bad", "block", {"op": "bad"}, 1, 1)
        s.add_failure("block:bad", dev, "RuntimeError: unsupported op", "run1")
    with Store(path, create=False) as s:  # a rerun: same device, knows what is done
        dev2 = s.add_device(fingerprint("onnxruntime", "1.17", threads=1))
        assert dev2 == dev
        assert s.measured(dev) == {"kernel:0", "block:1", "model:2"}
        assert s.measured(dev, variant="cold") == set()
        other = s.add_device(fingerprint("onnxruntime", "1.17", threads=4))
        assert other != dev and s.measured(other) == set()
        f = s.failures(device_id=dev)
        assert list(f.key) == ["block:bad"] and "unsupported op" in f.error[0]
        assert s.summary().failed.sum() == 1


def test_import_rows(tmp_path):
    phone = {**fingerprint("litert", "1.0"), "hostname": "localhost", "board": "Google Pixel 7"}
    workloads = [
        {"key": f"block:{i}", "granularity": "block", "spec": {"i": i}, "madds": i, "params": i}
        for i in range(4)
    ]
    rows = [{"workload_key": f"block:{i}", **STATS} for i in range(4)]
    with Store(tmp_path / "s.db") as s:
        assert s.import_rows(phone, workloads, rows, "imp1") == (4, 0)
        assert s.import_rows(
            phone, workloads, rows + [{"key": "block:0", **STATS, "variant": "cold"}], "imp2"
        ) == (1, 4)
        df = s.frame()
        assert set(df.run_id) == {"imp1", "imp2"} and set(df.device) == {
            "Google Pixel 7 (" + phone["cpu"] + ")"
        }
        # frame rows (with NaN / NA for unknowns) can be imported into another store
        with Store(tmp_path / "t.db") as t:
            recs = df.assign(warmup=pd.NA, p10_ms=float("nan")).to_dict("records")
            assert t.import_rows(phone, workloads, recs, "x") == (5, 0)
            assert t.frame().p10_ms.isna().all() and set(t.frame().run_id) == {"imp1", "imp2"}
        # all or nothing: a conflicting workload aborts the whole import, device included
        bad = [{**workloads[0], "spec": {"i": "other"}}]
        newdev = {**phone, "threads": 2}
        with pytest.raises(StoreError, match="different"):
            s.import_rows(newdev, workloads[1:] + bad, rows, "imp3")
        assert len(s.devices()) == 1 and len(s.frame()) == 5


# -- concurrency and crash safety ---------------------------------------------------------------

CONCURRENT_WORKER = r"""
import json, os, random, sys, time
from hwlat.profiler.storage.store import Store
path, name, go = sys.argv[1:]
keys = [f"block:shared{i}" for i in range(200)] + [f"block:{name}{i}" for i in range(100)]
random.Random(name).shuffle(keys)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
t0 = time.time()
with Store(path) as store:       # both processes may create the store at the same time
    dev = store.add_device({"hostname": "test", "runtime": "none", "threads": 1})
    added = 0
    for k in keys:
        store.add_workload(k, "block", {"key": k}, 1, 2)
        added += store.add_measurement(k, dev, {"median_ms": 1.0, "n": 5}, run_id=name)
print(json.dumps({"added": added, "t0": t0, "t1": time.time()}), flush=True)
"""


def test_two_processes_write_the_same_store(tmp_path):
    path, go = tmp_path / "s.db", tmp_path / "go"
    procs = [spawn(CONCURRENT_WORKER, str(path), name, str(go)) for name in ("a", "b")]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and "Error" not in err, err
        results.append(json.loads(out))
    a, b = results
    assert a["added"] + b["added"] == 400 and min(a["added"], b["added"]) >= 100
    assert max(a["t0"], b["t0"]) < min(a["t1"], b["t1"])  # the runs really overlapped
    with Store(path, create=False) as s:
        df = s.frame()
        assert len(df) == 400 and not df.duplicated(["key", "device_id", "variant"]).any()
        assert set(df.key) == (
            {f"block:shared{i}" for i in range(200)} | {f"block:{n}{i}" for n in "ab" for i in range(100)}
        )
        assert len(s.devices()) == 1
        own = df[~df.key.str.contains("shared")]
        assert (own.run_id == own.key.str[6]).all()  # own rows carry their writer's run id
        assert s._con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


CRASH_WORKER = r"""
import sys
from hwlat.profiler.storage.store import Store
store = Store(sys.argv[1])
dev = store.add_device({"hostname": "test", "runtime": "none", "threads": 1})
done = store.measured(dev)
for i in range(1_000_000):
    key = f"kernel:{i}"
    if key in done:
        continue
    store.add_workload(key, "kernel", {"i": i}, i, i)
    added = store.add_measurement(key, dev, {"median_ms": 0.5, "n": 3}, run_id="crash")
    print(key, added, flush=True)
"""


def test_sigkill_loses_at_most_the_workload_in_flight(tmp_path):
    path = tmp_path / "s.db"
    reported: list[str] = []
    for _ in range(3):  # kill, resume, kill, resume, kill
        p = spawn(CRASH_WORKER, str(path))
        lines = [p.stdout.readline() for _ in range(40)]
        p.send_signal(signal.SIGKILL)
        rest, _ = p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL
        lines = [ln for ln in lines + rest.splitlines() if ln.strip()]
        assert len(lines) >= 40 and all(ln.split()[1] == "True" for ln in lines)
        reported += [ln.split()[0] for ln in lines]
        with Store(path, create=False) as s:
            stored = s.measured(1)
            assert set(reported) <= stored and len(stored) <= len(reported) + 1
            assert s._con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(reported) == len(set(reported))  # each rerun resumed: nothing measured twice


# -- refusing what is not ours ------------------------------------------------------------------


def _text(path):
    path.write_text("workload,median_ms\nblock:1,2.5\n")


def _other_app(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users VALUES (1, 'ada')")
    con.commit()
    con.close()


def _newer(field):
    def make(path):
        with Store(path) as s:
            fill(s, n=1)
        con = sqlite3.connect(path)
        if field == "user_version":
            con.execute("PRAGMA user_version = 99")
        else:
            con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        con.commit()
        con.close()

    return make


@pytest.mark.parametrize(
    "make, problem",
    [
        (_text, "not an SQLite database"),
        (_other_app, "another application (tables: users)"),
        (_newer("user_version"), "schema version 99 is newer"),
        (_newer("meta"), "schema version 99 is newer"),
    ],
    ids=["text", "other-app", "user_version-99", "schema_version-99"],
)
def test_foreign_files_are_refused_untouched(tmp_path, make, problem):
    path = tmp_path / "results.db"
    make(path)
    before, files = snapshot(path), sorted(os.listdir(tmp_path))
    time.sleep(0.01)
    for create in (True, False):
        with pytest.raises(StoreError, match=re.escape(problem)) as err:
            Store(path, create=create)
        msg = str(err.value)
        assert str(path) in msg and "\n" not in msg
    assert snapshot(path) == before
    if make in (_text, _other_app):  # WAL databases get SQLite's usual -wal/-shm files
        assert sorted(os.listdir(tmp_path)) == files


def test_empty_file_is_adopted_only_when_creating(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StoreError, match="empty file"):
        Store(path, create=False)
    assert path.stat().st_size == 0
    with Store(path) as s:  # nothing to lose: becomes a new store
        fill(s, n=1)
    with Store(path, create=False) as s:
        assert len(s.frame()) == 1


def test_missing_locations(tmp_path):
    with pytest.raises(StoreError, match="does not exist") as err:
        Store(tmp_path / "nope" / "s.db")
    assert str(tmp_path / "nope") in str(err.value)
    assert not (tmp_path / "nope").exists()
    with pytest.raises(StoreError, match="no such store"):
        Store(tmp_path / "s.db", create=False)
    assert not (tmp_path / "s.db").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        Store(tmp_path / "f" / "s.db")
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_unwritable_location_even_for_root():
    with pytest.raises(StoreError, match="/proc/hwlat-test.db"):
        Store("/proc/hwlat-test.db")


def test_read_only_directory(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    with Store(ro / "old.db") as s:
        fill(s, n=1)
    before = snapshot(ro / "old.db")
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anyway: make os.access report what a user sees
        real = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **kw: (
                False if mode & os.W_OK and ro in (Path(p), Path(p).parent) else real(p, mode, **kw)
            ),
        )
    try:
        with pytest.raises(StoreError, match="not writable") as err:
            Store(ro / "new.db")
        assert str(ro) in str(err.value) and not (ro / "new.db").exists()
        with pytest.raises(StoreError, match="read-only") as err:
            Store(ro / "old.db")
        assert str(ro / "old.db") in str(err.value) and snapshot(ro / "old.db") == before
    finally:
        ro.chmod(0o755)


# -- device fingerprints ------------------------------------------------------------------------


def test_fingerprint_fields_and_stable_key():
    fp = fingerprint("litert", "1.2.0", threads=2, delegate="xnnpack", extra={"core": 3})
    for field in (
        "hostname",
        "cpu",
        "machine",
        "cores",
        "governor",
        "max_freq_khz",
        "os",
        "python",
        "runtime",
        "runtime_version",
        "threads",
        "delegate",
    ):
        assert field in fp
    assert fp["runtime"] == "litert" and fp["threads"] == 2 and fp["delegate"] == "xnnpack"
    assert fp["cpu"] and fp["machine"] and fp["cores"] >= 1
    json.dumps(fp)
    key = device_key(fp)
    assert len(key) == 16 and int(key, 16) >= 0
    again = fingerprint("litert", "1.2.0", threads=2, delegate="xnnpack", extra={"core": 3})
    assert device_key(again) == key
    assert device_key(json.loads(json.dumps(fp))) == key  # survives the store's JSON
    assert device_key({**fp, "os": "other kernel", "python": "3.99"}) == key
    for field, value in [
        ("threads", 1),
        ("runtime_version", "1.3"),
        ("extra", {"core": 0}),
        ("governor", "performance-x"),
        ("hostname", "elsewhere"),
    ]:
        assert device_key({**fp, field: value}) != key, field
    assert set(KEY_FIELDS) <= set(fp)


def test_fingerprint_on_arm_without_model_name(monkeypatch):
    cpuinfo = "".join(
        f"processor\t: {i}\nBogoMIPS\t: 38.40\nCPU implementer\t: 0x41\n"
        f"CPU part\t: {'0xd05' if i < 4 else '0xd0b'}\n\n"
        for i in range(8)
    )
    real = device._read
    monkeypatch.setattr(device, "_read", lambda p: cpuinfo if str(p) == "/proc/cpuinfo" else real(p))
    fp = fingerprint("litert", "1.0")
    assert fp["cpu"] == "ARM Cortex-A55 + ARM Cortex-A76"
    assert fp["cpu_parts"] == "ARM Cortex-A55×4 + ARM Cortex-A76×4"
    monkeypatch.setattr(device, "_read", lambda p: None)  # nothing readable (sandboxed)
    fp = fingerprint("litert", "1.0")
    assert fp["cpu"] and fp["governor"] is None and fp["cpu_parts"] is None


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_pin_to_core():
    p = spawn(
        "import os\nfrom hwlat.profiler.storage.device import pin_to_core\n"
        "c = pin_to_core()\nprint(c, sorted(os.sched_getaffinity(0)))"
    )
    out, err = p.communicate(timeout=30)
    core, affinity = out.split(" ", 1)
    assert json.loads(affinity) == [int(core)] and int(core) in os.sched_getaffinity(0), err
    with pytest.raises(ValueError, match="not available"):
        pin_to_core(10_000)


# -- repeats and the v1 -> v2 migration ----------------------------------------------------------


def test_repeats_are_rows_and_frame_gives_their_median(tmp_path):
    with Store(tmp_path / "s.db") as s:
        dev = fill(s, n=3)  # repeat 0 of kernel:0: median 1.0 ms, p10 1.0 ms
        for r, ms in ((1, 1.2), (2, 0.7)):  # two more repeats of kernel:0, p10 0.8 x their median
            assert s.add_measurement(
                "kernel:0",
                dev,
                {**STATS, "median_ms": ms, "p10_ms": 0.8 * ms, "ref_ms": 0.1, "steal_pct": 2.0},
                "run2",
                repeat=r,
            )
        assert not s.add_measurement("kernel:0", dev, {**STATS, "median_ms": 9.0}, "run3", repeat=2)
        raw = s.frame(repeats=True)
        assert list(raw.columns) == REPEAT_COLUMNS and len(raw) == 5
        assert sorted(raw[raw.key == "kernel:0"].repeat) == [0, 1, 2]
        df = s.frame().set_index("key")
        assert list(s.frame().columns) == FRAME_COLUMNS and len(df) == 3
        assert df.loc["kernel:0", "median_ms"] == pytest.approx(1.0)  # median of 1.0, 1.2, 0.7
        # its latency: the median of the repeats' p10 (1.0, 0.96, 0.56), the spread between them
        assert raw[raw.key == "kernel:0"].latency_ms.tolist() == pytest.approx([1.0, 0.96, 0.56])
        assert df.loc["kernel:0", "latency_ms"] == pytest.approx(0.96)
        assert df.loc["kernel:0", "repeats"] == 3 and df.loc["block:1", "repeats"] == 1
        assert df.loc["kernel:0", "spread_pct"] == pytest.approx(100 * (1.0 - 0.56) / 0.96)
        assert df.loc["kernel:0", "n"] == 150
        assert s.measured(dev, repeat=2) == {"kernel:0"}
        assert s.measured(dev) == {"kernel:0", "block:1", "model:2"}


def _v1_store(path: Path) -> None:
    """A store as hwlat 0.1 (schema 1) wrote it, with one measurement."""
    from hwlat.profiler.storage import store as st_mod

    v1 = (
        st_mod._SCHEMA.replace(
            "    repeat INTEGER NOT NULL DEFAULT 0,      -- 0..R-1: one fresh runtime instance each\n", ""
        )
        .replace(
            "    ref_ms REAL,                            -- the reference workload in the same rounds (phase)\n",
            "",
        )
        .replace(
            "    steal_pct REAL,                         -- CPU steal time of the measuring core (%)\n", ""
        )
        .replace(
            "UNIQUE (workload_key, device_id, variant, repeat)", "UNIQUE (workload_key, device_id, variant)"
        )
    )
    assert "repeat" not in v1
    con = sqlite3.connect(path)
    con.executescript(v1)
    con.executemany("INSERT INTO meta VALUES (?, ?)", [("app", "hwlat"), ("schema_version", "1")])
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO devices VALUES (1, 'dev1', '{\"runtime\": \"litert\"}', 'x')")
    con.execute("INSERT INTO workloads VALUES ('kernel:0', 'kernel', '{}', 10, 1)")
    con.execute(
        "INSERT INTO measurements (workload_key, device_id, variant, median_ms, n, "
        "finished_at, run_id, hwlat_version) VALUES ('kernel:0', 1, 'warm', 2.5, 20, 'x', "
        "'r1', '0.1.0')"
    )
    con.commit()
    con.close()


def test_schema_1_store_is_upgraded_in_place_losing_nothing(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    with Store(path, create=False) as s:
        df = s.frame()
        assert len(df) == 1 and df.median_ms[0] == 2.5 and df.repeats[0] == 1
        assert df.latency_ms[0] == 2.5  # no p10 stored: its latency is the median
        assert s.add_measurement("kernel:0", 1, {"median_ms": 2.7, "n": 5}, "r2", repeat=1)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    meta = dict(con.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION) and "migrated_from_1" in meta
    assert con.execute("SELECT count(*) FROM measurements").fetchone()[0] == 2
    con.close()


def test_schema_2_store_gains_the_output_tables_losing_nothing(tmp_path):
    from hwlat.profiler.storage import store as st_mod

    path = tmp_path / "v2.db"
    v2 = st_mod._SCHEMA[: st_mod._SCHEMA.index("CREATE TABLE outputs")]
    con = sqlite3.connect(path)
    con.executescript(v2)
    con.executemany("INSERT INTO meta VALUES (?, ?)", [("app", "hwlat"), ("schema_version", "2")])
    con.execute("PRAGMA user_version = 2")
    con.execute("INSERT INTO devices VALUES (1, 'dev1', '{\"runtime\": \"litert\"}', 'x')")
    con.execute("INSERT INTO workloads VALUES ('model:0', 'model', '{}', 10, 1)")
    con.execute(
        "INSERT INTO measurements (workload_key, device_id, variant, median_ms, n, finished_at, "
        "run_id, hwlat_version) VALUES ('model:0', 1, 'warm', 2.5, 20, 'x', 'r1', '0.1.0')"
    )
    con.commit()
    con.close()
    with Store(path, create=False) as s:
        assert len(s.frame()) == 1 and s.outputs().empty and s.op_times().empty
        assert s.add_measurement(
            "model:0",
            1,
            {"median_ms": 2.7, "n": 5},
            "r2",
            repeat=1,
            raw_output="count=5 avg=2700",
            ops=[
                {"node_type": "CONV_2D", "name": "[c]:0", "avg_ms": 1.5, "times_called": 1},
                {"node_type": "ADD", "name": "[a]:1", "avg_ms": 0.5, "times_called": 2},
            ],
        )
        assert not s.add_measurement(
            "model:0", 1, {"median_ms": 9.9, "n": 5}, "r3", repeat=1, raw_output="other"
        )  # that repeat is stored: nothing
        out, ops = s.outputs(), s.op_times(key="model:0")
        assert out.text.tolist() == ["count=5 avg=2700"] and out.repeat.tolist() == [1]
        assert ops.node_type.tolist() == ["CONV_2D", "ADD"] and ops.run_ms.tolist() == [1.5, 1.0]
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "migrated_from_2" in dict(con.execute("SELECT key, value FROM meta"))
    con.close()
