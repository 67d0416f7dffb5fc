"""ONNX frontend: a ``ModelProto`` (a file, bytes or the proto) as a normalised :class:`Graph`."""

from __future__ import annotations

import numpy as np

from hwlat.archs.importer.graph import COMPLETE, Graph, SourceNode, Sym
from hwlat.archs.importer.lacks import lacks

_CONST_OPS = {
    "Identity",
    "Shape",
    "Gather",
    "Slice",
    "Concat",
    "Unsqueeze",
    "Squeeze",
    "Cast",
    "Reshape",
    "Mul",
    "Div",
    "Add",
    "Sub",
    "Floor",
    "Ceil",
    "ConstantOfShape",
    "Range",
    "Neg",
    "Sqrt",
    "Transpose",
}


def load_model(path_or_model):
    import onnx

    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    if isinstance(path_or_model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(path_or_model))
    return onnx.load(str(path_or_model))


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _eval_const(op: str, xs: list, a: dict):
    if op == "Identity":
        return xs[0]
    if op == "Gather":
        return np.take(xs[0], xs[1].astype(np.int64), axis=a.get("axis", 0))
    if op == "Slice":
        data, starts, ends = xs[0], xs[1], xs[2]
        axes = xs[3] if len(xs) > 3 and xs[3] is not None else range(len(starts))
        steps = xs[4] if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
        sl = [slice(None)] * data.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(s), int(e), int(st))
        return data[tuple(sl)]
    if op == "Concat":
        return np.concatenate([np.atleast_1d(x) for x in xs], axis=a.get("axis", 0))
    if op == "Unsqueeze":
        axes = a.get("axes", xs[1] if len(xs) > 1 else None)
        out = xs[0]
        for ax in sorted(int(v) for v in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        axes = a.get("axes", xs[1] if len(xs) > 1 else None)
        return np.squeeze(xs[0], axis=None if axes is None else tuple(int(v) for v in axes))
    if op == "Cast":
        import onnx

        return xs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))
    if op == "Reshape":
        shape = [int(s) for s in xs[1]]
        shape = [xs[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return xs[0].reshape(shape)
    if op == "Transpose":
        return np.transpose(xs[0], a.get("perm"))
    binary = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract}
    if op in binary:
        return binary[op](xs[0], xs[1])
    if op == "Div":
        if np.issubdtype(xs[0].dtype, np.integer):
            return xs[0] // xs[1]
        return xs[0] / xs[1]
    if op in ("Floor", "Ceil", "Neg", "Sqrt"):
        return {"Floor": np.floor, "Ceil": np.ceil, "Neg": np.negative, "Sqrt": np.sqrt}[op](xs[0])
    if op == "ConstantOfShape":
        import onnx

        v = onnx.numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return np.full([int(s) for s in xs[0]], v.reshape(-1)[0], dtype=v.dtype)
    if op == "Range":
        return np.arange(xs[0], xs[1], xs[2])
    raise KeyError(op)


def _scalar(x) -> float | None:
    if x is None:
        return None
    x = np.asarray(x, np.float64)
    if x.size == 0 or not np.all(x == x.reshape(-1)[0]):
        return None
    return float(x.reshape(-1)[0])


def _internal(shape) -> tuple[int, ...] | None:
    """A file shape (with batch 1) as an internal one (no batch)."""
    if shape is None or len(shape) < 2 or shape[0] not in (1, -1) or any(s <= 0 for s in shape[1:]):
        return None
    return tuple(int(s) for s in shape[1:])


def read_onnx(path_or_model, label: str = "model.onnx") -> Graph:
    """The normalised graph of an ONNX model (see :mod:`hwlat.archs.importer.graph`)."""
    from onnx import numpy_helper, shape_inference

    model = load_model(path_or_model)
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes are inferred below where possible
        inferred = model
    g = Graph("onnx", label)
    gr = inferred.graph
    fshape: dict[str, tuple[int, ...]] = {}
    for vi in list(gr.input) + list(gr.value_info) + list(gr.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            fshape[vi.name] = tuple(dims)
    const: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in gr.initializer}
    vid: dict[str, int] = {}
    real_inputs = [i for i in gr.input if i.name not in const]
    for i, inp in enumerate(real_inputs):
        shp = fshape.get(inp.name)
        v = g.value(_internal(shp) if shp else None)
        vid[inp.name] = v
        if i == 0:
            g.input = v
            if shp is not None and len(shp) == 4 and shp[0] == 1 and min(shp) > 0:
                g.in_shape = tuple(int(s) for s in shp[1:])

    def shape_of(name: str) -> tuple[int, ...]:
        if name in const:
            return tuple(const[name].shape)
        return fshape.get(name, ())

    for n_idx, node in enumerate(gr.node):
        g.nodes.append(_source(node, n_idx, [shape_of(x) for x in node.input if x]))
        a = _attrs(node)
        op = node.op_type
        ins = list(node.input)
        outs = list(node.output)
        # constants
        if op == "Constant":
            if "value" in a:
                const[outs[0]] = numpy_helper.to_array(a["value"])
            elif "value_float" in a:
                const[outs[0]] = np.array(a["value_float"], np.float32)
            elif "value_ints" in a:
                const[outs[0]] = np.array(a["value_ints"], np.int64)
            elif "value_int" in a:
                const[outs[0]] = np.array(a["value_int"], np.int64)
            else:
                g.unknown(n_idx, [], [g.value(None)], "a constant of an unsupported kind")
            continue
        known = fshape.get(ins[0], ()) if op == "Shape" else ()
        if op == "Shape" and not (known and all(d > 0 for d in known)) and ins[0] in vid:
            inner = g.shapes.get(vid[ins[0]])
            known = (1, *inner) if inner is not None and vid[ins[0]] not in g.sym else ()
        if op == "Shape" and known and all(d > 0 for d in known):
            s = np.array(known, np.int64)
            start, end = a.get("start", 0), a.get("end", None)
            const[outs[0]] = s[start:end]
            continue
        if op in _CONST_OPS and ins and all((x == "" or x in const) for x in ins):
            try:
                const[outs[0]] = _eval_const(op, [const.get(x) if x else None for x in ins], a)
                continue
            except Exception:  # noqa: BLE001 - falls through to the tensor rules
                pass
        data = [x for x in ins if x and x not in const]
        if any(x not in vid for x in data):
            missing = next(x for x in data if x not in vid)
            g.unknown(n_idx, [], [], f"its input {missing!r} is not computed by the graph")
            for o in outs:
                vid[o] = g.ops[-1].out
            continue

        def new(name: str, shape=None) -> int:
            v = g.value(_internal(fshape.get(name)) if shape is None else shape)
            vid[name] = v
            return v

        x = vid[data[0]] if data else None
        handled = _node(g, n_idx, node, op, a, ins, outs, data, const, vid, new, fshape, x)
        if not handled:
            outs_v = [new(o) for o in outs]
            why = lacks(op, [shape_of(i) for i in ins if i])
            g.unknown(n_idx, [vid[d] for d in data], outs_v, why)
    for o in gr.output:
        if o.name in vid:
            g.outputs.append((o.name, vid[o.name]))
        else:
            g.outputs.append((o.name, -1))
    if g.in_shape is None and g.input is not None:
        g.in_shape = g.shapes.get(g.input)
    return g


def _source(node, idx: int, shapes):
    return SourceNode(
        node.name or (node.output[0] if node.output else f"node{idx}"), node.op_type, tuple(shapes)
    )


def _node(g: Graph, n: int, node, op, a, ins, outs, data, const, vid, new, fshape, x) -> bool:
    """Apply the rule for one node; False when no rule applies."""

    def c(i):
        return const.get(ins[i]) if len(ins) > i and ins[i] else None

    if op in ("Identity", "Dropout"):
        vid[outs[0]] = x
        return True
    if op == "Conv":
        w = c(1)
        if w is None or w.ndim != 4 or (g.is_partial(x) and g.sym[x].tag != "pad"):
            return False
        pads = list(a.get("pads", [0, 0, 0, 0]))
        src = [n]
        s = g.sym.get(x)
        if s is not None and s.tag == "pad":
            pt, pl, pb, pr = s.data
            pads = [pads[0] + pt, pads[1] + pl, pads[2] + pb, pads[3] + pr]
            src = s.src + src
            x = s.base
        else:
            x = g.real(x)
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        k = list(a.get("kernel_shape", w.shape[2:]))
        st = list(a.get("strides", [1, 1]))
        d = list(a.get("dilations", [1, 1]))
        if auto not in ("NOTSET", "VALID") and any(pads):
            return False
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = None  # worked out by the recognizer from the shapes
        grp = int(a.get("group", 1))
        out = new(outs[0])
        if out not in g.shapes and x in g.shapes and pads is not None:
            _, h, wd = g.shapes[x]
            oh = (h + pads[0] + pads[2] - d[0] * (k[0] - 1) - 1) // st[0] + 1
            ow = (wd + pads[1] + pads[3] - d[1] * (k[1] - 1) - 1) // st[1] + 1
            g.shapes[out] = (int(w.shape[0]), oh, ow)
        g.emit(
            "conv",
            [x],
            out,
            src,
            k=(int(k[0]), int(k[1])),
            stride=(int(st[0]), int(st[1])),
            dilation=(int(d[0]), int(d[1])),
            groups=grp,
            pad=None if pads is None else (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])),
            auto=auto,
            cin=int(w.shape[1]) * grp,
            cout=int(w.shape[0]),
            bias=len(ins) > 2 and bool(ins[2]),
            bn=False,
            act=None,
        )
        return True
    if op == "BatchNormalization":
        prod = next((o for o in reversed(g.ops) if o.out == x), None)
        if prod is None or prod.kind != "conv" or prod.attrs["bn"] or prod.attrs["act"] is not None:
            return False
        if sum(1 for o in g.ops if x in o.ins) or x in g.sym:
            return False
        prod.attrs["bn"] = True
        prod.src.append(n)
        vid[outs[0]] = x
        return True
    if op == "Pad":
        pads = c(1) if len(ins) > 1 else np.array(a.get("pads", []))
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        value = _scalar(c(2)) if len(ins) > 2 and ins[2] else a.get("value", 0.0)
        if pads is None or mode != "constant" or (value or 0.0) != 0.0 or len(pads) != 8:
            return False
        p = [int(v) for v in pads]
        if p[0] or p[1] or p[4] or p[5] or g.is_partial(x):
            return False
        out = new(outs[0])
        g.sym[out] = Sym("pad", g.real(x), [n], (p[2], p[3], p[6], p[7]))
        return True
    one = {"Relu": "relu", "HardSwish": "hswish", "Sigmoid": "sigmoid"}
    if op in one:
        return g.act(one[op], x, new(outs[0]), n)
    if op == "HardSigmoid":
        if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-4 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
            return False
        return g.act("hsigmoid", x, new(outs[0]), n)
    if op == "Clip":
        lo = _scalar(c(1)) if len(ins) > 1 and ins[1] else a.get("min")
        hi = _scalar(c(2)) if len(ins) > 2 and ins[2] else a.get("max")
        if lo == 0.0 and hi == 6.0:
            return g.act("relu6", x, new(outs[0]), n)
        if lo == 0.0 and hi is None:
            return g.act("relu", x, new(outs[0]), n)
        return False
    if op in ("Add", "Mul", "Div", "Sub"):
        if len(data) == 1:
            cv = _scalar(const.get(ins[1] if ins[0] == data[0] else ins[0]))
            if cv is None:
                return False
            out = new(outs[0], g.shapes.get(x))
            if op == "Add":
                return g.add_const(x, cv, out, n)
            if op == "Mul":
                return g.scale_const(x, cv, out, n)
            if op == "Div" and ins[0] == data[0] and cv:
                return g.scale_const(x, 1.0 / cv, out, n)
            return False
        if len(data) != 2 or op in ("Div", "Sub"):
            return False
        y = vid[data[1]]
        out = new(outs[0])
        if op == "Mul" and g.mul_pattern(x, y, out, n):
            g.shapes[out] = g.shapes.get(x) or g.shapes.get(y)
            return True
        xr, yr = g.real(x), g.real(y)
        if xr is None or yr is None:
            return False
        if out not in g.shapes:
            cand = [g.shapes[v] for v in (xr, yr) if v in g.shapes]
            if cand:
                g.shapes[out] = max(cand, key=lambda t: int(np.prod(t)))
        g.emit("add" if op == "Add" else "mul", [xr, yr], out, [n])
        return True
    if op in ("GlobalAveragePool", "ReduceMean"):
        xr = g.real(x)
        shp = g.shapes.get(xr) if xr is not None else None
        if xr is None or shp is None or len(shp) != 3:
            return False
        keep = True
        if op == "ReduceMean":
            axes = a.get("axes", c(1) if len(ins) > 1 else None)
            if axes is None or sorted(int(v) % 4 for v in axes) != [2, 3]:
                return False
            keep = bool(a.get("keepdims", 1))
        out = new(outs[0], (shp[0], 1, 1) if keep else (shp[0],))
        if keep:
            g.emit("gap", [xr], out, [n])
        else:
            mid = g.value((shp[0], 1, 1))
            g.emit("gap", [xr], mid, [n])
            g.emit("flatten", [mid], out, [n])
        return True
    if op == "AveragePool":
        xr = g.real(x)
        if xr is None or any(a.get("pads", [0, 0, 0, 0])) or a.get("ceil_mode", 0):
            return False
        k = tuple(int(v) for v in a["kernel_shape"])
        st = tuple(int(v) for v in a.get("strides", [1, 1]))
        g.emit("avgpool", [xr], new(outs[0]), [n], kernel=k, stride=st)
        return True
    if op in ("Flatten", "Reshape", "Squeeze", "Transpose", "Unsqueeze"):
        return _layout(g, n, op, a, x, ins, outs, c, new, vid)
    if op == "Gemm":
        w = c(1)
        if w is None or w.ndim != 2 or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
            return False
        xr = g.real(x)
        if xr is None or len(g.shapes.get(xr, ())) != 1:
            return False
        cout, cin = (w.shape[0], w.shape[1]) if a.get("transB", 0) else (w.shape[1], w.shape[0])
        g.emit(
            "fc", [xr], new(outs[0]), [n], cin=int(cin), cout=int(cout), bias=len(ins) > 2 and bool(ins[2])
        )
        return True
    if op == "MatMul":
        w = c(1)
        xr = g.real(x) if x is not None else None
        if w is None or w.ndim != 2 or xr is None or len(g.shapes.get(xr, ())) != 1:
            return False
        g.emit("fc", [xr], new(outs[0]), [n], cin=int(w.shape[0]), cout=int(w.shape[1]), bias=False)
        return True
    if op == "Concat":
        vs = [g.real(vid[d]) for d in data]
        if len(data) != len([i for i in ins if i]) or any(v is None for v in vs):
            return False
        shp = g.shapes.get(vs[0], ())
        axis = int(a.get("axis", 1)) % (len(shp) + 1)
        if axis == 1:
            ax = "c"
        elif axis == 3 and len(shp) == 3:
            ax = "w"
        else:
            return False
        g.emit("concat", vs, new(outs[0]), [n], axis=ax)
        return True
    if op == "Resize":
        mode = a.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = a.get("coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        xr = g.real(x)
        if mode != "linear" or ctm not in ("half_pixel", "pytorch_half_pixel") or xr is None:
            return False
        shp = g.shapes.get(xr)
        sizes, scales = c(3), c(2)
        if sizes is not None and len(sizes) == 4:
            oh, ow = int(sizes[2]), int(sizes[3])
        elif scales is not None and len(scales) == 4:
            oh, ow = int(np.floor(shp[1] * scales[2])), int(np.floor(shp[2] * scales[3]))
        else:
            return False
        g.emit("resize", [xr], new(outs[0], (shp[0], oh, ow)), [n])
        return True
    return False


def _layout(g: Graph, n, op, a, x, ins, outs, c, new, vid) -> bool:
    """Flatten, channel shuffle and SSD's anchors layout from Reshape / Transpose / Unsqueeze."""
    s = g.sym.get(x)
    if s is not None and s.tag in COMPLETE:
        x, s = g.real(x), None
    shp = g.shapes.get(x) if s is None else None
    if op == "Transpose":
        perm = list(a.get("perm", []))
        if s is not None and s.tag == "shuf1" and perm == [0, 2, 1, 3, 4]:
            g.sym[new(outs[0], ())] = Sym("shuf2", s.base, s.src + [n], s.data)
            return True
        if s is not None and s.tag == "anch1" and perm == [0, 2, 1]:
            g.sym[new(outs[0], ())] = Sym("anch2", s.base, s.src + [n], s.data)
            return True
        if s is None and shp is not None and len(shp) == 3 and perm == [0, 2, 3, 1]:
            g.sym[new(outs[0], ())] = Sym("nhwc", x, [n])
            return True
        return False
    if op == "Unsqueeze":
        axes = a.get("axes", c(1) if len(ins) > 1 else None)
        if s is not None and s.tag == "anch2" and axes is not None and [int(v) for v in axes] == [2]:
            base = g.shapes[s.base]
            k = s.data
            g.emit(
                "anchors",
                [s.base],
                new(outs[0], (k, 1, base[0] // k * base[1] * base[2])),
                s.src + [n],
                code=k,
            )
            return True
        return False
    target = None
    if op == "Reshape":
        t = c(1)
        if t is None:
            return False
        target = [int(v) for v in t]
    if s is not None:
        if op == "Reshape" and s.tag == "shuf2":
            base = g.shapes[s.base]
            if target in ([1, *base], [1, base[0], -1, base[2]], [-1, *base]):
                g.emit("shuffle", [s.base], new(outs[0], base), s.src + [n], groups=s.data)
                return True
        if op == "Reshape" and s.tag == "nhwc":
            base = g.shapes[s.base]
            if len(target) == 3 and target[0] in (1, -1) and target[2] > 0 and base[0] % target[2] == 0:
                g.sym[new(outs[0], ())] = Sym("anch1", s.base, s.src + [n], target[2])
                return True
        return False
    xr = x
    if shp is None:
        return False
    if len(shp) == 3 and shp[1:] == (1, 1):
        flat = op in ("Flatten", "Squeeze") or (
            target is not None and len(target) == 2 and target[1] in (shp[0], -1) and target[0] in (1, -1)
        )
        if flat:
            g.emit("flatten", [xr], new(outs[0], (shp[0],)), [n])
            return True
    if op == "Reshape" and len(shp) == 3 and len(target) == 5 and target[0] in (1, -1):
        gg = target[1]
        if gg > 0 and target[1] * target[2] == shp[0] and tuple(target[3:]) == shp[1:]:
            g.sym[new(outs[0], ())] = Sym("shuf1", x, [n], gg)
            return True
    if op == "Reshape" and target is not None and tuple(target[1:]) == shp and target[0] in (1, -1):
        vid[outs[0]] = x  # an identity reshape
        return True
    return False
