"""Stamped results files: every benchmark prints as before and writes the same text, with a header
saying where it came from, to ``benchmarks/results/<benchmark>__<configuration>__<machine>.txt``.

Used by every script in ``benchmarks/`` (they run as ``python benchmarks/<script>.py``, so this
module is importable as ``stamp``)::

    args = ap.parse_args()
    with stamp.results(__file__, {"repeats": args.repeats, "quick": args.quick}, runtime="litert"):
        bench(args)         # prints as before; stdout is copied into the results file

**File name.** ``__``-separated parts: the benchmark (the script's name without ``bench_``), the
runtime it times if it times one, the benchmark's key options in the order it gives them, and the
machine architecture (``platform.machine()``). An option is ``name-value`` (``repeats-3``,
``seed-0``); a ``True`` flag is its name alone (``quick``); ``False`` and ``None`` are left out.
Characters other than letters, digits and ``._+-`` become ``-`` (and ``__`` inside a part ``_``);
lists are joined with ``+``. E.g. ``python benchmarks/bench_grouped_conv.py --repeats 3`` writes
``grouped_conv__litert__repeats-3__x86_64.txt``. The full command is in the header either way.

**Header.** ``# key: value`` lines (:data:`HEADER_KEYS`), then an empty line, then the body: the
format, the exact command and the directory it ran in, the git commit and whether the tree had changes,
the UTC start date, the machine fingerprint (:func:`hwlat.profiler.storage.device.fingerprint`,
one JSON line; with its ``device_key`` when the benchmark times one runtime, the key the
measurement store gives the same configuration), the configuration and the package versions. A
last line gives the end date and wall time.

The file is written as ``<name>.txt.partial`` while the benchmark runs and renamed when it ends
normally; a benchmark that raises (or is interrupted) leaves the ``.partial`` file, marked
``# INCOMPLETE``, and the previous results untouched. ``HWLAT_RESULTS_DIR`` (environment) writes
somewhere other than ``benchmarks/results/``, e.g. for a smoke run.

Standard library only, apart from hwlat's own fingerprint (imported when a file is written).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path

FORMAT = "hwlat-benchmark-results/1"
"""First header line's value; changes when the header's layout does."""

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where results files go unless ``HWLAT_RESULTS_DIR`` or ``directory=`` says otherwise."""

PACKAGES = ("numpy", "torch", "ai-edge-litert", "onnxruntime", "scikit-learn", "pandas", "hwlat")
"""Distributions whose versions every header lists (after Python's)."""

