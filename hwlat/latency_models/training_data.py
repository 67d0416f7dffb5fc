"""Training data for latency predictors, read from the profiler's measurement store.

A :class:`TrainingData` holds, for one device and runtime:

* ``pieces`` — measured kernels/blocks: ``key, granularity, variant ('warm'|'cold'), latency_ms, spec``;
* ``models`` — measured whole networks: ``arch`` (codec string), ``latency_ms``;
* ``fingerprint`` — the device the numbers came from.

Latencies in milliseconds: the store's ``latency_ms`` (a low quantile of each repeat's samples,
the median over repeats: :data:`hwlat.profiler.storage.store.LATENCY_STATISTIC`). Workloads whose repeats
disagree (spread above :data:`hwlat.profiler.storage.store.UNSTABLE_SPREAD_PCT`) are kept, with a
:class:`UnstableWarning` naming them. ``normalise_phase=True`` rescales each measurement to the
device's typical phase: its time × (median reference time of the device) / (reference time in its
own rounds), the reference being the fixed workload :class:`hwlat.profiler.measure.timing.PhaseAnchor`
timed in every round. Rows measured without a reference are left as they are.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwlat.archs.codec import decode
from hwlat.archs.ir import ArchSpec
from hwlat.errors import EmulatedDeviceError, UnstableWarning
from hwlat.profiler.storage.device import device_label, is_emulated


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
        return self.models["latency_ms"].to_numpy(dtype=float)

    @classmethod
    def from_store(
        cls,
        store,
        runtime: str | None = None,
        device: str | None = None,
        normalise_phase: bool = False,
        allow_emulated: bool = False,
    ) -> TrainingData:
        """Read one device's measurements.

        ``device`` is a device key, a prefix of one, or a name (an imported device's name, a host
        name, a board; :mod:`hwlat.profiler.storage.device_select`); ``runtime`` restricts the candidates.
        Without ``device`` the store (or its devices of ``runtime``) must hold exactly one device.
        ``normalise_phase``: rescale each row by its reference workload (module docstring).
        A device measured under a CPU emulator (qemu-user, an Android emulator:
        :func:`hwlat.profiler.storage.device.is_emulated`) raises :class:`EmulatedDeviceError`: its
        timings describe no hardware; ``allow_emulated=True`` reads it anyway (functional checks).
        """
        from hwlat.profiler.storage.device_select import select_device
        from hwlat.profiler.storage.store import open_store

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
        if is_emulated(fp) and not allow_emulated:
            raise EmulatedDeviceError(
                f"{store}: device {device_label(fp)} [{device_key}] was measured under emulation: its "
                f"timings describe no hardware, so no predictor is trained on them (allow_emulated=True "
                f"reads them anyway)"
            )
        _warn_unstable(df, store)
        if normalise_phase:
            df = df.assign(latency_ms=phase_normalised(df))
        models = df[(df["granularity"] == "model") & (df["variant"] == "warm")]
        has_arch = ["arch" in json.loads(s) for s in models["spec"]]  # a file that did not import has none
        models = models[has_arch]
        specs = [json.loads(s) for s in models["spec"]]
        return cls(
            pieces=df[df["granularity"] != "model"][
                ["key", "granularity", "variant", "latency_ms", "spec"]
            ].reset_index(drop=True),
            models=pd.DataFrame(
                {
                    "arch": [s["arch"] for s in specs],
                    "name": [s.get("name", "custom") for s in specs],
                    "latency_ms": models["latency_ms"].to_numpy(),
                }
            ),
            fingerprint=fp,
            device_key=device_key,
            runtime=row["runtime"],
        )


def _warn_unstable(df: pd.DataFrame, store) -> None:
    from hwlat.profiler.storage.store import UNSTABLE_SPREAD_PCT, unstable_workloads

    bad = unstable_workloads(df)
    if len(bad):
        shown = "; ".join(f"{lab} ({sp:.0f} %)" for lab, sp in zip(bad["label"][:5], bad["spread_pct"][:5]))
        warnings.warn(
            f"{store}: {len(bad)} workloads whose repeats disagree by more than "
            f"{UNSTABLE_SPREAD_PCT:g} % are used as measured (median of the repeats), widest "
            f"first: {shown}{' …' if len(bad) > 5 else ''}; re-measure them on a quiet machine "
            f"(`hwlat profile show` lists them)",
            UnstableWarning,
            stacklevel=3,
        )


def phase_normalised(df: pd.DataFrame) -> np.ndarray:
    """``latency_ms`` of a store frame rescaled to the typical phase: × median(ref_ms) / ref_ms per
    row; rows without a reference time keep their value."""
    ref = pd.to_numeric(df["ref_ms"], errors="coerce").to_numpy(float)
    ms = df["latency_ms"].to_numpy(float)
    ok = np.isfinite(ref) & (ref > 0)
    if not ok.any():
        return ms
    return np.where(ok, ms * np.median(ref[ok]) / np.where(ok, ref, 1.0), ms)
