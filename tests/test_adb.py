"""The adb runner for ``benchmark_model``: Debian's real ``adb`` for what needs no phone, and a
recorded phone (tests/phone_double.py) for the command sequence that would reach one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from phone_double import benchmark_runs, calls, make_phone, set_devices

from hwlat.errors import HwlatError, PhoneError
from hwlat.profiler.measure import adb as A
from hwlat.profiler.measure.timing import TimingConfig

REAL_ADB = shutil.which("adb")
needs_adb = pytest.mark.skipif(REAL_ADB is None, reason="Debian's adb is not installed (apt-get install adb)")


@pytest.fixture(scope="module", autouse=True)
def _stop_the_adb_server_we_started():
    import subprocess

    running = REAL_ADB and subprocess.run(["pgrep", "-f", "adb.*server"], capture_output=True).returncode == 0
    yield
    if REAL_ADB and not running:
        subprocess.run([REAL_ADB, "kill-server"], capture_output=True, timeout=30)


# -- the real adb, no phone attached ----------------------------------------------------------------
@needs_adb
def test_real_adb_without_a_phone_says_so_in_one_line():
    assert A.Adb().devices() == []
    with pytest.raises(PhoneError, match="no phone attached") as e:
        A.select_phone()
    assert "\n" not in str(e.value) and isinstance(e.value, HwlatError)
    with pytest.raises(PhoneError, match="phone R58M12345 is not attached"):
        A.select_phone("R58M12345")


@needs_adb
def test_real_adb_shell_on_a_missing_device_is_a_phone_error():
    with pytest.raises(PhoneError, match="R58M12345"):
        A.Adb(serial="R58M12345", timeout_s=20).shell("echo hi")


def test_no_adb_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PhoneError, match="adb not found: install Android platform-tools"):
        A.select_phone()


# -- a recorded phone ---------------------------------------------------------------------------
def test_connect_pins_the_fastest_core_and_fingerprints_the_phone(tmp_path):
    ph = make_phone(tmp_path)
    phone = A.connect(None, ph["binary"], exe=ph["adb"])
    assert phone.core == 7 and phone.mask == "80"  # 2.80 GHz X1 cores 6 and 7: the last
    fp = phone.fingerprint
    assert fp["board"] == "Google Pixel 6 (GS101)" and fp["cpu"] == "ARM Cortex-X1"
    assert fp["hostname"] == "FA6AB0301234" and fp["governor"] == "schedutil"
    assert fp["max_freq_khz"] == 2802000 and fp["cores"] == 8 and fp["threads"] == 1
    assert fp["runtime"] == A.RUNTIME and fp["runtime_version"].startswith("sha256:")
    assert fp["delegate"] == "xnnpack" and fp["os"] == "Android 14 (SDK 34)"
    assert "ARM Cortex-A55×4" in fp["cpu_parts"] and "emulated" not in fp["extra"]
    pushes = [c for c in calls(ph) if "push" in c]
    assert len(pushes) == 1 and pushes[0][-1] == f"{A.REMOTE_DIR}/benchmark_model"
    A.connect(None, ph["binary"], exe=ph["adb"])  # the phone has it: not pushed again
    assert len([c for c in calls(ph) if "push" in c]) == 1


def test_device_key_follows_the_governor_and_the_phone(tmp_path):
    from hwlat.profiler.storage.device import device_key

    a = A.connect(None, make_phone(tmp_path / "a")["binary"], exe=make_phone(tmp_path / "a2")["adb"])
    b = make_phone(tmp_path / "b", governor="performance")
    assert device_key(A.connect(None, b["binary"], exe=b["adb"]).fingerprint) != device_key(a.fingerprint)
    c = make_phone(tmp_path / "c", devices=(("OTHERPHONE", "device"),))
    fp = A.connect(None, c["binary"], exe=c["adb"]).fingerprint
    assert fp["hostname"] == "FA6AB0301234"  # ro.serialno, not the adb address
    assert device_key(fp) == device_key(a.fingerprint)


@pytest.mark.parametrize(
    "devices, serial, message",
    [
        ((), None, "no phone attached"),
        (
            (("A1", "device"), ("B2", "device")),
            None,
            r"several phones attached \(A1 \(device\), B2 \(device\)\): "
            "choose one with --adb SERIAL",
        ),
        ((("A1", "unauthorized"),), None, "phone A1 is unauthorized: unlock it and accept"),
        ((("A1", "offline"),), None, "phone A1 is offline: reconnect"),
        ((("A1", "device"),), "Z9", r"phone Z9 is not attached \(adb devices lists: A1 \(device\)\)"),
    ],
)
def test_device_selection_errors(tmp_path, devices, serial, message):
    ph = make_phone(tmp_path, devices=devices)
    with pytest.raises(PhoneError, match=message):
        A.connect(serial, ph["binary"], exe=ph["adb"])


def test_several_phones_and_a_serial(tmp_path):
    ph = make_phone(tmp_path, devices=(("A1", "device"), ("FA6AB0301234", "device")))
    assert A.connect("FA6AB0301234", ph["binary"], exe=ph["adb"]).adb.serial == "FA6AB0301234"
    assert all(c[:2] == ["-s", "FA6AB0301234"] for c in calls(ph) if c != ["devices"])


def test_binary_missing_or_not_executable(tmp_path):
    ph = make_phone(tmp_path)
    with pytest.raises(
        PhoneError,
        match="benchmark_model /data/local/tmp/nope is not a file here and is "
        "not executable on phone FA6AB0301234",
    ):
        A.connect(None, "/data/local/tmp/nope", exe=ph["adb"])
    A.connect(None, ph["binary"], exe=ph["adb"])  # pushed: now a path on the phone works
    assert A.connect(None, f"{A.REMOTE_DIR}/benchmark_model", exe=ph["adb"]).binary.endswith(
        "benchmark_model"
    )


def test_one_invocation_follows_the_timing_config(tmp_path):
    ph = make_phone(tmp_path)
    phone = A.connect(None, ph["binary"], exe=ph["adb"])
    cfg = TimingConfig(min_warmup=4, warmup_seconds=0.25, max_samples=120, max_seconds=7.5)
    graph = A.push_model(phone, "k1", b"TFL3 model bytes", tmp_path)
    log = A.run_benchmark(phone, graph, cfg)
    assert log.latency_ms() == pytest.approx(14.2909) and log.regular.count == 70
    (line,) = benchmark_runs(ph)
    assert line.replace(str(ph["root"] / "fs"), "").split() == [
        f"--graph={A.REMOTE_DIR}/k1.tflite",
        "--num_threads=1",
        "--warmup_runs=4",
        "--warmup_min_secs=0.25",
        "--num_runs=120",
        "--min_secs=0",
        "--max_secs=7.5",
        "--use_xnnpack=true",
    ]
    assert (ph["root"] / "taskset.log").read_text().split() == ["80"]
    A.push_model(phone, "k1", b"TFL3 model bytes", tmp_path)  # once per run
    assert len([c for c in calls(ph) if "push" in c and c[-1].endswith("k1.tflite")]) == 1


def test_a_refused_graph_names_the_tool_error(tmp_path):
    ph = make_phone(tmp_path)
    phone = A.connect(None, ph["binary"], exe=ph["adb"])
    graph = A.push_model(phone, "bad", b"REFUSE", tmp_path)
    with pytest.raises(
        A.GraphRefusedError, match="bad.tflite: no timings \\(ERROR: Didn't find op for builtin"
    ):
        A.run_benchmark(phone, graph, TimingConfig())


def test_unplugged_mid_call(tmp_path):
    ph = make_phone(tmp_path)
    phone = A.connect(None, ph["binary"], exe=ph["adb"])
    set_devices(ph, [("FA6AB0301234", "device")], unplug_after=0)
    with pytest.raises(PhoneError, match="phone FA6AB0301234 is not attached \\(unplugged\\?\\)"):
        A.run_benchmark(phone, A.push_model(phone, "k2", b"x", tmp_path), TimingConfig())


# -- profiling a network on the recorded phone ------------------------------------------------------
def _small():
    from hwlat.archs import get_arch

    return get_arch("mobilenetv3_small_050", resolution=96)


def test_profile_phone_commits_repeats_with_raw_output_and_ops(tmp_path):
    from hwlat.profiler.storage.store import Store

    ph = make_phone(tmp_path)
    phone = A.connect(None, ph["binary"], exe=ph["adb"])
    db = tmp_path / "s.db"
    res = A.profile_phone([_small()], "model", db, phone, repeats=2, progress=False)
    assert len(res.measured) == 2 and not res.failed
    runs = benchmark_runs(ph)
    assert len(runs) == 2 and all(
        "--enable_op_profiling=true" in r and "--op_profiling_output_mode=proto" in r for r in runs
    )
    with Store(db) as st:
        df = st.frame(repeats=True)
        assert sorted(df["repeat"]) == [0, 1] and df.median_ms.tolist() == pytest.approx([14.2909] * 2)
        assert st.devices().iloc[0].runtime == A.RUNTIME
        assert len(st.outputs()) == 2 and "Inference timings in us" in st.outputs().text.iloc[0]
        assert len(st.op_times()) == 62  # 31 ops of the pulled proto, per repeat
    again = A.profile_phone([_small()], "model", db, phone, repeats=2, progress=False)
    assert again.measured == [] and len(again.skipped) == 1 and len(benchmark_runs(ph)) == 2


def test_profile_phone_unplugged_mid_run_loses_only_the_workload_in_flight(tmp_path):
    from hwlat.profiler.storage.store import Store

    ph = make_phone(tmp_path)
    phone = A.connect(None, ph["binary"], exe=ph["adb"])
    db = tmp_path / "s.db"
    set_devices(ph, [("FA6AB0301234", "device")], unplug_after=3)
    with pytest.raises(PhoneError, match="not attached \\(unplugged\\?\\)"):
        A.profile_phone([_small()], "block", db, phone, progress=False)
    with Store(db) as st:
        assert len(st.frame()) == 3
    set_devices(ph, [("FA6AB0301234", "device")])  # plugged in again: the run resumes
    phone = A.connect(None, ph["binary"], exe=ph["adb"])
    res = A.profile_phone([_small()], "block", db, phone, progress=False)
    assert len(res.skipped) == 3 and len(res.measured) == res.total - 3
    assert len(benchmark_runs(ph)) == res.total  # nothing measured twice


# -- the CLI ----------------------------------------------------------------------------------------
def test_cli_profile_models_on_a_phone(tmp_path, monkeypatch, capsys):
    from hwlat.cli import main

    ph = make_phone(tmp_path)
    monkeypatch.setenv("PATH", f"{ph['root'] / 'bin'}:/usr/bin:/bin")
    db = str(tmp_path / "s.db")
    argv = ["profile", "models", "mobilenetv3_small_050", "-r", "96", "--store", db, "--repeats", "1", "-q"]
    assert main([*argv, "--adb", "--benchmark-model", ph["binary"]]) == 0
    out = capsys.readouterr().out
    assert "phone FA6AB0301234: Google Pixel 6 (GS101), core 7 (ARM Cortex-X1, schedutil)" in out
    assert "1 measured" in out and f"results in {db}" in out
    assert main([*argv, "--adb", "FA6AB0301234", "--benchmark-model", ph["binary"]]) == 0
    assert "1 already stored" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--adb"], "--adb needs --benchmark-model PATH"),
        (["--benchmark-model", "bm"], "--benchmark-model applies with --adb only"),
        (
            ["--adb", "--benchmark-model", "bm", "--runtime", "onnxruntime"],
            "--runtime onnxruntime does not apply",
        ),
        (["--adb", "--benchmark-model", "bm"], "adb not found: install Android platform-tools"),
    ],
)
def test_cli_phone_errors_are_one_line(tmp_path, monkeypatch, capsys, extra, message):
    from hwlat.cli import main

    monkeypatch.setenv("PATH", "/nonexistent")
    argv = ["profile", "models", "mobilenetv3_small_050", "--store", str(tmp_path / "s.db"), "-q", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cli_import_benchmark_log(tmp_path, capsys):
    from hwlat.cli import main

    log = str(
        Path(__file__).parent / "data" / "benchmark_logs" / "mobilenet_v1_riscv64_tf28_op_profiling.txt"
    )
    argv = [
        "profile",
        "import-benchmark-log",
        log,
        "--arch",
        "mobilenetv3_small_050",
        "--device",
        "qemu-riscv",
    ]
    db = str(tmp_path / "s.db")
    assert main([*argv, "--store", db]) == 0
    assert (
        "qemu-riscv: 1 benchmark_model runs of mobilenetv3_small_050 added, 0 already stored"
        in capsys.readouterr().out
    )
    assert main([*argv, "--store", db]) == 0
    assert (
        "0 benchmark_model runs of mobilenetv3_small_050 added, 1 already stored" in capsys.readouterr().out
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("ERROR: Failed to initialize the interpreter\n")
    assert (
        main(
            [
                "profile",
                "import-benchmark-log",
                str(bad),
                "--arch",
                "mobilenetv3_small_050",
                "--device",
                "p",
                "--store",
                db,
            ]
        )
        == 2
    )
    assert "bad.txt: no timings" in capsys.readouterr().err
