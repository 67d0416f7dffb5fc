"""Run histories (``DIR/history.json``): the one record of a NetAdapt or NAS run, and its format.

A history is written atomically after every step (:func:`write`) and read back with its format and
fields checked (:func:`read`): a damaged, foreign or newer file is a one-line
:class:`~hwlat.errors.FileFormatError` naming the file and what to do, never a traceback deep in
the resume code. Latencies are milliseconds, accuracies fractions in [0, 1].

The format lives here, below the search (which writes and resumes histories) and the dashboards
(which show them, :func:`version` only: a history too damaged to resume is still shown). A history
names its format in ``"schema"``: ``"hwlat.netadapt/2"`` or ``"hwlat.nas/1"`` (:data:`FORMATS`);
files of earlier hwlat versions hold the bare number (``2``, ``1``; NetAdapt ``1`` named its
weights ``model.pt``) and are read as the same versions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hwlat.errors import FileFormatError
from hwlat.files import atomic_write_json, format_tag, format_version

FORMATS = {"netadapt": format_tag("netadapt", 2), "nas": format_tag("nas", 1)}
"""The history format this hwlat writes, per kind (its ``"schema"`` field)."""

_NUMBER = "number"
# key -> type the resume path relies on; nested dicts are checked by _check_steps / _check_final
_FIELDS = {
    "netadapt": {"seed_arch": str, "config": dict, "seed": dict, "steps": list, "current_arch": dict},
    "nas": {"settings": dict, "budget": int, "candidates": list, "rng_state": dict},
}


def todo(path: Path) -> str:
    """What a user does about a history that cannot be resumed."""
    return f"move {path.parent} away (or give another --out folder) to start over"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def version(path: str | Path, hist: dict) -> int:
    """The format version of the parsed history ``hist`` of a known ``kind`` (a tag of
    :data:`FORMATS` or the bare number older files wrote); :class:`FileFormatError` naming the
    file and the versions when it is not one this hwlat reads."""
    path = Path(path)
    try:
        return format_version(
            path, hist.get("schema"), FORMATS[hist["kind"]], bare_int=True, error=FileFormatError
        )
    except FileFormatError as e:
        raise FileFormatError(f"{e}; {todo(path)}") from None


def _check_records(path: Path, what: str, recs: Any, fields: dict[str, Any]) -> None:
    """Every record of ``recs`` is a dict with ``fields`` of the right type."""
    for i, r in enumerate(recs if isinstance(recs, list) else [recs]):
        where = f"{what} {i}" if isinstance(recs, list) else what
        if not isinstance(r, dict):
            raise FileFormatError(f"{path}: {where} is not a record; {todo(path)}")
        for key, typ in fields.items():
            ok = _number(r.get(key)) if typ == _NUMBER else isinstance(r.get(key), typ)
            if not ok:
                raise FileFormatError(f"{path}: {where} has no valid {key!r}; {todo(path)}")


def _check(path: Path, hist: dict, kind: str, v: int) -> None:
    for key, typ in _FIELDS[kind].items():
        if not isinstance(hist.get(key), typ) or isinstance(hist.get(key), bool):
            raise FileFormatError(f"{path}: damaged {kind} history (no valid {key!r}); {todo(path)}")
    if kind == "netadapt":
        _check_records(path, "seed", hist["seed"], {"predicted_ms": _NUMBER, "accuracy": _NUMBER})
        _check_records(
            path, "step", hist["steps"], {"predicted_ms": _NUMBER, "accuracy": _NUMBER, "arch": str}
        )
        if v >= 2 and not isinstance(hist.get("weights"), str):
            raise FileFormatError(f"{path}: damaged netadapt history (no valid 'weights'); {todo(path)}")
        if hist.get("final") is not None:
            _check_records(
                path, "final", hist["final"], {"predicted_ms": _NUMBER, "accuracy": _NUMBER, "arch": str}
            )
    else:
        _check_records(
            path,
            "candidate",
            hist["candidates"],
            {"vector": list, "reward": _NUMBER, "predicted_ms": _NUMBER, "accuracy": _NUMBER},
        )
        if hist["candidates"] and not isinstance(hist.get("best"), dict):
            raise FileFormatError(f"{path}: damaged nas history (no valid 'best'); {todo(path)}")


def read(path: str | Path, kind: str) -> dict | None:
    """The ``kind`` (``"netadapt"`` or ``"nas"``) history at ``path``, checked; None if absent.

    Raises :class:`FileFormatError` naming the file for anything that cannot be resumed: not JSON,
    not a history, another kind, a newer or unknown format, missing or mistyped fields.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        hist = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"{path}: corrupt history ({e}); {todo(path)}") from None
    if not isinstance(hist, dict) or "kind" not in hist:
        raise FileFormatError(
            f"{path}: not an hwlat run history (a JSON {type(hist).__name__} without 'kind'); {todo(path)}"
        )
    if hist["kind"] != kind:
        raise FileFormatError(f"{path}: holds a {hist['kind']!r} history, not {kind!r}; {todo(path)}")
    _check(path, hist, kind, version(path, hist))
    return hist


def write(path: str | Path, hist: dict) -> Path:
    """Write ``hist`` atomically (a reader sees the previous step or this one, never half), as
    strict JSON: a NaN or infinity in it is a ``ValueError`` naming the file and the field, and
    the previous file stays."""
    return atomic_write_json(path, hist)
