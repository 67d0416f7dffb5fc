"""Reading what TFLite's ``benchmark_model`` prints: timings, init, memory and per-op profiles.

The classic tool (``tflite/tools/benchmark/benchmark_tflite_model.cc``) prints, per run:

* two stats lines in microseconds, the warm-up's and the regular runs'
  (``count=50 first=… curr=… min=… max=… avg=… std=…``, newer builds add ``p5=… median=… p95=…``;
  values may be in scientific notation, ``avg=2.95034e+06``);
* ``Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg): …``
  (very old builds: ``Average inference timings in us: Warmup: …, Init: …, Inference: …``);
* ``Memory footprint delta from the start of the tool (MB): init=… overall=…`` (older:
  ``Peak memory footprint (MB): …``);
* with ``--enable_op_profiling=true``, the op tables (``Run Order``, ``Top by Computation Time``,
  ``Summary by node type``) of the initialization and of the regular runs, as text (tab-separated,
  with or without a ``[start]`` column), as CSV (``", "``-separated, node types unquoted and holding
  commas, so rows are read from the right), or as a ``tflite.profiling.BenchmarkProfilingData``
  proto (read with ``ai_edge_litert.profiling_info_pb2``).

Lines may carry an ``INFO:`` prefix or an Android logcat prefix. A run's latency is the regular
runs' median where the tool prints one, else their mean (:meth:`BenchmarkLog.latency_ms`).
Times here are milliseconds (``*_ms``) unless named ``*_us``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hwlat.errors import FileFormatError

_LOGCAT = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[^:]*:\s?")
_LEVEL = re.compile(r"^(?:INFO|WARNING|ERROR|VERBOSE|DEBUG): ?")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"(\w+)=({_NUMBER})")
_SUMMARY = re.compile(r"(?:Average )?[Ii]nference timings in us:\s*(.*)")
_MEMORY = re.compile(
    r"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\):\s*(.*)"
)
_NUMERIC = re.compile(rf"^{_NUMBER}%?$")

OP_SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs:"
INIT_SECTION = "Profiling Info for Benchmark Initialization:"


class BenchmarkLogError(FileFormatError):
    """Output of ``benchmark_model`` that cannot be read: no timings, or a damaged op table."""


def strip_prefix(line: str) -> str:
    """``line`` without a logcat prefix and an ``INFO:``-style level."""
    return _LEVEL.sub("", _LOGCAT.sub("", line.rstrip("\r\n")), count=1)


@dataclass(frozen=True)
class RunStats:
    """One stats line (microseconds): ``count`` invocations and what the tool printed of them."""

    count: int
    values_us: dict

    def get(self, name: str) -> float | None:
        return self.values_us.get(name)


@dataclass(frozen=True)
class OpTime:
    """One op (node) of the regular runs' profile: ``avg_ms`` per call, ``times_called`` calls per
    run (XNNPACK rows merge the layers of one name, so it can exceed 1), ``order`` its run order."""

    node_type: str
    name: str
    avg_ms: float
    first_ms: float | None = None
    mem_kb: float | None = None
    times_called: int = 1
    order: int = 0

    @property
    def run_ms(self) -> float:
        """Its time in one run (ms): ``avg_ms × times_called``."""
        return self.avg_ms * self.times_called


@dataclass(frozen=True)
class BenchmarkLog:
    """Everything read from one ``benchmark_model`` invocation; ``raw`` is the text it was read from."""

    warmup: RunStats | None
    regular: RunStats | None
    summary_us: dict = field(default_factory=dict)
    memory_mb: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    ops: tuple[OpTime, ...] = ()
    xnnpack: bool | None = None
    raw: str = ""

    def latency_ms(self) -> float:
        """The regular runs' median (ms) where printed, else their mean, else ``Inference (avg)``."""
        if self.regular is not None:
            for name in ("median", "avg"):
                if self.regular.get(name) is not None:
                    return self.regular.get(name) / 1000.0
        for name in ("Inference (avg)", "Inference"):
            if name in self.summary_us:
                return self.summary_us[name] / 1000.0
        raise BenchmarkLogError("benchmark_model output holds no timings of the regular runs")

    def stats(self) -> dict:
        """The store's ``stats`` of this run (:data:`hwlat.profiler.storage.store.STATS_FIELDS`):
        ``median_ms`` is the tool's median, or its mean where it prints none (then ``p10_ms`` is
        unknown too, and the store takes the median as the latency)."""
        r = self.regular
        n = r.count if r is not None else 1
        get = lambda k: None if r is None or r.get(k) is None else r.get(k) / 1000.0
        return {
            "median_ms": self.latency_ms(),
            "mean_ms": get("avg") or self.latency_ms(),
            "std_ms": get("std"),
            "n": int(n),
            "warmup": None if self.warmup is None else int(self.warmup.count),
            "inner": 1,
        }

    def op_total_ms(self) -> float:
        """Σ over ops of their time in one run (ms): what the profile accounts for."""
        return float(sum(op.run_ms for op in self.ops))


