"""What every command group of the ``hwlat`` CLI shares: the error contract, argument types, the
options declared once, and defaults and choices that live in the library.

The contract: a user error (:class:`~hwlat.errors.HwlatError`, ``ValueError``, ``OSError``, or a
usage error) prints one line ``hwlat: error: ...`` naming the file, field or argument and exits
:data:`EXIT_USAGE` (``-v`` adds the traceback); any other exception is a bug and keeps its
traceback. No command changes a file it was not asked to change.

Defaults: an option whose default is the library's is declared with ``default=Library("module:Name")``
(:func:`add`): argparse's default stays None, the help reads the value as ``%(library_default)s``,
and the command (:func:`set_handler`) fills a None from the library before it runs. Choices read
from a registry are :class:`Choices`. Both import the library only when they are needed (a help
text, a parsed value, a run), so ``hwlat arch list`` does not import torch for ``hwlat search``'s
choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
from collections.abc import Sequence

EXIT_OK = 0
EXIT_USAGE = 2
"""Bad input: a usage error, an unreadable or wrong file, a value the library refuses."""
EXIT_SHORT = 3
"""A run that finished short of its goal with its results written: a NetAdapt run short of its
target (its best network and history are written), a demo with a stage that failed."""
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line argparse refuses (reported as one line by ``main``)."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (:class:`UsageError`)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("hwlat").strip()
        raise UsageError(f"{command}: {message}" if command else message)


def subparsers(parser: argparse.ArgumentParser, dest: str, required: bool = True):
    """``parser.add_subparsers`` whose sub-commands are :class:`Parser`s (one-line usage errors)."""
    return parser.add_subparsers(dest=dest, required=required, parser_class=Parser)


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 + 3 :]}"


def error_message(e: BaseException) -> str:
    """One line for a user error: an OSError names its file (shortened) and the system's reason."""
    if isinstance(e, OSError) and e.strerror:
        files = [_shorten(str(f)) for f in (e.filename, e.filename2) if f is not None]
        msg = f"{' -> '.join(files)}: {e.strerror.lower()}" if files else e.strerror
    else:
        msg = str(e)
    msg = " ".join(msg.split())  # one line
    return msg if len(msg) <= 1000 else _shorten(msg, 1000)


# -- defaults and choices of the library -----------------------------------------------------------
class Library:
    """A value defined in the library, named ``"module:NAME"`` (a module attribute),
    ``"module:Class.field"`` (a dataclass field's default) or ``"module:function.param"`` /
    ``"module:Class.method.param"`` (a parameter's default). :meth:`value` imports the module;
    ``str()`` is the value as a help text shows it (sequences joined with ``sep``)."""

    def __init__(self, ref: str, sep: str = ","):
        self.ref, self.sep = ref, sep

    def value(self):
        module, _, path = self.ref.partition(":")
        obj = importlib.import_module(module)
        *parents, last = path.split(".")
        for name in parents:
            obj = getattr(obj, name)
        if isinstance(obj, type) and dataclasses.is_dataclass(obj):
            fields = {f.name: f for f in dataclasses.fields(obj)}
            if last in fields:
                f = fields[last]
                return f.default_factory() if f.default is dataclasses.MISSING else f.default
        if callable(obj) and not isinstance(obj, type):
            param = inspect.signature(obj).parameters.get(last)
            if param is not None:
                if param.default is inspect.Parameter.empty:
                    raise TypeError(f"{self.ref}: parameter {last!r} has no default")
                return param.default
        return getattr(obj, last)

    def __str__(self) -> str:
        v = self.value()
        if isinstance(v, (tuple, list, frozenset, set)):
            return self.sep.join(map(str, sorted(v) if isinstance(v, (set, frozenset)) else v)) or "none"
        return str(v)

    def __repr__(self) -> str:
        return f"Library({self.ref!r})"


class Choices(Sequence):
    """The keys of a library registry (``"module:NAME"``, a dict or a sequence), read when argparse
    first needs them (a parsed value, a help text)."""

    def __init__(self, ref: str):
        self.ref = ref
        self._values: list | None = None

    def _get(self) -> list:
        if self._values is None:
            self._values = list(Library(self.ref).value())
        return self._values

    def __getitem__(self, i):
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, value) -> bool:
        return value in self._get()

    def __repr__(self) -> str:
        return f"Choices({self.ref!r})"


_DEFAULTS_ATTR = "hwlat_library_defaults"


def add(
    p: argparse.ArgumentParser,
    *flags: str,
    default: Library | None = None,
    choices: Choices | None = None,
    **kw,
) -> argparse.Action:
    """``p.add_argument(*flags, **kw)`` with the default (None to argparse; filled by the command,
    :func:`set_handler`) and the choices taken from the library."""
    action = p.add_argument(*flags, **kw)
    if default is not None:
        action.library_default = default
        p.__dict__.setdefault(_DEFAULTS_ATTR, []).append(action)
    if choices is not None:  # after add_argument, which would format (and so import) them
        action.choices = choices
    return action


