"""Runners: turn a workload into a zero-argument ``invoke`` on one runtime, single-threaded.

* ``litert`` — LiteRT ``Interpreter`` (the paper's runtime), ``num_threads=1``, XNNPACK by
  default (``xnnpack=False``: the builtin kernels only). Grouped convs are written the way each
  runs fastest (``benchmarks/results/grouped_conv__litert__repeats-3__x86_64.txt``): one
  grouped ``CONV_2D`` for XNNPACK, split per group for the builtin kernels, whose grouped conv is
  slower than the dense one.
* ``onnxruntime`` — one intra- and one inter-op thread, sequential execution, all graph
  optimisations (as deployed), I/O bound once so a call does no allocation.
* ``torch`` — eager PyTorch, one thread, ``inference_mode``, with glibc malloc trimming disabled
  (it swings eager latency widely).

A file workload (``hwlat profile file``: :attr:`~hwlat.archs.pieces.Workload.file`) is timed as
the file's own graph, on the runtime that runs its format (:data:`FILE_FORMATS`: LiteRT a
``.tflite``, ONNX Runtime a ``.onnx``), fed random inputs of the shapes and types it declares.

``prepare(workload)`` returns ``(invoke, release)``; call ``release`` as soon as the workload is
measured, drop the invoke, and run ``gc.collect()`` once per batch (:func:`release_batch`): a
process holding hundreds of loaded interpreters measures whole networks measurably slower, and a
full collection costs too much to pay per workload. A profiling run keeps the objects alive when
it starts out of the collector's sight (:func:`frozen_heap`), so that collection, and any automatic
one during a sample, only scans what the run itself allocated.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
from collections.abc import Callable, Iterator
from importlib import metadata

import numpy as np

from hwlat.archs.pieces import Workload
from hwlat.profiler.storage.device import DEFAULT_RUNTIME, RUNTIMES, fingerprint  # noqa: F401 - re-exported

Prepared = tuple[Callable[[], object], Callable[[], None]]

FILE_FORMATS = {"litert": "tflite", "onnxruntime": "onnx"}
"""The model file format each runtime runs (``hwlat profile file``); other runtimes run none."""


def _inputs(w: Workload, seed: int = 0) -> list[np.ndarray]:
    """Random NCHW inputs of a workload, one per input of its segment (several for some pieces of a
    task head)."""
    from hwlat.archs.segments import segment_inputs

    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, *shape), dtype=np.float32) for _, shape in segment_inputs(w.rows)]


def _random(shape, dtype, rng: np.random.Generator) -> np.ndarray:
    """A random input of a model file: unknown (symbolic, -1) dimensions taken as 1."""
    shape = tuple(d if isinstance(d, (int, np.integer)) and d > 0 else 1 for d in shape)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -128), min(info.max, 127), shape, endpoint=True).astype(dtype)


def file_content(w: Workload, runtime: str) -> bytes:
    """The bytes of file workload ``w`` for ``runtime``; ``ValueError`` if the runtime does not run
    its format or the workload came without them (rebuilt from its spec, e.g. on a farm host: a
    file is measured where it is, ``hwlat profile file FILE``)."""
    fmt = w.file["format"]
    if FILE_FORMATS.get(runtime) != fmt:
        runs = [r for r, f in FILE_FORMATS.items() if f == fmt]
        raise ValueError(
            f"{w.file['name']}: runtime {runtime} does not run .{fmt} files"
            + (f" (--runtime {runs[0]} does)" if runs else "")
        )
    if w.content is None:
        raise ValueError(
            f"file workload {w.key} ({w.file['name']}): its bytes are not here (a file is measured "
            f"where it is: hwlat profile file {w.file['name']} --store STORE)"
        )
    return w.content


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


class Runner:
    """Base class: a runtime configuration that can prepare workloads."""

    name = "base"

    def __init__(self, threads: int = 1):
        self.threads = threads

    def version(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def delegate(self) -> str:
        return "none"

    def fingerprint(self) -> dict:
        return fingerprint(self.name, self.version(), threads=self.threads, delegate=self.delegate())

    def prepare(self, w: Workload) -> Prepared:  # pragma: no cover - overridden
        raise NotImplementedError


class LiteRTRunner(Runner):
    name = "litert"

    def __init__(self, threads: int = 1, xnnpack: bool = True, quantize: str | None = None):
        super().__init__(threads)
        self.xnnpack = xnnpack
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize: expected None or 'int8', got {quantize!r}")
        self.quantize = quantize
        from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: F401 - fail early

    def version(self) -> str:
        return _version("ai-edge-litert")

    def delegate(self) -> str:
        return "xnnpack" if self.xnnpack else "none"

    def fingerprint(self) -> dict:
        # int8 and float timings of one workload are different measurements: precision is part of
        # the device configuration, like the delegate
        extra = {"precision": self.quantize} if self.quantize else None
        return fingerprint(
            self.name, self.version(), threads=self.threads, delegate=self.delegate(), extra=extra
        )

    def prepare(self, w: Workload) -> Prepared:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from hwlat.profiler.export.tflite import tflite_segment

        kind = OpResolverType.AUTO if self.xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if w.file is not None:
            if self.quantize:
                raise ValueError(f"{w.file['name']}: a file is timed as it is; --quantize does not apply")
            model = file_content(w, self.name)
        else:
            model = tflite_segment(
                w.rows,
                quantize=self.quantize,
                outputs=w.outputs or None,
                grouped="conv" if self.xnnpack else "split",
            )
        interp = Interpreter(
            model_content=model, num_threads=self.threads, experimental_op_resolver_type=kind
        )
        interp.allocate_tensors()
        if w.file is not None:  # the file's own inputs (NHWC, any type)
            rng = np.random.default_rng(0)
            for inp in interp.get_input_details():
                interp.set_tensor(inp["index"], _random(inp["shape"], inp["dtype"], rng))
        else:
            for inp, x in zip(interp.get_input_details(), _inputs(w), strict=True):
                interp.set_tensor(inp["index"], x.transpose(0, 2, 3, 1).copy())
        holder = [interp]

        def release() -> None:
            holder.clear()

        return interp.invoke, release


_ORT_TYPES = {
    f"tensor({t})": t
    for t in ("float", "double", "float16", "int8", "uint8", "int16", "int32", "int64", "bool")
} | {"tensor(float)": "float32", "tensor(double)": "float64"}


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, threads: int = 1):
        super().__init__(threads)
        import onnxruntime  # noqa: F401 - fail early

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def prepare(self, w: Workload) -> Prepared:
        import onnxruntime as ort

        from hwlat.profiler.export.onnx import onnx_segment

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if w.file is not None:
            model = file_content(w, self.name)
        else:
            model = onnx_segment(w.rows, outputs=w.outputs or None)
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        if w.file is not None:  # the file's own inputs (symbolic dimensions as 1)
            rng = np.random.default_rng(0)
            xs = [
                ort.OrtValue.ortvalue_from_numpy(_random(i.shape, _ORT_TYPES.get(i.type, "float32"), rng))
                for i in sess.get_inputs()
            ]
        else:
            xs = [ort.OrtValue.ortvalue_from_numpy(x) for x in _inputs(w)]
        io = sess.io_binding()
        for inp, x in zip(sess.get_inputs(), xs, strict=True):
            io.bind_ortvalue_input(inp.name, x)
        for o in sess.get_outputs():
            io.bind_output(o.name)
        sess.run_with_iobinding(io)  # allocate the outputs once
        outs = io.get_outputs()
        for o, v in zip(sess.get_outputs(), outs):
            io.bind_ortvalue_output(o.name, v)
        holder = [sess, io, xs, outs]

        def invoke() -> None:
            sess.run_with_iobinding(io)

        def release() -> None:
            holder.clear()

        return invoke, release


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def set_malloc_thresholds() -> bool:
    """Stop glibc from trimming and mmapping freed memory (steadies torch eager latency)."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    return ok and libc.mallopt(_M_MMAP_THRESHOLD, 1 << 25) == 1


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, threads: int = 1):
        super().__init__(threads)
        import torch

        torch.set_num_threads(threads)
        self.malloc_tuned = set_malloc_thresholds()

    def version(self) -> str:
        import torch

        return torch.__version__

    def prepare(self, w: Workload) -> Prepared:
        import torch

        from hwlat.archs.segments import torch_segment

        if w.file is not None:
            file_content(w, self.name)  # raises: torch runs no model file
        mod = torch_segment(w.rows, outputs=w.outputs or None)
        xs = [torch.from_numpy(x) for x in _inputs(w)]
        holder = [mod, xs]

        def invoke() -> None:
            with torch.inference_mode():
                mod(*xs)

        def release() -> None:
            holder.clear()

        return invoke, release