def _pairs(text: str) -> dict:
    return {k: float(v) for k, v in _PAIR.findall(text)}


def _summary(text: str) -> dict:
    out = {}
    for part in text.split(","):
        if ":" in part:
            k, _, v = part.rpartition(":")
            v = v.strip()
            if re.fullmatch(_NUMBER, v):
                out[k.strip()] = float(v)
    return out


def _header(line: str) -> tuple[list[str], bool] | None:
    """Column names of an op table's header line, and whether it is CSV."""
    cols = re.findall(r"\[([^\]]+)\]", line)
    if cols and cols[0].lower() == "node type":
        return [c.lower() for c in cols], False
    if line.lower().startswith("node type,"):
        return [c.strip().lower().replace("_", " ") for c in line.split(",")], True
    return None


def _row(line: str, cols: list[str], csv: bool) -> dict:
    """One table row as ``{column: text}``: the numeric columns counted from the right."""
    n = len(cols) - 2  # between the node type and the name
    if csv:
        parts = line.split(", ")
        if len(parts) < n + 2:
            raise ValueError(f"{len(parts)} fields, expected at least {n + 2}")
        values = [", ".join(parts[: len(parts) - n - 1])] + parts[len(parts) - n - 1 :]
    elif "\t" in line.strip():
        parts = [p.strip() for p in line.strip().split("\t") if p.strip()]
        values = parts[: n + 1] + ["\t".join(parts[n + 1 :])]
    else:  # the tabs turned into spaces: node types and names both hold spaces
        m = re.match(rf"^\s*(.+?)((?:\s+{_NUMBER}%?){{{n}}})\s+(\S.*)$", line)
        if not m:
            raise ValueError("no numeric columns")
        values = [m.group(1), *m.group(2).split(), m.group(3)]
    if len(values) != len(cols) or not all(_NUMERIC.match(v.strip()) for v in values[1:-1]):
        raise ValueError(f"expected the columns {cols}")
    return dict(zip(cols, (v.strip() for v in values)))


def _num(text: str | None) -> float | None:
    return None if text is None else float(text.rstrip("%"))


def parse_op_table(lines: list[str], where: str = "op table", first_line: int = 1) -> tuple[OpTime, ...]:
    """The first ``Run Order`` table in ``lines`` (a text or CSV op profile from its regular runs'
    section on); errors name the line, ``lines[0]`` being line ``first_line``."""
    ops: list[OpTime] = []
    in_run_order, cols, csv = False, None, False
    for i, raw in enumerate(lines):
        line = strip_prefix(raw)
        if "==== Run Order ====" in line:
            in_run_order, cols = True, None
            continue
        if not in_run_order:
            continue
        if "====" in line or line.startswith(("Number of nodes", "Timings (", "Memory (")):
            break
        if cols is None:
            head = _header(line.strip())
            if head:
                cols, csv = head
            continue
        if not line.strip():
            if ops:
                break
            continue
        try:
            r = _row(line, cols, csv)
        except ValueError as e:
            raise BenchmarkLogError(
                f"{where}: line {i + first_line}: not an op row ({e}): {line.strip()[:80]!r}"
            ) from None
        ops.append(
            OpTime(
                node_type=r["node type"],
                name=r["name"],
                avg_ms=float(r.get("avg ms") or r["avg_ms"]),
                first_ms=_num(r.get("first")),
                mem_kb=_num(r.get("mem kb")),
                times_called=int(float(r.get("times called") or 1)),
                order=len(ops),
            )
        )
    return tuple(ops)


