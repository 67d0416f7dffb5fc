"""The measurement store: one SQLite file holding devices, workloads, measurements and failures.

Durability and concurrency. The file uses SQLite's WAL journal with ``synchronous=FULL`` and every
write is its own ``BEGIN IMMEDIATE`` transaction, so a process killed at any moment (SIGKILL,
power loss) loses at most the call in flight, and several processes may write the same store at
once (writers queue for up to :data:`BUSY_TIMEOUT_S`). Measurements are never overwritten: one row
per (workload, device, variant, repeat); adding it again is a no-op that returns ``False``, which is
what lets an interrupted run resume (:meth:`Store.measured`).

Repeats. A workload measured R times (fresh runtime instances, spread over a run: see
:func:`hwlat.profiler.measure.profile.profile`) has R rows, ``repeat`` 0..R-1; its latency is the median
of their latencies (each a low quantile of its samples, :data:`LATENCY_STATISTIC`), which
:meth:`Store.frame` returns with the spread between them. Each row also keeps
the phase of the machine while it was measured: ``ref_ms``, the time of a fixed reference workload
timed in the same rounds, and ``steal_pct``, the CPU steal time of the measuring core. Open one :class:`Store` per process (and
per thread); keep the file on a local disk (WAL does not work over NFS or Android's /sdcard).

Opening an existing file checks it first, read-only: a file that is not SQLite, the database of
another application or a newer schema raises :class:`StoreError` and the file is left untouched
(reading a WAL-mode database may leave SQLite's usual empty ``-wal``/``-shm`` files beside it).
An **empty file** (0 bytes, e.g. from ``mktemp``) or an SQLite database without any table holds no
data and is adopted as a new store when ``create=True``; with ``create=False`` it is an error.

Commands that only read open the store with ``readonly=True`` (:func:`open_store`): SQLite's
read-only URI (``mode=ro``), so a store on a read-only mount or without write permission is read,
never written (on a read-only mount the file is opened ``immutable``: nothing can change it there).
A store of an older schema is upgraded in place by any writable open, a read-only one included
when the file is writable.

Times are UTC ISO-8601 strings; latencies are milliseconds (columns ending in ``_ms``).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from hwlat import __version__
from hwlat.archs.pieces import GRANULARITIES
from hwlat.errors import StoreError
from hwlat.files import SQLITE_MAGIC, atomic_write, dumps_strict
from hwlat.files import check_output as _check_output
from hwlat.profiler.storage.device import device_key, device_label

APP = "hwlat"
SCHEMA_VERSION = 3
MIGRATABLE = (1, 2)  # older schemas upgraded in place, in one transaction, on a writable open
BUSY_TIMEOUT_S = 30.0
VARIANTS = ("warm", "cold")
STATS_FIELDS = (
    "median_ms",
    "p10_ms",
    "p90_ms",
    "mean_ms",
    "std_ms",
    "ci95_ms",
    "n",
    "warmup",
    "inner",
    "started_at",
    "finished_at",
    "ref_ms",
    "steal_pct",
)
"""Keys of the ``stats`` dict of :meth:`Store.add_measurement`; ``median_ms`` and ``n`` required."""
EXPORT_SUFFIXES = (".csv", ".parquet", ".json")

_SQLITE_MAGIC = SQLITE_MAGIC

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,              -- JSON, see hwlat.profiler.storage.device.fingerprint
    first_seen TEXT NOT NULL
);
CREATE TABLE workloads (
    key TEXT PRIMARY KEY,
    granularity TEXT NOT NULL,              -- kernel | block | model
    spec TEXT NOT NULL,                     -- canonical JSON
    madds INTEGER NOT NULL,
    params INTEGER NOT NULL
);
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    workload_key TEXT NOT NULL REFERENCES workloads(key),
    device_id INTEGER NOT NULL REFERENCES devices(id),
    variant TEXT NOT NULL DEFAULT 'warm',   -- warm | cold
    median_ms REAL NOT NULL,
    p10_ms REAL, p90_ms REAL, mean_ms REAL, std_ms REAL,
    n INTEGER NOT NULL,                     -- samples
    warmup INTEGER,                         -- warm-up invocations
    inner INTEGER,                          -- invocations averaged into one sample
    ci95_ms REAL,                           -- half-width of the 95 % CI of the median
    started_at TEXT,
    finished_at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    hwlat_version TEXT NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,      -- 0..R-1: one fresh runtime instance each
    ref_ms REAL,                            -- the reference workload in the same rounds (phase)
    steal_pct REAL,                         -- CPU steal time of the measuring core (%)
    UNIQUE (workload_key, device_id, variant, repeat)
);
CREATE TABLE failures (
    id INTEGER PRIMARY KEY,
    workload_key TEXT NOT NULL REFERENCES workloads(key),
    device_id INTEGER NOT NULL REFERENCES devices(id),
    variant TEXT NOT NULL DEFAULT 'warm',
    error TEXT NOT NULL,
    run_id TEXT,
    at TEXT NOT NULL
);
CREATE INDEX failures_by_device ON failures (device_id, variant);
CREATE TABLE outputs (
    measurement_id INTEGER PRIMARY KEY REFERENCES measurements(id),
    tool TEXT NOT NULL,                     -- what printed it, e.g. benchmark_model
    text TEXT NOT NULL                      -- its raw output, kept to be parsed again
);
CREATE TABLE op_times (
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    position INTEGER NOT NULL,              -- run order in the network
    node_type TEXT NOT NULL,
    name TEXT NOT NULL,
    avg_ms REAL NOT NULL,                   -- per call
    first_ms REAL,
    times_called INTEGER NOT NULL,          -- calls per run
    PRIMARY KEY (measurement_id, position)
);
"""

