"""mkdocs hooks: the pages written at build time from the code and the files they describe.

* ``cli.md``: the marker ``<!-- hwlat:cli -->`` becomes the ``--help`` of ``hwlat`` and of every
  sub-command, recursively, each under its own heading (from ``hwlat.cli.build_parser()``).
* ``results.md``: the marker ``<!-- hwlat:results -->`` becomes one section per file of
  ``benchmarks/results/`` with its header lines; the files themselves are copied into the site
  (``results/NAME``) so the page links them.
* ``changelog.md``: the marker ``<!-- hwlat:changelog -->`` becomes the text of ``CHANGELOG.md``.
* ``design.md``: the marker ``<!-- hwlat:contracts -->`` becomes the import contracts of
  ``pyproject.toml`` (``[tool.importlinter]``), each with its layers.
* ``index.md``: the marker ``<!-- hwlat:readme -->`` becomes ``README.md``, its links rewritten
  for the site (``docs/x.md`` -> ``x.md``, ``benchmarks/results/`` -> ``results.md``; a link to
  another file of the repository becomes its path in code, as the site does not hold it).

Registered in ``mkdocs.yml`` (``hooks:``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from pathlib import Path

import tomllib
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HELP_WIDTH = "100"
HEADER_LINES = 12


@contextlib.contextmanager
def _columns(width: str):
    """argparse wraps help to ``$COLUMNS``: fix it so the page is the same on every terminal."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _subcommands(parser: argparse.ArgumentParser):
    """``(name, parser)`` of each direct sub-command, each parser once (aliases skipped)."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield name, sub


def cli_markdown() -> str:
    """The help of ``hwlat`` and every sub-command, depth first, as Markdown sections."""
    from hwlat.cli import build_parser

    sections: list[str] = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        level = "#" * min(len(words) + 1, 6)
        command = " ".join(words)
        sections.append(f"{level} `{command}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
        for name, sub in _subcommands(parser):
            walk(sub, [*words, name])

    with _columns(HELP_WIDTH):
        walk(build_parser(), ["hwlat"])
    return "\n".join(sections)


def _result_files() -> list[Path]:
    if not RESULTS.is_dir():
        return []
    return sorted(p for p in RESULTS.iterdir() if p.is_file() and not p.name.startswith("."))


def _header(path: Path) -> str:
    """The file's stamp: its leading ``#`` lines, else its lines up to the first blank one."""
    lines: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            stamped = bool(lines) and lines[0].startswith("#")
            if (stamped and not line.startswith("#")) or (not line.strip() and lines):
                break
            lines.append(line)
            if len(lines) >= HEADER_LINES:
                break
    return "\n".join(lines)


def results_markdown() -> str:
    files = _result_files()
    if not files:
        return (
            "*No result files in `benchmarks/results/` yet: each benchmark writes its file there "
            "when it is run.*\n"
        )
    parts = []
    for path in files:
        parts.append(
            f"### {path.name}\n\n[{path.name}](results/{path.name}) — its header:\n\n"
            f"```text\n{_header(path)}\n```\n"
        )
    return "\n".join(parts)


_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _site_link(match: re.Match) -> str:
    bang, text, target = match.groups()
    if re.match(r"[a-z]+:|#", target):
        return match.group(0)
    path, _, anchor = target.partition("#")
    if path.startswith("docs/"):
        return f"{bang}[{text}]({path[len('docs/') :]}{'#' + anchor if anchor else ''})"
    if path.rstrip("/") == "benchmarks/results":
        return f"[{text}](results.md)"
    if path == "CHANGELOG.md":
        return f"[{text}](changelog.md)"
    return text if text.startswith("`") else f"{text} (`{path}`)"


def readme_markdown() -> str:
    """``README.md`` with its links pointing into the site."""
    return _LINK.sub(_site_link, (ROOT / "README.md").read_text(encoding="utf-8"))


def contracts_markdown() -> str:
    """The import contracts of ``pyproject.toml``, each as a heading-less list of its layers."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    parts = []
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "layers":
            items = [" | ".join(f"`{m.strip()}`" for m in layer.split("|")) for layer in contract["layers"]]
            body = "\n".join(f"    {i}. {item}" for i, item in enumerate(items, 1))
        else:
            body = "    - " + ", ".join(f"`{m}`" for m in contract.get("modules", []))
        parts.append(f"- **{contract['name']}** ({contract['type']}):\n\n{body}\n")
    return "\n".join(parts)


def on_files(files, config):
    for path in _result_files():
        files.append(File.generated(config, f"results/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    if "<!-- hwlat:readme -->" in markdown:
        markdown = markdown.replace("<!-- hwlat:readme -->", readme_markdown())
    if "<!-- hwlat:contracts -->" in markdown:
        markdown = markdown.replace("<!-- hwlat:contracts -->", contracts_markdown())
    if "<!-- hwlat:cli -->" in markdown:
        markdown = markdown.replace("<!-- hwlat:cli -->", cli_markdown())
    if "<!-- hwlat:results -->" in markdown:
        markdown = markdown.replace("<!-- hwlat:results -->", results_markdown())
    if "<!-- hwlat:changelog -->" in markdown:
        changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        # the file's own title is the page's
        body = changelog.split("\n", 1)[1] if changelog.startswith("# ") else changelog
        markdown = markdown.replace("<!-- hwlat:changelog -->", body)
    return markdown
