"""The manual: the strict mkdocs build, the README's length, and every relative link resolving."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 150

# [text](target) and ![alt](target); a target ends at whitespace or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)


def _relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [t for t in LINK.findall(text) if not re.match(r"[a-zA-Z][a-zA-Z+.-]*:|#", t)]


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def test_mkdocs_build_strict(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        pytest.skip(f"mkdocs is not installed next to {sys.executable}")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "hwlat profile blocks" in cli and "usage: hwlat" in cli, "the CLI page lacks the --help text"
    codec = (site / "ir" / "index.html").read_text(encoding="utf-8")
    assert "<table>" in codec and "stem_k{K}_s{S}_c{C}_{A}" in codec, "the codec grammar is not rendered"


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move prose to docs/"


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    missing = []
    for target in _relative_links(path):
        file = target.split("#", 1)[0]
        if file and not (path.parent / file).exists():
            missing.append(target)
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_link_pattern_finds_links():
    links = _relative_links(ROOT / "README.md")
    assert "docs/ir.md" in links and "CHANGELOG.md" in links


def _readme_block(language: str, containing: str = "") -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [
        b
        for b in re.findall(rf"^```{language}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
        if containing in b
    ]
    assert blocks, f"README.md has no {language} block with {containing!r}"
    return blocks[0]


def test_readme_python_example_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _readme_block("python")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_readme_cli_example_runs(tmp_path):
    hwlat = Path(sys.executable).parent / "hwlat"
    if not hwlat.exists():
        pytest.skip(f"the hwlat command is not installed next to {sys.executable}")
    lines = [line.split("#", 1)[0].strip() for line in _readme_block("sh", "hwlat ").splitlines()]
    commands = [line for line in lines if line.startswith("hwlat ")]
    assert commands, "README.md's command-line example has no hwlat command"
    for command in commands:
        assert not command.startswith(("hwlat profile", "hwlat demo")), "the example must not measure"
        result = subprocess.run(
            str(hwlat) + command[len("hwlat") :],
            shell=True,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"
