"""Do files of sampled networks import back into the same architecture, from every producer?

For ``--samples`` random networks of each search space (seeded), write each with hwlat's TFLite
exporter (float and int8), hwlat's ONNX exporter and ``torch.onnx.export`` of the PyTorch builder,
import every file (``hwlat.archs.from_tflite`` / ``from_onnx``) and compare with the network it
came from (``hwlat.archs.importer.same_arch``). Prints, per space and producer, how many round trips
held and the first failure of each; the test suite runs fewer (``tests/test_import.py``).

Reproduce: .venv/bin/python benchmarks/check_import.py --samples 200
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import time
import warnings

import numpy as np
import stamp  # benchmarks/stamp.py: writes the stamped results file

SPACES = ("large", "small", "fbnet_cifar100", "fbnet_imagenet")
PRODUCERS = ("tflite", "tflite_int8", "onnx", "torch")


def _torch_onnx(arch) -> bytes:
    import torch

    from hwlat.archs.torch_builder import build_torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            build_torch(arch).eval(),
            (torch.zeros(1, arch.in_channels, *arch.hw),),
            buf,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
        )
    return buf.getvalue()


def round_trip(job: tuple[str, int]) -> list[tuple[str, str, int, str | None, float]]:
    """``(space, producer, index, error or None, seconds)`` for sample ``index`` of ``space``."""
    import torch

    from hwlat.archs import get_space
    from hwlat.archs.importer import from_onnx, from_tflite, same_arch
    from hwlat.profiler.export.onnx import build_onnx
    from hwlat.profiler.export.tflite import build_tflite

    torch.set_num_threads(1)
    space, i = job
    arch = get_space(space).sample_arch(np.random.default_rng([SPACES.index(space), i]))
    make = {
        "tflite": lambda: from_tflite(build_tflite(arch)),
        "tflite_int8": lambda: from_tflite(build_tflite(arch, quantize="int8")),
        "onnx": lambda: from_onnx(build_onnx(arch)),
        "torch": lambda: from_onnx(_torch_onnx(arch)),
    }
    out = []
    for p in PRODUCERS:
        t = time.perf_counter()
        try:
            err = None if same_arch(make[p](), arch) else "a different architecture came back"
        except Exception as e:  # noqa: BLE001 - reported per round trip
            err = f"{type(e).__name__}: {e}"
        out.append((space, p, i, err, time.perf_counter() - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200, help="sampled networks per space")
    ap.add_argument("--workers", type=int, default=2, help="processes")
    args = ap.parse_args()
    with stamp.results(__file__, {"samples": args.samples}):
        bench(args)


def bench(args: argparse.Namespace) -> None:
    jobs = [(s, i) for i in range(args.samples) for s in SPACES]
    ok = {(s, p): 0 for s in SPACES for p in PRODUCERS}
    first: dict = {}
    secs = {p: 0.0 for p in PRODUCERS}
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for rows in pool.imap_unordered(round_trip, jobs, chunksize=4):
            for space, p, i, err, dt in rows:
                secs[p] += dt
                if err is None:
                    ok[(space, p)] += 1
                else:
                    first.setdefault((space, p), f"sample {i}: {err}")
    print(f"{'space':16s} " + " ".join(f"{p:>12s}" for p in PRODUCERS))
    for s in SPACES:
        print(f"{s:16s} " + " ".join(f"{ok[(s, p)]:>8d}/{args.samples:<3d}" for p in PRODUCERS))
    print(
        "seconds per round trip (export + import): "
        + ", ".join(f"{p} {secs[p] / len(jobs):.2f}" for p in PRODUCERS)
    )
    print(f"wall time {time.perf_counter() - start:.0f} s with {args.workers} workers")
    for (s, p), msg in sorted(first.items()):
        print(f"FAILED {s} {p}: {msg}")
    print("all round trips held" if not first else f"{len(first)} (space, producer) pairs with failures")


if __name__ == "__main__":
    main()
