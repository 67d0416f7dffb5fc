"""Run histories (``DIR/history.json``): the one record of a NetAdapt or NAS run.

A history is written atomically after every step (:func:`write`) and read back with its schema
checked (:func:`read`): a damaged, foreign or newer file is a one-line
:class:`~hwlat.errors.FileFormatError` naming the file and what to do, never a traceback deep in
the resume code. Latencies are milliseconds, accuracies fractions in [0, 1].
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hwlat.errors import FileFormatError
from hwlat.files import atomic_write_json

SCHEMAS = {"netadapt": 2, "nas": 1}
"""The history schema this hwlat writes, per kind (NetAdapt 1 named its weights ``model.pt``)."""

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


def _check(path: Path, hist: dict, kind: str) -> None:
    for key, typ in _FIELDS[kind].items():
        if not isinstance(hist.get(key), typ) or isinstance(hist.get(key), bool):
            raise FileFormatError(f"{path}: damaged {kind} history (no valid {key!r}); {todo(path)}")
    if kind == "netadapt":
        _check_records(path, "seed", hist["seed"], {"predicted_ms": _NUMBER, "accuracy": _NUMBER})
        _check_records(path, "step", hist["steps"], {"predicted_ms": _NUMBER, "accuracy": _NUMBER,
                                                      "arch": str})
        if hist["schema"] >= 2 and not isinstance(hist.get("weights"), str):
            raise FileFormatError(f"{path}: damaged netadapt history (no valid 'weights'); {todo(path)}")
        if hist.get("final") is not None:
            _check_records(path, "final", hist["final"], {"predicted_ms": _NUMBER, "accuracy": _NUMBER,
                                                           "arch": str})
    else:
        _check_records(path, "candidate", hist["candidates"],
                       {"vector": list, "reward": _NUMBER, "predicted_ms": _NUMBER, "accuracy": _NUMBER})
        if hist["candidates"] and not isinstance(hist.get("best"), dict):
            raise FileFormatError(f"{path}: damaged nas history (no valid 'best'); {todo(path)}")


def read(path: str | Path, kind: str) -> dict | None:
    """The ``kind`` (``"netadapt"`` or ``"nas"``) history at ``path``, checked; None if absent.

    Raises :class:`FileFormatError` naming the file for anything that cannot be resumed: not JSON,
    not a history, another kind, a newer or unknown schema, missing or mistyped fields.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        hist = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"{path}: corrupt history ({e}); {todo(path)}") from None
    if not isinstance(hist, dict) or "kind" not in hist:
        raise FileFormatError(f"{path}: not an hwlat run history (a JSON {type(hist).__name__} "
                              f"without 'kind'); {todo(path)}")
    if hist["kind"] != kind:
        raise FileFormatError(f"{path}: holds a {hist['kind']!r} history, not {kind!r}; {todo(path)}")
    schema, mine = hist.get("schema"), SCHEMAS[kind]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise FileFormatError(f"{path}: history without a valid schema number; {todo(path)}")
    if schema > mine:
        raise FileFormatError(f"{path}: history schema {schema} is newer than this hwlat writes "
                              f"({mine}); upgrade hwlat, or {todo(path)}")
    _check(path, hist, kind)
    return hist


def write(path: str | Path, hist: dict) -> Path:
    """Write ``hist`` atomically (a reader sees the previous step or this one, never half), as
    strict JSON: a NaN or infinity in it is a ``ValueError`` naming the file and the field, and
    the previous file stays."""
    return atomic_write_json(path, hist)


def out_dir(path: str | Path) -> Path:
    """``path`` as a run folder, created if missing; a one-line error if it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileFormatError(f"{path}: is a file; --out needs a folder (history.json and weights go there)")
    path.mkdir(parents=True, exist_ok=True)
    return path
