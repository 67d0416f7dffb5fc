"""Profiling end to end on the real runtimes: store, resume after SIGKILL, concurrency, CLI."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from hwlat.archs import get_arch
from hwlat.archs.pieces import blocks, collect, model
from hwlat.cli import main
from hwlat.profiler.measure.profile import profile
from hwlat.profiler.measure.timing import TimingConfig
from hwlat.profiler.storage.store import Store

FAST = TimingConfig(max_seconds=0.5, min_sample_ms=0.2, target=0.05)


@pytest.mark.parametrize("runtime", ["litert", "onnxruntime", "torch"])
def test_profile_blocks_and_model_on_each_runtime(tmp_path, runtime):
    arch = get_arch("mobilenetv3_small_035", resolution=96)
    store = tmp_path / "s.db"
    res = profile([arch], "block", store, runtime, config=FAST, progress=False)
    assert len(res.measured) == len(collect([arch], "block")) == res.total and not res.failed
    res2 = profile([arch], "model", store, runtime, config=FAST, progress=False)
    assert res2.measured == [model(arch).key]
    with Store(store) as st:
        df = st.frame()
    assert set(df["runtime"]) == {runtime} and (df["median_ms"] > 0).all()
    assert (df["p10_ms"] <= df["median_ms"]).all() and (df["median_ms"] <= df["p90_ms"]).all()
    # a rerun measures nothing again
    again = profile([arch], "block", store, runtime, config=FAST, progress=False)
    assert again.measured == [] and len(again.skipped) == res.total


def test_networks_measured_with_their_blocks_interleaved(tmp_path):
    archs = [
        get_arch("mobilenetv3_small_035", resolution=96),
        get_arch("mobilenetv3_small_050", resolution=96),
    ]
    store = tmp_path / "s.db"
    res = profile(archs, ("model", "block"), store, "litert", config=FAST, progress=False)
    expected = {w.key for g in ("model", "block") for w in collect(archs, g)}
    assert set(res.measured) == expected and res.total == len(expected) and not res.failed
    with Store(store) as st:
        df = st.frame().set_index("key")
    t0, t1 = (pd.to_datetime(df[c], format="ISO8601") for c in ("started_at", "finished_at"))
    seen: set[str] = set()
    for arch in archs:  # the model's timing window overlaps each of its new blocks' windows
        m = model(arch).key
        own = {w.key for w in blocks(arch)} - seen
        seen |= own
        overlapping = [k for k in own if t0[k] < t1[m] and t0[m] < t1[k]]
        assert own and len(overlapping) == len(own), (arch.name, len(own), len(overlapping))
    again = profile(archs, ("model", "block"), store, "litert", config=FAST, progress=False)
    assert again.measured == [] and set(again.skipped) == expected


def test_kill_and_resume(tmp_path):
    store = tmp_path / "s.db"
    cmd = [
        sys.executable,
        "-m",
        "hwlat",
        "profile",
        "kernels",
        "mobilenetv3_small_050",
        "-r",
        "96",
        "--runtime",
        "litert",
        "--store",
        str(store),
        "--max-seconds",
        "0.3",
        "-q",
        "--repeats",
        "1",
    ]
    total = len(collect([get_arch("mobilenetv3_small_050", resolution=96)], "kernel"))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n_before = 0
    deadline = time.time() + 120
    while time.time() < deadline and n_before < 3:
        time.sleep(0.05)
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
                    n_before = con.execute("select count(*) from measurements").fetchone()[0]
            except sqlite3.Error:
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= n_before < total, "the run should be killed part-way"
    with sqlite3.connect(store) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        kept = con.execute("select count(*) from measurements").fetchone()[0]
    assert kept >= n_before
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{kept} already stored" in out.stdout
    with sqlite3.connect(store) as con:
        rows = con.execute("select workload_key, count(*) from measurements group by 1").fetchall()
    assert len(rows) == total and all(c == 1 for _, c in rows)


def test_two_profilers_share_a_store(tmp_path):
    store = tmp_path / "s.db"
    base = [
        sys.executable,
        "-m",
        "hwlat",
        "profile",
        "blocks",
        "--runtime",
        "torch",
        "--store",
        str(store),
        "--max-seconds",
        "0.3",
        "-q",
        "-r",
        "96",
        "--repeats",
        "1",
    ]
    procs = [
        subprocess.Popen(base + names, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for names in (
            ["mobilenetv3_small_050", "mobilenetv3_small_075"],
            ["mobilenetv3_small_075", "mobilenetv3_small_050", "mobilenetv3_small_100"],
        )
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    archs = [
        get_arch(n, resolution=96)
        for n in ("mobilenetv3_small_050", "mobilenetv3_small_075", "mobilenetv3_small_100")
    ]
    with sqlite3.connect(store) as con:
        rows = con.execute("select workload_key, count(*) from measurements group by 1").fetchall()
    assert len(rows) == len(collect(archs, "block")) and all(c == 1 for _, c in rows)


def test_failing_workload_is_recorded_and_run_goes_on(tmp_path, monkeypatch):
    """A workload the runtime rejects (here: a .tflite the exporter corrupted) is a stored failure."""
    import hwlat.profiler.export.tflite as tx

    arch = get_arch("mobilenetv3_small_035", resolution=96)
    bad = blocks(arch)[2].key
    real = tx.tflite_segment

    def corrupt(rows, *a, **k):
        data = real(rows, *a, **k)
        from hwlat.archs.pieces import _key
        from hwlat.archs.segments import canonical

        return data[:64] if _key("block", canonical(rows)) == bad else data

    monkeypatch.setattr(tx, "tflite_segment", corrupt)
    res = profile([arch], "block", tmp_path / "s.db", "litert", config=FAST, progress=False)
    assert list(res.failed) == [bad] and len(res.measured) == res.total - 1
    with Store(tmp_path / "s.db") as st:
        f = st.failures()
    assert list(f["key"]) == [bad] and "Flatbuffer" in f["error"].iloc[0]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_profile_show_export(capsys, tmp_path):
    store = str(tmp_path / "s.db")
    code, out, _ = run(
        capsys,
        "profile",
        "models",
        "mobilenetv3_small_035",
        "-r",
        "96",
        "--runtime",
        "torch",
        "--store",
        store,
        "--max-seconds",
        "0.3",
        "-q",
    )
    assert code == 0 and "1 measured (3 repeats)" in out and store in out  # --repeats: default 3
    code, out, _ = run(capsys, "profile", "show", "--store", store, "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["granularity"] == "model" and rows[0]["runtime"] == "torch"
    assert {"key", "median_ms", "n", "device"} <= set(rows[0])
    for suffix in ("csv", "parquet"):
        code, out, _ = run(capsys, "profile", "export", "--store", store, "-o", str(tmp_path / f"x.{suffix}"))
        assert code == 0 and (tmp_path / f"x.{suffix}").stat().st_size > 0
    code, out, _ = run(
        capsys,
        "profile",
        "models",
        "mobilenetv3_small_035",
        "-r",
        "96",
        "--quantize",
        "int8",
        "--store",
        store,
        "--max-seconds",
        "0.3",
        "-q",
    )
    assert code == 0 and "1 measured" in out
    code, out, _ = run(capsys, "profile", "show", "--store", store)
    lines = out.splitlines()  # the device table, then maybe a list of unstable workloads
    lines = lines[: next((i for i, ln in enumerate(lines) if "repeats disagree" in ln), len(lines))]
    assert code == 0 and "precision" in lines[0] and "repeats" in lines[0] and len(lines) == 3
    assert any("int8" in ln and "litert" in ln for ln in lines) and any(
        "float32" in ln and "torch" in ln for ln in lines
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["profile", "blocks", "mobilenetv3_small_100", "--runtime", "tensorrt", "--store", "X"],
            "unknown runtime",
        ),
        (["profile", "show", "--store", "/nonexistent/dir/s.db"], "s.db"),
        (["profile", "blocks", "--runtime", "torch", "--store", "X"], "no architectures given"),
    ],
)
def test_cli_profile_errors(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_cli_store_not_a_store(capsys, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello, not a database\n" * 100)
    before = f.read_bytes()
    code, _, err = run(capsys, "profile", "show", "--store", str(f))
    assert code == 2 and err.count("\n") == 1 and f.read_bytes() == before


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_cli_export(capsys, tmp_path, fmt):
    out = tmp_path / f"m.{fmt}"
    code, printed, _ = run(capsys, "export", fmt, "mobilenetv3_small_100", "-r", "160", "-o", str(out))
    assert code == 0 and str(out) in printed
    data = out.read_bytes()
    if fmt == "tflite":
        assert data[4:8] == b"TFL3"
    else:
        import onnx

        onnx.checker.check_model(onnx.load_from_string(data))


def test_cold_weights_variant_is_stored_beside_warm(tmp_path):
    arch = get_arch("mobilenetv3_large_100", resolution=96)
    late = [w for w in blocks(arch) if "160->960" in w.label][:1]
    store = tmp_path / "s.db"
    from hwlat.profiler.measure.profile import _measure_batch  # noqa: F401 - same code path as profile()

    arch_blocks = collect([arch], "block")
    assert late and late[0].key in {w.key for w in arch_blocks}
    for variant in ("warm", "cold"):
        profile(
            [arch],
            "block",
            store,
            "litert",
            variant=variant,
            config=TimingConfig(max_seconds=0.3, target=0.05),
            progress=False,
        )
    with Store(store) as st:
        df = st.frame()
    both = df[df["key"] == late[0].key].set_index("variant")
    assert set(both.index) == {"warm", "cold"}
    # weights come from memory when cold: slower than warm for a weight-heavy late block
    assert both.loc["cold", "median_ms"] > both.loc["warm", "median_ms"]


def test_repeats_in_fresh_instances_with_the_phase_reference(tmp_path):
    arch = get_arch("mobilenetv3_small_035", resolution=96)
    store = tmp_path / "s.db"
    n = len(collect([arch], "block"))
    res = profile([arch], "block", store, "litert", config=FAST, progress=False, repeats=2)
    assert len(res.measured) == 2 * n and not res.failed
    with Store(store) as st:
        raw = st.frame(repeats=True)
        df = st.frame()
    assert sorted(raw.groupby("key").repeat.apply(tuple).unique()) == [(0, 1)]
    assert (raw.ref_ms > 0).all() and (raw.steal_pct.dropna() >= 0).all()  # None: < 1 jiffy sampled
    assert (df.repeats == 2).all() and len(df) == n
    med = raw.groupby("key").median_ms.median()
    assert df.set_index("key").median_ms.to_dict() == pytest.approx(med.to_dict())
    # asking for a third repeat measures only that one
    more = profile([arch], "block", store, "litert", config=FAST, progress=False, repeats=3)
    assert len(more.measured) == n and more.skipped == []
    with Store(store) as st:
        assert (st.frame().repeats == 3).all()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="repeats must be a positive integer"):
            profile([arch], "block", store, "litert", config=FAST, progress=False, repeats=bad)


def test_a_run_says_how_much_of_its_time_went_to_timing(tmp_path):
    """``ProfileResult`` keeps the run's wall time and the time inside timed invocations, and the
    round hook sees every round of every workload, numbered by repeat."""
    arch = get_arch("mobilenetv3_small_050", resolution=96)
    rounds = []
    res = profile(
        [arch], "block", tmp_path / "s.db", "litert", config=TimingConfig(max_seconds=0.3),
        progress=False, repeats=2, on_round=lambda r, key, xs, slow, inner: rounds.append((r, key)),
    )  # fmt: skip
    assert 0 < res.timed_seconds < res.seconds and 0 < res.measuring_share < 1
    assert "of it timing the workloads" in res.timing_line()
    keys = {w.key for w in blocks(arch)}
    assert {r for r, _ in rounds} == {0, 1} and {k for _, k in rounds} == keys
    again = profile([arch], "block", tmp_path / "s.db", "litert", progress=False, repeats=2)
    assert again.measuring_share is None and again.timing_line() == ""  # everything was stored