def _op_section(lines: list[str]) -> int | None:
    """The index of the line that opens the regular runs' op profile, if any."""
    return next((i for i, raw in enumerate(lines) if strip_prefix(raw).strip().startswith(OP_SECTION)), None)


def parse_log(text: str, where: str = "benchmark_model output") -> BenchmarkLog:
    """Read one invocation's stdout (and stderr: the tool logs to both). :class:`BenchmarkLogError`
    names ``where`` when the text holds no timings of the regular runs."""
    lines = text.splitlines()
    stats: list[RunStats] = []
    summary, memory, params = {}, {}, {}
    xnnpack = None
    for raw in lines:
        line = strip_prefix(raw).strip()
        if line.startswith((OP_SECTION, INIT_SECTION)):
            break  # the profile tables follow: their own count= lines are not runs
        if line.startswith("count="):
            values = _pairs(line)
            stats.append(RunStats(count=int(values.pop("count")), values_us=values))
        elif m := _SUMMARY.search(line):
            summary = _summary(m.group(1))
        elif m := _MEMORY.search(line):
            memory = _pairs(m.group(1)) or {"peak": float(re.findall(_NUMBER, m.group(1))[0])}
        elif m := re.match(r"^([A-Za-z#][\w #()./-]*?): \[(.*)\]$", line):
            params[m.group(1)] = m.group(2)
        elif "XNNPACK delegate" in line and "Created" in line:
            xnnpack = True
    op_start = _op_section(lines)
    ops = parse_op_table(lines[op_start:], where, op_start + 1) if op_start is not None else ()
    if "Use xnnpack" in params:
        xnnpack = params["Use xnnpack"].strip().lower() in ("1", "true")
    warmup = stats[0] if len(stats) >= 2 else None
    regular = stats[-1] if len(stats) >= 2 or (stats and not summary) else None
    log = BenchmarkLog(
        warmup=warmup,
        regular=regular,
        summary_us=summary,
        memory_mb=memory,
        params=params,
        ops=ops,
        xnnpack=xnnpack,
        raw=text,
    )
    try:
        log.latency_ms()
    except BenchmarkLogError:
        raise BenchmarkLogError(
            f"{where}: no timings of the regular runs (no 'count=… avg=…' line "
            f"and no 'Inference timings in us' line)"
        ) from None
    return log


def read_log(path: str | Path) -> BenchmarkLog:
    """:func:`parse_log` of a saved output file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise BenchmarkLogError(f"{path}: cannot read ({e.strerror})") from None
    return parse_log(text, str(path))


def parse_op_csv(text: str, where: str = "op profile CSV") -> tuple[OpTime, ...]:
    """The regular runs' ops of a ``--op_profiling_output_mode=csv`` file."""
    lines = text.splitlines()
    start = _op_section(lines) or 0
    return parse_op_table(lines[start:], where, start + 1)


