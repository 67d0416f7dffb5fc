"""Choosing one device of a store by what a user types: ``--device NAME`` on every reader.

A store holds many devices (measured here, measured elsewhere with a bundle, imported from a
table). A reference matches a device when it equals its device key (or is a prefix of at least 6
hex digits of it), the name of an imported device, its host name, its board, or its readable
label. Exactly one device must match: when several do, the error lists them instead of guessing.
"""

from __future__ import annotations

import json

import pandas as pd

from hwlat.errors import DeviceNotFoundError


def device_name(fp: dict) -> str:
    """What a user calls a device: an imported device's name, else its host name (a phone's board)."""
    if fp.get("name"):
        return str(fp["name"])
    host = fp.get("hostname") or "?"
    return fp["board"] if host == "localhost" and fp.get("board") else host


def _describe(row) -> str:
    fp = json.loads(row.fingerprint)
    what = (
        fp.get("source")
        or f"{fp.get('cpu') or '?'}, {fp.get('runtime')} {fp.get('runtime_version') or ''}".strip()
    )
    return f"{device_name(fp)} [{row.device_key}] ({what})"


def matches(devices: pd.DataFrame, ref: str) -> pd.DataFrame:
    """The rows of ``devices`` (:meth:`Store.devices`) that ``ref`` names."""
    ref = ref.strip()
    keep = []
    for row in devices.itertuples(index=False):
        fp = json.loads(row.fingerprint)
        names = {row.device_key, device_name(fp), row.device, fp.get("hostname"), fp.get("board")}
        keep.append(ref in names or (len(ref) >= 6 and row.device_key.startswith(ref)))
    return devices[keep]


def select_device(devices: pd.DataFrame, ref: str | None, where: str = "store") -> pd.Series:
    """The one row of ``devices`` that ``ref`` names (the only device when ``ref`` is None).

    Raises :class:`DeviceNotFoundError` listing the candidates when none or several match.
    """
    if devices.empty:
        raise DeviceNotFoundError(f"{where}: holds no devices")
    if ref is None:
        if len(devices) == 1:
            return devices.iloc[0]
        raise DeviceNotFoundError(
            f"{where}: holds {len(devices)} devices; choose one with --device: "
            + "; ".join(_describe(r) for r in devices.itertuples(index=False))
        )
    found = matches(devices, ref)
    if len(found) == 1:
        return found.iloc[0]
    if found.empty:
        raise DeviceNotFoundError(
            f"{where}: no device {ref!r}; devices: "
            + "; ".join(_describe(r) for r in devices.itertuples(index=False))
        )
    raise DeviceNotFoundError(
        f"{where}: {len(found)} devices match {ref!r}, give its key: "
        + "; ".join(_describe(r) for r in found.itertuples(index=False))
    )
