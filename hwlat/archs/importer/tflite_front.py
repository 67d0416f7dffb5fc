"""TFLite frontend: a ``.tflite`` flatbuffer (float or int8) as a normalised :class:`Graph`.

Shapes are NHWC in the file and channels-first (``(C, H, W)``) in the graph; ``QUANTIZE`` and
``DEQUANTIZE`` are pass-throughs (int8 constants are read through their scale and zero point).
"""

from __future__ import annotations

import numpy as np

from hwlat.archs.importer.graph import COMPLETE, Graph, SourceNode, Sym
from hwlat.archs.importer.lacks import lacks

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8, 7: np.int16}


def _internal(shape) -> tuple[int, ...] | None:
    s = [int(v) for v in shape]
    if len(s) == 4 and s[0] == 1:
        return (s[3], s[1], s[2])
    if len(s) == 2 and s[0] == 1:
        return (s[1],)
    return None


def read_tflite(data: bytes, label: str = "model.tflite") -> Graph:
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(bytes(data), 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    codes = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "CUSTOM") for c in model.operatorCodes]
    sg = model.subgraphs[0]
    g = Graph("tflite", label)
    tens = sg.tensors

    def tname(i: int) -> str:
        n = tens[i].name
        return n.decode() if isinstance(n, bytes) else str(n)

    def const(i: int):
        t = tens[i]
        if t.buffer is None or t.buffer <= 0:
            return None
        buf = model.buffers[t.buffer].data
        if buf is None or len(buf) == 0:
            return None
        arr = np.frombuffer(np.asarray(buf, np.uint8).tobytes(), _DTYPES.get(t.type, np.uint8))
        arr = arr.reshape([int(s) for s in t.shape]) if t.shape is not None and len(t.shape) else arr
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) and t.type in (9, 3, 7):
            scale = np.asarray(q.scale, np.float64)
            zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float64)
            if scale.size > 1:
                shape = [1] * arr.ndim
                shape[q.quantizedDimension] = -1
                scale, zp = scale.reshape(shape), zp.reshape(shape)
            return (arr.astype(np.float64) - zp) * scale
        return arr

    vid: dict[int, int] = {}
    for k, i in enumerate(sg.inputs):
        v = g.value(_internal(tens[i].shape))
        vid[i] = v
        if k == 0:
            g.input = v
            s = [int(x) for x in tens[i].shape]
            if len(s) == 4 and s[0] == 1:
                g.in_shape = (s[3], s[1], s[2])

    def new(i: int, shape=None) -> int:
        v = g.value(_internal(tens[i].shape) if shape is None else shape)
        vid[i] = v
        return v

    for n, o in enumerate(sg.operators):
        op = codes[o.opcodeIndex]
        ins = [int(i) for i in (o.inputs if o.inputs is not None else [])]
        outs = [int(i) for i in (o.outputs if o.outputs is not None else [])]
        shapes = [tuple(int(s) for s in tens[i].shape) for i in ins if i >= 0]
        g.nodes.append(SourceNode(tname(outs[0]) if outs else f"op{n}", op, tuple(shapes)))
        data = [i for i in ins if i >= 0 and const(i) is None]
        if any(i not in vid for i in data):
            g.unknown(n, [], [new(i) for i in outs], "an input is not computed by the graph")
            continue
        x = vid[data[0]] if data else None
        if not _op(g, n, op, o.builtinOptions, ins, outs, data, const, vid, new, x, tens):
            g.unknown(n, [vid[i] for i in data], [new(i) for i in outs], lacks(op, shapes))
    for i in sg.outputs:
        g.outputs.append((tname(i), vid.get(int(i), -1)))
    return g


_FUSED = {0: None, 1: "relu", 3: "relu6"}