# v1 -> v2: measurements gain repeat / ref_ms / steal_pct and the unique key gains repeat. SQLite
# cannot change a UNIQUE constraint in place: copy into the new table, drop, rename (one transaction).
_MIGRATE_1_TO_2 = [
    _SCHEMA[_SCHEMA.index("CREATE TABLE measurements") : _SCHEMA.index("CREATE TABLE failures")]
    .replace("CREATE TABLE measurements", "CREATE TABLE measurements_v2")
    .rstrip()
    .rstrip(";"),
    "INSERT INTO measurements_v2 (id, workload_key, device_id, variant, median_ms, p10_ms, p90_ms, "
    "mean_ms, std_ms, n, warmup, inner, ci95_ms, started_at, finished_at, run_id, hwlat_version) "
    "SELECT id, workload_key, device_id, variant, median_ms, p10_ms, p90_ms, mean_ms, std_ms, n, "
    "warmup, inner, ci95_ms, started_at, finished_at, run_id, hwlat_version FROM measurements",
    "DROP TABLE measurements",
    "ALTER TABLE measurements_v2 RENAME TO measurements",
]

# v2 -> v3: the raw output of a measuring tool and its per-op times, beside each measurement.
_MIGRATE_2_TO_3 = [
    _SCHEMA[_SCHEMA.index("CREATE TABLE outputs") :]
    .split(";")[i]
    .strip()
    .replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
    for i in (0, 1)
]

FRAME_COLUMNS = [
    "key",
    "granularity",
    "variant",
    "runtime",
    "runtime_version",
    "threads",
    "delegate",
    "device",
    "device_key",
    "device_id",
    "latency_ms",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "mean_ms",
    "std_ms",
    "ci95_ms",
    "n",
    "warmup",
    "inner",
    "madds",
    "params",
    "run_id",
    "started_at",
    "finished_at",
    "hwlat_version",
    "spec",
    "repeats",
    "spread_pct",
    "ref_ms",
    "steal_pct",
]
"""Columns of :meth:`Store.frame`: one row per (workload, device, variant), the median of its
repeats; ``repeats`` counts them and ``spread_pct`` is (max − min) / median of their latencies (%).
``latency_ms`` is the workload's latency (:data:`LATENCY_STATISTIC`), the value every predictor,
evaluation and figure uses; the other statistics are kept beside it."""
LATENCY_STATISTIC = "p10_ms"
"""Which statistic of a repeat's samples is its latency: the 10th percentile (the median where a
row has none, e.g. an imported table). Interference on a shared host only ever adds time, so a low
quantile is what fresh instances agree on. How often one repeat is within 10 % of another by p10
and by the median is recorded on the ``noise floor`` lines of ``benchmarks/bench_fidelity.py``'s results,
``benchmarks/results/fidelity__litert__large-60__small-60__repeats-3__block-repeats-3__train-candidates-150__seed-1__x86_64.txt``.
A workload's latency over R repeats is the median of its repeats' latencies."""
UNSTABLE_SPREAD_PCT = 10.0
"""Repeats of one workload whose (max - min) / median exceeds this (%) are unstable: ``profile
show`` lists them and fitting warns about them (they are kept, never dropped)."""
REPEAT_COLUMNS = [c for c in FRAME_COLUMNS if c not in ("repeats", "spread_pct")] + ["repeat"]
"""Columns of :meth:`Store.frame` with ``repeats=True``: one row per stored repeat."""
DEVICE_COLUMNS = [
    "device_id",
    "device_key",
    "device",
    "hostname",
    "board",
    "cpu",
    "machine",
    "cores",
    "governor",
    "max_freq_khz",
    "os",
    "runtime",
    "runtime_version",
    "threads",
    "delegate",
    "first_seen",
    "fingerprint",
]


