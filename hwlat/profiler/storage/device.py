"""Device fingerprints: which machine and runtime configuration a measurement came from.

Pure standard library, so it runs unchanged on an x86 workstation or an ARM board (phones are
fingerprinted over adb: :func:`hwlat.profiler.measure.adb.phone_fingerprint`).
Every field is best effort: what cannot be read is ``None``, never an exception.

:func:`device_key` hashes only the fields that identify the hardware and the runtime
configuration (:data:`KEY_FIELDS`). The cpufreq **governor is part of the key**: ``powersave``
and ``performance`` give different latencies, so a governor change starts a new device and its
measurements are never mixed with (or skipped because of) the old ones. So is the hostname: give
a container a fixed hostname, or each container becomes a new device. Left out of the key because
they change without changing the measured computation: the kernel/OS string, the Python version,
the max frequency (a property of the CPU already in the key), ``cpu_parts`` (its per-part core
counts follow hot-plugging on phones; ``cpu`` and ``cores`` identify the CPU instead), the
affinity at fingerprint time and the core whose frequency was read. Pass anything else that
must separate devices (e.g. the pinned core on a big.LITTLE SoC) in ``extra``. A process under a
CPU emulator (:func:`emulation_trace`: qemu-user) gets ``extra["emulated"] = True``, so its timings
are a device of their own, and a top-level ``"emulated": true`` with the trace in ``"emulation"``.

This file is also pasted into the standalone bundle runner (:mod:`hwlat.profiler.measure.bundle`): keep it
standard library only, without hwlat imports and without side effects at import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
from pathlib import Path

KEY_FIELDS = (
    "hostname",
    "board",
    "cpu",
    "machine",
    "cores",
    "governor",
    "runtime",
    "runtime_version",
    "threads",
    "delegate",
    "extra",
)
"""Fingerprint fields hashed by :func:`device_key`."""

RUNTIMES = ("litert", "onnxruntime", "torch")
"""The runtimes hwlat measures with (:mod:`hwlat.profiler.measure.runners`), by fingerprint name."""
DEFAULT_RUNTIME = "litert"
"""The runtime used when none is given (the paper's): profiling, reading a store, the demo."""

_SYS_CPU = Path("/sys/devices/system/cpu")

# ARM "CPU implementer" / "CPU part" codes (/proc/cpuinfo on arm64 often has no model name).
_ARM_IMPLEMENTERS = {
    "0x41": "ARM",
    "0x42": "Broadcom",
    "0x48": "HiSilicon",
    "0x4e": "NVIDIA",
    "0x51": "Qualcomm",
    "0x53": "Samsung",
    "0x61": "Apple",
    "0xc0": "Ampere",
}
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4b": "Cortex-A78C",
    "0xd4d": "Cortex-A715",
    "0xd4e": "Cortex-X3",
    "0xd4f": "Neoverse-V2",
    "0xd80": "Cortex-A520",
    "0xd81": "Cortex-A720",
    "0xd82": "Cortex-X4",
}


