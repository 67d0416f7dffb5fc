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


def _contract_names() -> set[str]:
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    names = set()
    for c in cfg:
        for entry in c.get("layers", []) + c.get("modules", []):
            names.update(n.strip() for n in entry.split("|"))
    return names


def test_every_module_is_named_in_an_import_contract():
    """A module no contract names is never checked by lint-imports (a cycle through it stays
    invisible): every module and subpackage of hwlat is named beside its siblings."""
    named = _contract_names()
    missing = []
    for path in sorted((ROOT / "hwlat").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if len(parts) < 2 or parts[-1] == "__main__":
            continue  # the root package itself; `python -m hwlat` only calls hwlat.cli
        if any(p.startswith(".") or p == "templates" for p in parts):
            continue
        if ".".join(parts) not in named:
            missing.append(".".join(parts))
    assert not missing, f"modules no import contract names: {missing}"
