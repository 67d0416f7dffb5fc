"""Write ``.tflite`` flatbuffers for segments and whole networks, without TensorFlow.

The graph is assembled with the flatbuffer object API that ships with LiteRT
(``ai_edge_litert.schema_py_generated``) and computes exactly what
:func:`hwlat.archs.segments.torch_segment` computes (see that module for the meaning of a
segment). Layout and conventions:

* input: one float32 tensor ``[1, H, W, C]`` (NHWC) named ``input`` (a piece of a task head: one
  per tensor it reads, named so, see :func:`~hwlat.archs.segments.segment_inputs`); output ``[1, H, W, C]``, or
  ``[1, N]`` after an FC row, named ``output``;
* ``CONV_2D`` filters are OHWI, ``DEPTHWISE_CONV_2D`` filters ``[1, kH, kW, C]`` (depth multiplier
  1), ``FULLY_CONNECTED`` weights ``[out, in]``; every conv/FC has a float32 bias;
* a grouped (not depthwise) conv is, with ``grouped="conv"`` (default), one ``CONV_2D`` whose
  filter has ``C_in / groups`` input channels (op version 6, TFLite's grouped convolution); with
  ``grouped="split"``, ``SPLIT`` of the input into the groups → one ``CONV_2D`` per group →
  ``CONCATENATION``, for runtimes and delegates without grouped convolution
  (``benchmarks/bench_grouped_conv.py`` times the two);
* channel shuffle: ``RESHAPE`` to ``[H·W, g, C/g]`` → ``TRANSPOSE`` ``(0, 2, 1)`` → ``RESHAPE`` back;
* padding: PyTorch pads ``dilation·(k−1)/2`` on every side. TFLite's SAME equals that at stride 1
  (odd kernels); elsewhere an explicit ``PAD`` precedes a VALID convolution;
* activations: RELU / RELU6 are fused into the conv; hard-swish is the ``HARD_SWISH`` builtin,
  sigmoid is ``LOGISTIC``, swish is ``x · LOGISTIC(x)`` and hard-sigmoid (no builtin) is
  ``ADD(x, 3)`` with fused RELU6 followed by ``MUL(·, 1/6)``;
* squeeze-excite: ``MEAN`` over H, W (keep dims) → two 1×1 ``CONV_2D`` with biases → ``MUL`` with
  broadcasting;
* task-head rows: ``AVERAGE_POOL_2D`` (VALID), ``RESIZE_BILINEAR`` (half-pixel centres, as
  PyTorch's ``align_corners=False``), ``MUL`` (broadcast gate), ``ADD``, ``CONCATENATION`` (axis 3,
  or 2 after ``anchors``), and ``anchors`` as one ``RESHAPE`` ``[1, H, W, A·k]`` →
  ``[1, 1, H·W·A, k]``; a task-head network has one output per name of ``arch.outputs``
  (tensors and signature outputs named so).

Optionally (``quantize="int8"``) the graph is post-training quantised: per-output-channel
symmetric int8 weights, int32 biases, per-tensor asymmetric int8 activations whose min/max come
from running the float model on calibration data; ``QUANTIZE`` / ``DEQUANTIZE`` keep the model's
input and output float32. The float model (builtin kernels) is the calibration reference rather
than the torch module because it exposes every tensor that gets quantised, including the
intermediates of composed activations and the outputs of ``PAD``; it matches the torch reference
to float rounding (see the tests). XNNPACK delegates float ``HARD_SWISH`` only, so in int8 models
hard-swish runs on LiteRT's own kernels, as in converter-made int8 MobileNetV3 models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

from hwlat.archs.ir import Act, ArchSpec
from hwlat.archs.layers import LayerSpec, OpKind, layers
from hwlat.archs.segments import (
    Weights,
    check_outputs,
    param_rows,
    random_weights,
    segment_inputs,
    segment_ops,
    weight_shape,
    weights_from_torch,
)

_OP = fb.BuiltinOperator
_ACT = fb.ActivationFunctionType
_FUSABLE = {Act.IDENTITY: _ACT.NONE, Act.RELU: _ACT.RELU, Act.RELU6: _ACT.RELU6}
_F32, _I32, _I8 = fb.TensorType.FLOAT32, fb.TensorType.INT32, fb.TensorType.INT8
_OP_NAMES = {v: k for k, v in vars(_OP).items() if not k.startswith("_")}
_ALIGN = 16  # byte alignment of constant buffers, as the TFLite converter writes them
GROUPED = ("conv", "split")  # how grouped convs are written (module docstring)
QUANTIZE_MODES = ("int8",)  # post-training quantisations (``quantize=``; None: float32)


class _AlignedBuffer(fb.BufferT):
    """A ``BufferT`` whose bytes start on a 16-byte boundary of the finished file."""

    def Pack(self, builder):  # noqa: N802 (flatbuffers naming)
        data = None
        if self.data is not None:
            builder.Prep(_ALIGN, len(self.data))
            data = builder.CreateNumpyVector(self.data)
        fb.BufferStart(builder)
        if data is not None:
            fb.BufferAddData(builder, data)
        return fb.BufferEnd(builder)


class _Graph:
    """A single-subgraph TFLite model under construction; tensors are referred to by index."""

    def __init__(self) -> None:
        self.buffers: list[fb.BufferT] = [_AlignedBuffer()]  # buffer 0: the empty sentinel
        self.tensors: list[fb.TensorT] = []
        self.operators: list[fb.OperatorT] = []
        self.codes: list[fb.OperatorCodeT] = []
        self._code_index: dict[tuple[int, int], int] = {}

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(self.tensors[t].shape)

    def tensor(
        self,
        shape: Sequence[int],
        name: str,
        dtype: int = _F32,
        data: np.ndarray | None = None,
        quant: fb.QuantizationParametersT | None = None,
    ) -> int:
        t = fb.TensorT()
        t.shape, t.name, t.type, t.quantization = [int(s) for s in shape], name, dtype, quant
        if data is not None:
            buf = _AlignedBuffer()
            buf.data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, array: np.ndarray, name: str) -> int:
        """A constant float32 or int32 tensor holding ``array``."""
        array = np.asarray(array)
        dtype = {np.dtype(np.float32): _F32, np.dtype(np.int32): _I32}[array.dtype]
        return self.tensor(array.shape, name, dtype, array)

    def op(
        self, code: int, inputs: Sequence[int], outputs: Sequence[int], options=None, version: int = 1
    ) -> None:
        key = (code, version)
        if key not in self._code_index:
            oc = fb.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), version
            self._code_index[key] = len(self.codes)
            self.codes.append(oc)
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self._code_index[key], list(inputs), list(outputs)
        if options is not None:
            o.builtinOptionsType = getattr(fb.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        self.operators.append(o)

    def finish(self, inps: Sequence[int], outs: Sequence[int], description: str = "hwlat") -> bytes:
        sg = fb.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = (
            self.tensors,
            self.operators,
            list(inps),
            list(outs),
            "main",
        )
        sig = fb.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = "serving_default", 0
        sig.inputs = [_tensor_map(self.tensors[i].name, i) for i in inps]
        sig.outputs = [_tensor_map(self.tensors[o].name.removesuffix("_int8"), o) for o in outs]
        model = fb.ModelT()
        model.version, model.description = 3, description
        model.operatorCodes, model.subgraphs, model.buffers = self.codes, [sg], self.buffers
        model.signatureDefs = [sig]
        # sized for the constants up front: growing a 20 MB model's buffer by doubling copies it ~9 times
        size = sum(len(b.data) + _ALIGN for b in self.buffers if b.data is not None)
        builder = flatbuffers.Builder(size + (1 << 16))
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _tensor_map(name: str, index: int) -> fb.TensorMapT:
    m = fb.TensorMapT()
    m.name, m.tensorIndex = name, index
    return m


def _options(cls, **fields):
    o = cls()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


# --- float emitters: each takes the current tensor index and returns the new one -----------------


class _Emitter:
    """Appends the float32 ops of one segment to a :class:`_Graph`."""

    def __init__(self, g: _Graph, grouped: str = "conv") -> None:
        if grouped not in GROUPED:
            raise ValueError(f"grouped: expected one of {GROUPED}, got {grouped!r}")
        self.g, self.grouped = g, grouped

    # activations and small arithmetic
    def new(self, like: int, name: str, shape: Sequence[int] | None = None) -> int:
        return self.g.tensor(self.g.shape(like) if shape is None else shape, name)

    def scalar(self, value: float, name: str) -> int:
        return self.g.const(np.array([value], np.float32), name)

    def binary(self, code: int, a: int, b: int, name: str, fused: int = _ACT.NONE) -> int:
        out = self.new(a, name)
        opts = _options(fb.AddOptionsT if code == _OP.ADD else fb.MulOptionsT, fusedActivationFunction=fused)
        self.g.op(code, [a, b], [out], opts)
        return out

    def unary(self, code: int, x: int, name: str) -> int:
        out = self.new(x, name)
        self.g.op(code, [x], [out], fb.HardSwishOptionsT() if code == _OP.HARD_SWISH else None)
        return out

    def act(self, x: int, act: Act, name: str) -> int:
        if act is Act.IDENTITY:
            return x
        if act in (Act.RELU, Act.RELU6):
            return self.unary(_OP.RELU if act is Act.RELU else _OP.RELU6, x, f"{name}/{act.value}")
        if act is Act.HSWISH:
            return self.unary(_OP.HARD_SWISH, x, f"{name}/hswish")
        if act is Act.SIGMOID:
            return self.unary(_OP.LOGISTIC, x, f"{name}/sigmoid")
        if act is Act.SWISH:
            s = self.unary(_OP.LOGISTIC, x, f"{name}/swish_sigmoid")
            return self.binary(_OP.MUL, x, s, f"{name}/swish")
        if act is Act.HSIGMOID:
            t = self.binary(_OP.ADD, x, self.scalar(3.0, f"{name}/three"), f"{name}/hsig_relu6", _ACT.RELU6)
            return self.binary(_OP.MUL, t, self.scalar(1.0 / 6.0, f"{name}/sixth"), f"{name}/hsigmoid")
        raise ValueError(f"{name}: activation {act.value!r} cannot be exported to TFLite")

    # layers
    def conv(self, x: int, row: LayerSpec, wb: tuple[np.ndarray, np.ndarray], where: str) -> int:
        w, b = (np.asarray(a, np.float32) for a in wb)
        if w.shape != weight_shape(row) or b.shape != (row.cout,):
            raise ValueError(
                f"{where}: weight {w.shape} / bias {b.shape} do not match the row "
                f"(expected {weight_shape(row)} / ({row.cout},))"
            )
        k, s, d = row.kernel, row.stride, row.dilation
        depthwise = row.op is OpKind.DWCONV
        if depthwise and not row.groups == row.cin == row.cout:
            raise ValueError(
                f"{where}: op 'dwconv' with groups={row.groups} for {row.cin}->{row.cout} "
                f"channels (depthwise needs groups = in = out) cannot be exported to TFLite"
            )
        pad = d * (k - 1) // 2
        _, h, wd, _ = self.g.shape(x)
        oh, ow = ((n + 2 * pad - d * (k - 1) - 1) // s + 1 for n in (h, wd))
        if (row.cout, oh, ow) != tuple(row.out_shape):
            raise ValueError(
                f"{where}: output {row.out_shape} does not follow from input "
                f"{row.in_shape} (k={k}, s={s}, d={d})"
            )
        if s == 1 and 2 * pad == d * (k - 1):
            padding = fb.Padding.SAME
        else:
            padding = fb.Padding.VALID
            if pad:
                x = self.pad(x, pad, f"{row.name}/pad")
        fused = _FUSABLE.get(row.act, _ACT.NONE)
        if depthwise:
            filt = w.transpose(1, 2, 3, 0)  # [C, 1, kH, kW] -> [1, kH, kW, C]
            code, opts = _OP.DEPTHWISE_CONV_2D, _options(fb.DepthwiseConv2DOptionsT, depthMultiplier=1)
        else:
            filt = w.transpose(0, 2, 3, 1)  # OIHW -> OHWI
            code, opts = _OP.CONV_2D, _options(fb.Conv2DOptionsT)
        for f, v in dict(
            padding=padding,
            strideH=s,
            strideW=s,
            dilationHFactor=d,
            dilationWFactor=d,
            fusedActivationFunction=fused,
        ).items():
            setattr(opts, f, v)
        g = row.groups
        if g > 1 and not depthwise and self.grouped == "split":
            out = self.split_conv(x, row, filt, b, opts, (oh, ow))
        else:
            out = self.new(x, row.name, (1, oh, ow, row.cout))
            inputs = [
                x,
                self.g.const(np.ascontiguousarray(filt), f"{row.name}/weight"),
                self.g.const(b, f"{row.name}/bias"),
            ]
            version = 2 if depthwise and d > 1 else 6 if g > 1 and not depthwise else 1
            self.g.op(code, inputs, [out], opts, version=version)
        return out if row.act in _FUSABLE else self.act(out, row.act, row.name)

    def split_conv(
        self, x: int, row: LayerSpec, filt: np.ndarray, b: np.ndarray, opts, out_hw: tuple[int, int]
    ) -> int:
        """A grouped conv as SPLIT → one CONV_2D per group (same options) → CONCATENATION."""
        g, (oh, ow) = row.groups, out_hw
        n, h, w, c = self.g.shape(x)
        parts = [self.new(x, f"{row.name}/split{i}", (n, h, w, c // g)) for i in range(g)]
        axis = self.g.const(np.array(3, np.int32), f"{row.name}/split_axis")
        self.g.op(_OP.SPLIT, [axis, x], parts, _options(fb.SplitOptionsT, numSplits=g))
        og = row.cout // g
        outs = []
        for i, part in enumerate(parts):
            o = self.new(part, f"{row.name}/group{i}", (1, oh, ow, og))
            inputs = [
                part,
                self.g.const(np.ascontiguousarray(filt[i * og : (i + 1) * og]), f"{row.name}/weight{i}"),
                self.g.const(np.ascontiguousarray(b[i * og : (i + 1) * og]), f"{row.name}/bias{i}"),
            ]
            self.g.op(_OP.CONV_2D, inputs, [o], opts)
            outs.append(o)
        out = self.new(x, row.name, (1, oh, ow, row.cout))
        self.g.op(_OP.CONCATENATION, outs, [out], _options(fb.ConcatenationOptionsT, axis=3))
        return out

    def shuffle(self, x: int, groups: int, name: str) -> int:
        """Channel shuffle: RESHAPE [H·W, g, C/g] → TRANSPOSE (0, 2, 1) → RESHAPE [1, H, W, C]."""
        n, h, w, c = self.g.shape(x)
        t = self.reshape(x, (h * w, groups, c // groups), f"{name}/groups")
        out = self.new(t, f"{name}/transpose", (h * w, c // groups, groups))
        perm = self.g.const(np.array([0, 2, 1], np.int32), f"{name}/perm")
        self.g.op(_OP.TRANSPOSE, [t, perm], [out], fb.TransposeOptionsT())
        return self.reshape(out, (n, h, w, c), name)

    def pad(self, x: int, p: int, name: str) -> int:
        n, h, w, c = self.g.shape(x)
        out = self.new(x, name, (n, h + 2 * p, w + 2 * p, c))
        paddings = np.array([[0, 0], [p, p], [p, p], [0, 0]], np.int32)
        self.g.op(_OP.PAD, [x, self.g.const(paddings, f"{name}/paddings")], [out], fb.PadOptionsT())
        return out

    def mean(self, x: int, name: str) -> int:
        n, _, _, c = self.g.shape(x)
        out = self.new(x, name, (n, 1, 1, c))
        axes = self.g.const(np.array([1, 2], np.int32), f"{name}/axes")
        self.g.op(_OP.MEAN, [x, axes], [out], _options(fb.ReducerOptionsT, keepDims=True))
        return out

    def reshape(self, x: int, shape: Sequence[int], name: str) -> int:
        out = self.new(x, name, [1 if s == -1 else s for s in shape])
        new_shape = np.array(shape, np.int32)
        self.g.op(
            _OP.RESHAPE,
            [x, self.g.const(new_shape, f"{name}/shape")],
            [out],
            _options(fb.ReshapeOptionsT, newShape=[int(s) for s in shape]),
        )
        return out

    def fc(self, x: int, row: LayerSpec, wb: tuple[np.ndarray, np.ndarray], where: str) -> int:
        w, b = (np.asarray(a, np.float32) for a in wb)
        if tuple(row.in_shape[1:]) != (1, 1):
            raise ValueError(f"{where}: op 'fc' needs a 1x1 spatial input, got {row.in_shape}")
        if w.shape != (row.cout, row.cin) or b.shape != (row.cout,):
            raise ValueError(f"{where}: weight {w.shape} / bias {b.shape} do not match the row")
        flat = self.reshape(x, (-1, row.cin), f"{row.name}/flatten")
        out = self.new(flat, row.name, (1, row.cout))
        inputs = [flat, self.g.const(w, f"{row.name}/weight"), self.g.const(b, f"{row.name}/bias")]
        self.g.op(_OP.FULLY_CONNECTED, inputs, [out], _options(fb.FullyConnectedOptionsT))
        return out

    def se(self, x: int, red: LayerSpec, exp: LayerSpec, w_red, w_exp, where: str) -> int:
        s = self.mean(x, f"{red.name.rsplit('.', 1)[0]}.pool")
        s = self.conv(s, red, w_red, where)
        s = self.conv(s, exp, w_exp, where)
        return self.binary(_OP.MUL, x, s, f"{exp.name.rsplit('.', 1)[0]}.scale")

    def segment(
        self, inputs: dict[str, int], rows: Sequence[LayerSpec], weights: Weights, outputs: Sequence[str] = ()
    ) -> list[int]:
        """Emit every step of ``rows`` (see :mod:`hwlat.archs.segments`) reading the tensors
        ``inputs`` (by name); return the tensors of ``outputs`` (default: the last step's)."""
        x = next(iter(inputs.values()))
        block, block_in = None, x
        weighted = set(param_rows(rows))
        env = dict(inputs)
        for op in segment_ops(rows):
            i = op.index[0]
            r = rows[i]
            where = f"row {i} ({r.name})"
            if r.block != block:
                block, block_in = r.block, x
            if any(j in weighted and j not in weights for j in op.index):
                raise ValueError(f"{where}: no weights given for op {r.op.value!r}")
            if r.inputs:
                x = self.task(r, [env[n] for n in r.inputs], weights.get(i), where)
            elif op.kind == "conv":
                x = self.conv(x, r, weights[i], where)
            elif op.kind == "act":
                x = self.act(x, r.act, r.name)
            elif op.kind == "shuffle":
                x = self.shuffle(x, r.groups, r.name)
            elif op.kind == "se":
                x = self.se(x, rows[i + 1], rows[i + 2], weights[i + 1], weights[i + 2], where)
            elif op.kind == "pool":
                x = self.mean(x, r.name)
            elif op.kind == "fc":
                x = self.fc(x, r, weights[i], where)
            elif op.kind == "add":
                if self.g.shape(x) != self.g.shape(block_in):
                    raise ValueError(
                        f"{where}: op 'add' between shapes {self.g.shape(x)} and {self.g.shape(block_in)}"
                    )
                x = self.binary(_OP.ADD, x, block_in, r.name)
            else:  # pragma: no cover - segment_ops knows no other kinds
                raise ValueError(f"{where}: op {r.op.value!r} cannot be exported to TFLite")
            env[rows[op.index[-1]].name] = x
        return [env[o] for o in outputs] if outputs else [x]

    def task(self, r: LayerSpec, xs: list[int], wb, where: str) -> int:
        """One task-head row reading the tensors ``xs``."""
        x = xs[0]
        if r.op in (OpKind.CONV, OpKind.DWCONV):
            return self.conv(x, r, wb, where)
        c, oh, ow = r.out_shape
        if r.op is OpKind.AVGPOOL:
            (kh, kw), (sh, sw) = ((v, v) if isinstance(v, int) else v for v in (r.kernel, r.stride))
            out = self.new(x, r.name, (1, oh, ow, c))
            self.g.op(
                _OP.AVERAGE_POOL_2D,
                [x],
                [out],
                _options(
                    fb.Pool2DOptionsT,
                    padding=fb.Padding.VALID,
                    strideH=sh,
                    strideW=sw,
                    filterHeight=kh,
                    filterWidth=kw,
                    fusedActivationFunction=_ACT.NONE,
                ),
            )
            return out
        if r.op is OpKind.RESIZE:
            out = self.new(x, r.name, (1, oh, ow, c))
            size = self.g.const(np.array([oh, ow], np.int32), f"{r.name}/size")
            self.g.op(
                _OP.RESIZE_BILINEAR,
                [x, size],
                [out],
                _options(fb.ResizeBilinearOptionsT, alignCorners=False, halfPixelCenters=True),
                version=3,
            )
            return out
        if r.op in (OpKind.MUL, OpKind.ADD):
            if r.op is OpKind.MUL and self.g.shape(xs[1]) != self.g.shape(x):
                return self.binary(_OP.MUL, x, xs[1], r.name)  # broadcast gate (1, 1, 1, C)
            return self.binary(_OP.MUL if r.op is OpKind.MUL else _OP.ADD, x, xs[1], r.name)
        if r.op is OpKind.CONCAT:
            axis = 3 if r.cout != r.cin else 2
            out = self.new(x, r.name, (1, oh, ow, c))
            self.g.op(_OP.CONCATENATION, xs, [out], _options(fb.ConcatenationOptionsT, axis=axis))
            return out
        if r.op is OpKind.ANCHORS:
            return self.reshape(x, (1, 1, ow, c), r.name)
        raise ValueError(f"{where}: op {r.op.value!r} cannot be exported to TFLite")


def _float_graph(
    rows: Sequence[LayerSpec], weights: Weights, grouped: str = "conv", outputs: Sequence[str] | None = None
) -> tuple[_Graph, list[int], list[int]]:
    """The float32 graph of a segment and its input and output tensor indices."""
    rows = list(rows)
    g = _Graph()
    inps = {name: g.tensor((1, h, w, c), name) for name, (c, h, w) in segment_inputs(rows)}
    em = _Emitter(g, grouped)
    names = check_outputs(rows, outputs) if outputs else ("output",)
    outs = em.segment(inps, rows, weights, tuple(outputs or ()))
    if len(outs) == 1 and outs[0] in inps.values():  # an identity segment: the output needs its own tensor
        outs = [em.reshape(outs[0], g.shape(outs[0]), "identity")]
    for o, name in zip(outs, names):
        g.tensors[o].name = name
    return g, list(inps.values()), outs


# --- int8 post-training quantisation ------------------------------------------------------------

# Op versions of int8 kernels (TFLite's op_version.cc); ops missing here stay at version 1.
_INT8_VERSION = {
    _OP.CONV_2D: 3,
    _OP.DEPTHWISE_CONV_2D: 3,
    _OP.FULLY_CONNECTED: 4,
    _OP.ADD: 2,
    _OP.MUL: 2,
    _OP.LOGISTIC: 2,
    _OP.MEAN: 2,
    _OP.PAD: 2,
    _OP.RELU: 2,
    _OP.RELU6: 2,
    _OP.DEQUANTIZE: 2,
    _OP.TRANSPOSE: 2,
    _OP.SPLIT: 2,
    _OP.CONCATENATION: 2,
}
_WEIGHTED = {_OP.CONV_2D: 0, _OP.FULLY_CONNECTED: 0, _OP.DEPTHWISE_CONV_2D: 3}  # output-channel axis


_SAME_SCALE = (_OP.PAD, _OP.RESHAPE, _OP.TRANSPOSE, _OP.AVERAGE_POOL_2D, _OP.RESIZE_BILINEAR)


def _qparams(scale, zero_point, axis: int = 0) -> fb.QuantizationParametersT:
    q = fb.QuantizationParametersT()
    q.scale = [float(v) for v in np.atleast_1d(scale)]
    q.zeroPoint = [int(v) for v in np.atleast_1d(zero_point)]
    q.quantizedDimension = axis
    return q


def _asymmetric(lo: float, hi: float, min_scale: float = 1e-6) -> tuple[float, int]:
    """Scale and zero point of an int8 range covering ``[lo, hi]`` and exactly 0.

    A range narrower than ``255 · min_scale`` is widened (keeping its zero point) to that scale.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0
    if scale < min_scale:
        lo, scale = (lo * min_scale / scale if scale > 0 else 0.0), min_scale
    return scale, int(np.clip(np.round(-128 - lo / scale), -128, 127))


def _calibrate(
    model: bytes, tensors: Sequence[int], samples: Sequence[np.ndarray]
) -> dict[int, tuple[float, float]]:
    """Min/max of ``tensors`` of a float model over NCHW ``samples`` (builtin kernels, no delegate)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=model,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    details = interp.get_input_details()
    rng = np.random.default_rng(0)  # the other inputs of a multi-input piece: standard normal
    ranges: dict[int, tuple[float, float]] = {}
    for batch in samples:
        batch = np.asarray(batch, np.float32)
        for x in batch.reshape(-1, *batch.shape[-3:]):
            interp.set_tensor(details[0]["index"], np.ascontiguousarray(x.transpose(1, 2, 0)[None]))
            for d in details[1:]:
                interp.set_tensor(d["index"], rng.standard_normal(d["shape"], dtype=np.float32))
            interp.invoke()
            for t in tensors:
                v = interp.get_tensor(t)
                lo, hi = ranges.get(t, (np.inf, -np.inf))
                ranges[t] = (min(lo, float(v.min())), max(hi, float(v.max())))
    return ranges


# An output scale at least 1/128 of the op's input scale (times the weight scale for convs, the
# other factor's for MUL) keeps every requantisation multiplier below 128, inside what LiteRT's
# and XNNPACK's int8 kernels accept even for tensors whose calibrated range is (near) zero.
_MAX_RESCALE = 128.0


def _quantize_graph(
    g: _Graph, inps: list[int], outs: list[int], ranges: dict[int, tuple[float, float]]
) -> list[int]:
    """Turn the float graph into an int8 one in place; return the new (float32) output tensors.

    Activations get asymmetric per-tensor int8 parameters from ``ranges`` (PAD, RESHAPE, TRANSPOSE,
    AVERAGE_POOL_2D, RESIZE_BILINEAR and SPLIT keep their input's, LOGISTIC outputs are fixed to 1/256 and -128 as TFLite requires,
    a CONCATENATION and its inputs share the union of their ranges); weights are
    symmetric per-output-channel int8, biases int32 at ``input_scale · weight_scale``; the float
    input and output are bridged by ``QUANTIZE`` and ``DEQUANTIZE``.
    """

    def data(t: int) -> np.ndarray:
        buf = g.buffers[g.tensors[t].buffer].data
        return np.frombuffer(buf.tobytes(), np.float32).reshape(g.shape(t))

    def replace(t: int, array: np.ndarray, dtype: int, q: fb.QuantizationParametersT) -> None:
        g.buffers[g.tensors[t].buffer].data = np.frombuffer(array.tobytes(), np.uint8)
        g.tensors[t].type, g.tensors[t].quantization = dtype, q

    act = {inp: _asymmetric(*ranges[inp]) for inp in inps}  # tensor -> (scale, zero point)
    codes = [c.builtinCode for c in g.codes]
    producer: dict[int, fb.OperatorT] = {}
    readers = Counter(t for op in g.operators for t in op.inputs)
    for op in g.operators:
        code, x, o = codes[op.opcodeIndex], op.inputs[0], op.outputs[0]
        producer.update((t, op) for t in op.outputs)
        if code == _OP.SPLIT:  # inputs: axis, tensor
            for t in op.outputs:
                act[t] = act[op.inputs[1]]
            continue
        if code == _OP.CONCATENATION:  # int8 concat needs one scale for its inputs and output
            lo = min(min(ranges[t][0], ranges[o][0]) for t in op.inputs)
            hi = max(max(ranges[t][1], ranges[o][1]) for t in op.inputs)
            shared = _asymmetric(lo, hi, min_scale=max(act[t][0] for t in op.inputs))
            for t in (*op.inputs, o):
                act[t] = shared
                # back through the ops that keep their input's scale (the anchors RESHAPE), as far
                # as the tensors feed nothing else
                while (
                    t in producer
                    and codes[producer[t].opcodeIndex] in _SAME_SCALE
                    and readers[producer[t].inputs[0]] == 1
                ):
                    t = producer[t].inputs[0]
                    act[t] = shared
            continue
        in_scale = act[x][0]
        if code in _SAME_SCALE:
            act[o] = act[x]
            continue
        if code == _OP.LOGISTIC:
            act[o] = (1.0 / 256.0, -128)
            continue
        scale_in = in_scale
        if code in _WEIGHTED:
            w_t, b_t = op.inputs[1], op.inputs[2]
            w, axis = data(w_t), _WEIGHTED[code]
            reduce = tuple(a for a in range(w.ndim) if a != axis)
            peak = np.abs(w).max(axis=reduce)
            w_scale = np.where(peak > 0, peak, 1.0) / 127.0
            shape = [-1 if a == axis else 1 for a in range(w.ndim)]
            qw = np.clip(np.round(w / w_scale.reshape(shape)), -127, 127).astype(np.int8)
            replace(w_t, qw, _I8, _qparams(w_scale, np.zeros(len(w_scale), np.int64), axis))
            b_scale = in_scale * w_scale
            qb = np.clip(np.round(data(b_t) / b_scale), -(2**31), 2**31 - 1).astype(np.int32)
            replace(b_t, qb, _I32, _qparams(b_scale, np.zeros(len(b_scale), np.int64)))
            scale_in = float(b_scale.max())
        elif code in (_OP.ADD, _OP.MUL):
            scales = []
            for t in op.inputs:
                if g.tensors[t].buffer and g.tensors[t].type == _F32:  # a scalar constant
                    v = data(t)
                    scale = max(float(np.abs(v).max()), 1e-8) / 127.0
                    replace(t, np.round(v / scale).astype(np.int8), _I8, _qparams(scale, 0))
                    scales.append(scale)
                else:
                    scales.append(act[t][0])
            scale_in = scales[0] * scales[1] if code == _OP.MUL else max(scales)
        act[o] = _asymmetric(*ranges[o], min_scale=max(scale_in / _MAX_RESCALE, 1e-6))
    for t, (scale, zp) in act.items():
        g.tensors[t].type, g.tensors[t].quantization = _I8, _qparams(scale, zp)
    # float32 inputs -> QUANTIZE -> int8 graph -> DEQUANTIZE -> float32 outputs
    for inp in inps:
        q_in = g.tensor(g.shape(inp), f"{g.tensors[inp].name}_int8", _I8, quant=g.tensors[inp].quantization)
        g.tensors[inp].type, g.tensors[inp].quantization = _F32, None
        for op in g.operators:
            op.inputs = [q_in if t == inp else t for t in op.inputs]
        g.op(_OP.QUANTIZE, [inp], [q_in], fb.QuantizeOptionsT())
        g.operators.insert(0, g.operators.pop())
    f_outs = []
    for out in outs:
        name = g.tensors[out].name
        g.tensors[out].name = f"{name}_int8"
        f_outs.append(g.tensor(g.shape(out), name))
        g.op(_OP.DEQUANTIZE, [out], [f_outs[-1]], fb.DequantizeOptionsT())
    for c in g.codes:
        c.version = max(c.version, _INT8_VERSION.get(c.builtinCode, 1))
        if c.builtinCode == _OP.MUL and any(
            _mul_rescale(g, op) >= 1.0 for op in g.operators if g.codes[op.opcodeIndex] is c
        ):
            c.version = 3  # int8 MUL whose input-to-output rescale is >= 1
    return f_outs


def _mul_rescale(g: _Graph, op: fb.OperatorT) -> float:
    a, b, o = (g.tensors[t].quantization.scale[0] for t in (*op.inputs, op.outputs[0]))
    return a * b / o


# --- public API --------------------------------------------------------------------------------


def tflite_segment(
    rows: Sequence[LayerSpec],
    weights: Weights | None = None,
    seed: int = 0,
    quantize: str | None = None,
    calibration: Sequence[np.ndarray] | None = None,
    grouped: str = "conv",
    outputs: Sequence[str] | None = None,
) -> bytes:
    """The ``.tflite`` flatbuffer of a segment.

    Parameters
    ----------
    rows : sequence of LayerSpec
        Consecutive layer rows; ``rows[0].in_shape`` ``(C, H, W)`` fixes the input ``[1, H, W, C]``.
    weights : dict, optional
        ``{row_index: (weight, bias)}`` in PyTorch layout (OIHW / ``[out, in]``), float32; default
        :func:`~hwlat.archs.segments.random_weights` ``(rows, seed)``.
    seed : int
        Seed of the default random weights and of random calibration data.
    quantize : {None, "int8"}
        ``"int8"``: post-training full-integer quantisation with float32 input and output.
    calibration : sequence of ndarray, optional
        NCHW float32 batches for the activation ranges (int8 only); default 8 standard-normal
        images drawn with ``seed``.
    grouped : {"conv", "split"}
        How grouped (not depthwise) convs are written: one grouped ``CONV_2D``, or ``SPLIT`` →
        ``CONV_2D`` per group → ``CONCATENATION``.
    outputs : sequence of str, optional
        Names of the steps whose tensors are the outputs (default: the last step's, named
        ``output``); several give a multi-output model with outputs named so.

    Returns
    -------
    bytes
        A TFLite model (file identifier ``TFL3``), one subgraph, signature ``serving_default``.

    Raises
    ------
    ValueError
        Naming the row and op that cannot be exported.
    """
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize: expected None or 'int8', got {quantize!r}")
    weights = random_weights(rows, seed) if weights is None else weights
    g, inp, outs = _float_graph(rows, weights, grouped, outputs)
    model = g.finish(inp, outs)
    if quantize is None:
        return model
    if calibration is None:
        c, h, w = segment_inputs(rows)[0][1]
        calibration = [np.random.default_rng(seed).standard_normal((8, c, h, w), dtype=np.float32)]
    activations = [t for t, ten in enumerate(g.tensors) if ten.buffer == 0 and ten.type == _F32]
    outs = _quantize_graph(g, inp, outs, _calibrate(model, activations, calibration))
    return g.finish(inp, outs, "hwlat int8")


def build_tflite(arch: ArchSpec, weights: Weights | None = None, seed: int = 0, **kw) -> bytes:
    """The ``.tflite`` flatbuffer of a whole network at ``arch.resolution``.

    Default weights are those of ``fold_bn(build_torch(arch, seed))`` so that the model computes
    what the torch builder computes; ``weights`` is indexed like ``layers(arch)``. Extra keyword
    arguments (``quantize``, ``calibration``, ``grouped``) go to :func:`tflite_segment`. Output
    ``[1, classes]``, or the task-head outputs (``arch.outputs``, NHWC, named so).
    """
    rows = layers(arch)
    if weights is None:
        from hwlat.archs.torch_builder import build_torch, fold_bn

        weights = weights_from_torch(fold_bn(build_torch(arch, seed)), rows)
    return tflite_segment(rows, weights, seed, outputs=arch.outputs or None, **kw)


def op_names(model_bytes: bytes) -> list[str]:
    """Builtin names of the model's operators in execution order (``CUSTOM`` for custom ops)."""
    model = fb.ModelT.InitFromPackedBuf(model_bytes, 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [_OP_NAMES.get(codes[o.opcodeIndex], "UNKNOWN") for o in model.subgraphs[0].operators]


def run_tflite(
    model_bytes: bytes, x_nchw: np.ndarray, use_xnnpack: bool = True, num_threads: int = 1
) -> np.ndarray:
    """Run a model from this module with LiteRT on an NCHW float32 batch; its first output
    (:func:`run_tflite_outputs` gives them all; parameters and layout there)."""
    return run_tflite_outputs(model_bytes, x_nchw, use_xnnpack, num_threads)[0]


def run_tflite_outputs(
    model_bytes: bytes, x_nchw: np.ndarray, use_xnnpack: bool = True, num_threads: int = 1
) -> list[np.ndarray]:
    """Run a model from this module with LiteRT on an NCHW float32 batch.

    Parameters
    ----------
    model_bytes : bytes
        A flatbuffer from :func:`tflite_segment` / :func:`build_tflite`.
    x_nchw : ndarray
        ``[N, C, H, W]`` float32 (the model's batch of 1 is resized to ``N`` when needed).
    use_xnnpack : bool
        Apply LiteRT's default XNNPACK delegate; ``False`` runs the builtin kernels only.
    num_threads : int
        Interpreter threads.

    Returns
    -------
    list of ndarray
        Every output in the model's order: ``[N, C, H, W]`` for spatial outputs (NHWC transposed
        back), ``[N, classes]`` after an FC row; float32.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(
        model_content=model_bytes, num_threads=num_threads, experimental_op_resolver_type=resolver
    )
    x = np.ascontiguousarray(np.asarray(x_nchw, np.float32).transpose(0, 2, 3, 1))
    inp = interp.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    ys = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    return [np.array(y.transpose(0, 3, 1, 2) if y.ndim == 4 else y) for y in ys]