def library_actions(p: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options of ``p`` whose defaults are the library's (declared with :func:`add`)."""
    return p.__dict__.setdefault(_DEFAULTS_ATTR, [])


class Command:
    """A command's function, run with the None options of its parser filled from the library."""

    def __init__(self, func, actions: list[argparse.Action]):
        self.func, self.actions = func, actions

    def fill(self, args: argparse.Namespace) -> argparse.Namespace:
        for action in self.actions:
            if getattr(args, action.dest, None) is None:
                setattr(args, action.dest, action.library_default.value())
        return args

    def __call__(self, args: argparse.Namespace) -> int:
        return self.func(self.fill(args))


def set_handler(p: argparse.ArgumentParser, func, **defaults) -> None:
    """``p`` runs ``func(args)`` (``args.func``), its library defaults filled in first."""
    p.set_defaults(func=Command(func, library_actions(p)), **defaults)


# -- argument types ------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def resolution(text: str) -> int | tuple[int, int]:
    """argparse type: an input size in pixels, ``R`` (square) or ``HxW`` (e.g. ``1024x2048``)."""
    from hwlat.archs import parse_resolution

    try:
        return parse_resolution(text)  # sizes below 1 px are refused by validation (arch.resolution)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("resolution: ")) from None


def resolutions(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated input sizes in pixels."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 32:
        raise argparse.ArgumentTypeError(f"resolutions must be at least 32 px, got {text!r}")
    return values


def comma_tuple(text: str) -> tuple[str, ...]:
    """argparse type: a comma list (empty items dropped)."""
    return tuple(filter(None, text.split(",")))


def comma_set(text: str) -> frozenset[str]:
    """argparse type: a comma set (empty items dropped)."""
    return frozenset(comma_tuple(text))


def port_number(text: str) -> int:
    """argparse type of ``--port``: an int from 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


# -- options declared once -----------------------------------------------------------------------
RUNTIMES = Library("hwlat.profiler.measure.runners:RUNTIMES", sep=" | ")
DEFAULT_RUNTIME = Library("hwlat.profiler.measure.profile:profile.runtime")
"""The runtime hwlat measures with unless told otherwise (``profile()``'s)."""


def add_store(p, mode: str = "read") -> None:
    """``--store``, required: ``mode`` "read" (read only) or "write" (created if missing)."""
    what = {
        "read": "measurement store (read only)",
        "write": "SQLite measurement store (created if missing)",
    }[mode]
    p.add_argument("--store", required=True, help=what)


def add_resolution(p) -> None:
    p.add_argument("--resolution", "-r", type=resolution, help="input resolution in pixels: R or HxW")


def add_device_filter(
    p, help: str = "the device (a name or a device key), when the store holds several"
) -> None:
    p.add_argument("--device", help=help)


def add_allow_other_device(p, help: str = "warn instead of failing on a device mismatch") -> None:
    p.add_argument("--allow-other-device", action="store_true", help=help)


def add_json(p, help: str | None = None) -> None:
    p.add_argument("--json", action="store_true", help=help)


def add_quiet(p, help: str = "no progress bar") -> None:
    p.add_argument("--quiet", "-q", action="store_true", help=help)


def add_measuring_runtime(p, help: str = "runtime to measure with") -> None:
    """``--runtime`` of a command that measures or targets a runtime of this machine (checked by
    the library: an unknown one is an error naming the runtimes)."""
    add(
        p,
        "--runtime",
        default=DEFAULT_RUNTIME,
        help=f"{help}: %(library_runtimes)s (default %(library_default)s)",
    ).library_runtimes = RUNTIMES


def add_ray(p, purpose: str) -> None:
    """``--ray [ADDRESS]``: ``purpose`` on a Ray cluster (e.g. "train in parallel on")."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help=f"{purpose} a Ray cluster (HOST:PORT; a local one without ADDRESS); "
        "needs pip install 'hwlat[ray]'",
    )


def add_arch_refs(p, nargs: str = "*", help: str = "zoo names, codec strings, files, @zoo, @grid") -> None:
    p.add_argument("arch", nargs=nargs, help=help)


def add_sampling(p) -> None:
    """``--sample-space``, ``--space`` and ``--seed`` of :func:`archs`."""
    p.add_argument(
        "--sample-space",
        metavar="[SPACE:]N",
        help="also profile N architectures sampled from SPACE (default: --space)",
    )
    add(
        p,
        "--space",
        default=Library("hwlat.archs.space:parse_sample.default_space"),
        choices=Choices("hwlat.archs.space:SPACE_NAMES"),
        help="the space of --sample-space N",
    )
    add(p, "--seed", type=int, default=Library("hwlat.archs.space:Space.sample_archs.seed"))


def archs(
    refs: list[str],
    resolution: int | tuple[int, int] | None,
    sample_space: str | int | None = 0,
    space: str | None = None,
    seed: int = 0,
) -> list:
    """Resolve CLI references: zoo names, space references, codec strings, files, ``@zoo``,
    ``@grid`` (:func:`hwlat.archs.zoo.expand_refs`), plus ``--sample-space`` samples (``N`` of
    ``space``, or ``SPACE:N``)."""
    from hwlat.archs import get_space, load_arch
    from hwlat.archs.space import DEFAULT_SPACE, parse_sample
    from hwlat.archs.zoo import expand_refs

    out = [load_arch(ref, resolution if res is None else res) for ref, res in expand_refs(refs)]
    name, n = parse_sample(sample_space or 0, space or DEFAULT_SPACE)
    if n:
        if isinstance(resolution, tuple):  # spaces sample at a square size; HxW is set afterwards
            out += [a.with_resolution(resolution) for a in get_space(name).sample_archs(n, seed)]
        else:
            out += get_space(name, resolution).sample_archs(n, seed)
    if not out:
        raise ValueError("no architectures given (name them, or use @zoo, @grid or --sample-space N)")
    return out
