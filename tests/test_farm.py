"""The Ray profiling farm on a real local Ray cluster: routing by device resources, one store,
resume, a SIGKILLed worker, bundle devices, and the errors a user meets before any work starts."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hwlat.archs import decode
from hwlat.archs.pieces import collect
from hwlat.errors import ClusterError
from hwlat.profiler.measure.timing import TimingConfig
from hwlat.profiler.storage.store import Store

ray = pytest.importorskip("ray")
from hwlat.profiler.measure import farm  # noqa: E402 - after the skip

TINY = (
    "in32,stem_k3_s2_c16_hs,ir_k3_s1_e16_c16_re,ir_k3_s2_e64_c24_se16_re,ir_k3_s1_e72_c24_hs,"
    "ir_k5_s2_e96_c40_se24_hs,head_c96_hs_h128_hs,fc10"
)
QUICK = TimingConfig(max_seconds=0.2, min_samples=6, warmup_seconds=0.01, min_sample_ms=0.2)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def phone(tmp_path_factory):
    """The recorded phone of tests/phone_double.py, its adb first on PATH."""
    from phone_double import make_phone

    return make_phone(tmp_path_factory.mktemp("farm-phone"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, phone):
    """One local Ray cluster for the module: two local devices, a bundle device 'board' whose
    command runs the generated bundle runner on this machine, and a phone 'pixel6' over adb."""
    os.environ["HWLAT_BUNDLE_CMD_BOARD"] = f"{sys.executable} {{bundle}}/run_bundle.py"
    os.environ["HWLAT_ADB_BENCHMARK_MODEL_PIXEL6"] = phone["binary"]
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{phone['root'] / 'bin'}:{path}"
    r = farm.connect(
        num_cpus=2,
        resources={"device:litert": 1, "device:onnxruntime": 1, "device:board": 1, "device:pixel6": 1},
    )
    yield r
    farm.disconnect()
    os.environ.pop("HWLAT_BUNDLE_CMD_BOARD", None)
    os.environ.pop("HWLAT_ADB_BENCHMARK_MODEL_PIXEL6", None)
    os.environ["PATH"] = path


@pytest.fixture(scope="module")
def tiny():
    return decode(TINY, name="tiny")


def test_two_devices_into_one_store_and_resume(cluster, tiny, tmp_path):
    db = tmp_path / "lat.db"
    devices = [farm.FarmDevice("litert", "litert"), farm.FarmDevice("onnxruntime", "onnxruntime")]
    # two local devices on one host are two measuring slots: refused unless the user opts in
    with pytest.raises(ClusterError, match="--parallel-slots"):
        farm.farm_profile([tiny], "block", db, devices, config=QUICK, progress=False)
    assert not db.exists() or not Store(db).frame().shape[0]
    res = farm.farm_profile(
        [tiny], "block", db, devices, config=QUICK, progress=False, parallel_slots=True, repeats=2
    )
    n = len(collect([tiny], "block"))
    for name in ("litert", "onnxruntime"):
        assert sorted(res[name].measured) == sorted([w.key for w in collect([tiny], "block")] * 2)
        assert not res[name].failed and not res[name].duplicates
    with Store(db) as st:
        df = st.frame()
        assert sorted(df.groupby("runtime").size().to_dict().items()) == [("litert", n), ("onnxruntime", n)]
        assert df.groupby(["key", "device_id"]).size().max() == 1
        reps = st.frame(repeats=True)
        assert sorted(reps.groupby(["key", "device_id"])["repeat"].apply(sorted).map(tuple).unique()) == [
            (0, 1)
        ]
        assert reps["ref_ms"].notna().all()  # the phase reference ran on the workers
    # a rerun resumes: nothing left to measure
    again = farm.farm_profile(
        [tiny], "block", db, devices, config=QUICK, progress=False, parallel_slots=True, repeats=2
    )
    assert all(not r.measured and len(r.skipped) == n for r in again.values())


def test_missing_device_is_reported_before_any_work(cluster, tiny, tmp_path):
    db = tmp_path / "lat.db"
    with pytest.raises(
        ClusterError,
        match=r"no Ray worker offers device:pixel7 .*offered: board, "
        r"litert, onnxruntime",
    ):
        farm.farm_profile([tiny], "block", db, [farm.FarmDevice("pixel7")], progress=False)
    assert not db.exists()


def test_bundle_device_runs_the_bundle_runner(cluster, tiny, tmp_path):
    db = tmp_path / "lat.db"
    res = farm.farm_profile([tiny], "kernel", db, [farm.FarmDevice("board")], config=QUICK, progress=False)[
        "board"
    ]
    n = len(collect([tiny], "kernel"))
    assert len(res.measured) == n and not res.failed
    with Store(db) as st:
        df = st.frame()
        assert len(df) == n and set(df["runtime"]) == {"litert"} and set(df["delegate"]) == {"xnnpack"}


def _worker_pids() -> list[int]:
    """Ray workers running a measuring task (Ray titles the process ``ray::measure_batch``)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes().startswith(b"ray::measure_batch"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def test_phone_device_measures_over_adb_without_a_command_template(cluster, tiny, tmp_path, phone):
    from phone_double import benchmark_runs

    db = tmp_path / "lat.db"
    before = len(benchmark_runs(phone))
    res = farm.farm_profile(
        [tiny], "model", db, [farm.FarmDevice("pixel6", "litert")], config=QUICK, progress=False
    )
    assert len(res["pixel6"].measured) == 1 and not res["pixel6"].failed
    assert len(benchmark_runs(phone)) == before + 1
    with Store(db) as st:
        dev = st.devices().iloc[0]
        assert dev.runtime == "benchmark_model" and dev.board == "Google Pixel 6 (GS101)"
        assert len(st.outputs()) == 1 and len(st.op_times()) == 31


def test_sigkilled_worker_loses_only_its_batch(cluster, tiny, tmp_path, caplog):
    db = tmp_path / "lat.db"
    slow = TimingConfig(
        max_seconds=2.5, target=1e-9, min_samples=6, max_samples=10**6, warmup_seconds=0.01
    )  # every batch lasts max_seconds: a window to kill in
    killed: list[int] = []

    def stored() -> int:
        if not db.exists():
            return 0
        with Store(db) as st:
            return len(st.frame())

    def killer():
        deadline, last = time.time() + 120, 0
        while time.time() < deadline and not killed:
            n = stored()
            if n >= 2 and n != last:  # a batch just finished: kill the next one mid-way
                time.sleep(1.0)  # well inside the next batch, clear of the previous one's tail
                pids = _worker_pids()
                if stored() == n and pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            last = n
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    with caplog.at_level(logging.WARNING, logger="hwlat.profiler.measure.farm"):
        res = farm.farm_profile(
            [tiny], "block", db, [farm.FarmDevice("litert")], config=slow, batch=1, progress=False
        )["litert"]
    t.join(5)
    n = len(collect([tiny], "block"))
    assert killed, "the test never found a measuring worker to kill"
    assert len(res.measured) == n and not res.failed, res.failed
    # exactly the one workload in flight was lost and measured again; nothing twice
    assert len(res.resubmitted) == 1 and "worker lost" in caplog.text
    assert not res.duplicates
    with Store(db) as st:
        assert len(st.frame(repeats=True)) == n


def test_duplicate_results_are_stored_once(cluster, tiny, tmp_path):
    """A result for a (workload, device) already stored (a retried batch, a second driver) is
    recognised by its key and device: dropped and counted."""
    db = tmp_path / "lat.db"
    dev = [farm.FarmDevice("litert")]
    first = farm.farm_profile([tiny], "block", db, dev, config=QUICK, progress=False)["litert"]
    with Store(db) as st:
        before = st.frame()
    # a second driver that read the store before the first committed: it measures everything again
    orig = Store.measured
    Store.measured = lambda self, device_id, variant="warm", repeat=None: set()
    try:
        second = farm.farm_profile([tiny], "block", db, dev, config=QUICK, progress=False)["litert"]
    finally:
        Store.measured = orig
    assert not second.measured and sorted(second.duplicates) == sorted(first.measured)
    with Store(db) as st:
        after = st.frame()
    assert len(after) == len(before)
    assert after["median_ms"].tolist() == before["median_ms"].tolist()  # the first ones kept


def test_unreachable_addresses_fail_fast_in_the_cli(tmp_path):
    """A closed port and a port that accepts but never speaks Ray: one error line within 30 s."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    silent = srv.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()
    try:
        for port, msg in ((dead, "cannot connect"), (silent, "no Ray cluster answered")):
            t = time.time()
            p = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "hwlat",
                    "profile",
                    "blocks",
                    TINY,
                    "--store",
                    str(tmp_path / "x.db"),
                    "--ray",
                    f"127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert p.returncode == 2 and time.time() - t < 30 + 10
            last = p.stderr.strip().splitlines()[-1]
            assert last.startswith("hwlat: error: Ray address 127.0.0.1:") and msg in last, p.stderr
        assert not (tmp_path / "x.db").exists()
    finally:
        srv.close()


def test_bad_device_names():
    with pytest.raises(ValueError, match="unknown runtime"):
        farm.parse_device("phone=tflite")
    with pytest.raises(ValueError, match="NAME must be"):
        farm.parse_device("my phone")
    d = farm.parse_device("pixel7", "litert", {"xnnpack": False})
    assert d.resource == "device:pixel7" and d.options == {"xnnpack": False}
    assert farm.parse_device("x=onnxruntime", "litert", {"xnnpack": False}).options == {}


def test_a_local_cluster_offers_one_slot_per_device_unless_parallel_slots():
    one = [farm.parse_device("litert")]
    two = [farm.parse_device("litert"), farm.parse_device("ort=onnxruntime")]
    cores = os.cpu_count() or 1
    assert farm.local_resources(one) == {"device:litert": 1}
    assert farm.local_resources(one, parallel_slots=True) == {"device:litert": cores}
    assert farm.local_resources(two, parallel_slots=True) == {
        "device:litert": max(1, cores // 2),
        "device:ort": max(1, cores // 2),
    }
