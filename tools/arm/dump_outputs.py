"""Run every model of an hwlat bundle once on seeded inputs and save inputs and outputs (.npz).

    python3 dump_outputs.py BUNDLE OUT_DIR [--no-xnnpack]

Needs only numpy and LiteRT (it runs on the emulated arm64 python of tools/arm/sysroot.py). One
``OUT_DIR/<model file stem>.npz`` per workload: ``in_<i>`` / ``out_<i>`` in the order of the
interpreter's input and output details. Inputs are standard normal float32, one generator per
workload seeded from its position in the manifest, as ``run_bundle.py`` feeds them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle")
    p.add_argument("out")
    p.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only")
    args = p.parse_args(argv)
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        from tflite_runtime.interpreter import Interpreter, OpResolverType
    kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if args.no_xnnpack else OpResolverType.AUTO
    with open(os.path.join(args.bundle, "manifest.json")) as f:
        manifest = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    for i, w in enumerate(manifest["workloads"]):
        it = Interpreter(
            model_path=os.path.join(args.bundle, w["file"]), num_threads=1, experimental_op_resolver_type=kind
        )
        it.allocate_tensors()
        rng = np.random.default_rng(i)
        arrays = {}
        for j, d in enumerate(it.get_input_details()):
            x = rng.standard_normal(d["shape"], dtype=np.float32)
            it.set_tensor(d["index"], x)
            arrays[f"in_{j}"] = x
        it.invoke()
        for j, d in enumerate(it.get_output_details()):
            arrays[f"out_{j}"] = np.array(it.get_tensor(d["index"]))
        stem = os.path.splitext(os.path.basename(w["file"]))[0]
        np.savez(os.path.join(args.out, stem + ".npz"), **arrays)
    print(f"{len(manifest['workloads'])} models run, outputs in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
