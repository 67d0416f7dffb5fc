"""A griffe extension: hwlat's reST docstrings rendered as Markdown by mkdocstrings.

The library's docstrings are reStructuredText (Sphinx roles such as :func:`~hwlat.archs.codec.encode`,
simple tables, ``::`` literal blocks) and stay that way; this extension rewrites each docstring's text
at load time, before mkdocstrings parses it, so that the API pages render it as written:

* a role ``:func:`~a.b.c``` becomes an optional cross-reference: a link when ``a.b.c`` is rendered
  on some page, plain code otherwise (never a warning; ``~`` shows the last name only). A bare name
  is looked up among the names its module defines or imports;
* a simple table (``====  ====`` borders) becomes a Markdown table;
* ``text::`` followed by an indented block becomes ``text:`` and a fenced code block.

Registered in ``mkdocs.yml`` (``plugins: mkdocstrings: handlers: python: options: extensions``).
"""

from __future__ import annotations

import html
import re
import textwrap

import griffe

_ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|attr|data|exc|obj|const):`([^`]+)`")
_BORDER = re.compile(r"^(\s*)=+(?: +=+)+\s*$")
_GAP = re.compile(r"\S+(?: \S+)*")


def _resolve(name: str, obj: griffe.Object) -> str:
    """The full path of ``name`` as written in ``obj``'s docstring (best effort)."""
    if name.startswith("."):
        package = obj.module.path if obj.module.is_package else obj.module.path.rpartition(".")[0]
        return f"{package}.{name.lstrip('.')}"
    first, _, rest = name.partition(".")
    scope: griffe.Object | None = obj if obj.is_module or obj.is_class else obj.parent
    while scope is not None:
        member = scope.members.get(first)
        if member is not None:
            target = member.target_path if member.is_alias else member.path
            return f"{target}.{rest}" if rest else target
        scope = scope.parent
    return name


def _roles(text: str, obj: griffe.Object) -> str:
    def replace(match: re.Match) -> str:
        target = match[2].strip()
        if "<" in target and target.endswith(">"):
            title, _, target = target[:-1].rpartition("<")
            title = title.strip()
        else:
            title = None
        short = target.startswith("~")
        target = target.lstrip("~")
        if title is None:
            title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        identifier = _resolve(target, obj)
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    return _ROLE.sub(replace, text)


def _cells(line: str, starts: list[int]) -> list[str]:
    """The cells of one table line: each run of text goes to the last column starting at or before it."""
    cells = [""] * len(starts)
    for run in _GAP.finditer(line):
        column = max(i for i, start in enumerate(starts) if start <= run.start() or i == 0)
        cells[column] = f"{cells[column]} {run.group()}".strip()
    return cells


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"  # pipes inside code spans do not split cells


def _tables(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        border = lines[i]
        starts = [m.start() for m in re.finditer(r"=+", border)]
        indent = " " * starts[0]
        rows: list[list[str]] = []
        header: list[str] | None = None
        j = i + 1
        while j < len(lines):
            line = lines[j]
            if _BORDER.match(line):
                if header is None and rows:
                    header, rows = [" ".join(c).strip() for c in zip(*rows)], []
                    j += 1
                    continue
                j += 1
                break
            if not line.strip():
                j += 1
                continue
            cells = _cells(line, starts)
            if rows and not cells[0]:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
            else:
                rows.append(cells)
            j += 1
        if header is None:
            header = [""] * len(starts)
        out.append("")
        out.append(indent + _markdown_row(header))
        out.append(indent + "| " + " | ".join("---" for _ in starts) + " |")
        out.extend(indent + _markdown_row(row) for row in rows)
        out.append("")
        i = j
    return out


def _literal_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::") or line.strip().startswith(".."):
            out.append(line)
            i += 1
            continue
        stripped = line.rstrip()[:-2]
        indent = len(line) - len(line.lstrip())
        j = i + 1
        block: list[str] = []
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
        if not any(b.strip() for b in block):
            out.append(line)
            i += 1
            continue
        if stripped.strip():  # "text::" -> "text:", "text ::" -> "text"
            out.append(stripped.rstrip() if stripped.endswith(" ") else stripped + ":")
        pad = " " * indent
        out.append("")
        out.append(pad + "```text")
        out.extend(pad + b for b in textwrap.dedent("\n".join(block)).splitlines())
        out.append(pad + "```")
        out.append("")
        i = j
    return out


_NUMPY_SECTIONS = {
    "parameters",
    "other parameters",
    "returns",
    "yields",
    "receives",
    "raises",
    "warns",
    "warnings",
    "examples",
    "notes",
    "see also",
    "attributes",
    "methods",
    "references",
}


def _headings(lines: list[str]) -> list[str]:
    """reST section titles become Markdown headings; numpy sections stay for the numpy parser."""
    out: list[str] = []
    for line in lines:
        title = out[-1].strip() if out else ""
        if (
            title
            and re.fullmatch(r"(-{3,}|={3,}|~{3,})", line.strip())
            and len(line.strip()) >= len(title)
            and title.lower() not in _NUMPY_SECTIONS
        ):
            out[-1] = f"# {title}"
            continue
        out.append(line)
    return out


def rst_to_markdown(text: str, obj: griffe.Object) -> str:
    """``text`` (a docstring of ``obj``) with its reST constructs rewritten as Markdown."""
    lines = _literal_blocks(_headings(_tables(text.splitlines())))
    return _roles("\n".join(lines), obj)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring once the object tree is loaded (see the module docstring)."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.is_alias or obj.docstring is None:
            return
        obj.docstring.value = rst_to_markdown(obj.docstring.value, obj)
