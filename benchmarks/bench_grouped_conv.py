"""Grouped 1×1 convs in LiteRT: one grouped CONV_2D against SPLIT → CONV_2D per group → CONCATENATION.

FBNet's ``k3_e1_g2`` / ``k5_e1_g2`` blocks have two grouped 1×1 convs each. The TFLite exporter
writes them either way (``tflite_segment(..., grouped="conv" | "split")``); this script times the
two side by side so the default can follow the faster one. Printed, measured in one run on this
machine (LiteRT, one thread), each variant with XNNPACK and with the builtin kernels:

1. the grouped convs alone, at every shape the FBNet CIFAR-100 space has (and the ImageNet
   setting's largest ones), with the dense conv of the same shape as a yardstick;
2. the ``_g2`` blocks (expand, shuffle, depthwise, project, residual);
3. whole FBNet networks made of ``_g2`` blocks only, where the choice matters most.

Every case runs in fresh interpreters in each of ``--repeats`` rounds, and within a round all
variants of all cases are timed interleaved (:func:`hwlat.profiler.measure.timing.measure_interleaved`), so a
slow phase of the machine hits them alike; the table gives the median over rounds and the
split/conv ratio (< 1: split is faster).

Reproduce: .venv/bin/python benchmarks/bench_grouped_conv.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics

import numpy as np
import stamp  # benchmarks/stamp.py: writes the stamped results file

from hwlat.archs import get_space
from hwlat.archs.ir import Act
from hwlat.archs.layers import LayerSpec, OpKind
from hwlat.archs.pieces import blocks
from hwlat.profiler.export.tflite import op_names, tflite_segment
from hwlat.profiler.measure.timing import TimingConfig, measure_interleaved

VARIANTS = ("conv", "split")


def conv_row(cin: int, cout: int, hw: int, groups: int, act: Act = Act.RELU) -> tuple[LayerSpec, ...]:
    madds = hw * hw * cout * cin // groups
    return (
        LayerSpec(
            "blocks.0.expand",
            "block",
            0,
            OpKind.CONV,
            (cin, hw, hw),
            (cout, hw, hw),
            groups=groups,
            act=act,
            bn=True,
            madds=madds,
        ),
    )


def conv_cases(quick: bool) -> dict[str, tuple[LayerSpec, ...]]:
    """Grouped 1×1 convs at the FBNet shapes: (in channels, out channels, side) with 2 groups."""
    shapes = [
        (16, 16, 32),
        (24, 24, 32),
        (24, 32, 32),
        (32, 32, 16),
        (64, 64, 8),
        (112, 112, 8),
        (184, 184, 4),
        (184, 352, 4),
        (24, 24, 112),
        (64, 64, 28),
        (184, 184, 7),
    ]
    if quick:
        shapes = shapes[:3]
    out = {}
    for cin, cout, hw in shapes:
        out[f"conv1x1 {cin}->{cout} @{hw} g2"] = conv_row(cin, cout, hw, 2)
        out[f"conv1x1 {cin}->{cout} @{hw} dense"] = conv_row(cin, cout, hw, 1)
    return out


def block_cases(quick: bool) -> dict[str, tuple[LayerSpec, ...]]:
    """Every distinct ``_g2`` block of the CIFAR space (and two ImageNet ones)."""
    out = {}
    for name, ops in (("fbnet_cifar100", (1, 5)), ("fbnet_imagenet", (1,))):
        space = get_space(name)
        for op in ops:
            for w in blocks(space.decode((op,) * 22)):
                if "_g2" in w.label and (name == "fbnet_cifar100" or "@24x112x112" in w.label):
                    out.setdefault(w.label, w.rows)
    if quick:
        out = dict(list(out.items())[:3])
    return out


def network_cases(quick: bool) -> dict[str, tuple[LayerSpec, ...]]:
    cifar = get_space("fbnet_cifar100")
    out = {
        f"fbnet_cifar100 all-{op}": cifar.decode((i,) * 22) for i, op in ((1, "k3_e1_g2"), (5, "k5_e1_g2"))
    }
    if not quick:
        out["fbnet_imagenet all-k3_e1_g2"] = get_space("fbnet_imagenet").decode((1,) * 22)
    from hwlat.archs.layers import layers

    return {k: layers(a) for k, a in out.items()}


def prepare(rows, grouped: str, xnnpack: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(
        model_content=tflite_segment(rows, grouped=grouped), num_threads=1, experimental_op_resolver_type=kind
    )
    interp.allocate_tensors()
    c, h, w = rows[0].in_shape
    x = np.random.default_rng(0).standard_normal((1, h, w, c), dtype=np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    return interp


def run(section: str, cases: dict, repeats: int, cfg: TimingConfig) -> None:
    print(f"\n{section}")
    print(f"   {'case':44s} {'delegate':8s} {'conv ms':>9s} {'split ms':>9s} {'split/conv':>10s}")
    results: dict[tuple, list[float]] = {}
    for _ in range(repeats):
        for xnnpack in (True, False):
            keys, invokes = {}, {}
            for name, rows in cases.items():
                for v in VARIANTS:
                    if v == "split" and name.endswith("dense"):
                        continue  # nothing to split
                    k = str(len(keys))
                    keys[k] = (name, xnnpack, v)
                    invokes[k] = prepare(rows, v, xnnpack).invoke
            for k, st in measure_interleaved(invokes, cfg).items():
                results.setdefault(keys[k], []).append(st.median_ms)
            del invokes  # release the interpreters before the next round
            gc.collect()
    for name in cases:
        for xnnpack in (True, False):
            conv = statistics.median(results[(name, xnnpack, "conv")])
            split = results.get((name, xnnpack, "split"))
            tail = (
                f"{statistics.median(split):9.4f} {statistics.median(split) / conv:10.2f}"
                if split
                else f"{'':9s} {'':10s}"
            )
            print(f"   {name:44s} {'xnnpack' if xnnpack else 'builtin':8s} {conv:9.4f} {tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few cases, one round")
    ap.add_argument("--repeats", type=int, default=3, help="rounds in fresh interpreters")
    ap.add_argument("--target", type=float, default=0.02, help="relative 95 %% CI of each median")
    a = ap.parse_args()
    with stamp.results(
        __file__,
        {"quick": a.quick, "repeats": 1 if a.quick else a.repeats},
        runtime="litert",
        delegate="xnnpack+none",
    ):
        bench(a)


def bench(a: argparse.Namespace) -> None:
    repeats = 1 if a.quick else a.repeats
    cfg = TimingConfig(target=a.target, max_seconds=2.0 if a.quick else 10.0)
    g2 = get_space("fbnet_cifar100").decode((1,) * 22)
    from hwlat.archs.layers import layers

    print("grouped 1x1 convs in LiteRT: grouped CONV_2D ('conv') vs SPLIT/CONV_2D/CONCATENATION ('split')")
    print(f"   ops of a k3_e1_g2 network, conv:  {sorted(set(op_names(tflite_segment(layers(g2)))))}")
    print(
        f"   ops of a k3_e1_g2 network, split: {sorted(set(op_names(tflite_segment(layers(g2), grouped='split'))))}"
    )
    run(
        "1. grouped 1x1 convs alone (ReLU fused); 'dense' = groups 1, same shape",
        conv_cases(a.quick),
        repeats,
        cfg,
    )
    run("2. the _g2 blocks of the FBNet spaces", block_cases(a.quick), repeats, cfg)
    run("3. whole networks of _g2 blocks", network_cases(a.quick), repeats, cfg)


if __name__ == "__main__":
    main()