def _op(g: Graph, n, op, opts, ins, outs, data, const, vid, new, x, tens) -> bool:
    if op in ("QUANTIZE", "DEQUANTIZE"):
        vid[outs[0]] = x
        return True
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = const(ins[1])
        if w is None or w.ndim != 4 or g.is_partial(x) and g.sym[x].tag != "pad":
            return False
        fa = _FUSED.get(opts.fusedActivationFunction, "bad")
        if fa == "bad":
            return False
        src = [n]
        pad = (0, 0, 0, 0)
        s = g.sym.get(x)
        if s is not None and s.tag == "pad":
            pad, src, x = s.data, s.src + src, s.base
        else:
            x = g.real(x)
        same = opts.padding == 0  # Padding.SAME
        if same and any(pad):
            return False
        c_in = g.shapes[x][0]
        if op == "CONV_2D":
            cout, k, cin_g = w.shape[0], (w.shape[1], w.shape[2]), w.shape[3]
            groups = c_in // cin_g
        else:
            if opts.depthMultiplier != 1:
                return False
            cout, k, groups = w.shape[3], (w.shape[1], w.shape[2]), c_in
        st = (int(opts.strideH), int(opts.strideW))
        d = (int(opts.dilationHFactor), int(opts.dilationWFactor))
        out = g.value(_internal(tens[outs[0]].shape))
        g.emit(
            "conv",
            [x],
            out,
            src,
            k=(int(k[0]), int(k[1])),
            stride=st,
            dilation=d,
            groups=int(groups),
            pad=None if same else tuple(int(p) for p in pad),
            auto="SAME_UPPER" if same else "NOTSET",
            cin=int(c_in),
            cout=int(cout),
            bias=len(ins) > 2 and ins[2] >= 0,
            bn=False,
            act=None,
        )
        if fa is None:
            vid[outs[0]] = out
            return True
        g.sym[new(outs[0])] = Sym(fa, out, [n])
        return True
    if op == "PAD":
        p = const(ins[1])
        if p is None or p.shape != (4, 2) or np.any(p[0]) or np.any(p[3]) or g.is_partial(x):
            return False
        p = p.astype(int)
        g.sym[new(outs[0])] = Sym("pad", g.real(x), [n], (p[1][0], p[2][0], p[1][1], p[2][1]))
        return True
    one = {"RELU": "relu", "RELU6": "relu6", "HARD_SWISH": "hswish", "LOGISTIC": "sigmoid"}
    if op in one:
        return g.act(one[op], x, new(outs[0]), n)
    if op in ("ADD", "MUL"):
        fa = _FUSED.get(getattr(opts, "fusedActivationFunction", 0), "bad")
        if len(data) == 1:
            cv = const(ins[1] if ins[0] == data[0] else ins[0])
            cv = np.asarray(cv, np.float64)
            if cv.size == 0 or not np.allclose(cv, cv.reshape(-1)[0], rtol=0, atol=1e-6):
                return False
            cv = float(cv.reshape(-1)[0])
            out = new(outs[0])
            if op == "ADD" and fa in (None, "relu6"):
                return g.add_const(x, cv, out, n, relu6=fa == "relu6")
            if op == "MUL" and fa is None:
                return g.scale_const(x, cv, out, n)
            return False
        if len(data) != 2 or fa == "bad":
            return False
        y = vid[data[1]]
        out = new(outs[0])
        if op == "MUL" and fa is None and g.mul_pattern(x, y, out, n):
            return True
        xr, yr = g.real(x), g.real(y)
        if xr is None or yr is None:
            return False
        if fa is None:
            g.emit("add" if op == "ADD" else "mul", [xr, yr], out, [n])
        else:
            mid = g.value(g.shapes.get(out))
            g.emit("add" if op == "ADD" else "mul", [xr, yr], mid, [n])
            g.sym[out] = Sym(fa, mid, [n])
        return True
    if op == "MEAN":
        axes = const(ins[1])
        xr = g.real(x)
        shp = g.shapes.get(xr) if xr is not None else None
        if axes is None or shp is None or len(shp) != 3 or sorted(int(v) for v in axes.reshape(-1)) != [1, 2]:
            return False
        if opts.keepDims:
            g.emit("gap", [xr], new(outs[0], (shp[0], 1, 1)), [n])
        else:
            mid = g.value((shp[0], 1, 1))
            g.emit("gap", [xr], mid, [n])
            g.emit("flatten", [mid], new(outs[0], (shp[0],)), [n])
        return True
    if op == "AVERAGE_POOL_2D":
        xr = g.real(x)
        if xr is None or opts.padding != 1 or opts.fusedActivationFunction:
            return False
        g.emit(
            "avgpool",
            [xr],
            new(outs[0]),
            [n],
            kernel=(int(opts.filterHeight), int(opts.filterWidth)),
            stride=(int(opts.strideH), int(opts.strideW)),
        )
        return True
    if op == "RESIZE_BILINEAR":
        xr = g.real(x)
        if xr is None or opts.alignCorners or not opts.halfPixelCenters:
            return False
        g.emit("resize", [xr], new(outs[0]), [n])
        return True
    if op == "CONCATENATION":
        vs = [g.real(vid[i]) for i in data]
        if len(data) != len(ins) or any(v is None for v in vs) or opts.fusedActivationFunction:
            return False
        rank = len(tens[ins[0]].shape)
        axis = int(opts.axis) % rank
        ax = {3: "c", 2: "w"}.get(axis) if rank == 4 else None
        if ax is None:
            return False
        shp = g.shapes.get(vs[0], ())
        if ax == "w" and len(shp) != 3:
            return False
        g.emit("concat", vs, new(outs[0]), [n], axis=ax)
        return True
    if op == "FULLY_CONNECTED":
        w = const(ins[1])
        xr = g.real(x)
        if w is None or w.ndim != 2 or xr is None or len(g.shapes.get(xr, ())) != 1:
            return False
        if _FUSED.get(opts.fusedActivationFunction, "bad") is not None:
            return False
        g.emit(
            "fc",
            [xr],
            new(outs[0]),
            [n],
            cin=int(w.shape[1]),
            cout=int(w.shape[0]),
            bias=len(ins) > 2 and ins[2] >= 0,
        )
        return True
    if op in ("RESHAPE", "TRANSPOSE", "SQUEEZE"):
        return _layout(g, n, op, ins, outs, const, vid, new, x, tens)
    return False