def now() -> str:
    """The current UTC time, ISO-8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def canonical_json(value) -> str:
    """``value`` (a JSON string or a JSON-serialisable object) as compact, key-sorted JSON."""
    if isinstance(value, (str, bytes)):
        value = json.loads(value)
    try:
        return dumps_strict(value, sort_keys=True, separators=(",", ":"))
    except TypeError as e:
        raise ValueError(f"not JSON-serialisable: {e}") from None


def _inspect(path: Path) -> str:
    """Classify an existing file without modifying it: ``"new"`` (no data), ``"store"``, or
    ``"old"`` (a store of an older schema that a writable open upgrades).

    Raises :class:`StoreError` for anything else. Reads the header, then queries through a
    read-only connection (``mode=ro``), so not a byte of the file is written.
    """

    def meta_of(con: sqlite3.Connection) -> dict:
        try:
            return dict(con.execute("SELECT key, value FROM meta"))
        except sqlite3.Error:  # another application's "meta" table
            return {}

    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if not head:
        return "new"
    if head != _SQLITE_MAGIC:
        raise StoreError(f"{path}: not an SQLite database (not an hwlat store)")
    try:
        con = _connect_readonly(path)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot be opened read-only to check it: {e}") from None
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        meta = meta_of(con) if "meta" in tables else {}
    except sqlite3.Error as e:
        raise StoreError(f"{path}: unreadable SQLite database: {e}") from None
    finally:
        con.close()
    if not tables and version == 0:
        return "new"
    if meta.get("app") != APP:
        names = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(
            f"{path}: an SQLite database of another application (tables: {names}), not an hwlat store"
        )
    try:
        found = max(version, int(meta.get("schema_version") or 0))
    except ValueError:
        raise StoreError(
            f"{path}: hwlat store with an invalid schema_version {meta.get('schema_version')!r}"
        ) from None
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: hwlat store schema version {found} is newer than this hwlat "
            f"({__version__}) supports ({SCHEMA_VERSION}); upgrade hwlat"
        )
    if found < SCHEMA_VERSION and found not in MIGRATABLE:
        raise StoreError(f"{path}: hwlat store schema version {found} is unknown (expected {SCHEMA_VERSION})")
    return "store" if found == SCHEMA_VERSION else "old"


def _stamp_version(con: sqlite3.Connection) -> None:
    """Write :data:`SCHEMA_VERSION` where a store keeps it: ``PRAGMA user_version`` (what SQLite
    tools show) and the ``meta`` table's ``schema_version`` (read with the other metadata)."""
    con.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE "
        "SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _num(stats: dict, field: str, required: bool = False, inf_ok: bool = False) -> float | None:
    """A finite, non-negative float (milliseconds); None/NaN (and +inf if ``inf_ok``) mean
    unknown for optional fields and give None."""
    value = stats.get(field)
    try:
        value = None if _missing(value) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"stats[{field!r}] must be a number, got {value!r}") from None
    if value is None or math.isnan(value) or (inf_ok and value == math.inf):
        if required:
            raise ValueError(f"stats[{field!r}] is required (a number)")
        return None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"stats[{field!r}] must be finite and >= 0, got {value!r}")
    return value


def _int(value, what: str, required: bool = True) -> int | None:
    """A non-negative int (numpy integers accepted)."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")
    if int(value) < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")
    return int(value)


def _time(value, what: str) -> str | None:
    """An ISO-8601 string from a string, a datetime or Unix seconds (``time.time()``)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="milliseconds")
    raise ValueError(f"{what} must be an ISO-8601 string, a datetime or Unix seconds, got {value!r}")


def _missing(value) -> bool:
    """None, NaN or pandas' NA (as found in rows of a DataFrame)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def check_stats(stats: dict) -> tuple:
    """The :data:`STATS_FIELDS` of ``stats`` checked and in column order (``finished_at``
    defaults to now; other keys are ignored). Raises ``ValueError`` naming the field: a latency
    must be positive and ``p10_ms`` not above ``p90_ms``."""
    n = _int(stats.get("n"), "stats['n']")
    if n < 1:
        raise ValueError(f"stats['n'] must be >= 1, got {n}")
    median, p10, p90 = (_num(stats, "median_ms", required=True), _num(stats, "p10_ms"), _num(stats, "p90_ms"))
    if median <= 0:
        raise ValueError(f"stats['median_ms'] must be > 0 (a latency), got {median!r}")
    if p10 is not None and p90 is not None and p10 > p90:
        raise ValueError(f"stats['p10_ms'] {p10!r} is above stats['p90_ms'] {p90!r}")
    return (
        median,
        p10,
        p90,
        _num(stats, "mean_ms"),
        _num(stats, "std_ms"),
        n,
        _int(stats.get("warmup"), "stats['warmup']", required=False),
        _int(stats.get("inner"), "stats['inner']", required=False),
        _num(stats, "ci95_ms", inf_ok=True),
        _time(stats.get("started_at"), "started_at"),
        _time(stats.get("finished_at"), "finished_at") or now(),
    )


def _where(*conditions: tuple[str, object]) -> tuple[str, list]:
    """``" WHERE a = ? AND ..."`` over the ``(column, value)`` pairs whose value is not None, and
    the values as its parameters (``("", [])`` when there are none)."""
    used = [(col, v) for col, v in conditions if v is not None]
    sql = " WHERE " + " AND ".join(f"{col} = ?" for col, _ in used) if used else ""
    return sql, [v for _, v in used]


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``); on a read-only mount, where SQLite cannot create the
    WAL index beside the file, ``immutable=1`` (nothing can change the file there)."""
    uri = path.resolve().as_uri()
    con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
        if os.access(path.parent, os.W_OK):
            raise
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S)


