"""Export segments and whole networks to ONNX, and run them with ONNX Runtime.

The graph is ``torch.onnx.export`` of :func:`hwlat.archs.segments.torch_segment`: opset 17,
one self-contained file (weights inline, no external data), input ``input`` of fixed shape
``[1, C, H, W]`` (NCHW float32; a piece of a task head has one input per tensor it reads, named so), output ``output`` ``[1, C, H, W]`` or ``[1, classes]``; a
task-head network has one output per name of ``arch.outputs``, named so.

Exporter choice: the TorchScript exporter (``dynamo=False``). A segment is a static, control-flow
free module, which tracing captures exactly; this exporter needs nothing beyond torch and onnx,
writes one in-memory file with fixed shapes, and folds constants itself. The torch.export-based
exporter (torch's default since 2.9) would add ``onnxscript`` as a dependency and an
ExportedProgram → ONNX translation pass that buys nothing for these graphs. The legacy exporter is
deprecated in torch; its deprecation warnings are silenced here.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np

from hwlat.archs.ir import ArchSpec
from hwlat.archs.layers import LayerSpec, layers
from hwlat.archs.segments import Weights, segment_inputs, torch_segment, weights_from_torch

OPSET = 17


def _export(
    module, inputs: Sequence[tuple[str, tuple[int, int, int]]], output_names: Sequence[str] = ("output",)
) -> bytes:
    import torch

    buf = io.BytesIO()
    xs = tuple(torch.zeros((1, *shape), dtype=torch.float32) for _, shape in inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                module.eval(),
                xs,
                buf,
                dynamo=False,
                opset_version=OPSET,
                input_names=[n for n, _ in inputs],
                output_names=list(output_names),
                do_constant_folding=True,
                export_params=True,
            )
    return buf.getvalue()


def onnx_segment(
    rows: Sequence[LayerSpec],
    weights: Weights | None = None,
    seed: int = 0,
    outputs: Sequence[str] | None = None,
) -> bytes:
    """The ONNX model (serialized ``ModelProto``, opset 17) of a segment.

    Parameters
    ----------
    rows : sequence of LayerSpec
        Consecutive layer rows; ``rows[0].in_shape`` ``(C, H, W)`` fixes the input ``[1, C, H, W]``.
    weights : dict, optional
        ``{row_index: (weight, bias)}`` in PyTorch layout, float32; default random weights
        (:func:`~hwlat.archs.segments.random_weights` with ``seed``).
    seed : int
        Seed of the default weights.
    outputs : sequence of str, optional
        Names of the steps whose tensors are the outputs (default: the last step's, named
        ``output``); several give a multi-output model with outputs named so.
    """
    names = ("output",) if not outputs else tuple(outputs)
    return _export(torch_segment(rows, weights, seed, outputs), segment_inputs(rows), names)


def build_onnx(arch: ArchSpec, weights: Weights | None = None, seed: int = 0) -> bytes:
    """The ONNX model of a whole network at ``arch.resolution``: output ``[1, classes]``, or the
    task-head outputs (``arch.outputs``, NCHW, named so).

    Default weights are those of ``fold_bn(build_torch(arch, seed))`` — the same as
    :func:`hwlat.profiler.export.tflite.build_tflite` uses; ``weights`` is indexed like
    ``layers(arch)``.
    """
    rows = layers(arch)
    if weights is None:
        from hwlat.archs.torch_builder import build_torch, fold_bn

        weights = weights_from_torch(fold_bn(build_torch(arch, seed)), rows)
    return onnx_segment(rows, weights, seed, arch.outputs or None)


def run_onnx(model_bytes: bytes, x_nchw: np.ndarray) -> np.ndarray:
    """Run an ONNX model on one NCHW float32 input with ONNX Runtime's CPU provider.

    Single-threaded (intra- and inter-op threads 1, sequential execution), all graph
    optimisations enabled. Returns the first output as a float32 array.
    """
    return run_onnx_outputs(model_bytes, x_nchw)[0]


def run_onnx_outputs(model_bytes: bytes, x_nchw: np.ndarray) -> list[np.ndarray]:
    """:func:`run_onnx`, returning every output in the model's order."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return [np.asarray(y) for y in sess.run(None, {name: np.ascontiguousarray(x_nchw, dtype=np.float32)})]
