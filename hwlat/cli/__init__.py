"""The ``hwlat`` command line (``hwlat --help``)."""
from hwlat.cli.root import build_parser, main

__all__ = ["build_parser", "main"]
