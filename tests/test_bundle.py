"""Remote-device bundles: write, run in a venv with only numpy + LiteRT, import into a store."""

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from hwlat.archs import get_arch
from hwlat.archs.pieces import collect
from hwlat.cli import main
from hwlat.profiler.storage.store import Store


def _bundle(tmp_path, capsys):
    out = tmp_path / "bundle"
    code = main(["profile", "bundle", "blocks", "mobilenetv3_small_035", "-r", "96", "-o", str(out)])
    assert code == 0 and "run_bundle.py" in capsys.readouterr().out
    return out


def test_bundle_contents(tmp_path, capsys):
    out = _bundle(tmp_path, capsys)
    manifest = json.loads((out / "manifest.json").read_text())
    n = len(collect([get_arch("mobilenetv3_small_035", resolution=96)], "block"))
    assert len(manifest["workloads"]) == n == len(list((out / "models").glob("*.tflite")))
    src = (out / "run_bundle.py").read_text()
    assert "import hwlat" not in src and "from hwlat" not in src
    compile(src, "run_bundle.py", "exec")


def test_bundle_round_trip_in_this_venv(tmp_path, capsys):
    out = _bundle(tmp_path, capsys)
    r = subprocess.run(
        [sys.executable, str(out / "run_bundle.py"), "--limit", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, str(out / "run_bundle.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )  # resumes: measures only the rest
    assert r.returncode == 0 and "already in" in r.stderr
    store = tmp_path / "s.db"
    assert main(["profile", "import", str(out / "results.jsonl"), "--store", str(store)]) == 0
    assert main(["profile", "import", str(out), "--store", str(store)]) == 0
    printed = capsys.readouterr().out
    n = len(json.loads((out / "manifest.json").read_text())["workloads"])
    assert f"imported {n} measurements" in printed and f"imported 0 measurements ({n} already" in printed
    with Store(store) as st:
        df = st.frame()
    assert len(df) == n and set(df["runtime"]) == {"litert"}


def test_import_rejects_foreign_results(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text('{"type": "run"}\n')
    code = main(["profile", "import", str(tmp_path / "results.jsonl"), "--store", str(tmp_path / "s.db")])
    assert code == 2 and "manifest" in capsys.readouterr().err


@pytest.mark.slow
def test_bundle_runs_with_only_numpy_and_litert(tmp_path, capsys):
    """The device side needs nothing of hwlat: a fresh venv with numpy and ai-edge-litert only."""
    out = _bundle(tmp_path, capsys)
    env_dir = tmp_path / "device-venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "numpy", "ai-edge-litert"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    assert "hwlat" not in freeze and "torch" not in freeze and "pandas" not in freeze
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [str(py), str(out / "run_bundle.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    store = tmp_path / "s.db"
    assert main(["profile", "import", str(out), "--store", str(store)]) == 0
    with Store(store) as st:
        df = st.frame()
    assert len(df) == len(json.loads((out / "manifest.json").read_text())["workloads"])
    assert (df["median_ms"] > 0).all()
    Path(out / "results.jsonl").unlink()
