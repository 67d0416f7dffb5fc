"""The ``hwlat dashboard`` sub-commands: ``build`` (HTML report) and ``serve`` (local Dash app).

Wired into ``hwlat.cli.build_parser`` with ``add_parsers(sub)``; like the rest of the CLI the
functions return an exit status and errors become one line on stderr.
"""

from __future__ import annotations

import socket

from hwlat.cli._common import (
    Library,
    Parser,
    add,
    add_device_filter,
    add_store,
    port_number,
    set_handler,
)

DEFAULT_PORT = 8050
"""Dash's own default port."""


def _build(args) -> int:
    from hwlat.dashboards.report import build_report
    from hwlat.profiler.storage.store import check_output

    check_output(args.output)
    path = build_report(
        args.store,
        predictor_paths=args.predictor or (),
        runs_dir=args.runs,
        out=args.output,
        runtime=args.runtime,
        device=args.device,
    )
    print(f"wrote {path}")
    return 0


HOST = "127.0.0.1"
"""The app serves this machine only; reach it from elsewhere with ``ssh -L``."""


def check_port_free(port: int, host: str = HOST) -> None:
    """Raise ``OSError`` naming ``--port`` when ``host:port`` cannot be bound (e.g. in use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            s.bind((host, port))
        except OSError as e:
            raise OSError(
                e.errno, f"--port {port}: cannot serve on {host}:{port} ({e.strerror}); choose another --port"
            ) from None


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


def add_parsers(sub, parser_class: type = Parser) -> None:
    """Add ``dashboard build`` and ``dashboard serve`` to an argparse subparsers object; their
    parsers are ``parser_class`` (:class:`~hwlat.cli._common.Parser`: one-line usage errors)."""
    d = sub.add_parser("dashboard", help="Plotly report and local app of a store's measurements")
    dsub = d.add_subparsers(dest="dashboard_cmd", required=True, parser_class=parser_class)
    b = dsub.add_parser("build", help="write one self-contained HTML report (works offline)")
    add_store(b)
    b.add_argument("--predictor", action="append", help="predictor JSON file (repeatable)")
    b.add_argument("--runs", help="folder of NetAdapt/NAS history JSON files")
    b.add_argument("--runtime", help="only this runtime (default: every runtime in the store)")
    add_device_filter(b, "only this device (a name or a device key; default: every device)")
    add(
        b,
        "-o",
        "--output",
        default=Library("hwlat.dashboards.report:build_report.out"),
        help="HTML file to write (default %(library_default)s)",
    )
    set_handler(b, _build)
    s = dsub.add_parser("serve", help="local interactive app (Dash)")
    add_store(s)
    s.add_argument("--predictor", help="predictor JSON file")
    add(
        s,
        "--runtime",
        default=Library("hwlat.dashboards.app:make_app.runtime"),
        help="runtime to show (default %(library_default)s)",
    )
    add_device_filter(s, "the device to show (a name or a device key), when the store holds several")
    s.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="port on 127.0.0.1 (this machine only)"
    )
    set_handler(s, _serve, host=HOST)  # this machine only: no option to change it
