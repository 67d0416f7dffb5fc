"""Training data for latency predictors, read from the profiler's measurement store.

A :class:`TrainingData` holds, for one device and runtime:

* ``pieces`` — measured kernels/blocks: ``key, granularity, variant ('warm'|'cold'), median_ms, spec``;
* ``models`` — measured whole networks: ``arch`` (codec string), ``median_ms``;
* ``fingerprint`` — the device the numbers came from.

Latencies in milliseconds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from hwlat.archs.codec import decode
from hwlat.archs.ir import ArchSpec


@dataclass
class TrainingData:
    pieces: pd.DataFrame
    models: pd.DataFrame
    fingerprint: dict
    device_key: str
    runtime: str

    def archs(self) -> list[ArchSpec]:
        """The measured networks, in ``models`` order."""
        return [decode(a, name=n) for a, n in zip(self.models["arch"], self.models["name"])]

    @property
    def latency_ms(self):
        return self.models["median_ms"].to_numpy(dtype=float)

    @classmethod
    def from_store(cls, store, runtime: str | None = None, device: str | None = None) -> "TrainingData":
        """Read one device's measurements.

        ``device`` is a device key, a prefix of one, or a name (an imported device's name, a host
        name, a board; :mod:`hwlat.profiler.device_select`); ``runtime`` restricts the candidates.
        Without ``device`` the store (or its devices of ``runtime``) must hold exactly one device.
        """
        from hwlat.profiler.device_select import select_device
        from hwlat.profiler.store import open_store

        with open_store(store, readonly=True) as st:
            df = st.frame(runtime=runtime)
            devices = st.devices()
        if df.empty:
            raise ValueError(f"{store}: no {runtime + ' ' if runtime else ''}measurements in this store")
        devices = devices[devices["device_key"].isin(df["device_key"])]
        row = select_device(devices, device, f"{store}" + (f" ({runtime})" if runtime else ""))
        device_key = row["device_key"]
        df = df[df["device_key"] == device_key]
        fp = json.loads(row["fingerprint"])
        models = df[(df["granularity"] == "model") & (df["variant"] == "warm")]
        specs = [json.loads(s) for s in models["spec"]]
        return cls(
            pieces=df[df["granularity"] != "model"][["key", "granularity", "variant", "median_ms", "spec"]]
            .reset_index(drop=True),
            models=pd.DataFrame({"arch": [s["arch"] for s in specs],
                                 "name": [s.get("name", "custom") for s in specs],
                                 "median_ms": models["median_ms"].to_numpy()}),
            fingerprint=fp, device_key=device_key, runtime=row["runtime"],
        )
