"""A non-editable install ships the reference data and the console script."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_non_editable_install_finds_data(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert (target / "hwlat" / "_data" / "paper_tables.csv").is_file()
    code = (
        "import hwlat, hwlat.paper as r; "
        "assert 'site' in hwlat.__file__, hwlat.__file__; "
        "print(r.table3().shape[0], r.data_file('paper_tables.csv'))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "_data" in out.stdout and int(out.stdout.split()[0]) > 5


def test_layering_contracts_hold():
    """The import layers declared in pyproject.toml (import-linter): no cycles, no upward imports."""
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run(
        [str(exe), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
