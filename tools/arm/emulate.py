"""Run the arm64 root's python3.11 under qemu-user, as on a Cortex-A72 board (test harness only).

    python tools/arm/emulate.py -- path/to/bundle/run_bundle.py --limit 3

Two tricks that a real board does not need, and so live here, never in ``run_bundle.py``:

* ``qemu-aarch64-static -cpu cortex-a72``: a CPU model of a real board (qemu's default, ``max``,
  reports every optional extension);
* LiteRT's CPU detection reads ``/proc/cpuinfo``, which qemu-user passes through from the x86
  host, and ``Interpreter(...)`` then segfaults. The emulated python runs in a private mount
  namespace (``unshare --mount --propagation private``, root only) with the root's ARM-format
  ``cpuinfo`` bind-mounted over ``/proc/cpuinfo``; the host's mounts are untouched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

QEMU = "qemu-aarch64-static"
CPU = "cortex-a72"


def missing() -> str | None:
    """Why emulated runs cannot start on this machine (or ``None``)."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (apt-get install qemu-user-static; `make arm-check` does it)"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare/mount (util-linux) are missing"
    if os.geteuid() != 0:
        return "a private mount namespace with /proc/cpuinfo bind-mounted needs root"
    return None


def command(root: Path, args: list[str], cpuinfo: bool = True) -> list[str]:
    """The argv that runs ``python3.11 ARGS`` of ``root`` emulated, with its cpuinfo mounted
    (``cpuinfo=False``: the host's, as qemu-user alone leaves it; LiteRT cannot run then)."""
    root = Path(root).resolve()
    qemu = [shutil.which(QEMU) or QEMU, "-cpu", CPU, "-L", str(root), str(root / "usr/bin/python3.11")]
    if not cpuinfo:
        return [*qemu, *args]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /proc/cpuinfo && exec "$@"',
        str(root / "cpuinfo"),
        *qemu,
        *args,
    ]


def environment() -> dict[str, str]:
    """The host's environment without what would point the guest python at host packages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QEMU_", "LD_"))}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def run(
    root: Path,
    args: list[str],
    cwd: Path | None = None,
    timeout: float = 900,
    check: bool = True,
    cpuinfo: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``python3.11 ARGS`` of ``root`` emulated; output captured as text."""
    r = subprocess.run(
        command(root, args, cpuinfo),
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and r.returncode:
        raise RuntimeError(
            f"emulated python {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr[-3000:]}"
        )
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", help="arm64 root (default: build or reuse tools/arm/sysroot.py's)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="python arguments, after --")
    a = p.parse_args(argv)
    why = missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    if a.root:
        root = Path(a.root)
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        import sysroot

        root = sysroot.build(log=lambda m: print(m, file=sys.stderr))
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    return subprocess.run(command(root, args), env=environment()).returncode


if __name__ == "__main__":
    sys.exit(main())
