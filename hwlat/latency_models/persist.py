"""Predictor files: JSON I/O and schema checks, nothing else (no predictor classes here).

A file is ``{"schema": "hwlat.predictor", "version": 3, "hwlat_version", "class", "state"}``; the
state is what :meth:`hwlat.latency_models.base.Predictor.get_state` returns: the constructor
parameters, the device, the training networks and pieces. No pickles: loading refits the predictor
from its state, deterministically, so a file keeps working across hwlat and scikit-learn upgrades.
Older files are read too: version 1 spread the state over the top level, and versions 1–2 named a
piece's latency ``median_ms`` (it was the median of its samples then; version 3 calls it
``latency_ms``, whatever statistic the store used).

The file is strict JSON (no NaN or Infinity). A constructor parameter set to infinity (e.g.
``EndToEnd(block_ridge=inf)``: that term off) is written as the string ``"inf"`` (``"-inf"``) in
its ``params`` object and read back as the float; older files wrote ``Infinity``, read as well.
Any other NaN or infinity is a ``ValueError`` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

from hwlat import __version__
from hwlat.errors import FileFormatError
from hwlat.files import atomic_write_json, format_tag, format_version

FORMAT = format_tag("predictor", 3)
"""The format of a predictor file, written as ``"schema": SCHEMA, "version": VERSION``."""
SCHEMA, VERSION = FORMAT.rpartition("/")[0], int(FORMAT.rpartition("/")[2])
PIECE_FIELDS = ("key", "granularity", "variant", "latency_ms", "spec")


def write(path, cls_name: str, state: dict) -> Path:
    """Write a predictor's ``state`` (JSON-ready) to ``path`` atomically."""
    doc = {
        "schema": SCHEMA,
        "version": VERSION,
        "hwlat_version": __version__,
        "class": cls_name,
        "state": _params(state, _inf_out),
    }
    return atomic_write_json(path, doc, indent=None)


_INF = {"inf": math.inf, "-inf": -math.inf}


def _inf_out(v):
    return ("inf" if v > 0 else "-inf") if isinstance(v, float) and math.isinf(v) else v


def _inf_in(v):
    return _INF[v] if isinstance(v, str) and v in _INF else v


def _params(obj, conv):
    """``obj`` with ``conv`` applied to the values of every ``params`` object in it (a transfer
    predictor's sources keep their own states, params included)."""
    if isinstance(obj, dict):
        return {
            k: (
                {pk: conv(pv) for pk, pv in v.items()}
                if k == "params" and isinstance(v, dict)
                else _params(v, conv)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_params(v, conv) for v in obj]
    return obj


def read(path) -> tuple[str, dict]:
    """``(class name, state)`` of a predictor file; :class:`FileFormatError` naming the file and
    field for anything else (missing, not JSON, foreign, newer, damaged)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such predictor file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: is a directory, not a predictor file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FileFormatError(f"{path}: not an hwlat predictor file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise FileFormatError(f"{path}: not an hwlat predictor file")
    doc = _params(doc, _inf_in)
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FileFormatError(f"{path}: version: expected a positive integer, got {version!r}")
    format_version(path, f"{SCHEMA}/{version}", FORMAT, error=FileFormatError)
    state = _from_v1(doc) if version == 1 else doc.get("state")
    if version < 3:
        state = _pieces_to_v3(state)
    if not isinstance(doc.get("class"), str):
        raise FileFormatError(f"{path}: class: expected a predictor class name")
    check_state(state, path)
    return doc["class"], state


def _from_v1(doc: dict) -> dict:
    """A version-1 document's state (it kept the CV's estimator choices apart from the params)."""
    params = doc.get("params")
    choices = doc.get("estimator_choices")
    if isinstance(params, dict) and choices:
        params = {**params, "estimator": choices}
    return {k: doc.get(k) for k in ("fingerprint", "runtime", "train", "pieces")} | {"params": params}


def _pieces_to_v3(state):
    """A version 1–2 state with its pieces' ``median_ms`` renamed ``latency_ms`` (else unchanged)."""
    if not isinstance(state, dict) or not isinstance(state.get("pieces"), list):
        return state
    pieces = [
        {("latency_ms" if k == "median_ms" else k): v for k, v in p.items()} if isinstance(p, dict) else p
        for p in state["pieces"]
    ]
    return {**state, "pieces": pieces}


def check_state(state, path) -> None:
    """Raise :class:`FileFormatError` naming ``path`` and the field where ``state`` is malformed.

    Checks the fields every predictor shares; a class may keep more fields (it checks those).
    """

    def bad(field: str, want: str, got) -> FileFormatError:
        return FileFormatError(f"{path}: {field}: expected {want}, got {_short(got)}")

    if not isinstance(state, dict):
        raise bad("state", "an object", state)
    if not isinstance(state.get("params"), dict):
        raise bad("state.params", "an object", state.get("params"))
    if not isinstance(state.get("fingerprint"), dict):
        raise bad("state.fingerprint", "an object", state.get("fingerprint"))
    if state.get("runtime") is not None and not isinstance(state["runtime"], str):
        raise bad("state.runtime", "a string or null", state["runtime"])
    train = state.get("train")
    if not isinstance(train, dict):
        raise bad("state.train", "an object", train)
    archs, lat = train.get("archs"), train.get("latency_ms")
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise bad("state.train.archs", "a list of architecture strings", archs)
    if not isinstance(lat, list) or not all(_number(v) for v in lat):
        raise bad("state.train.latency_ms", "a list of numbers (ms)", lat)
    if len(archs) != len(lat):
        raise FileFormatError(f"{path}: state.train: {len(archs)} networks but {len(lat)} latencies")
    names = train.get("names")
    if names is not None and (
        not isinstance(names, list) or len(names) != len(archs) or not all(isinstance(n, str) for n in names)
    ):
        raise bad("state.train.names", f"a list of {len(archs)} names", names)
    pieces = state.get("pieces")
    if pieces is None:
        return
    if not isinstance(pieces, list):
        raise bad("state.pieces", "a list or null", pieces)
    for i, p in enumerate(pieces):
        if not isinstance(p, dict) or set(PIECE_FIELDS) - set(p):
            raise bad(f"state.pieces[{i}]", f"an object with {', '.join(PIECE_FIELDS)}", p)
        if not _number(p["latency_ms"]):
            raise bad(f"state.pieces[{i}].latency_ms", "a number (ms)", p["latency_ms"])
        if not all(isinstance(p[k], str) for k in ("key", "granularity", "variant")):
            raise bad(f"state.pieces[{i}]", "string key, granularity and variant", p)
        if not isinstance(p["spec"], (str, dict)):
            raise bad(f"state.pieces[{i}].spec", "a workload spec", p["spec"])


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
