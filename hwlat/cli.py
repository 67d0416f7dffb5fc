"""The ``hwlat`` command line: thin wrappers over the public functions.

Errors are one line on stderr and a non-zero exit status; ``-v`` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback

log = logging.getLogger("hwlat")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _arch_list(args) -> int:
    from hwlat.archs import zoo_names

    print("\n".join(zoo_names()))
    return 0


def _arch_show(args) -> int:
    import pandas as pd

    from hwlat.archs import layers_frame, load_arch, summary

    arch = load_arch(args.arch, args.resolution)
    df = layers_frame(arch)
    cols = ["name", "op", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kernel", "stride",
            "groups", "act", "madds", "params", "elementwise"]
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(f"{arch.name} @ {arch.resolution}x{arch.resolution}")
        print(df[cols].to_string(index=False))
    s = summary(arch)
    print(f"total: {s['madds'] / 1e6:.2f} M MAdds (conv+FC), {s['params']:,} params, "
          f"{s['elementwise'] / 1e6:.2f} M elementwise ops")
    return 0


def _arch_madds(args) -> int:
    from hwlat.archs import load_arch, summary

    out = []
    for ref in args.arch:
        arch = load_arch(ref, args.resolution)
        s = summary(arch)
        out.append({"name": arch.name, "resolution": arch.resolution, "madds": s["madds"],
                    "params": s["params"], "elementwise": s["elementwise"]})
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for o in out:
            print(f"{o['name']:36s} {o['resolution']:4d}px {o['madds'] / 1e6:9.2f} M MAdds "
                  f"{o['params'] / 1e6:7.3f} M params")
    return 0


def _demo(args) -> int:
    import pandas as pd

    from hwlat.report import zoo_vs_table3

    df = zoo_vs_table3()
    print("hwlat demo: analytic MAdds and params of the zoo beside the paper's Table 3 "
          "(arXiv:1905.02244v5, 224x224)\n")
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print(df.to_string(index=False))
    worst = df["madds_diff_pct"].abs().max()
    print(f"\nlargest MAdds difference: {worst:.2f} % (target <= 1.5 %). MAdds count conv and FC "
          "multiply-adds; elementwise work is listed apart (see README, 'Counting').")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hwlat", description="Hardware-aware latency modeling for mobile networks.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    arch = sub.add_parser("arch", help="architectures: list, show, count").add_subparsers(
        dest="arch_cmd", required=True, parser_class=_Parser)
    a = arch.add_parser("list", help="zoo names")
    a.set_defaults(func=_arch_list)
    a = arch.add_parser("show", help="layer table with shapes, MAdds, params")
    a.add_argument("arch", help="zoo name, codec string or JSON/codec file")
    a.add_argument("--resolution", "-r", type=int, help="input resolution in pixels")
    a.set_defaults(func=_arch_show)
    a = arch.add_parser("madds", help="MAdds and params of one or more architectures")
    a.add_argument("arch", nargs="+", help="zoo names, codec strings or JSON/codec files")
    a.add_argument("--resolution", "-r", type=int, help="input resolution in pixels")
    a.add_argument("--json", action="store_true", help="print a JSON list")
    a.set_defaults(func=_arch_madds)

    d = sub.add_parser("demo", help="the main job on the built-in defaults")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as e:
        if args.verbose:
            traceback.print_exc()
        print(f"hwlat: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwlat: interrupted", file=sys.stderr)
        return 130