def parse_op_proto(data: bytes, where: str = "op profile proto") -> tuple[OpTime, ...]:
    """The regular runs' ops of a ``--op_profiling_output_mode=proto`` file
    (``tflite.profiling.BenchmarkProfilingData``), delegate-internal ops included, in run order."""
    from ai_edge_litert import profiling_info_pb2

    msg = profiling_info_pb2.BenchmarkProfilingData()
    try:
        msg.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError
        raise BenchmarkLogError(f"{where}: not a BenchmarkProfilingData proto ({e})") from None
    rows = []
    profile = msg.runtime_profile
    groups = [sg.per_op_profiles for sg in profile.subgraph_profiles]
    groups += [d.per_op_profiles for d in profile.delegate_profiles]
    for group in groups:
        for op in group:
            rows.append(
                OpTime(
                    node_type=op.node_type,
                    name=op.name,
                    avg_ms=op.inference_microseconds.avg / 1000.0,
                    first_ms=op.inference_microseconds.first / 1000.0,
                    mem_kb=float(op.mem_kb.avg) if op.HasField("mem_kb") else None,
                    times_called=int(op.times_called) or 1,
                    order=int(op.run_order),
                )
            )
    if not rows:
        raise BenchmarkLogError(f"{where}: the proto holds no op profile of the regular runs")
    return tuple(sorted(rows, key=lambda r: r.order))


def log_fingerprint(device: str, log: BenchmarkLog) -> dict:
    """The fingerprint of a device known only by its ``benchmark_model`` logs: its name, the tool,
    the thread count and XNNPACK as the log states them (each part of the device key)."""
    if not isinstance(device, str) or not device.strip():
        raise BenchmarkLogError("a device name is required (--device NAME)")
    threads = log.params.get("Num threads") or log.params.get("#threads used for CPU inference")
    threads = int(threads) if threads and threads.lstrip("-").isdigit() and int(threads) > 0 else None
    delegate = {True: "xnnpack", False: "none"}.get(log.xnnpack)
    name = device.strip()
    return {
        "name": name,
        "source": "benchmark_model log",
        "imported": "benchmark_log",
        "hostname": None,
        "board": name,
        "cpu": None,
        "machine": None,
        "cores": None,
        "governor": None,
        "runtime": "benchmark_model",
        "runtime_version": None,
        "threads": threads,
        "delegate": delegate,
        "extra": {"imported": "benchmark_log", "name": name},
    }


def import_logs(paths, arch, device: str, store, progress: bool = False) -> tuple[int, int]:
    """Store saved ``benchmark_model`` outputs of the network ``arch`` (an ArchSpec) as repeats of
    its model workload on the device ``device``; return ``(added, skipped)``.

    Each file is one repeat; its raw text and per-op times are kept beside it. A file already
    stored for that workload and device (the same text) is skipped, so importing again adds
    nothing. Every file is read before anything is written: a file without timings stores nothing.
    """
    import uuid

    from hwlat.archs.pieces import model
    from hwlat.profiler.storage.store import open_store

    logs = [read_log(p) for p in paths]
    if not logs:
        raise BenchmarkLogError("no benchmark_model output files given")
    from hwlat.profiler.storage.device import device_key

    fps = {device_key(log_fingerprint(device, log)) for log in logs}
    if len(fps) > 1:
        raise BenchmarkLogError(
            f"{device}: the logs disagree on threads or XNNPACK; import them under different --device names"
        )
    w = model(arch)
    added = skipped = 0
    run_id = uuid.uuid4().hex[:12]
    with open_store(store) as st:
        device_id = st.add_device(log_fingerprint(device, logs[0]))
        st.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
        stored = st.outputs(device_id)
        stored = stored[stored.key == w.key]
        texts, used = set(stored.text), set(stored.repeat) | set(st.measured_repeats(device_id, w.key))
        for log in logs:
            if log.raw in texts:
                skipped += 1
                continue
            repeat = next(r for r in range(len(used) + 1) if r not in used)
            st.add_measurement(
                w.key,
                device_id,
                log.stats(),
                run_id,
                repeat=repeat,
                raw_output=log.raw,
                ops=[op.__dict__ for op in log.ops] or None,
            )
            used.add(repeat)
            texts.add(log.raw)
            added += 1
    return added, skipped
