"""Predictor files: JSON with a schema version, the config, the device and the training data.

No pickles: loading refits the predictor from its training data, deterministically (fixed random
states), so a file keeps working across hwlat and scikit-learn upgrades.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hwlat import __version__
from hwlat.archs.codec import decode, encode
from hwlat.files import atomic_write_text

SCHEMA = "hwlat.predictor"
VERSION = 1


def save(pred, path) -> Path:
    """Write ``pred`` (fitted) to ``path`` (.json)."""
    from hwlat.latency_models.predictors import KINDS  # noqa: F401 - kinds are documented there

    pred._check_fitted()
    archs, y, pieces = pred._train
    doc = {
        "schema": SCHEMA, "version": VERSION, "hwlat_version": __version__,
        "class": type(pred).__name__, "params": pred.get_params(),
        "fingerprint": pred.fingerprint_, "runtime": pred.runtime_,
        "train": {"archs": [encode(a) for a in archs], "latency_ms": [float(v) for v in y]},
        # the estimator per piece type that grouped CV chose: loading refits it without the CV
        "estimator_choices": _choices(pred),
        "pieces": None if pieces is None else [  # exact floats: json, not pandas' 10-digit to_json
            {**r, "median_ms": float(r["median_ms"])} for r in
            pieces[["key", "granularity", "variant", "median_ms", "spec"]].to_dict("records")],
    }
    return atomic_write_text(path, json.dumps(doc))


def _choices(pred) -> dict[str, str] | None:
    reg = getattr(pred, "regressor_", None) or getattr(pred, "fallback_", None)
    return None if reg is None else {t: c for t, c in reg.choice_.items() if c != "median"}


def load(path):
    """Read a predictor file and refit it; clear errors for foreign or newer files."""
    from hwlat.latency_models import predictors

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such predictor file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path}: not an hwlat predictor file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not an hwlat predictor file")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise ValueError(f"{path}: predictor schema version {doc.get('version')} is newer than this "
                         f"hwlat understands ({VERSION}); upgrade hwlat")
    classes = {c.__name__: c for c in (predictors.MAddsProxy, predictors.LookupTable, predictors.Regression)}
    if doc.get("class") not in classes:
        raise ValueError(f"{path}: unknown predictor class {doc.get('class')!r}")
    pred = classes[doc["class"]](**doc["params"])
    pred._preset_choices = doc.get("estimator_choices")   # absent in older files: CV runs again
    pieces = None if doc["pieces"] is None else pd.DataFrame.from_records(doc["pieces"])
    archs = [decode(a) for a in doc["train"]["archs"]]
    return pred.fit(archs, np.asarray(doc["train"]["latency_ms"]), pieces=pieces,
                    fingerprint=doc["fingerprint"], runtime=doc["runtime"])
