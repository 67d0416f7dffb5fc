"""Run histories (``DIR/history.json``) for the search drivers: the format, reading and writing are
:mod:`hwlat.histories` (re-exported here: ``H.read``, ``H.write``, ``H.todo``, ``H.SCHEMAS``), plus
the run folder (:func:`out_dir`).
"""

from __future__ import annotations

from pathlib import Path

from hwlat.errors import FileFormatError
from hwlat.histories import FORMATS, read, todo, version, write  # noqa: F401 - re-exported

SCHEMAS = FORMATS
"""The history format this hwlat writes, per kind (:data:`hwlat.histories.FORMATS`)."""


def out_dir(path: str | Path) -> Path:
    """``path`` as a run folder, created if missing; a one-line error if it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileFormatError(f"{path}: is a file; --out needs a folder (history.json and weights go there)")
    path.mkdir(parents=True, exist_ok=True)
    return path