RUNTIME_DISTRIBUTIONS = {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime", "torch": "torch"}

HEADER_KEYS = (
    "results",
    "command",
    "cwd",
    "commit",
    "date",
    "machine",
    "device_key",
    "configuration",
    "versions",
)
"""Header keys in the order written; ``finished`` (or ``INCOMPLETE``) is the file's last line."""

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _part(text: str) -> str:
    """``text`` as one file-name part: other characters become ``-``, ``__`` (the separator) ``_``."""
    return re.sub("_{2,}", "_", _SAFE.sub("-", text)).strip("-_") or "-"


def _value(value: object) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return "+".join(_part(str(v)) for v in value)
    return _part(str(value))


def file_name(
    benchmark: str,
    config: Mapping[str, object] | None = None,
    runtime: str | None = None,
    machine: str | None = None,
) -> str:
    """``<benchmark>[__<runtime>]__<option>[-<value>]...__<machine>.txt`` (see the module doc)."""
    parts = [_part(benchmark)]
    if runtime:
        parts.append(_part(runtime))
    for name, value in (config or {}).items():
        name = _part(name.replace("_", "-"))
        if value is None or value is False:
            continue
        parts.append(name if value is True else f"{name}-{_value(value)}")
    parts.append(_part(machine or platform.machine() or "unknown-machine"))
    return "__".join(parts) + ".txt"


def benchmark_name(script: str | os.PathLike) -> str:
    """``bench_profiler.py`` → ``profiler``; ``check_monotone.py`` → ``check_monotone``."""
    return Path(script).stem.removeprefix("bench_")


def _rel(path: str | os.PathLike, base: Path) -> str:
    p = Path(path)
    try:
        return str(p.absolute().relative_to(base)) if p.is_absolute() or p.exists() else str(p)
    except ValueError:
        return str(p)


def command(script: str | os.PathLike, args: Sequence[str] | None = None, cwd: Path | None = None) -> str:
    """The shell command that reruns this: the interpreter and the script relative to ``cwd``
    where they are under it, then ``args`` (default ``sys.argv[1:]``), quoted for a POSIX shell."""
    cwd = Path.cwd() if cwd is None else cwd
    args = sys.argv[1:] if args is None else list(args)
    return shlex.join([_rel(sys.executable, cwd), _rel(script, cwd), *map(str, args)])


def git_state(repo: Path = REPO) -> str:
    """``<40-hex commit> (clean)`` / ``(dirty: N paths changed or untracked)``, or ``unknown (...)``."""

    def git(*a: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *a], capture_output=True, text=True, timeout=30, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown (git: {type(e).__name__})"
    state = f"dirty: {len(changed)} paths changed or untracked" if changed else "clean"
    return f"{commit} ({state})"


def versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Python's version and each distribution's installed version (``not installed`` if missing)."""
    out = {"python": platform.python_version()}
    for dist in (*PACKAGES, *extra):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine(runtime: str | None = None, threads: int = 1, delegate: str | None = None) -> dict:
    """hwlat's fingerprint of this machine for ``runtime`` (its installed version), or with
    runtime ``"none"`` when the benchmark times several runtimes or none."""
    from hwlat.profiler.storage.device import fingerprint

    if runtime is None:
        return fingerprint("none", "", threads=threads, delegate=delegate or "none")
    dist = RUNTIME_DISTRIBUTIONS.get(runtime, runtime)
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "unknown"
    if delegate is None:
        delegate = "xnnpack" if runtime == "litert" else "none"
    return fingerprint(runtime, version, threads=threads, delegate=delegate)


def _utc(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def header(
    script: str | os.PathLike,
    config: Mapping[str, object] | None = None,
    *,
    args: Sequence[str] | None = None,
    runtime: str | None = None,
    threads: int = 1,
    delegate: str | None = None,
    packages: Sequence[str] = (),
    started: float | None = None,
) -> str:
    """The header lines (each ``# key: value``, newline-terminated) of a results file, then an
    empty line."""
    from hwlat.profiler.storage.device import device_key

    fp = machine(runtime, threads, delegate)
    lines = {
        "results": f"{FORMAT}, written by benchmarks/stamp.py; rerun the command to replace this file",
        "command": command(script, args),
        "cwd": str(Path.cwd()),
        "commit": git_state(),
        "date": f"{_utc(time.time() if started is None else started)} (UTC, start)",
        "machine": json.dumps(fp, sort_keys=True, ensure_ascii=False),
        "device_key": (device_key(fp) if runtime else "none (the benchmark times several runtimes or none)"),
        "configuration": json.dumps(
            {"runtime": runtime, "threads": threads, **(config or {})}, ensure_ascii=False, default=str
        ),
        "versions": ", ".join(f"{k} {v}" for k, v in versions(packages).items()),
    }
    assert tuple(lines) == HEADER_KEYS
    return "".join(f"# {k}: {v}\n" for k, v in lines.items()) + "\n"


class _Tee:
    """stdout that also writes to a file; everything else goes to the real stdout."""

    def __init__(self, stream, file):
        self._stream, self._file = stream, file

    def write(self, s: str) -> int:
        self._file.write(s)
        return self._stream.write(s)

    def writelines(self, lines) -> None:
        for s in lines:
            self.write(s)

    def flush(self) -> None:
        self._file.flush()
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def results_dir(directory: str | os.PathLike | None = None) -> Path:
    """``directory``, else ``$HWLAT_RESULTS_DIR``, else ``benchmarks/results/``."""
    return Path(directory or os.environ.get("HWLAT_RESULTS_DIR") or RESULTS_DIR)


@contextlib.contextmanager
def results(
    script: str | os.PathLike,
    config: Mapping[str, object] | None = None,
    *,
    args: Sequence[str] | None = None,
    runtime: str | None = None,
    threads: int = 1,
    delegate: str | None = None,
    packages: Sequence[str] = (),
    directory: str | os.PathLike | None = None,
) -> Iterator[Path]:
    """Copy stdout into a stamped results file while the block runs; yields the final path.

    ``script``: the benchmark's ``__file__``; ``config``: its key options (they name the file);
    ``args``: its command-line arguments (default ``sys.argv[1:]``); ``runtime``/``threads``/
    ``delegate``: what it times, for the fingerprint (``None``: several runtimes or none);
    ``packages``: versions to list besides :data:`PACKAGES`.
    """
    started = time.time()
    head = header(
        script,
        config,
        args=args,
        runtime=runtime,
        threads=threads,
        delegate=delegate,
        packages=packages,
        started=started,
    )
    out_dir = results_dir(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / file_name(benchmark_name(script), config, runtime)
    partial = final.with_name(final.name + ".partial")
    real = sys.stdout
    real.flush()
    with open(partial, "w", encoding="utf-8", buffering=1) as f:
        f.write(head)
        sys.stdout = _Tee(real, f)
        try:
            yield final
        except BaseException as e:
            sys.stdout = real
            f.write(f"\n# INCOMPLETE: stopped at {_utc(time.time())} by {type(e).__name__}: {e}\n")
            print(f"stamp: the benchmark stopped; what it printed is in {partial}", file=sys.stderr)
            raise
        finally:
            sys.stdout = real
        f.write(f"\n# finished: {_utc(time.time())} (UTC), wall time {time.time() - started:.1f} s\n")
    os.replace(partial, final)
    print(f"stamp: results written to {_rel(final, Path.cwd())}", file=sys.stderr)


def read_header(path: str | os.PathLike) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a results file, as a dict (values unparsed)."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = re.match(r"# ([A-Za-z_]+): (.*)$", line)
        if not m:
            break
        out[m.group(1)] = m.group(2)
    return out
