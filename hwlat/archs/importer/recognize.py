"""From the normalised op list to an :class:`~hwlat.archs.ir.ArchSpec` (one recognizer for both
frontends), and the canonical form that imports and round trips compare."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hwlat.archs.importer.graph import Graph, Op
from hwlat.archs.ir import Act, ArchSpec, BlockSpec, ConvSpec, HeadSpec, NodeSpec, SESpec, SkipSpec
from hwlat.archs.layers import OpKind, layers, residual_applies, skip_is_identity


class Refusal(Exception):
    """Internal: the op (index into ``graph.ops``) that cannot be placed and why."""

    def __init__(self, op: int, why: str) -> None:
        super().__init__(why)
        self.op, self.why = op, why


def _fuse(g: Graph) -> list[Op]:
    """Activations folded into the convolution they follow (when nothing else reads the conv)."""
    uses = Counter(v for o in g.ops for v in o.ins)
    uses.update(v for _, v in g.outputs)
    by_out = {o.out: o for o in g.ops}
    ops = []
    for o in g.ops:
        if o.kind == "act":
            p = by_out.get(o.ins[0])
            if p is not None and p.kind == "conv" and p.attrs["act"] is None and uses[p.out] == 1:
                p.attrs["act"] = o.attrs["act"]
                p.src.extend(o.src)
                p.out = o.out
                by_out[o.out] = p
                continue
        ops.append(o)
    for o in ops:
        if o.kind == "conv" and o.attrs["act"] is None:
            o.attrs["act"] = Act.IDENTITY
    return ops


def _same_pad(o: Op, shape) -> bool:
    """Whether the conv pads symmetrically by dilation·(k−1)/2 (the IR's only padding)."""
    (kh, kw), (dh, dw) = o.attrs["k"], o.attrs["dilation"]
    want = (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
    pad = o.attrs["pad"]
    if pad is None:  # SAME: symmetric exactly at stride 1 (odd kernels)
        return o.attrs["stride"] == (1, 1) or (kh, kw) == (1, 1)
    return pad == (want[0], want[1], want[0], want[1])


def _conv_why(o: Op, shape) -> str | None:
    """Why the IR cannot hold this conv (None if it can)."""
    (kh, kw), (sh, sw), (dh, dw) = o.attrs["k"], o.attrs["stride"], o.attrs["dilation"]
    if kh != kw or kh % 2 == 0:
        return f"the IR has only odd square kernels (got {kh}x{kw})"
    if sh != sw or sh not in (1, 2):
        return f"the IR has only strides 1 and 2 (got {sh}x{sw})"
    if dh != dw:
        return "the IR has no anisotropic dilation"
    if not _same_pad(o, shape):
        return (
            "the IR has only symmetric 'same' padding of dilation*(k-1)/2 (no asymmetric TF SAME at stride 2)"
        )
    return None


class _Rec:
    def __init__(self, g: Graph, ops: list[Op]) -> None:
        self.g, self.ops = g, ops
        self.cons: dict[int, list[int]] = {}
        for i, o in enumerate(ops):
            for v in o.ins:
                self.cons.setdefault(v, []).append(i)
        self.row: dict[int, str] = {}  # op index -> IR row name
        self.tap: dict[int, str] = {}  # value -> a name a task-head node can read
        self.why: dict[int, str] = {}

    def shape(self, v: int):
        return self.g.shapes.get(v)

    def next_op(self, v: int, skip=()) -> int | None:
        c = [i for i in self.cons.get(v, []) if i not in self.row and i not in skip]
        return c[0] if c else None

    def conv_ok(self, i: int) -> bool:
        o = self.ops[i]
        if o.kind != "conv":
            return False
        why = _conv_why(o, self.shape(o.ins[0]))
        if why:
            self.why.setdefault(i, why)
            return False
        return True

    # -- the backbone --------------------------------------------------------------------------
    def stem(self) -> tuple[ConvSpec, int]:
        x = self.g.input
        i = self.next_op(x)
        if i is None:
            raise Refusal(-1, "the graph does not start with a convolution (the IR's stem)")
        o = self.ops[i]
        if o.kind != "conv" or o.attrs["groups"] != 1 or o.attrs["dilation"] != (1, 1):
            raise Refusal(i, "the IR's network starts with a dense k x k convolution (the stem)")
        if not self.conv_ok(i):
            raise Refusal(i, self.why[i])
        self.row[i] = "stem"
        self.tap[o.out] = "stem"
        return ConvSpec(
            out=o.attrs["cout"], kernel=o.attrs["k"][0], stride=o.attrs["stride"][0], act=o.attrs["act"]
        ), o.out

    def block(self, b: int, x: int, classifier: bool):
        """Try one block at value ``x``; returns (spec, out value, {op: role}) or None."""
        i = self.next_op(x)
        if i is None or not self.conv_ok(i):
            return None
        o = self.ops[i]
        roles: dict[int, str] = {}
        taps: dict[int, str] = {}
        p = f"blocks.{b}"
        a = o.attrs
        k1 = a["k"] == (1, 1)
        is_dw = (
            a["groups"] == a["cin"] == a["cout"]
            and a["groups"] > 1
            or (a["groups"] == a["cin"] == a["cout"] == 1 and not k1)
        )
        expand, groups, exp_act = None, 1, None
        if k1 and not is_dw:
            j = self.next_op(o.out)
            nxt = self.ops[j] if j is not None else None
            grouped = a["groups"]
            shuffle = None
            if nxt is not None and nxt.kind == "shuffle":
                shuffle, j = j, self.next_op(nxt.out)
                nxt = self.ops[j] if j is not None else None
            dw_like = (
                nxt is not None
                and nxt.kind == "conv"
                and nxt.attrs["groups"] == nxt.attrs["cin"] == nxt.attrs["cout"]
                and nxt.attrs["cin"] == a["cout"]
            )
            if not dw_like or a["stride"] != (1, 1) or a["dilation"] != (1, 1):
                if shuffle is not None:
                    return None
                if classifier and grouped == 1 and a["dilation"] == (1, 1):
                    j = self.next_op(o.out)
                    if j is not None and self._is_gap(j):
                        return None  # the last stage's conv
                    roles[i] = "conv"
                    return (
                        SkipSpec(out=a["cout"], stride=a["stride"][0], act=a["act"]),
                        o.out,
                        roles,
                        {o.out: p},
                    )
                return None
            if (shuffle is None) != (grouped == 1):
                self.why.setdefault(
                    i, "the IR's grouped 1x1 convs are followed by a channel shuffle with as many groups"
                )
                return None
            if shuffle is not None and self.ops[shuffle].attrs["groups"] != grouped:
                return None
            expand, groups, exp_act = o, grouped, a["act"]
            roles[i] = "expand"
            taps[o.out] = f"{p}.expand"
            if shuffle is not None:
                roles[shuffle] = "shuffle"
                taps[self.ops[shuffle].out] = f"{p}.shuffle"
            i, o = j, nxt
            if not self.conv_ok(i):
                return None
        elif not is_dw:
            return None
        # the depthwise conv
        a = o.attrs
        if exp_act is not None and a["act"] != exp_act:
            self.why.setdefault(i, "the IR has one activation per block (expansion and depthwise)")
            return None
        roles[i] = "dw"
        taps[o.out] = f"{p}.dw"
        exp, dw = a["cout"], o
        z = o.out
        se = None
        j = self.next_op(z)
        if j is not None and self._is_gap(j):
            r = self.next_op(self.ops[j].out)
            e = self.next_op(self.ops[r].out) if r is not None else None
            m = self.next_op(self.ops[e].out) if e is not None else None
            ok = (
                r is not None
                and e is not None
                and m is not None
                and self.ops[r].kind == "conv"
                and self.ops[e].kind == "conv"
                and self.ops[r].attrs["k"] == (1, 1) == self.ops[e].attrs["k"]
                and self.ops[r].attrs["groups"] == 1 == self.ops[e].attrs["groups"]
                and self.ops[e].attrs["cout"] == exp
                and self.ops[m].kind == "mul"
                and set(self.ops[m].ins) == {z, self.ops[e].out}
            )
            if not ok:
                self.why.setdefault(
                    j, "the IR's squeeze-excite is mean -> 1x1 conv -> act -> 1x1 conv -> gate -> multiply"
                )
                return None
            se = SESpec(
                self.ops[r].attrs["cout"], gate=self.ops[e].attrs["act"], inner=self.ops[r].attrs["act"]
            )
            roles.update({j: "se.pool", r: "se.reduce", e: "se.expand", m: "se.scale"})
            z = self.ops[m].out
            taps[z] = f"{p}.se.scale"
        j = self.next_op(z)
        if j is None or not self.conv_ok(j):
            return None
        pr = self.ops[j]
        if pr.attrs["k"] != (1, 1) or pr.attrs["stride"] != (1, 1) or pr.attrs["groups"] != groups:
            return None
        if pr.attrs["act"] is not Act.IDENTITY:
            self.why.setdefault(j, "the IR's bottleneck projection is linear (no activation)")
            return None
        roles[j] = "project"
        out = pr.out
        residual = False
        k = self.next_op(out)
        if k is not None and self.ops[k].kind == "add" and set(self.ops[k].ins) == {out, x}:
            roles[k] = "add"
            taps[out] = f"{p}.project"
            out = self.ops[k].out
            residual = True
        taps[out] = p
        spec = BlockSpec(
            exp=exp,
            out=pr.attrs["cout"],
            kernel=dw.attrs["k"][0],
            stride=dw.attrs["stride"][0],
            act=dw.attrs["act"],
            se=se,
            dilation=dw.attrs["dilation"][0],
            residual=residual,
            groups=groups,
            expand=expand is not None,
        )
        return spec, out, roles, taps

    def _is_gap(self, j: int) -> bool:
        o = self.ops[j]
        if o.kind == "gap":
            return True
        if o.kind == "avgpool":
            shp = self.shape(o.ins[0])
            return shp is not None and tuple(o.attrs["kernel"]) == tuple(shp[1:])
        return False

    # -- heads ---------------------------------------------------------------------------------
    def classifier(self, x: int, nb: int) -> tuple[HeadSpec, int]:
        conv, conv_act, hidden, hidden_act = 0, Act.HSWISH, 0, Act.HSWISH
        i = self.next_op(x)
        if i is not None and self.ops[i].kind == "conv":
            o = self.ops[i]
            if (
                not self.conv_ok(i)
                or o.attrs["k"] != (1, 1)
                or o.attrs["stride"] != (1, 1)
                or o.attrs["groups"] != 1
            ):
                raise Refusal(i, self.why.get(i, "the IR's last stage is a 1x1 convolution before pooling"))
            conv, conv_act = o.attrs["cout"], o.attrs["act"]
            self.row[i] = "head.conv"
            x = o.out
            i = self.next_op(x)
        if i is None or not self._is_gap(i):
            raise Refusal(i if i is not None else -1, "the IR's classifier pools globally after the blocks")
        self.row[i] = "head.pool"
        x = self.ops[i].out
        i = self.next_op(x)
        if i is not None and self.ops[i].kind == "conv":
            o = self.ops[i]
            if o.attrs["k"] != (1, 1) or o.attrs["groups"] != 1:
                raise Refusal(i, "the IR's last stage has a 1x1 convolution after pooling")
            hidden, hidden_act = o.attrs["cout"], o.attrs["act"]
            self.row[i] = "head.hidden"
            x = o.out
            i = self.next_op(x)
        while i is not None and self.ops[i].kind == "flatten":
            self.row[i] = "classifier"
            x = self.ops[i].out
            i = self.next_op(x)
        if i is None or self.ops[i].kind != "fc":
            raise Refusal(
                i if i is not None else -1, "the IR's classifier ends with one fully connected layer"
            )
        self.row[i] = "classifier"
        head = HeadSpec(conv=conv, conv_act=conv_act, hidden=hidden, hidden_act=hidden_act)
        return head, self.ops[i].attrs["cout"]

    def task_nodes(self) -> tuple[list[NodeSpec], dict[int, str]]:
        nodes, names = [], dict(self.tap)
        names[self.g.input] = "input"
        out_names = {v: n for n, v in self.g.outputs}
        count = 0
        for i, o in enumerate(self.ops):
            if i in self.row:
                continue
            ins = []
            for v in o.ins:
                if v not in names:
                    raise Refusal(
                        i, "it reads a tensor that the IR cannot name (inside a squeeze-excite or a pattern)"
                    )
                ins.append(names[v])
            name = out_names.get(o.out)
            if name is None or not _valid_name(name) or name in names.values():
                name = f"n{count}"
            count += 1
            a = o.attrs
            if o.kind == "conv":
                if not self.conv_ok(i):
                    raise Refusal(i, self.why[i])
                dw = a["groups"] == a["cin"] == a["cout"] and a["groups"] > 1
                if not dw and a["groups"] != 1:
                    raise Refusal(i, "the IR's task heads have no grouped convolutions")
                bn = a["bn"] or a["act"] not in (Act.IDENTITY, Act.SIGMOID)
                n = NodeSpec(
                    name,
                    "dwconv" if dw else "conv",
                    tuple(ins),
                    out=0 if dw else a["cout"],
                    kernel=a["k"][0],
                    stride=a["stride"][0],
                    dilation=a["dilation"][0],
                    act=a["act"],
                    bn=bn,
                )
            elif o.kind in ("avgpool", "gap"):
                shp = self.shape(o.ins[0])
                k = tuple(a["kernel"]) if o.kind == "avgpool" else tuple(shp[1:])
                st = tuple(a["stride"]) if o.kind == "avgpool" else (1, 1)
                n = NodeSpec(name, "avgpool", tuple(ins), kernel=k, stride=st)
            elif o.kind == "resize":
                n = NodeSpec(name, "resize", tuple(ins), like="input")
                object.__setattr__(n, "like", _like_for(self.shape(o.out), names, self.g))
            elif o.kind in ("mul", "add"):
                n = NodeSpec(name, o.kind, tuple(ins))
            elif o.kind == "concat":
                n = NodeSpec(name, "concat", tuple(ins), axis=a["axis"])
            elif o.kind == "anchors":
                n = NodeSpec(name, "anchors", tuple(ins), out=a["code"])
            elif o.kind == "unknown":
                raise Refusal(i, a["why"])
            elif o.kind == "act":
                raise Refusal(
                    i, "the IR has no standalone activation here (an activation follows a convolution)"
                )
            else:
                raise Refusal(i, f"the IR's task heads have no {o.kind} here")
            nodes.append(n)
            names[o.out] = name
            self.row[i] = name
        return nodes, names


def _valid_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[a-z][a-z0-9]*(\.[a-z0-9]+)*", name) is not None and not name.startswith("blocks")


def _like_for(shape, names: dict[int, str], g: Graph) -> str:
    """Some tensor with the resize's output size (the canonical form chooses among them)."""
    if g.in_shape is not None and tuple(shape[1:]) == tuple(g.in_shape[1:]):
        return "input"
    for v, n in reversed(list(names.items())):
        s = g.shapes.get(v)
        if s is not None and len(s) == 3 and tuple(s[1:]) == tuple(shape[1:]):
            return n
    return "input"


def recognize(g: Graph, label: str, partial: bool = False):
    """``(arch or None, {op index: row name}, refusal or None, ops)`` of a normalised graph."""
    ops = _fuse(g)
    r = _Rec(g, ops)
    if g.input is None or g.in_shape is None or len(g.in_shape) != 3:
        first = next((i for i, o in enumerate(ops) if o.kind == "unknown"), 0 if ops else -1)
        why = ops[first].attrs.get("why") if first >= 0 else None
        return None, r.row, Refusal(first, why or "the IR's input is one image tensor [1, C, H, W]"), ops
    classifier = any(o.kind == "fc" for o in ops)
    try:
        stem, x = r.stem()
    except Refusal as e:
        return None, r.row, e, ops
    blocks = []
    while True:
        got = r.block(len(blocks), x, classifier)
        if got is None:
            break
        spec, x, roles, taps = got
        p = f"blocks.{len(blocks)}"
        for i, role in roles.items():
            r.row[i] = f"{p}.{role}"
        r.tap.update(taps)
        blocks.append(spec)
    arch, refusal = None, None
    if not blocks:
        i = r.next_op(x)
        return (
            None,
            r.row,
            Refusal(
                i if i is not None else -1,
                r.why.get(i, "the IR's network has inverted-residual blocks after the stem"),
            ),
            ops,
        )
    c, h, w = g.in_shape
    res = h if h == w else (h, w)
    base = dict(name=label, resolution=res, stem=stem, blocks=tuple(blocks), in_channels=c)
    try:
        if classifier:
            head, n = r.classifier(x, len(blocks))
            arch = ArchSpec(head=head, num_classes=n, **base)
            rest = [i for i in range(len(ops)) if i not in r.row]
            if rest:
                o = ops[rest[0]]
                raise Refusal(
                    rest[0],
                    o.attrs.get("why") or "the IR's classifier network has nothing after the classifier",
                )
        else:
            nodes, names = r.task_nodes()
            outs = []
            for name, v in g.outputs:
                if v not in names or names[v] not in {n.name for n in nodes}:
                    raise Refusal(-1, f"output {name!r} is not computed by a task-head layer the IR has")
                outs.append(names[v])
            last = g.shapes.get(g.outputs[-1][1], (1000,))
            arch = ArchSpec(head=None, nodes=tuple(nodes), outputs=tuple(outs), num_classes=last[0], **base)
    except Refusal as e:
        refusal = e
        if partial:
            arch = _partial_arch(base, r, ops)
    return arch, r.row, refusal, ops


def _partial_arch(base, r: _Rec, ops) -> ArchSpec | None:
    """What can be described when the head cannot (nothing valid without a head: None)."""
    return None


# -- the canonical form ---------------------------------------------------------------------------


def canonical(arch: ArchSpec, rename_nodes: bool = False) -> ArchSpec:
    """The one spelling of ``arch`` among those that compute the same graph.

    Fields that a graph cannot show take their defaults: residual and expansion flags where the
    shapes imply them, identity skip layers dropped (they compute nothing), the dropout, the
    activation of an absent last-stage conv. Task-head average pools have their kernel clipped to
    the input (and stride 1 where one window covers the map), a resize reads the canonical tensor
    of its size, block outputs are named ``blocks.I``; with ``rename_nodes`` nodes are named
    ``n0, n1, …`` in order (outputs and readers renamed alike).
    """
    rows = layers(arch)
    cin = arch.stem.out
    blocks, index = [], {}
    for i, b in enumerate(arch.blocks):
        if isinstance(b, SkipSpec):
            if skip_is_identity(b, cin):
                index[i] = len(blocks) - 1  # its output is the previous block's
                continue
            index[i] = len(blocks)
            blocks.append(b)
            cin = b.out
            continue
        res = residual_applies(b, cin)
        natural = b.stride == 1 and cin == b.out
        has_exp = b.exp != cin if b.expand is None else bool(b.expand)
        exp_flag = None if (b.exp != cin) or not has_exp else True
        index[i] = len(blocks)
        blocks.append(replace(b, residual=None if res == natural else res, expand=exp_flag))
        cin = b.out
    head = arch.head
    if head is not None:
        while head.conv == 0 and blocks and isinstance(blocks[-1], SkipSpec) and blocks[-1].stride == 1:
            s = blocks.pop()
            head = replace(head, conv=s.out, conv_act=s.act)
        head = replace(
            head,
            dropout=0.2,
            conv_act=head.conv_act if head.conv else Act.HSWISH,
            hidden_act=head.hidden_act if head.hidden else Act.HSWISH,
        )
    nodes = list(arch.nodes)
    if nodes:
        nodes = _canonical_nodes(arch, rows, blocks, index)
    out = replace(arch, blocks=tuple(blocks), head=head, nodes=tuple(nodes))
    if rename_nodes and nodes:
        m = {n.name: f"n{i}" for i, n in enumerate(nodes)}
        nodes = [
            replace(
                n, name=m[n.name], inputs=tuple(m.get(x, x) for x in n.inputs), like=m.get(n.like, n.like)
            )
            for n in nodes
        ]
        out = replace(out, nodes=tuple(nodes), outputs=tuple(m[o] for o in out.outputs))
    return out


def _canonical_nodes(arch: ArchSpec, rows, blocks, index) -> list[NodeSpec]:
    shapes = {r.name: r.out_shape for r in rows}
    shapes["input"] = (arch.in_channels, *arch.hw)
    task = {r.name: r for r in rows if r.stage == "task"}

    def tap(name: str) -> str:
        parts = name.split(".")
        if parts[0] != "blocks":
            return name
        i = int(parts[1])
        j = index.get(i, i)
        blk = arch.blocks[i]
        role = ".".join(parts[2:])
        if j < 0:
            return "stem"
        if isinstance(blk, SkipSpec) or role in ("", "project", "add", "conv"):
            if role == "project" and f"blocks.{i}.add" in shapes:
                return f"blocks.{j}.project"
            return f"blocks.{j}"
        return f"blocks.{j}.{role}"

    def tap_shape(name: str):
        if name in shapes:
            return shapes[name]
        return None

    # shapes of the taps by their canonical name
    canon_shape = {"input": shapes["input"]}
    for r in rows:
        if r.stage in ("stem", "block") and not r.name.endswith(("se.pool", "se.reduce", "se.expand")):
            canon_shape[tap(r.name)] = r.out_shape
    out, seen = [], []
    read = set()
    for n in arch.nodes:
        read.update(tap(x) for x in n.inputs)
    for n in arch.nodes:
        n = replace(n, inputs=tuple(tap(x) for x in n.inputs))
        r = task[n.name]
        if n.op == "avgpool":
            c, h, w = r.in_shape
            kh, kw = (r.kernel, r.kernel) if isinstance(r.kernel, int) else r.kernel
            sh, sw = (r.stride, r.stride) if isinstance(r.stride, int) else r.stride
            _, oh, ow = r.out_shape
            n = replace(n, kernel=(kh, kw), stride=(1 if kh == h else sh, 1 if kw == w else sw))
        if n.op == "resize":
            want = r.out_shape[1:]
            like = None
            if tuple(shapes["input"][1:]) == tuple(want):
                like = "input"
            if like is None:
                for prev in reversed(seen):
                    if tuple(shapes[prev][1:]) == tuple(want):
                        like = prev
                        break
            if like is None:
                for name in reversed(list(canon_shape)):
                    if name in read and tuple(canon_shape[name][1:]) == tuple(want):
                        like = name
                        break
            if like is None:
                for name in reversed(list(canon_shape)):
                    if tuple(canon_shape[name][1:]) == tuple(want):
                        like = name
                        break
            n = replace(n, like=like or n.like)
        out.append(n)
        seen.append(n.name)
    return out


def same_arch(a: ArchSpec, b: ArchSpec) -> bool:
    """Whether ``a`` and ``b`` compute the same graph (canonical forms equal, names aside)."""
    ca, cb = canonical(a, rename_nodes=True), canonical(b, rename_nodes=True)
    return replace(ca, name="") == replace(cb, name="")


# -- verification ----------------------------------------------------------------------------------


def graph_costs(ops: list[Op], g: Graph) -> Counter:
    """``(kind, cin, cout, out shape, k, stride, groups) -> count`` of the graph's weighted layers,
    with MAdds and folded parameters."""
    c = Counter()
    for o in ops:
        if o.kind == "conv":
            a = o.attrs
            shp = g.shapes.get(o.out)
            per = (a["cin"] // a["groups"]) * a["k"][0] * a["k"][1]
            madds = shp[0] * shp[1] * shp[2] * per
            params = a["cout"] * per + (a["cout"] if (a["bias"] or a["bn"]) else 0)
            c[
                (
                    "conv",
                    a["cin"],
                    a["cout"],
                    tuple(shp),
                    a["k"][0],
                    a["stride"][0],
                    a["groups"],
                    madds,
                    params,
                )
            ] += 1
        elif o.kind == "fc":
            a = o.attrs
            c[
                (
                    "fc",
                    a["cin"],
                    a["cout"],
                    a["cin"] * a["cout"],
                    a["cin"] * a["cout"] + (a["cout"] if a["bias"] else 0),
                )
            ] += 1
        elif o.kind in ("shuffle", "add", "mul", "concat", "resize", "anchors"):
            c[(o.kind,)] += 1
    return c


def arch_costs(arch: ArchSpec) -> Counter:
    c = Counter()
    for r in layers(arch):
        if r.op in (OpKind.CONV, OpKind.DWCONV):
            per = (r.cin // r.groups) * r.kernel * r.kernel
            params = r.cout * per + (r.cout if (r.bn or r.bias) else 0)
            c[("conv", r.cin, r.cout, r.out_shape, r.kernel, r.stride, r.groups, r.madds, params)] += 1
        elif r.op is OpKind.FC:
            c[("fc", r.cin, r.cout, r.madds, r.madds + r.cout)] += 1
        elif r.op in (OpKind.SHUFFLE, OpKind.ADD, OpKind.MUL, OpKind.CONCAT, OpKind.RESIZE, OpKind.ANCHORS):
            c[(r.op.value,)] += 1
    return c
