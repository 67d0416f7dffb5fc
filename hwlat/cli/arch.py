"""``hwlat arch list|show|madds|import`` and ``hwlat export``: architectures, counted, written out,
and read from ``.onnx``/``.tflite`` files."""

from __future__ import annotations

from hwlat.cli._common import (
    Choices,
    Library,
    add,
    add_json,
    add_resolution,
    set_handler,
    subparsers,
)
from hwlat.files import dumps_strict, finite_or_none


def _arch_list(args) -> int:
    from hwlat.archs import task_names, zoo_names

    print("\n".join(zoo_names() + task_names()))
    return 0


def _arch_show(args) -> int:
    import pandas as pd

    from hwlat.archs import layers_frame, load_arch, resolution_str, summary

    arch = load_arch(args.arch, args.resolution)
    df = layers_frame(arch)
    cols = [
        "name",
        "op",
        "in_c",
        "in_h",
        "in_w",
        "out_c",
        "out_h",
        "out_w",
        "kernel",
        "stride",
        "groups",
        "act",
        "madds",
        "params",
        "elementwise",
    ] + (["inputs"] if arch.nodes else [])
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(f"{arch.name} @ {'x'.join(map(str, arch.hw))}")
        print(df[cols].to_string(index=False))
    s = summary(arch)
    print(
        f"total: {s['madds'] / 1e6:.2f} M MAdds (conv+FC), {s['params']:,} params, "
        f"{s['elementwise'] / 1e6:.2f} M elementwise ops"
    )
    if arch.outputs:
        print(f"outputs: {', '.join(arch.outputs)} ({resolution_str(arch.resolution)} input)")
    return 0


def _arch_madds(args) -> int:
    from hwlat.archs import load_arch, resolution_str, summary
    from hwlat.paper import paper_task_rows

    out = []
    for ref in args.arch:
        arch = load_arch(ref, args.resolution)
        s = summary(arch)
        rec = {
            "name": arch.name,
            "resolution": arch.resolution,
            "madds": s["madds"],
            "params": s["params"],
            "elementwise": s["elementwise"],
        }
        paper = paper_task_rows(arch)  # the paper's Tables 6-8, for its detection/segmentation nets
        if paper:
            rec["paper"] = [
                {
                    k: p[k]
                    for k in (
                        "table",
                        "model",
                        "paper_madds_B",
                        "madds_diff_pct",
                        "paper_params_M",
                        "params_diff_pct",
                    )
                }
                for p in paper
            ]
        out.append(rec)
    if args.json:
        print(dumps_strict(finite_or_none(out), indent=2, default=lambda v: None))
    else:
        for o in out:
            print(
                f"{o['name']:36s} {resolution_str(o['resolution']):>4s}px {o['madds'] / 1e6:9.2f} M MAdds "
                f"{o['params'] / 1e6:7.3f} M params"
            )
            for p in o.get("paper", ()):
                params = (
                    ""
                    if p["paper_params_M"] != p["paper_params_M"]
                    else (f", {p['paper_params_M']:.2f} M params ({p['params_diff_pct']:+.1f} %)")
                )
                print(
                    f"{'':49s}paper {p['table']} {p['model']}: {p['paper_madds_B'] * 1e3:.0f} M MAdds "
                    f"({p['madds_diff_pct']:+.1f} %){params}"
                )
    return 0


def _arch_import(args) -> int:
    from pathlib import Path

    from hwlat.archs import encode, import_file, resolution_str, summary
    from hwlat.files import atomic_write_text, check_output
    from hwlat.profiler.measure.profile import file_format

    out = check_output(args.output) if args.output else None
    path = Path(args.file)
    file_format(path, path.read_bytes())  # a foreign file is one line naming it
    imp = import_file(path, allow_partial=args.allow_partial)
    arch = imp.arch
    if arch is not None:
        s = summary(arch)
        print(encode(arch))
        print(
            f"{path} ({imp.format}): {len(imp.rows)} graph nodes -> {arch.name} @ "
            f"{resolution_str(arch.resolution)}px, {s['madds'] / 1e6:.2f} M MAdds, {s['params'] / 1e6:.3f} M params"
        )
    else:
        print(f"{path} ({imp.format}): {len(imp.rows)} graph nodes, no network placed")
    width = max([len("node"), *(len(str(r["node"])) for r in imp.rows)])
    print(f"{'node':{width}s}  {'op':18s}  layer")
    for r in imp.rows:
        print(f"{str(r['node']):{width}s}  {str(r['op']):18s}  {r['layer'] or '-'}")
    partial = [r for r in imp.rows if r.get("partial")]
    if partial:
        print(f"could not place {len(partial)} nodes:")
        for r in partial:
            print(f"  {r['node']} ({r['op']}): {'; '.join(map(str, r['partial']))}")
    if out is not None:
        if arch is None:
            raise ValueError(f"-o {out}: {path} placed no network; nothing to write")
        atomic_write_text(out, arch.to_json())
        print(f"wrote {out} (hwlat arch show {out})")
    return 0


