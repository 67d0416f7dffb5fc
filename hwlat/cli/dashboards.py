"""The ``hwlat dashboard`` sub-commands: ``build`` (HTML report) and ``serve`` (local Dash app).

Wired into ``hwlat.cli.build_parser`` with ``add_parsers(sub)``; like the rest of the CLI the
functions return an exit status and errors become one line on stderr.
"""
from __future__ import annotations

import argparse
import socket


def _build(args) -> int:
    from hwlat.dashboards.report import build_report
    from hwlat.profiler.storage.store import check_output

    check_output(args.output)
    path = build_report(args.store, predictor_paths=args.predictor or (), runs_dir=args.runs,
                        out=args.output, runtime=args.runtime, device=args.device)
    print(f"wrote {path}")
    return 0


HOST = "127.0.0.1"
"""The app serves this machine only; reach it from elsewhere with ``ssh -L``."""


def port_number(text: str) -> int:
    """argparse type of ``--port``: an int from 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def check_port_free(port: int, host: str = HOST) -> None:
    """Raise ``OSError`` naming ``--port`` when ``host:port`` cannot be bound (e.g. in use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            s.bind((host, port))
        except OSError as e:
            raise OSError(e.errno, f"--port {port}: cannot serve on {host}:{port} ({e.strerror}); "
                                   f"choose another --port") from None


def _serve(args) -> int:
    try:
        import dash  # noqa: F401
    except ImportError as e:
        raise ValueError("the dashboard app needs Dash: pip install dash") from e
    from hwlat.dashboards.app import make_app

    check_port_free(args.port, args.host)
    app = make_app(args.store, predictor_path=args.predictor, runtime=args.runtime, device=args.device)
    check_port_free(args.port, args.host)  # again: loading took a while
    print(f"serving on http://{args.host}:{args.port}/ (this machine only; Ctrl-C stops)", flush=True)
    app.run(host=args.host, port=args.port, debug=False)
    return 0


def add_parsers(sub) -> None:
    """Add ``dashboard build`` and ``dashboard serve`` to an argparse subparsers object."""
    parser_class = sub._parser_class  # the caller's _Parser: one-line usage errors
    d = sub.add_parser("dashboard", help="Plotly report and local app of a store's measurements")
    dsub = d.add_subparsers(dest="dashboard_cmd", required=True, parser_class=parser_class)
    b = dsub.add_parser("build", help="write one self-contained HTML report (works offline)")
    b.add_argument("--store", required=True, help="measurement store (read only)")
    b.add_argument("--predictor", action="append", help="predictor JSON file (repeatable)")
    b.add_argument("--runs", help="folder of NetAdapt/NAS history JSON files")
    b.add_argument("--runtime", help="only this runtime (default: every runtime in the store)")
    b.add_argument("--device", help="only this device (a name or a device key; default: every device)")
    b.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    b.set_defaults(func=_build)
    s = dsub.add_parser("serve", help="local interactive app (Dash)")
    s.add_argument("--store", required=True, help="measurement store (read only)")
    s.add_argument("--predictor", help="predictor JSON file")
    s.add_argument("--runtime", default="litert", help="runtime to show (default litert)")
    s.add_argument("--device", help="the device to show (a name or a device key), when the store holds several")
    s.add_argument("--port", type=port_number, default=8050, help="port on 127.0.0.1 (this machine only)")
    s.set_defaults(func=_serve, host=HOST)  # this machine only: no option to change it
