"""An arm64 root for running a bundle under qemu-user: Debian 12's python3.11 and PyPI's aarch64
numpy and ai-edge-litert wheels, unpacked (nothing is installed on the host but the .deb lists).

    python tools/arm/sysroot.py            # build or reuse; prints the folder
    python tools/arm/sysroot.py --setup    # first `dpkg --add-architecture arm64 && apt-get update`

Contents, the least that runs ``run_bundle.py`` (each was checked by leaving it out):

* :data:`DEBS`, ``apt-get download PKG:arm64`` then ``dpkg-deb -x``: the interpreter and its
  standard library, glibc, libstdc++ / libgcc_s (LiteRT is C++), zlib and libexpat (linked into
  the interpreter), libffi (ctypes, which numpy and LiteRT import). libpython3.11-stdlib's other
  dependencies (OpenSSL, sqlite, ncurses, …) serve modules the runner never imports: hashlib falls
  back to its built-in SHA-256, uuid to its pure-Python code.
* :data:`WHEELS` at the versions of ``requirements/lock.txt``, ``pip download --only-binary=:all:
  --platform manylinux_2_27_aarch64`` then unzipped into ``usr/local/lib/python3.11/dist-packages``
  (on ``sys.path`` of Debian's interpreter). LiteRT's ``Interpreter`` imports only numpy; its other
  declared dependencies (flatbuffers, protobuf, tqdm, ml_dtypes, …) are not needed to run models.

The root is cached in ``.cache/arm64-sysroot/<key>/``, the key naming the wheel versions and a hash
of this recipe, so a second run only checks that the folder is complete. ``hwlat-sysroot.json``
inside records what went in (the .deb versions too).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "arm64-sysroot"
LOCK = REPO / "requirements" / "lock.txt"

DEBS = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libstdc++6",
    "libgcc-s1",
    "zlib1g",
    "libexpat1",
    "libffi8",
)
"""Debian 12 arm64 packages of the root."""
WHEELS = ("numpy", "ai-edge-litert")
"""PyPI wheels of the root, at the lock's versions."""
PLATFORMS = (
    "manylinux_2_27_aarch64",
    "manylinux_2_28_aarch64",
    "manylinux2014_aarch64",
    "manylinux_2_17_aarch64",
)
PYTHON = "usr/bin/python3.11"
SITE = "usr/local/lib/python3.11/dist-packages"
MARKER = "hwlat-sysroot.json"

# An ARM-format /proc/cpuinfo (a Cortex-A72: implementer 0x41, part 0xd08, as on a Raspberry Pi 4).
# LiteRT's CPU detection reads /proc/cpuinfo; under qemu-user it would read the host's x86 one
# and crash in Interpreter(...), so tools/arm/emulate.py bind-mounts this file over it.
CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n"
    "CPU part\t: 0xd08\nCPU revision\t: 3\n\n"
    for i in range(2)
)


class SysrootUnavailable(RuntimeError):
    """The root is not cached and cannot be built here (no arm64 package lists, no network, …)."""


def lock_versions(lock: Path = LOCK) -> dict[str, str]:
    """``{name: version}`` of :data:`WHEELS` in the lock file."""
    text = lock.read_text()
    out = {}
    for name in WHEELS:
        m = re.search(rf"^{re.escape(name)}==(\S+)", text, re.MULTILINE | re.IGNORECASE)
        if not m:
            raise SysrootUnavailable(f"{lock}: no pin for {name}")
        out[name] = m.group(1)
    return out


def cache_key(versions: dict[str, str]) -> str:
    recipe = json.dumps(
        {"debs": DEBS, "wheels": versions, "platforms": PLATFORMS, "cpuinfo": CPUINFO}, sort_keys=True
    )
    tag = "-".join(f"{n}{v}" for n, v in versions.items())
    return f"py3.11-{tag}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"


def cached(cache: Path = CACHE) -> Path | None:
    """The complete cached root for the lock's versions, or ``None``."""
    root = cache / cache_key(lock_versions())
    return root if (root / MARKER).is_file() and (root / PYTHON).is_file() else None