class Store:
    """An hwlat measurement store (SQLite file); use as ``with Store(path) as store: ...``.

    ``create=True`` creates a missing file; ``create=False`` requires an existing store.
    ``readonly=True`` opens an existing store for reading only (SQLite's read-only URI): what
    commands that only read use, so a store they cannot write is still readable.
    Raises :class:`~hwlat.errors.StoreError` naming the path when the file is not an hwlat store,
    has a newer schema, or the location is missing or not writable (unless ``readonly``).
    """

    def __init__(self, path: str | os.PathLike, create: bool = True, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._con: sqlite3.Connection | None = None
        p = self.path
        create = create and not readonly
        if p.is_dir():
            raise StoreError(f"{p}: is a directory, not a store file")
        if p.exists():
            state = _inspect(p)
            if state == "new" and not create:
                raise StoreError(f"{p}: empty file, not an hwlat store")
            writable = os.access(p, os.W_OK) and os.access(p.parent, os.W_OK)
            if not readonly and not writable:
                raise StoreError(f"{p}: store is read-only (the file and its directory must be writable)")
            if readonly and state == "old":  # upgraded in place first, as any writable open does
                if not writable:
                    raise StoreError(
                        f"{p}: hwlat store of an older schema on a read-only location; "
                        f"open it once where it is writable to upgrade it to schema "
                        f"{SCHEMA_VERSION}"
                    )
                Store(p).close()
        else:
            if not create:
                raise StoreError(f"{p}: no such store")
            parent = p.parent
            if not parent.is_dir():
                problem = "is not a directory" if parent.exists() else "does not exist"
                raise StoreError(f"{p}: directory {parent} {problem}")
            if not os.access(parent, os.W_OK):
                raise StoreError(f"{p}: directory {parent} is not writable")
        try:
            if readonly:
                self._con = _connect_readonly(p)
                self._con.isolation_level = None
                return
            self._con = sqlite3.connect(p, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._con.execute("PRAGMA foreign_keys = ON")
            self._con.execute("PRAGMA synchronous = FULL")
            self._init_schema_retrying()
        except sqlite3.Error as e:
            self.close()
            raise StoreError(f"{p}: cannot open store: {e}") from None
        except StoreError:
            self.close()
            raise

    def _init_schema_retrying(self) -> None:
        """:meth:`_init_schema`, retried while another process creates or converts the file.

        SQLite reports "database is locked" without calling the busy handler when two
        connections switch a fresh file to WAL at the same moment, so the busy timeout alone
        does not cover concurrent first opens.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.005
        while True:
            try:
                self._init_schema()
                return
            except (sqlite3.OperationalError, StoreError) as e:
                cause = e.__cause__ if isinstance(e, StoreError) else e
                locked = isinstance(cause, sqlite3.OperationalError) and (
                    "locked" in str(cause) or "busy" in str(cause)
                )
                if not locked or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _init_schema(self) -> None:
        """Create the schema in one transaction unless it exists (safe when processes race)."""
        con = self._con
        if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            con.execute("PRAGMA journal_mode = WAL")  # persistent; a no-op where unsupported
        with self._tx():
            version = con.execute("PRAGMA user_version").fetchone()[0]
            n_tables = con.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
            if version == 0 and n_tables == 0:
                for statement in _SCHEMA.split(";"):  # not executescript: it would COMMIT
                    if statement.strip():
                        con.execute(statement)
                con.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("app", APP), ("created_at", now()), ("created_by", f"hwlat {__version__}")],
                )
                _stamp_version(con)
            elif version in MIGRATABLE:
                self._migrate(con, version)
            elif version != SCHEMA_VERSION:  # changed between the read-only check and now
                raise StoreError(
                    f"{self.path}: not an hwlat store of schema {SCHEMA_VERSION} (user_version {version})"
                )

    def _migrate(self, con: sqlite3.Connection, version: int) -> None:
        """Upgrade a store of an older schema in place, inside the caller's transaction."""
        if version == 1:
            for statement in _MIGRATE_1_TO_2:
                con.execute(statement)
        if version <= 2:
            for statement in _MIGRATE_2_TO_3:
                con.execute(statement)
        con.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value",
            (f"migrated_from_{version}", now()),
        )
        _stamp_version(con)

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            raise StoreError(f"{self.path}: store is closed")
        return self._con

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on exit, rolled back on any error.

        SQLite errors (locked for longer than the busy timeout, disk full...) become StoreError.
        """
        con = self._db
        try:
            con.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
            yield con
            con.execute("COMMIT")
        except BaseException as e:
            if con.in_transaction:
                try:
                    con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"{self.path}: {e}") from e
            raise

    def _query(self, sql: str, params=()) -> pd.DataFrame:
        return pd.read_sql_query(sql, self._db, params=params)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- writing --------------------------------------------------------------------------------

    def add_device(self, fingerprint: dict) -> int:
        """The id of the device with this fingerprint's :func:`device_key`, added if new.

        An existing device keeps its first fingerprint (non-key fields such as ``os`` may drift).
        """
        with self._tx() as con:
            return self._add_device_in(con, fingerprint)

    def _add_device_in(self, con: sqlite3.Connection, fingerprint: dict) -> int:
        key = device_key(fingerprint)
        con.execute(
            "INSERT INTO devices (key, fingerprint, first_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, canonical_json(fingerprint), now()),
        )
        return con.execute("SELECT id FROM devices WHERE key = ?", (key,)).fetchone()[0]

    def add_workload(self, key: str, granularity: str, spec, madds: int, params: int) -> bool:
        """Add a workload; ``True`` if new, ``False`` if already there with identical content.

        ``spec`` is a JSON string or a JSON-serialisable object (stored canonically). The same
        ``key`` with a different granularity, spec, MAdds or params raises :class:`StoreError`.
        """
        with self._tx() as con:
            return self._add_workload_in(
                con, dict(key=key, granularity=granularity, spec=spec, madds=madds, params=params)
            )

    def add_measurement(
        self,
        workload_key: str,
        device_id: int,
        stats: dict,
        run_id: str,
        variant: str = "warm",
        hwlat_version: str | None = None,
        repeat: int = 0,
        raw_output: str | None = None,
        tool: str = "benchmark_model",
        ops: list[dict] | None = None,
    ) -> bool:
        """Record one workload's latency statistics (milliseconds) and commit at once.

        ``stats`` holds :data:`STATS_FIELDS`: ``median_ms`` and ``n`` (samples) are required;
        ``p10_ms``, ``p90_ms``, ``mean_ms``, ``std_ms`` and ``ci95_ms`` are milliseconds (None or
        NaN = unknown; ``ci95_ms`` is None when not computable, and inf, as older bundles wrote it,
        is read as None too),
        ``warmup`` and ``inner`` are invocation counts, ``started_at`` / ``finished_at`` an
        ISO string, datetime or Unix seconds (finished defaults to now), ``ref_ms`` the reference
        workload's time in the same rounds and ``steal_pct`` the CPU steal time (%). Other keys
        raise ``ValueError``. ``repeat`` numbers the fresh runtime instance (0, 1, ...). Returns
        ``False`` and changes nothing if this (workload, device, variant, repeat) is already
        measured. The workload and device must have been added.

        ``raw_output`` (the text ``tool`` printed) and ``ops`` (its per-op times: dicts with
        ``node_type``, ``name``, ``avg_ms`` per call, ``first_ms``, ``times_called`` per run, in run
        order) are stored with the measurement, in the same transaction (:meth:`outputs`, :meth:`op_times`).
        """
        unknown = set(stats) - set(STATS_FIELDS)
        if unknown:
            raise ValueError(f"unknown stats fields {sorted(unknown)}; expected {STATS_FIELDS}")
        row = self._measurement_row(
            workload_key, device_id, stats, run_id, variant, hwlat_version or __version__, repeat
        )
        with self._tx() as con:
            mid = self._insert_measurement_id(con, row)
            if mid is not None and raw_output is not None:
                con.execute(
                    "INSERT INTO outputs (measurement_id, tool, text) VALUES (?, ?, ?)",
                    (mid, str(tool), str(raw_output)),
                )
            if mid is not None and ops:
                con.executemany(
                    "INSERT INTO op_times (measurement_id, position, node_type, name, avg_ms, first_ms, "
                    "times_called) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            mid,
                            i,
                            str(op["node_type"]),
                            str(op["name"]),
                            _num(op, "avg_ms", required=True),
                            _num(op, "first_ms"),
                            _int(op.get("times_called", 1), "times_called"),
                        )
                        for i, op in enumerate(ops)
                    ],
                )
            return mid is not None

    def _measurement_row(self, workload_key, device_id, stats, run_id, variant, version, repeat=0) -> tuple:
        if not run_id:
            raise ValueError("run_id must be a non-empty string")
        return (
            workload_key,
            int(device_id),
            _check_variant(variant),
            *check_stats(stats),
            str(run_id),
            str(version),
            _int(repeat, "repeat"),
            _num(stats, "ref_ms"),
            _num(stats, "steal_pct"),
        )

    def _insert_measurement(self, con: sqlite3.Connection, row: tuple) -> bool:
        return self._insert_measurement_id(con, row) is not None

    def _insert_measurement_id(self, con: sqlite3.Connection, row: tuple) -> int | None:
        """The new measurement's id, or ``None`` when that repeat is stored already."""
        try:
            cur = con.execute(
                "INSERT INTO measurements (workload_key, device_id, variant, median_ms, p10_ms, "
                "p90_ms, mean_ms, std_ms, n, warmup, inner, ci95_ms, started_at, finished_at, "
                "run_id, hwlat_version, repeat, ref_ms, steal_pct) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (workload_key, device_id, variant, repeat) DO NOTHING",
                row,
            )
        except sqlite3.IntegrityError:
            raise StoreError(
                f"{self.path}: unknown workload {row[0]!r} or device id {row[1]}; "
                f"add_workload / add_device first"
            ) from None
        return cur.lastrowid if cur.rowcount == 1 else None

    def add_failure(
        self, workload_key: str, device_id: int, error: str, run_id: str | None, variant: str = "warm"
    ) -> None:
        """Record that a workload failed on a device (kept as history; a rerun tries it again)."""
        row = (workload_key, int(device_id), _check_variant(variant), str(error), run_id, now())
        with self._tx() as con:
            self._insert_failure(con, row)

    def _insert_failure(self, con: sqlite3.Connection, row: tuple) -> None:
        try:
            con.execute(
                "INSERT INTO failures (workload_key, device_id, variant, error, "
                "run_id, at) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        except sqlite3.IntegrityError:
            raise StoreError(
                f"{self.path}: unknown workload {row[0]!r} or device id "
                f"{row[1]}; add_workload / add_device first"
            ) from None

    def import_rows(
        self,
        fingerprint: dict,
        workloads: list[dict],
        measurements: list[dict],
        run_id: str,
        failures: list[dict] = (),
    ) -> tuple[int, int]:
        """Merge results measured elsewhere (e.g. on a phone); return ``(added, skipped)``.

        All or nothing, in one transaction. ``workloads`` are dicts with the arguments of
        :meth:`add_workload`; ``measurements`` are dicts with ``workload_key`` (or ``key``),
        optional ``variant`` and the :data:`STATS_FIELDS` (other keys are ignored, so rows of
        :meth:`frame` can be passed back in). A row's own ``run_id`` / ``hwlat_version`` are kept
        when present, else ``run_id`` and this hwlat's version are used. Measurements already
        in the store are skipped, never overwritten. ``failures`` are dicts with ``workload_key``
        (or ``key``), ``error`` and optional ``variant``, recorded as :meth:`add_failure` does.
        """
        return self.import_runs(
            [
                dict(
                    fingerprint=fingerprint,
                    workloads=workloads,
                    measurements=measurements,
                    run_id=run_id,
                    failures=failures,
                )
            ]
        )

    def import_runs(self, runs: list[dict]) -> tuple[int, int]:
        """Several :meth:`import_rows` (each a dict of its arguments) in one transaction: all or
        nothing. Returns ``(added, skipped)`` over all of them."""
        added = total = 0
        with self._tx() as con:
            for run in runs:
                device_id = self._add_device_in(con, run["fingerprint"])
                for w in run["workloads"]:
                    self._add_workload_in(con, w)
                for i, m in enumerate(run["measurements"]):
                    key = m.get("workload_key") or m.get("key")
                    if not key:
                        raise ValueError(f"measurement {i}: no workload_key")
                    stats = {f: m[f] for f in STATS_FIELDS if not _missing(m.get(f))}
                    repeat = m.get("repeat")
                    row = self._measurement_row(
                        key,
                        device_id,
                        stats,
                        m.get("run_id") or run["run_id"],
                        m.get("variant") or "warm",
                        m.get("hwlat_version") or __version__,
                        0 if _missing(repeat) else repeat,
                    )
                    added += self._insert_measurement(con, row)
                    total += 1
                for f in run.get("failures") or ():
                    key = f.get("workload_key") or f.get("key")
                    self._insert_failure(
                        con,
                        (
                            key,
                            device_id,
                            _check_variant(f.get("variant") or "warm"),
                            str(f["error"]),
                            f.get("run_id") or run["run_id"],
                            now(),
                        ),
                    )
        return added, total - added

    def _add_workload_in(self, con: sqlite3.Connection, w: dict) -> bool:
        """:meth:`add_workload` inside an open transaction."""
        key, granularity = w.get("key"), w.get("granularity")
        if not key or not isinstance(key, str):
            raise ValueError(f"workload key must be a non-empty string, got {key!r}")
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"workload {key!r}: granularity must be one of {GRANULARITIES}, got {granularity!r}"
            )
        fields = ("key", "granularity", "spec", "madds", "params")
        row = (
            key,
            granularity,
            canonical_json(w.get("spec")),
            _int(w.get("madds"), "madds"),
            _int(w.get("params"), "params"),
        )
        cur = con.execute(
            "INSERT INTO workloads (key, granularity, spec, madds, params) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            row,
        )
        if cur.rowcount:
            return True
        old = con.execute(
            "SELECT key, granularity, spec, madds, params FROM workloads WHERE key = ?", (key,)
        ).fetchone()
        diff = [f for f, a, b in zip(fields, old, row) if a != b]
        if diff:
            raise StoreError(
                f"{self.path}: workload {key!r} already exists with a different {', '.join(diff)}"
            )
        return False

    # -- reading --------------------------------------------------------------------------------

    def measured(self, device_id: int, variant: str = "warm", repeat: int | None = None) -> set[str]:
        """Keys of the workloads already measured on this device (what a rerun can skip); with
        ``repeat``, those that have that repeat."""
        sql = "SELECT DISTINCT workload_key FROM measurements WHERE device_id = ? AND variant = ?"
        params = [int(device_id), _check_variant(variant)]
        if repeat is not None:
            sql += " AND repeat = ?"
            params.append(int(repeat))
        return {r[0] for r in self._db.execute(sql, params)}

    def measured_repeats(self, device_id: int, key: str, variant: str = "warm") -> set[int]:
        """The repeats of workload ``key`` stored for this device."""
        return {
            r[0]
            for r in self._db.execute(
                "SELECT repeat FROM measurements WHERE device_id = ? AND variant = ? AND workload_key = ?",
                (int(device_id), _check_variant(variant), key),
            )
        }

    def outputs(self, device_id: int | None = None) -> pd.DataFrame:
        """The raw outputs kept beside measurements: ``key, device_id, variant, repeat, tool, text``."""
        where, params = _where(("m.device_id", None if device_id is None else int(device_id)))
        return self._query(
            "SELECT m.workload_key AS key, m.device_id, m.variant, m.repeat, o.tool, o.text "
            f"FROM outputs o JOIN measurements m ON m.id = o.measurement_id{where} ORDER BY m.id",
            params,
        )

    def op_times(self, device_id: int | None = None, key: str | None = None) -> pd.DataFrame:
        """Per-op times measured inside networks: ``key, device_id, variant, repeat, position,
        node_type, name, avg_ms`` (per call), ``first_ms``, ``times_called`` (per run), ``run_ms``
        (``avg_ms × times_called``), in run order."""
        where, params = _where(
            ("m.device_id", None if device_id is None else int(device_id)), ("m.workload_key", key)
        )
        df = self._query(
            "SELECT m.workload_key AS key, m.device_id, m.variant, m.repeat, t.position, t.node_type, "
            "t.name, t.avg_ms, t.first_ms, t.times_called FROM op_times t "
            f"JOIN measurements m ON m.id = t.measurement_id{where} ORDER BY m.id, t.position",
            params,
        )
        df["run_ms"] = df["avg_ms"] * df["times_called"]
        return df

    def devices(self) -> pd.DataFrame:
        """One row per device: id, key, readable label, the main fingerprint fields, first_seen."""
        rows = []
        for id_, key, blob, first_seen in self._db.execute(
            "SELECT id, key, fingerprint, first_seen FROM devices ORDER BY id"
        ):
            fp = json.loads(blob)
            rows.append(
                {
                    **{c: fp.get(c) for c in DEVICE_COLUMNS},
                    "device_id": id_,
                    "device_key": key,
                    "device": device_label(fp),
                    "first_seen": first_seen,
                    "fingerprint": blob,
                }
            )
        return pd.DataFrame(rows, columns=DEVICE_COLUMNS)

    def frame(
        self,
        device_id: int | None = None,
        runtime: str | None = None,
        granularity: str | None = None,
        repeats: bool = False,
    ) -> pd.DataFrame:
        """Measurements joined with their workload and device, latencies in milliseconds.

        One row per (workload, device, variant), columns :data:`FRAME_COLUMNS`: ``latency_ms`` is
        the median of the repeats' latencies (:data:`LATENCY_STATISTIC`), ``median_ms`` the median
        of their medians (p10/p90/mean/std/ci95/ref/steal their medians, ``n`` their total
        samples). ``repeats=True`` gives every stored repeat instead
        (:data:`REPEAT_COLUMNS`). ``spec`` is the workload's JSON text.
        """
        where, params = _where(
            ("m.device_id", None if device_id is None else int(device_id)), ("w.granularity", granularity)
        )
        df = self._query(
            "SELECT m.workload_key AS key, w.granularity, m.variant, m.device_id, m.median_ms, "
            "m.p10_ms, m.p90_ms, m.mean_ms, m.std_ms, m.ci95_ms, m.n, m.warmup, m.inner, w.madds, "
            "w.params, m.run_id, m.started_at, m.finished_at, m.hwlat_version, w.spec, "
            "m.repeat, m.ref_ms, m.steal_pct "
            f"FROM measurements m JOIN workloads w ON w.key = m.workload_key{where} ORDER BY m.id",
            params,
        )
        dev = self.devices()[
            ["device_id", "device_key", "device", "runtime", "runtime_version", "threads", "delegate"]
        ]
        df = df.merge(dev, on="device_id", how="left")
        if runtime is not None:
            df = df[df["runtime"] == runtime]
        for col in ("median_ms", "p10_ms", "p90_ms", "mean_ms", "std_ms", "ci95_ms", "ref_ms", "steal_pct"):
            df[col] = df[col].astype("float64")
        for col in ("n", "madds", "params", "device_id", "repeat"):
            df[col] = df[col].astype("int64")
        df["latency_ms"] = repeat_latency(df)
        for col in ("warmup", "inner"):
            df[col] = df[col].astype("Int64")
        if repeats:
            return df[REPEAT_COLUMNS].reset_index(drop=True)
        return aggregate_repeats(df)

    def failures(self, device_id: int | None = None, variant: str | None = None) -> pd.DataFrame:
        """Recorded failures: key, granularity, variant, device_key, device_id, error, run_id,
        at (UTC)."""
        where, params = _where(
            ("f.device_id", None if device_id is None else int(device_id)),
            ("f.variant", None if variant is None else _check_variant(variant)),
        )
        return self._query(
            "SELECT f.workload_key AS key, w.granularity, f.variant, d.key AS device_key, "
            "f.device_id, f.error, f.run_id, f.at FROM failures f "
            f"JOIN workloads w ON w.key = f.workload_key JOIN devices d ON d.id = f.device_id{where} "
            "ORDER BY f.id",
            params,
        )

    def summary(self, frame: pd.DataFrame | None = None, counts: bool = True) -> pd.DataFrame:
        """One row per device, runtime, delegate, precision, granularity and variant of the
        measurements of ``frame`` (a :meth:`frame` or part of it; default: all): distinct
        ``workloads``, ``latency_ms_total``, median ``repeats``, median and largest ``spread_pct``
        (what ``hwlat profile show`` prints); with ``counts`` also ``measured`` (stored repeats)
        and ``failed`` (workloads of the group's device, granularity and variant with at least one
        recorded failure)."""
        df = self.frame() if frame is None else frame
        fps = {r.device_id: json.loads(r.fingerprint) for r in self.devices().itertuples()}
        df = df.assign(
            precision=[
                (fps.get(d, {}).get("extra") or {}).get("precision", "float32") for d in df["device_id"]
            ]
        )
        groups = ["device", "device_key", "runtime", "delegate", "precision", "granularity", "variant"]
        out = (
            df.groupby(groups, dropna=False)
            .agg(
                workloads=("key", "nunique"),
                latency_ms_total=("latency_ms", "sum"),
                repeats=("repeats", "median"),
                spread_pct_median=("spread_pct", "median"),
                spread_pct_max=("spread_pct", "max"),
                measured=("repeats", "sum"),
            )
            .reset_index()
        )
        if not counts:
            return out.drop(columns=["measured"])
        failures = self.failures()
        failed = failures.groupby(["device_key", "granularity", "variant"])["key"].nunique().rename("failed")
        out = out.merge(failed.reset_index(), on=["device_key", "granularity", "variant"], how="left")
        out["failed"] = out["failed"].fillna(0).astype("int64")
        out["measured"] = out["measured"].astype("int64")
        return out

    def export(self, path: str | os.PathLike, **filters) -> Path:
        """Write :meth:`frame` (``filters`` go to it) to ``.csv``, ``.parquet`` or ``.json``
        (records); the file is replaced atomically. Returns the path."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise ValueError(
                f"{path}: unknown export format {path.suffix!r}; use one of {', '.join(EXPORT_SUFFIXES)}"
            )
        df = self.frame(**filters)

        def write(tmp: Path) -> None:
            if suffix == ".csv":
                df.to_csv(tmp, index=False)
            elif suffix == ".parquet":
                df.to_parquet(tmp, index=False, engine="pyarrow")
            else:
                df.to_json(tmp, orient="records", indent=1)

        return atomic_write(path, write)


def repeat_latency(df: pd.DataFrame) -> pd.Series:
    """The latency (ms) of each stored repeat: its :data:`LATENCY_STATISTIC`, else its median."""
    low = df[LATENCY_STATISTIC].astype("float64")
    return low.where(low > 0, df["median_ms"].astype("float64"))


def aggregate_repeats(df: pd.DataFrame) -> pd.DataFrame:
    """Per-repeat rows (:data:`REPEAT_COLUMNS`) to one row per (workload, device, variant)
    (:data:`FRAME_COLUMNS`): medians of the repeats, their count and spread, first-seen order."""
    if df.empty:
        out = df.reindex(columns=FRAME_COLUMNS)
        out["repeats"] = out["repeats"].astype("int64")
        out["spread_pct"] = out["spread_pct"].astype("float64")
        return out.reset_index(drop=True)
    if df.duplicated(["key", "device_id", "variant"]).sum() == 0:  # one repeat each: as stored
        out = df.assign(repeats=1, spread_pct=0.0)
        return out[FRAME_COLUMNS].reset_index(drop=True)
    med = [
        "latency_ms",
        "median_ms",
        "p10_ms",
        "p90_ms",
        "mean_ms",
        "std_ms",
        "ci95_ms",
        "ref_ms",
        "steal_pct",
    ]
    g = df.groupby(["key", "device_id", "variant"], sort=False)
    agg = g[med].median()
    first = g.first()  # identical per group: workload and device fields
    out = first.drop(columns=med + ["n", "started_at", "finished_at", "repeat"])
    out[med] = agg
    out["n"] = g["n"].sum()
    out["started_at"] = g["started_at"].min()
    out["finished_at"] = g["finished_at"].max()
    out["repeats"] = g.size()
    lo, hi = g["latency_ms"].min(), g["latency_ms"].max()
    out["spread_pct"] = 100 * (hi - lo) / out["latency_ms"]
    out = out.reset_index()
    for col in ("warmup", "inner"):
        out[col] = out[col].astype("Int64")
    return out[FRAME_COLUMNS].reset_index(drop=True)


def unstable_workloads(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of a :meth:`Store.frame` whose repeats disagree by more than
    :data:`UNSTABLE_SPREAD_PCT`, widest first, with the workload's ``label`` (its key if it has none)."""
    bad = frame[frame["spread_pct"] > UNSTABLE_SPREAD_PCT].sort_values("spread_pct", ascending=False)
    return bad.assign(
        label=[json.loads(spec).get("label") or key for spec, key in zip(bad["spec"], bad["key"])]
    )


def check_output(path: str | os.PathLike, flag: str = "-o") -> Path:
    """``path`` is a file a command may write: its folder exists, it is not a folder, and it is not
    an SQLite database (a measurement store is never overwritten). Raises ``StoreError`` naming
    ``flag`` and the path (:func:`hwlat.files.check_output`)."""
    return _check_output(path, flag, error=StoreError)


@contextmanager
def open_store(
    store: str | os.PathLike | Store, readonly: bool = False, create: bool = True
) -> Iterator[Store]:
    """``with open_store(store_or_path) as st:`` a :class:`Store`, opened (and closed) here when
    given a path, passed through as it is when given an open store.

    ``readonly=True`` for commands that only read: never creates nor writes the file.
    """
    if isinstance(store, Store):
        yield store
        return
    st = Store(store, create=create, readonly=readonly)
    try:
        yield st
    finally:
        st.close()
