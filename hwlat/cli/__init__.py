"""The ``hwlat`` command line (``hwlat --help``): :func:`build_parser` and :func:`main` (in
:mod:`~hwlat.cli.root`); one module per command group (``arch``, ``profile``, ``predict``,
``search``, ``dashboards``, ``demo``), sharing :mod:`~hwlat.cli._common`."""

from hwlat.cli.root import build_parser, main

__all__ = ["build_parser", "main"]