def has_arm64_lists() -> bool:
    """Whether apt knows arm64 packages (``dpkg --add-architecture arm64`` and ``apt-get update``)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return False
    foreign = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True
    ).stdout.split()
    if "arm64" not in foreign:
        return False
    r = subprocess.run(["apt-cache", "policy", "libc6:arm64"], capture_output=True, text=True)
    return "Candidate:" in r.stdout and "Candidate: (none)" not in r.stdout


def setup_apt() -> None:
    """Add the arm64 architecture to dpkg and fetch its package lists (root; `make arm-check`)."""
    if has_arm64_lists():
        return
    subprocess.run(["dpkg", "--add-architecture", "arm64"], check=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise SysrootUnavailable(
            f"{' '.join(cmd[:4])} … failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-600:]}"
        )
    return r


def build(cache: Path = CACHE, log=print) -> Path:
    """The cached root, built first if missing; :class:`SysrootUnavailable` when it cannot be."""
    versions = lock_versions()
    root = cache / cache_key(versions)
    if (root / MARKER).is_file() and (root / PYTHON).is_file():
        return root
    if not has_arm64_lists():
        raise SysrootUnavailable(
            "apt has no arm64 package lists: run `make arm-check` once, or "
            "`dpkg --add-architecture arm64 && apt-get update`"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
        tmp = Path(tmp)
        debs, wheels, new = tmp / "debs", tmp / "wheels", tmp / "root"
        for d in (debs, wheels, new):
            d.mkdir()
        log(f"downloading {len(DEBS)} arm64 .deb files")
        os.chmod(tmp, 0o755)  # apt's _apt user writes the downloads
        os.chmod(debs, 0o777)
        _run(["apt-get", "download", "-q", *[f"{p}:arm64" for p in DEBS]], cwd=debs)
        files = sorted(debs.glob("*.deb"))
        for f in files:
            _run(["dpkg-deb", "-x", str(f), str(new)])
        log(f"downloading wheels {', '.join(f'{n}=={v}' for n, v in versions.items())}")
        plats = [a for p in PLATFORMS for a in ("--platform", p)]
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                *plats,
                "--no-deps",
                "-d",
                str(wheels),
                *[f"{n}=={v}" for n, v in versions.items()],
            ]
        )
        site = new / SITE
        site.mkdir(parents=True, exist_ok=True)
        whl = sorted(wheels.glob("*.whl"))
        for w in whl:
            with zipfile.ZipFile(w) as z:
                z.extractall(site)
        for so in site.rglob("*.so*"):  # zip files drop the exec bit; the loader does not need it
            so.chmod(0o755)
        (new / "cpuinfo").write_text(CPUINFO)
        if sys.version_info[:2] == (3, 11):  # same bytecode: compile here, not under emulation
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "compileall",
                    "-q",
                    "-j",
                    "0",
                    str(new / "usr/lib/python3.11"),
                    str(site),
                ],
                capture_output=True,
            )
        size = sum(p.stat().st_size for p in new.rglob("*") if p.is_file() and not p.is_symlink())
        (new / MARKER).write_text(
            json.dumps(
                {
                    "debs": [f.name for f in files],
                    "wheels": [w.name for w in whl],
                    "deb_bytes": sum(f.stat().st_size for f in files),
                    "wheel_bytes": sum(w.stat().st_size for w in whl),
                    "root_bytes": size,
                },
                indent=1,
            )
        )
        if root.exists():
            shutil.rmtree(root)
        new.rename(root)
    log(f"arm64 root ready: {root} ({size / 2**20:.0f} MiB)")
    return root


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--setup", action="store_true", help="dpkg --add-architecture arm64 && apt-get update first (root)"
    )
    args = p.parse_args(argv)
    if args.setup:
        setup_apt()
    try:
        root = build(log=lambda m: print(m, file=sys.stderr))
    except SysrootUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
