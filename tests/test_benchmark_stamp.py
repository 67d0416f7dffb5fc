"""The stamped results files of benchmarks/ (benchmarks/stamp.py): the file name carries the
configuration, the header the command, commit, date, machine fingerprint and package versions,
stdout is copied into the file, and a benchmark that fails leaves the previous results alone.
Nothing is timed."""

import datetime as dt
import importlib.util
import json
import platform
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from hwlat.profiler.storage.device import KEY_FIELDS, device_key

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"


@pytest.fixture(scope="module")
def stamp():
    spec = importlib.util.spec_from_file_location("stamp", BENCHMARKS / "stamp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(stamp, tmp_path, config, body="body line", **kw):
    with stamp.results(
        BENCHMARKS / "bench_grouped_conv.py", config, args=["--repeats", "3"], directory=tmp_path, **kw
    ) as path:
        print(body)
        print("noise floor: 1.23 %")
    return path


def test_file_name_carries_the_benchmark_runtime_options_and_machine(stamp, tmp_path, capsys):
    path = _run(
        stamp,
        tmp_path,
        {"quick": False, "repeats": 3, "only": ["nas", "farm"], "farm_networks": None, "no_noise": True},
        runtime="litert",
    )
    machine = platform.machine()
    assert path.name == f"grouped_conv__litert__repeats-3__only-nas+farm__no-noise__{machine}.txt"
    assert path.exists() and not list(tmp_path.glob("*.partial"))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    # another configuration is another file
    other = _run(stamp, tmp_path, {"quick": True, "repeats": 1}, runtime="litert")
    assert other.name == f"grouped_conv__litert__quick__repeats-1__{machine}.txt"
    assert len(list(tmp_path.iterdir())) == 2


def test_file_name_parts_are_safe_and_never_contain_the_separator(stamp):
    name = stamp.file_name("predict_speed", {"store": "out/demo/lat.db", "a__b": "x y"}, machine="x86_64")
    assert name == "predict_speed__store-out-demo-lat.db__a--b-x-y__x86_64.txt"
    assert len(name.split("__")) == 4
    assert stamp.file_name("a__b", {"c": "d__e"}, "f__g", "h") == "a_b__f_g__c-d_e__h.txt"
    assert stamp.benchmark_name("benchmarks/bench_profiler.py") == "profiler"
    assert stamp.benchmark_name("benchmarks/check_monotone.py") == "check_monotone"


def test_header_has_command_commit_date_fingerprint_and_versions(stamp, tmp_path, capsys):
    path = _run(stamp, tmp_path, {"repeats": 3}, runtime="litert")
    head = stamp.read_header(path)
    assert tuple(head) == stamp.HEADER_KEYS
    assert head["results"].startswith(stamp.FORMAT)

    # the command reruns the benchmark: interpreter, script, arguments
    cmd = shlex.split(head["command"])
    assert head["cwd"] == str(Path.cwd())
    assert (Path(head["cwd"]) / cmd[0]).resolve() == Path(sys.executable).resolve()
    assert (Path(head["cwd"]) / cmd[1]).resolve() == BENCHMARKS / "bench_grouped_conv.py"
    assert cmd[2:] == ["--repeats", "3"]

    # the commit of this checkout, and whether it had changes
    if (REPO / ".git").exists():
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert re.fullmatch(rf"{commit} \((clean|dirty: \d+ paths changed or untracked)\)", head["commit"]), (
            head["commit"]
        )

    # a UTC date of this run
    date = dt.datetime.strptime(head["date"].split()[0], "%Y-%m-%dT%H:%M:%SZ")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert abs((now - date).total_seconds()) < 300

    # hwlat's fingerprint of this machine for the runtime, and the key a store would give it
    fp = json.loads(head["machine"])
    assert set(KEY_FIELDS) <= set(fp)
    assert fp["runtime"] == "litert" and fp["delegate"] == "xnnpack" and fp["threads"] == 1
    assert fp["runtime_version"] == metadata.version("ai-edge-litert")
    assert fp["machine"] == platform.machine() and fp["cores"] >= 1
    assert head["device_key"] == device_key(fp)

    # the configuration and every package version
    assert json.loads(head["configuration"]) == {"runtime": "litert", "threads": 1, "repeats": 3}
    versions = dict(item.rsplit(" ", 1) for item in head["versions"].split(", "))
    assert versions["python"] == platform.python_version()
    for dist in ("numpy", "torch", "ai-edge-litert", "onnxruntime", "scikit-learn", "pandas", "hwlat"):
        assert versions[dist] == metadata.version(dist), dist


def test_stdout_is_printed_and_written_after_the_header(stamp, tmp_path, capsys):
    out_before = sys.stdout
    path = _run(stamp, tmp_path, {}, body="τ = 0.95 × target")
    assert sys.stdout is out_before
    printed = capsys.readouterr().out
    assert printed == "τ = 0.95 × target\nnoise floor: 1.23 %\n"
    lines = path.read_text(encoding="utf-8").splitlines()
    n = len(stamp.HEADER_KEYS)
    assert all(line.startswith("# ") for line in lines[:n])
    assert lines[n : n + 3] == ["", "τ = 0.95 × target", "noise floor: 1.23 %"]
    assert re.fullmatch(r"# finished: \S+Z \(UTC\), wall time [\d.]+ s", lines[-1])


def test_no_runtime_still_fingerprints_the_machine(stamp, tmp_path, capsys):
    path = _run(stamp, tmp_path, {"seeds": 3})
    assert path.name == f"grouped_conv__seeds-3__{platform.machine()}.txt"
    head = stamp.read_header(path)
    fp = json.loads(head["machine"])
    assert fp["runtime"] == "none" and fp["cpu"]
    assert head["device_key"].startswith("none")


def test_a_failing_benchmark_leaves_the_previous_results_and_a_partial_file(stamp, tmp_path, capsys):
    path = _run(stamp, tmp_path, {"repeats": 3}, body="the good run")
    with (
        pytest.raises(RuntimeError, match="lost the device"),
        stamp.results(BENCHMARKS / "bench_grouped_conv.py", {"repeats": 3}, args=[], directory=tmp_path),
    ):
        print("half a run")
        raise RuntimeError("lost the device")
    assert "the good run" in path.read_text(encoding="utf-8")
    partial = path.with_name(path.name + ".partial")
    text = partial.read_text(encoding="utf-8")
    assert "half a run" in text and "# INCOMPLETE" in text and "RuntimeError: lost the device" in text


def test_results_dir_from_the_environment(stamp, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWLAT_RESULTS_DIR", str(tmp_path / "smoke"))
    with stamp.results(BENCHMARKS / "bench_profiler.py", {"quick": True}, args=["--quick"]) as path:
        pass
    assert path.parent == tmp_path / "smoke" and path.exists()
    assert stamp.results_dir() == tmp_path / "smoke"
    monkeypatch.delenv("HWLAT_RESULTS_DIR")
    assert stamp.results_dir() == BENCHMARKS / "results"


def test_every_benchmark_writes_through_the_stamp():
    scripts = sorted(BENCHMARKS.glob("bench_*.py")) + [BENCHMARKS / "check_monotone.py"]
    assert len(scripts) >= 10
    for script in scripts:
        assert re.search(r"stamp\.results\(\s*__file__", script.read_text(encoding="utf-8")), script.name