def _read(path: str | Path) -> str | None:
    """Stripped text of a small file, or ``None`` if it cannot be read."""
    try:
        return Path(path).read_text(errors="replace").replace("\x00", "").strip() or None
    except (OSError, ValueError):
        return None


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per block (per processor, plus ARM's trailing global block)."""
    return cpuinfo_blocks(_read("/proc/cpuinfo") or "")


def cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    """The text of a /proc/cpuinfo (this machine's, or a phone's) as one dict per block."""
    blocks = []
    for chunk in text.split("\n\n"):
        fields = {}
        for line in chunk.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _arm_parts(blocks: list[dict[str, str]], counts: bool = True) -> str | None:
    """``"ARM Cortex-A55×4 + ARM Cortex-A76×4"`` from the per-core implementer/part codes.

    Only online cores are listed in /proc/cpuinfo, so the counts can drop on phones that
    hot-unplug cores; ``counts=False`` gives the stable ``"ARM Cortex-A55 + ARM Cortex-A76"``.
    """
    parts: dict[str, int] = {}
    for b in blocks:
        if "CPU part" in b:
            impl = b.get("CPU implementer", "?").lower()
            part = b["CPU part"].lower()
            name = f"{_ARM_IMPLEMENTERS.get(impl, impl)} {_ARM_PARTS.get(part, part)}"
            parts[name] = parts.get(name, 0) + 1
    return " + ".join(f"{n}×{c}" if counts else n for n, c in parts.items()) or None


def arm_core_name(cpuinfo: str, core: int | None) -> str | None:
    """``"ARM Cortex-X1"``: the implementer and part of ``core`` in the text of a /proc/cpuinfo;
    with ``core=None`` every part with its count (``"ARM Cortex-A55×4 + ARM Cortex-X1×1"``)."""
    blocks = cpuinfo_blocks(cpuinfo)
    if core is not None:
        blocks = [b for b in blocks if b.get("processor") == str(core)]
    return _arm_parts(blocks, counts=core is None)


def _cpu_model(blocks: list[dict[str, str]]) -> str:
    """The CPU's name: x86 "model name", ARM "Hardware" or decoded parts, else platform's guess."""

    def first(field: str) -> str | None:
        return next((b[field] for b in blocks if b.get(field)), None)

    model = first("model name") or first("Processor") or first("cpu model")
    if model and not model.startswith("ARMv"):  # "ARMv7 Processor rev 4 (v7l)" says little
        return model
    return (
        first("Hardware")
        or _arm_parts(blocks, counts=False)
        or model
        or platform.processor()
        or platform.machine()
        or "unknown"
    )


def _board() -> str | None:
    """The product: device-tree model (ARM boards), Android ro.product.*, or DMI (PCs)."""
    model = _read("/sys/firmware/devicetree/base/model") or _read("/proc/device-tree/model")
    if model:
        return model
    if shutil.which("getprop"):  # Android
        try:
            props = [
                subprocess.run(["getprop", p], capture_output=True, text=True, timeout=2).stdout.strip()
                for p in ("ro.product.manufacturer", "ro.product.model")
            ]
        except (OSError, subprocess.SubprocessError):
            props = []
        if any(props):
            return " ".join(p for p in props if p)
    dmi = [_read(f"/sys/class/dmi/id/{f}") for f in ("sys_vendor", "product_name")]
    return " ".join(d for d in dmi if d) or None


def _cores() -> int | None:
    """Logical cores present (/sys/devices/system/cpu/present, e.g. ``0-7``), online or not;
    ``os.cpu_count()`` (online only) where that file is missing."""
    text = _read(_SYS_CPU / "present")
    try:
        ranges = [r.split("-") for r in text.split(",")] if text else []
        return sum(int(r[-1]) - int(r[0]) + 1 for r in ranges) or os.cpu_count()
    except ValueError:
        return os.cpu_count()


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _max_freq_khz(cpu: int) -> int | None:
    value = _read(_SYS_CPU / f"cpu{cpu}/cpufreq/cpuinfo_max_freq")
    return int(value) if value and value.isdigit() else None


_AT_SYSINFO_EHDR = 33  # auxv entry of the vDSO's address


def _auxv_types() -> set[int] | None:
    """The entry types of this process's ELF auxiliary vector, or ``None`` if unreadable."""
    try:
        data = Path("/proc/self/auxv").read_bytes()
    except OSError:
        return None
    word = struct.calcsize("P")
    fmt = "<" + ("Q" if word == 8 else "I") * (len(data) // word)
    try:
        words = struct.unpack(fmt, data[: len(data) // word * word])
    except struct.error:
        return None
    return set(words[0::2])


def emulation_trace() -> str | None:
    """What shows that this process runs under a user-mode CPU emulator (qemu-user), or ``None``.

    Timings taken under emulation say nothing about any device, so :func:`fingerprint` marks them
    (``extra["emulated"]``). Linux only; each check is one that qemu-user (checked with Debian 12's
    ``qemu-aarch64-static`` 7.2) cannot hide and a native process never shows:

    * the process name (``/proc/self/status``, which qemu does not rewrite) is qemu's own,
      ``qemu-aarch64-st…``, when the emulator was started by hand;
    * a 64-bit ARM or x86 process, into which the kernel always maps a vDSO, has neither a
      ``[vdso]`` in ``/proc/self/maps`` nor an ``AT_SYSINFO_EHDR`` in ``/proc/self/auxv`` (qemu
      rewrites both for the guest and gives it no vDSO) — this also catches qemu started through
      binfmt_misc (32-bit processes are left out: older arm64 kernels give them no vDSO);
    * ``/proc/cpuinfo`` describes a CPU of another architecture than ``platform.machine()``
      (the host's x86 cpuinfo seen by an ARM guest).
    """
    if not Path("/proc/self").is_dir():
        return None
    status = _read("/proc/self/status") or ""
    name = next(
        (line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("Name:")), ""
    )
    if name.startswith("qemu-"):
        return f"qemu-user (process name {name!r})"
    machine = (platform.machine() or "").lower()
    maps = _read("/proc/self/maps")
    if (
        machine in ("aarch64", "arm64", "x86_64", "amd64")
        and struct.calcsize("P") == 8
        and maps
        and "[vdso]" not in maps
    ):
        auxv = _auxv_types()
        if auxv is not None and _AT_SYSINFO_EHDR not in auxv:
            return f"no vDSO mapped into this {machine} process (qemu-user)"
    blocks = _cpuinfo()
    x86_info = any("flags" in b and "vendor_id" in b for b in blocks)
    arm_info = any("CPU implementer" in b for b in blocks)
    if (machine.startswith(("aarch64", "arm")) and x86_info) or (
        machine in ("x86_64", "amd64", "i686", "i386") and arm_info
    ):
        return f"/proc/cpuinfo describes another architecture than this {machine} process"
    return None


def is_emulated(fp: dict) -> bool:
    """Whether a fingerprint (this module's, a phone's over adb) was taken under emulation."""
    return bool(fp.get("emulated") or (fp.get("extra") or {}).get("emulated"))


def fingerprint(
    runtime: str, runtime_version: str, threads: int = 1, delegate: str = "none", extra: dict | None = None
) -> dict:
    """This machine and runtime configuration as a JSON-serialisable dict.

    ``governor`` and ``max_freq_khz`` are read for ``freq_cpu``: the first core this process may
    run on (cpu0 unless the process is pinned — call :func:`pin_to_core` first to describe the
    core that will run the workloads). ``extra`` must be JSON-serialisable; it is part of the key.
    """
    if not runtime or not isinstance(runtime, str):
        raise ValueError(f"runtime must be a non-empty string, got {runtime!r}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    extra = dict(extra or {})
    try:
        json.dumps(extra, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"extra must be JSON-serialisable (strict: no NaN or infinity): {e}") from None
    trace = emulation_trace()
    if trace:  # a separate device: emulated timings are no device's
        extra["emulated"] = True
    blocks = _cpuinfo()
    affinity = _affinity()
    freq_cpu = affinity[0] if affinity else 0
    return {
        "hostname": socket.gethostname() or platform.node() or None,
        "board": _board(),
        "cpu": _cpu_model(blocks),
        "cpu_parts": _arm_parts(blocks),
        "machine": platform.machine() or None,
        "cores": _cores(),
        "affinity": affinity,
        "freq_cpu": freq_cpu,
        "governor": _read(_SYS_CPU / f"cpu{freq_cpu}/cpufreq/scaling_governor"),
        "max_freq_khz": _max_freq_khz(freq_cpu),
        "os": platform.platform(),
        "python": platform.python_version(),
        "runtime": runtime,
        "runtime_version": str(runtime_version),
        "threads": threads,
        "delegate": delegate or "none",
        "extra": extra,
        **({"emulated": True, "emulation": trace} if trace else {}),
    }


def device_key(fp: dict) -> str:
    """16 hex digits: SHA-256 of the :data:`KEY_FIELDS` of ``fp`` (missing fields count as None)."""
    ident = {k: fp.get(k) for k in KEY_FIELDS}
    ident["extra"] = ident["extra"] or {}
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def device_label(fp: dict) -> str:
    """A short readable name, hostname and CPU: ``"lab-pc (AMD Ryzen 7 5800X)"``; on Android,
    where every hostname is ``localhost``, the board: ``"Google Pixel 7 (ARM Cortex-A55 + …)"``; a
    device imported from a table (:mod:`hwlat.profiler.storage.tables`): ``"samsung_a50 (imported)"``;
    a run under emulation (:func:`is_emulated`) ends in ``" (emulated)"``.
    """
    if fp.get("name"):  # a device imported from a table
        return f"{fp['name']} (imported)"
    host = fp.get("hostname") or "?"
    if host == "localhost" and fp.get("board"):  # every Android phone is "localhost"
        host = fp["board"]
    label = f"{host} ({fp.get('cpu') or fp.get('machine') or '?'})"
    return label + " (emulated)" if is_emulated(fp) else label


def pin_to_core(core: int | None = None) -> int | None:
    """Pin this process to one core; return it, or ``None`` where affinity is unsupported/refused.

    By default the fastest allowed core: the highest ``cpuinfo_max_freq`` (the big/prime core on
    big.LITTLE, a P-core on hybrid x86), ties and unreadable frequencies going to the last
    allowed core. A ``core`` outside the allowed set raises ``ValueError``.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except OSError:
        return None
    if core is None:
        core = max(allowed, key=lambda c: (_max_freq_khz(c) or 0, c))
    elif core not in allowed:
        raise ValueError(f"core {core} is not available to this process (allowed: {allowed})")
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        return None
    return core
