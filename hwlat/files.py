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
from pathlib import Path
from typing import Any, Callable


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
    if id(obj) in seen:   # a circular reference: json reports it
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
        if found is None:   # e.g. a circular reference, or a non-finite value made by ``default``
            raise
        where, value = found
        raise ValueError(f"not strict JSON: {where} is {float(value)!r} (JSON has no NaN or infinity; "
                         f"write None for an unknown value)") from None


def finite_or_none(obj: Any) -> Any:
    """``obj`` (dicts, lists, tuples as lists) with every NaN or infinity replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (:func:`dumps_strict`) to ``path`` atomically; a NaN or an
    infinity is a ``ValueError`` naming ``path`` and where the value is, and nothing is written."""
    try:
        text = dumps_strict(obj, indent=indent)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return atomic_write_text(path, text)