def _layout(g: Graph, n, op, ins, outs, const, vid, new, x, tens) -> bool:
    target = [int(v) for v in tens[outs[0]].shape]
    s = g.sym.get(x)
    if s is not None and s.tag in COMPLETE:
        x, s = g.real(x), None
    if op == "TRANSPOSE":
        perm = const(ins[1])
        if s is not None and s.tag == "shuf1" and perm is not None and list(perm.astype(int)) == [0, 2, 1]:
            g.sym[new(outs[0], ())] = Sym("shuf2", s.base, s.src + [n], s.data)
            return True
        return False
    if s is not None:
        if s.tag == "shuf2":
            c, h, w = g.shapes[s.base]
            if target == [1, h, w, c]:
                g.emit("shuffle", [s.base], new(outs[0], (c, h, w)), s.src + [n], groups=s.data)
                return True
        return False
    shp = g.shapes.get(x)
    if shp is None:
        return False
    src = [int(v) for v in tens[ins[0]].shape]
    if target == src:
        vid[outs[0]] = x
        return True
    if len(shp) == 3:
        c, h, w = shp
        if (h, w) == (1, 1) and len(target) == 2 and target[-1] == c:
            g.emit("flatten", [x], new(outs[0], (c,)), [n])
            return True
        if len(target) == 3 and target[0] == h * w and target[1] * target[2] == c:
            g.sym[new(outs[0], ())] = Sym("shuf1", x, [n], target[1])
            return True
        if (
            len(target) == 4
            and target[:2] == [1, 1]
            and c % target[3] == 0
            and target[2] * target[3] == c * h * w
        ):
            k = target[3]
            g.emit("anchors", [x], new(outs[0], (k, 1, target[2])), [n], code=k)
            return True
    return False
