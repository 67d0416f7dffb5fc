"""The ``hwlat`` command line: :func:`build_parser` wires each command group's ``add_parsers(sub)``
(one module per group: :mod:`~hwlat.cli.arch`, :mod:`~hwlat.cli.profile`, :mod:`~hwlat.cli.predict`,
:mod:`~hwlat.cli.search`, :mod:`~hwlat.cli.dashboards`, :mod:`~hwlat.cli.demo`); :func:`main` runs
one command under the error contract of :mod:`hwlat.cli._common` (one line for a user error, exit
0 ok / 2 bad input / 3 finished short / 130 interrupted).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings

from hwlat.cli import arch, dashboards, demo, predict, profile, search
from hwlat.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    UsageError,
    error_message,
    subparsers,
)
from hwlat.errors import HwlatError

log = logging.getLogger("hwlat")

GROUPS = (arch, profile, predict, search, dashboards, demo)
"""The command groups, in the order ``hwlat --help`` lists their commands."""


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every sub-command (what ``hwlat --help`` and the CLI reference show)."""
    p = Parser(prog="hwlat", description="Hardware-aware latency modeling for mobile networks.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    sub = subparsers(p, "cmd")
    for group in GROUPS:
        group.add_parsers(sub)
    return p


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"hwlat: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 2 bad input, 3 finished short of its goal with the
    results written: a NetAdapt run short of its target, a demo with a stage that failed; 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(f"hwlat: error: {error_message(e)}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    format_warning = warnings.formatwarning
    if not args.verbose:  # a warning is one line for the user, not a source location
        warnings.formatwarning = _one_line_warning
    try:
        return args.func(args)
    except (HwlatError, ValueError, OSError) as e:
        if args.verbose:
            traceback.print_exc()
        print(f"hwlat: error: {error_message(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hwlat: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        warnings.formatwarning = format_warning
