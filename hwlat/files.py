"""Atomic file writes: a reader sees the old file or the new one, never half of either.

JSON is written strict (RFC 8259): NaN and ±Infinity have no JSON form, so :func:`dumps_strict` and
:func:`atomic_write_json` refuse them with a ``ValueError`` naming where the value is. A value
that can legitimately be unknown (a confidence interval of too few samples) is ``None`` (``null``)
at its source; :func:`finite_or_none` does that for data that is only shown, never computed on.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    The temporary file is removed if ``write`` raises. Returns ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _non_finite(obj: Any, where: str = "", seen: set | None = None) -> tuple[str, float] | None:
    """``(where, value)`` of the first NaN or infinity in ``obj`` (keys included), else None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where or "the value", obj)
    if not isinstance(obj, (dict, list, tuple)):
        return None
    seen = set() if seen is None else seen
    if id(obj) in seen:  # a circular reference: json reports it
        return None
    seen.add(id(obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, float) and not math.isfinite(k):
                return (f"{where or 'the object'}: a key", k)
            found = _non_finite(v, f"{where}.{k}" if where else str(k), seen)
            if found:
                return found
    else:
        for i, v in enumerate(obj):
            found = _non_finite(v, f"{where}[{i}]", seen)
            if found:
                return found
    return None


def dumps_strict(obj: Any, **kwargs) -> str:
    """``json.dumps(obj, allow_nan=False, **kwargs)``: strict JSON, or a ``ValueError`` naming
    the first NaN/infinity (e.g. ``stats.ci95_ms is inf``)."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        found = _non_finite(obj)
        if found is None:  # e.g. a circular reference, or a non-finite value made by ``default``
            raise
        where, value = found
        raise ValueError(
            f"not strict JSON: {where} is {float(value)!r} (JSON has no NaN or infinity; "
            f"write None for an unknown value)"
        ) from None


def finite_or_none(obj: Any) -> Any:
    """``obj`` (dicts, lists, tuples as lists) with every NaN or infinity replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def format_tag(thing: str, version: int) -> str:
    """The format tag of version ``version`` of an hwlat file kind: ``"hwlat.<thing>/<version>"``.

    Every JSON file hwlat writes names its format so in its ``"schema"`` field, from one ``FORMAT``
    constant beside its writer (the predictor file spells the same tag as ``"schema"`` plus an int
    ``"version"``, as it always has); readers check it with :func:`format_version`."""
    return f"hwlat.{thing}/{version}"


def format_version(
    path: Any,
    found: Any,
    fmt: str,
    *,
    oldest: int = 1,
    bare_int: bool = False,
    error: type[Exception] = ValueError,
) -> int:
    """The version of a file of format ``fmt`` (the tag this hwlat writes) whose ``"schema"`` field
    holds ``found``: a tag of the same kind, or (``bare_int``: files that wrote only the number) an
    int. Raises ``error`` naming ``path`` and the versions for another kind, a version newer than
    ``fmt`` or older than ``oldest``."""
    kind, _, mine = fmt.rpartition("/")
    if bare_int and isinstance(found, int) and not isinstance(found, bool):
        version = found
    elif isinstance(found, str) and found.rpartition("/")[0] == kind and found.rpartition("/")[2].isdigit():
        version = int(found.rpartition("/")[2])
    else:
        raise error(f"{path}: unsupported schema {found!r} (expected {fmt!r})")
    if version > int(mine):
        raise error(
            f"{path}: unsupported schema {found!r}: {kind} schema {version} is newer than "
            f"this hwlat reads ({fmt}); upgrade hwlat"
        )
    if version < oldest:
        raise error(
            f"{path}: unsupported schema {found!r}: {kind} schema {version} is older than "
            f"this hwlat reads ({kind}/{oldest} to {fmt})"
        )
    return version


SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first bytes of an SQLite database (a measurement store)."""


def check_output(
    path: str | os.PathLike,
    flag: str = "-o",
    *,
    error: type[Exception] = ValueError,
    schema: str | None = None,
    what: str = "",
    force: bool = False,
) -> Path:
    """``path`` is a file a command may write, checked before the work (a long run never fails at its
    end): its folder exists, it is not a folder, and it is never an SQLite database (a measurement
    store is never overwritten). With ``schema``, the folder must be writable and an existing file
    must be a JSON object whose ``"schema"`` is ``schema`` (``what`` names such a file, e.g. "an
    hwlat predictor"), unless ``force``. Raises ``error`` naming ``flag`` and the path."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{flag} {path}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise error(f"{flag} {path}: folder {path.parent} does not exist")
    if path.is_file():
        with open(path, "rb") as f:
            if f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                raise error(
                    f"{flag} {path}: is an SQLite database (a measurement store?); refusing to overwrite it"
                )
    if schema is None:
        return path
    if not os.access(path.parent, os.W_OK):
        raise error(f"{flag} {path}: folder {path.parent} is not writable")
    if not path.exists() or force:
        return path
    try:
        ours = json.loads(path.read_text(encoding="utf-8")).get("schema") == schema
    except (ValueError, AttributeError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise error(
            f"{flag} {path}: exists and is not {what or 'a file of schema ' + schema}; refusing "
            f"to overwrite it (--force replaces it)"
        )
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (:func:`dumps_strict`) to ``path`` atomically; a NaN or an
    infinity is a ``ValueError`` naming ``path`` and where the value is, and nothing is written."""
    try:
        text = dumps_strict(obj, indent=indent)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return atomic_write_text(path, text)