EXPORT_FORMATS = ("tflite", "onnx")


def _export(args) -> int:
    from hwlat.archs import load_arch
    from hwlat.files import atomic_write
    from hwlat.profiler.storage.store import check_output

    out = check_output(args.output)
    arch = load_arch(args.arch, args.resolution)
    grouped_default = Library("hwlat.profiler.export.tflite:tflite_segment.grouped").value()
    if (args.quantize or args.grouped != grouped_default) and args.format != "tflite":
        raise ValueError("--quantize and --grouped apply to tflite export only")
    if args.format == "tflite":
        from hwlat.profiler.export.tflite import build_tflite

        data = build_tflite(arch, quantize=args.quantize, grouped=args.grouped)
    else:
        from hwlat.profiler.export.onnx import build_onnx

        data = build_onnx(arch)
    atomic_write(out, lambda tmp: tmp.write_bytes(data))
    print(
        f"wrote {out} ({len(data) / 1e6:.2f} MB, {arch.name} @ {'x'.join(map(str, arch.hw))}px, "
        f"{args.format})"
    )
    return 0


def add_parsers(sub) -> None:
    """``arch list|show|madds|import`` and ``export`` on the ``hwlat`` subparsers ``sub``."""
    arch = subparsers(sub.add_parser("arch", help="architectures: list, show, count, import"), "arch_cmd")
    a = arch.add_parser("list", help="zoo names")
    set_handler(a, _arch_list)
    a = arch.add_parser("show", help="layer table with shapes, MAdds, params")
    a.add_argument(
        "arch", help="zoo name, SPACE:i,j,... (a point of a search space), codec string or JSON/codec file"
    )
    add_resolution(a)
    set_handler(a, _arch_show)
    a = arch.add_parser("madds", help="MAdds and params of one or more architectures")
    a.add_argument(
        "arch", nargs="+", help="zoo names, SPACE:i,j,... references, codec strings or JSON/codec files"
    )
    add_resolution(a)
    add_json(a, "print a JSON list")
    set_handler(a, _arch_madds)
    a = arch.add_parser(
        "import",
        help="read a .onnx or .tflite file as an architecture: its codec and which node became which layer",
    )
    a.add_argument("file", help=".onnx or .tflite model file")
    a.add_argument("-o", "--output", help="also write the architecture as IR JSON (hwlat arch show reads it)")
    a.add_argument(
        "--allow-partial",
        action="store_true",
        help="place what can be placed and list the nodes that could not, instead of refusing the file",
    )
    set_handler(a, _arch_import)

    e = sub.add_parser("export", help="write a .tflite or .onnx file of an architecture")
    e.add_argument("format", choices=EXPORT_FORMATS)
    e.add_argument("arch", help="zoo name, codec string or JSON/codec file")
    e.add_argument("-o", "--output", required=True, help="output file")
    add_resolution(e)
    add(
        e,
        "--quantize",
        choices=Choices("hwlat.profiler.export.tflite:QUANTIZE_MODES"),
        help="tflite only: int8 post-training quantization calibrated on random data",
    )
    add(
        e,
        "--grouped",
        choices=Choices("hwlat.profiler.export.tflite:GROUPED"),
        default=Library("hwlat.profiler.export.tflite:tflite_segment.grouped"),
        help="tflite only: grouped 1x1 convs as one grouped CONV_2D, or SPLIT + CONV_2D per "
        "group + CONCATENATION (default %(library_default)s)",
    )
    set_handler(e, _export)
