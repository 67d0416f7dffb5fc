"""The tree is formatted and linted by ruff (configuration in pyproject.toml), so reflowed lines
and import order never need commits of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_format_leaves_every_file_as_it_is():
    p = _ruff("format", "--check", ".")
    assert p.returncode == 0, f"run `ruff format .`:\n{p.stdout}{p.stderr}"


def test_ruff_check_finds_nothing():
    p = _ruff("check", ".")
    assert p.returncode == 0, f"run `ruff check --fix .`:\n{p.stdout}{p.stderr}"
