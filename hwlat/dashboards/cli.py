"""The ``hwlat dashboard`` sub-commands: ``build`` (HTML report) and ``serve`` (local Dash app).

Wired into ``hwlat.cli.build_parser`` with ``add_parsers(sub)``; like the rest of the CLI the
functions return an exit status and errors become one line on stderr.
"""
from __future__ import annotations


def _build(args) -> int:
    from hwlat.dashboards.report import build_report

    path = build_report(args.store, predictor_paths=args.predictor or (), runs_dir=args.runs,
                        out=args.output, runtime=args.runtime)
    print(f"wrote {path}")
    return 0


def _serve(args) -> int:
    try:
        import dash  # noqa: F401
    except ImportError as e:
        raise ValueError("the dashboard app needs Dash: pip install dash") from e
    from hwlat.dashboards.app import make_app

    app = make_app(args.store, predictor_path=args.predictor, runtime=args.runtime)
    print(f"serving on http://{args.host}:{args.port}/ (Ctrl-C stops)")
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
    b.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    b.set_defaults(func=_build)
    s = dsub.add_parser("serve", help="local interactive app (Dash)")
    s.add_argument("--store", required=True, help="measurement store (read only)")
    s.add_argument("--predictor", help="predictor JSON file")
    s.add_argument("--runtime", default="litert", help="runtime to show (default litert)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8050)
    s.set_defaults(func=_serve)