def get_runner(runtime: str, **options) -> Runner:
    """A runner for ``runtime`` (one of :data:`RUNTIMES`); ``ValueError`` otherwise."""
    classes = {c.name: c for c in (LiteRTRunner, OnnxRuntimeRunner, TorchRunner)}
    if runtime not in classes:
        raise ValueError(f"unknown runtime {runtime!r} (expected one of {', '.join(RUNTIMES)})")
    return classes[runtime](**options)


def release_batch(invokes: dict, releases: dict, collect: bool = True) -> None:
    """Release every prepared workload of a batch left in ``releases``, drop the ``invokes``
    (their bound methods keep the runtimes alive) and, with ``collect``, free the runtimes' memory in
    one collection (a farm worker collects at the start of its next batch instead, so a batch ends
    as soon as its last result is sent)."""
    for release in releases.values():
        release()
    releases.clear()
    invokes.clear()
    if collect:
        gc.collect()


_frozen = 0


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect once, then hide every object alive now from the garbage collector for the block
    (:func:`gc.freeze`). A process that has imported torch, pandas and sklearn holds some 10^5
    objects: a full collection scans them all (over 100 ms on a 2-core VM), once per batch and
    whenever an automatic one falls inside a sample. Frozen, a collection scans only what was
    allocated since. Re-entrant: the outermost block unfreezes."""
    global _frozen
    if _frozen == 0:
        gc.collect()
        gc.freeze()
    _frozen += 1
    try:
        yield
    finally:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()
