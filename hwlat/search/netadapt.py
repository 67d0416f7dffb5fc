"""NetAdapt as MobileNetV3 uses it (arXiv:1905.02244v5 Sec. 4.2), on predicted latency.

Start from a trained seed. Each step must cut predicted latency by at least ``δ_k``
(default ``0.01·L_seed``, optionally decayed per step). Proposals: (1) shrink one expansion
layer; (2) shrink the bottleneck width of every block that shares it (stem included), which keeps
residual connections valid. Each proposal is the smallest cut (channels in multiples of 8) that
meets the step's target on the predictor; all candidate widths of a step are predicted in one
batch. Filters are removed by L2 magnitude and the survivors inherit their weights
(:func:`inherit_weights`); each proposal is fine-tuned for ``T`` steps and the one with the
largest ΔAcc/|ΔLatency| (``criterion="slope"``, the paper) or the least accuracy drop
(``"least_drop"``, original NetAdapt) is kept. Repeat until the target, then fine-tune long-term.

The history (``DIR/history.json``) and the current weights (``DIR/model.pt``) are written
atomically after every step; the same call resumes an interrupted run.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from hwlat.archs import ArchSpec, encode, make_divisible, summary, validate
from hwlat.files import atomic_write, atomic_write_json as write_json_atomic

HISTORY_SCHEMA = 1


# -- atomic files --------------------------------------------------------------------------------
def _save_model_atomic(model: nn.Module, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))


def read_history(path: str | Path) -> dict | None:
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: corrupt history ({e}); move it away to start over") from None


# -- proposals -----------------------------------------------------------------------------------
def _cins(arch: ArchSpec) -> list[int]:
    out, c = [], arch.stem.out
    for b in arch.blocks:
        out.append(c)
        c = b.out
    return out


def structure(arch: ArchSpec) -> tuple:
    """Per block: (has expansion conv, has residual) — what a channel cut must not change."""
    sig = []
    for b, cin in zip(arch.blocks, _cins(arch)):
        res = b.residual if b.residual is not None else (b.stride == 1 and cin == b.out)
        sig.append((b.exp != cin, bool(res)))
    return tuple(sig)


def _with_exp(b, exp: int):
    se = b.se and dataclasses.replace(b.se, squeeze=make_divisible(exp / 4))
    return dataclasses.replace(b, exp=exp, se=se)


def proposal_kinds(arch: ArchSpec) -> list[tuple[str, int, int]]:
    """``(kind, key, width)``: ``("expansion", block, exp)`` for blocks with an expansion conv and
    ``("bottleneck", width, width)`` for each bottleneck width shared by the stem and/or blocks."""
    out = []
    for i, (b, cin) in enumerate(zip(arch.blocks, _cins(arch))):
        if b.exp != cin:
            out.append(("expansion", i, b.exp))
    widths = sorted({arch.stem.out, *(b.out for b in arch.blocks)}, reverse=True)
    out += [("bottleneck", w, w) for w in widths]
    return out


def apply_proposal(arch: ArchSpec, kind: str, key: int, new: int) -> ArchSpec | None:
    """``arch`` with the cut applied, or None when the cut would change the block structure."""
    if new < 8 or new % 8:
        return None
    if kind == "expansion":
        blocks = list(arch.blocks)
        blocks[key] = _with_exp(blocks[key], new)
        cand = dataclasses.replace(arch, blocks=tuple(blocks))
    elif kind == "bottleneck":
        old_cins = _cins(arch)
        stem = arch.stem if arch.stem.out != key else dataclasses.replace(arch.stem, out=new)
        blocks, c = [], stem.out
        for b, oc in zip(arch.blocks, old_cins):
            nb = b if b.out != key else dataclasses.replace(b, out=new)
            if b.exp == oc and c != oc:  # no expansion conv: the depthwise runs on the input width
                nb = _with_exp(nb, c)
            blocks.append(nb)
            c = nb.out
        cand = dataclasses.replace(arch, stem=stem, blocks=tuple(blocks))
    else:
        raise ValueError(f"unknown proposal kind {kind!r}")
    if structure(cand) != structure(arch):
        return None
    return cand


def candidates(arch: ArchSpec) -> list[tuple[str, int, int, ArchSpec]]:
    """Every valid smaller width (multiples of 8) of every proposal kind: ``(kind, key, width, arch)``."""
    out = []
    for kind, key, width in proposal_kinds(arch):
        for new in range((width - 1) // 8 * 8, 7, -8):
            cand = apply_proposal(arch, kind, key, new)
            if cand is not None:
                out.append((kind, key, new, cand))
    return out


def smallest_reachable(arch: ArchSpec) -> ArchSpec:
    """Greedy: apply the smallest valid cut of every proposal kind until nothing shrinks."""
    for _ in range(100):
        changed = False
        for kind, key, width in proposal_kinds(arch):
            cur = width if kind == "expansion" else key
            for new in range(8, cur, 8):
                cand = apply_proposal(arch, kind, key, new)
                if cand is not None:
                    arch, changed = cand, True
                    break
        if not changed:
            break
    return arch


# -- weight surgery ------------------------------------------------------------------------------
class _Spaces:
    """Union-find over channel spaces: which tensor axes must keep the same channels."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _space_layout(arch: ArchSpec) -> tuple[_Spaces, list[dict[str, str]]]:
    sp = _Spaces()
    sig = structure(arch)
    per_block, prev = [], "stem"
    for i, (has_exp, res) in enumerate(sig):
        e = f"e{i}" if has_exp else prev
        o = f"o{i}"
        if res:
            sp.union(o, prev)
        per_block.append({"in": prev, "exp": e, "se": f"q{i}", "out": o})
        prev = o
    per_block.append({"last": prev})
    return sp, per_block


def _sizes(arch: ArchSpec) -> dict[str, int]:
    s = {"stem": arch.stem.out, "head": arch.head.conv, "hidden": arch.head.hidden}
    for i, (b, (has_exp, _)) in enumerate(zip(arch.blocks, structure(arch))):
        if has_exp:
            s[f"e{i}"] = b.exp
        s[f"o{i}"] = b.out
        if b.se:
            s[f"q{i}"] = b.se.squeeze
    return s


def _conv(seq) -> nn.Conv2d:
    return seq[0]


def inherit_weights(model: nn.Module, old: ArchSpec, new: ArchSpec, seed: int = 0) -> nn.Module:
    """A model of ``new`` whose channels are the largest-L2 filters of ``model`` (an ``old`` net).

    ``new`` must have ``old``'s structure (same blocks, expansions and residuals) with fewer or
    equal channels. Conv, BatchNorm (incl. running stats), SE and Linear parameters are sliced.
    """
    from hwlat.archs.torch_builder import build_torch

    if structure(new) != structure(old) or len(new.blocks) != len(old.blocks):
        raise ValueError("inherit_weights: the new architecture changes the block structure")
    sp, lay = _space_layout(old)
    old_sizes, new_sizes = _sizes(old), _sizes(new)
    feats = model.features
    # importance of each channel space: squared L2 norms of the filters producing it
    imp: dict[str, torch.Tensor] = {}

    def add(space: str, conv: nn.Conv2d) -> None:
        r = sp.find(space)
        v = conv.weight.detach().flatten(1).pow(2).sum(1)
        imp[r] = imp[r] + v if r in imp else v.clone()

    add("stem", _conv(feats[0]))
    for i, blk in enumerate(feats[1:]):
        if not isinstance(blk.expand, nn.Identity):
            add(f"e{i}", _conv(blk.expand))
        if not isinstance(blk.se, nn.Identity):
            add(f"q{i}", _conv(blk.se.reduce))
        add(f"o{i}", _conv(blk.project))
    if not isinstance(model.head_conv, nn.Identity):
        add("head", _conv(model.head_conv))
    if not isinstance(model.head_hidden, nn.Identity):
        add("hidden", _conv(model.head_hidden))
    keep: dict[str, torch.Tensor] = {}
    for name, n_new in new_sizes.items():
        if name not in old_sizes or old_sizes[name] == 0:
            continue
        r = sp.find(name)
        if r in keep:
            if len(keep[r]) != n_new:
                raise ValueError(f"inherit_weights: tied channel space {name} resized inconsistently")
            continue
        keep[r] = torch.sort(torch.argsort(imp[r], descending=True, stable=True)[:n_new]).values

    def idx(space: str | None) -> torch.Tensor | None:
        return None if space is None else keep[sp.find(space)]

    net = build_torch(new, seed=seed)

    @torch.no_grad()
    def copy(dst, src, out_s, in_s, depthwise=False):
        cd, cs = _conv(dst), _conv(src)
        w = cs.weight
        o, i = idx(out_s), idx(in_s)
        if o is not None:
            w = w[o]
        if i is not None and not depthwise:
            w = w[:, i]
        cd.weight.copy_(w)
        if cs.bias is not None:
            cd.bias.copy_(cs.bias if o is None else cs.bias[o])
        if len(dst) > 2 and isinstance(dst[1], nn.BatchNorm2d):
            for a in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(src[1], a)
                getattr(dst[1], a).copy_(t if o is None else t[o])
            dst[1].num_batches_tracked.copy_(src[1].num_batches_tracked)

    nf = net.features
    copy(nf[0], feats[0], "stem", None)
    for i, (nb, ob) in enumerate(zip(nf[1:], feats[1:])):
        L = lay[i]
        if not isinstance(ob.expand, nn.Identity):
            copy(nb.expand, ob.expand, L["exp"], L["in"])
        copy(nb.dw, ob.dw, L["exp"], None, depthwise=True)
        if not isinstance(ob.se, nn.Identity):
            copy(nb.se.reduce, ob.se.reduce, L["se"], L["exp"])
            copy(nb.se.expand, ob.se.expand, L["exp"], L["se"])
        copy(nb.project, ob.project, L["out"], L["exp"])
    last = lay[-1]["last"]
    if not isinstance(model.head_conv, nn.Identity):
        copy(net.head_conv, model.head_conv, "head", last)
        last = "head"
    if not isinstance(model.head_hidden, nn.Identity):
        copy(net.head_hidden, model.head_hidden, "hidden", last)
        last = "hidden"
    with torch.no_grad():
        i = idx(last)
        net.classifier.weight.copy_(model.classifier.weight[:, i])
        net.classifier.bias.copy_(model.classifier.bias)
    net.eval()
    return net


# -- the search ----------------------------------------------------------------------------------
@dataclass
class NetAdaptConfig:
    """``target_ms`` predicted latency to reach; ``delta_fraction``·L_seed is the first step's
    minimum reduction, multiplied by ``decay`` after every step (1.0: constant, the paper);
    ``short_steps`` T (paper: 10000) fine-tunes each proposal, ``long_steps`` the final network;
    ``criterion`` ``"slope"`` (max ΔAcc/|ΔLat|, the paper) or ``"least_drop"`` (original NetAdapt)."""

    target_ms: float
    delta_fraction: float = 0.01
    decay: float = 1.0
    short_steps: int = 20
    long_steps: int = 200
    criterion: str = "slope"
    max_steps: int = 200
    seed: int = 0

    def __post_init__(self):
        if self.criterion not in ("slope", "least_drop"):
            raise ValueError(f"criterion must be 'slope' or 'least_drop', got {self.criterion!r}")
        if not (0 < self.delta_fraction < 1):
            raise ValueError(f"delta_fraction must be in (0, 1), got {self.delta_fraction}")
        if not (0 < self.decay <= 1):
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")


@dataclass
class NetAdaptResult:
    arch: ArchSpec
    model: nn.Module
    history: dict = field(repr=False)


def _score(criterion: str, acc: float, acc_prev: float, dlat: float) -> float:
    if criterion == "least_drop":
        return acc
    return (acc - acc_prev) / max(abs(dlat), 1e-9)


def netadapt(seed_arch: ArchSpec, seed_model: nn.Module | None, task, predictor, config: NetAdaptConfig,
             out_dir: str | Path, callback: Callable[[dict], None] | None = None,
             seed_train_steps: int | None = None) -> NetAdaptResult:
    """Run (or resume) NetAdapt from ``seed_arch`` down to ``config.target_ms`` predicted latency.

    ``seed_model`` is the trained seed; None trains it from scratch with ``task.train``.
    ``callback(step_record)`` is called after every step.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hpath, mpath = out / "history.json", out / "model.pt"
    seed_arch = validate(seed_arch)
    seed_code = encode(seed_arch)
    cfg = dataclasses.asdict(config)
    hist = read_history(hpath)
    from hwlat.archs.torch_builder import build_torch

    if hist is not None:
        if hist.get("kind") != "netadapt" or hist.get("seed_arch") != seed_code or hist.get("config") != cfg:
            raise ValueError(f"{hpath}: holds another run (other seed network or settings); "
                             f"use another output folder or remove it")
        arch = ArchSpec.from_json(json.dumps(hist["current_arch"]))
        if not mpath.exists():
            raise ValueError(f"{mpath}: missing weights for the run in {hpath}; remove the folder to start over")
        model = build_torch(arch)
        model.load_state_dict(torch.load(mpath, weights_only=True))
        model.eval()
        if hist.get("final"):
            return NetAdaptResult(arch, model, hist)
    else:
        seed_ms = float(predictor.predict(seed_arch))
        if config.target_ms >= seed_ms:
            raise ValueError(f"target {config.target_ms:.3f} ms is not below the seed's predicted latency "
                             f"{seed_ms:.3f} ms: nothing to do")
        floor = float(predictor.predict(smallest_reachable(seed_arch)))
        if config.target_ms < floor:
            raise ValueError(f"target {config.target_ms:.3f} ms is below what channel cuts can reach "
                             f"({floor:.3f} ms predicted for the narrowest network)")
        model = seed_model if seed_model is not None else task.train(seed_arch, seed_train_steps)
        arch = seed_arch
        acc = task.accuracy(model)
        hist = {"schema": HISTORY_SCHEMA, "kind": "netadapt", "seed_arch": seed_code, "config": cfg,
                "seed": {"predicted_ms": seed_ms, "accuracy": acc, "params": summary(seed_arch)["params"]},
                "steps": [], "current_arch": seed_arch.to_dict(), "final": None}
        _save_model_atomic(model, mpath)
        write_json_atomic(hpath, hist)

    seed_ms = hist["seed"]["predicted_ms"]
    while True:
        steps = hist["steps"]
        lat = steps[-1]["predicted_ms"] if steps else seed_ms
        acc_prev = steps[-1]["accuracy"] if steps else hist["seed"]["accuracy"]
        if lat <= config.target_ms or len(steps) >= config.max_steps:
            break
        k = len(steps)
        delta = config.delta_fraction * seed_ms * config.decay ** k
        goal = lat - delta
        t0 = time.time()
        cands = candidates(arch)
        if not cands:
            raise ValueError(f"step {k}: no channel can be cut further at {lat:.3f} ms "
                             f"(target {config.target_ms:.3f} ms)")
        ms = np.asarray(predictor.predict_many([c[3] for c in cands]), dtype=float)
        best: dict[tuple, tuple] = {}  # per proposal the largest width meeting the goal
        for (kind, key, new, cand), m in zip(cands, ms):
            if m <= goal and ((kind, key) not in best or new > best[(kind, key)][0]):
                best[(kind, key)] = (new, cand, float(m))
        if not best:
            raise ValueError(f"step {k}: no proposal cuts {delta:.3f} ms from {lat:.3f} ms "
                             f"(target {config.target_ms:.3f} ms is unreachable by channel cuts)")
        considered = []
        chosen = None
        for j, ((kind, key), (new, cand, m)) in enumerate(sorted(best.items())):
            net = inherit_weights(model, arch, cand, seed=config.seed)
            task.fine_tune(net, config.short_steps, seed=config.seed + k, desc=f"step {k} {kind} {key}->{new}")
            a = task.accuracy(net)
            s = _score(config.criterion, a, acc_prev, lat - m)
            rec = {"kind": kind, "key": int(key), "width": int(new), "predicted_ms": m, "accuracy": a,
                   "score": s}
            considered.append(rec)
            if chosen is None or s > chosen[0]["score"]:
                chosen = (rec, cand, net)
        rec, arch, model = chosen
        step = {"step": k, "delta_ms": delta, "goal_ms": goal, "chosen": rec, "predicted_ms": rec["predicted_ms"],
                "accuracy": rec["accuracy"], "params": summary(arch)["params"], "arch": encode(arch),
                "candidates": considered, "n_predicted": len(cands), "seconds": time.time() - t0}
        hist["steps"].append(step)
        hist["current_arch"] = arch.to_dict()
        _save_model_atomic(model, mpath)
        write_json_atomic(hpath, hist)
        if callback:
            callback(step)

    acc_before = hist["steps"][-1]["accuracy"] if hist["steps"] else hist["seed"]["accuracy"]
    task.fine_tune(model, config.long_steps, seed=config.seed + 10_000, desc="long-term fine-tune")
    final = {"predicted_ms": float(predictor.predict(arch)), "accuracy_before_long": acc_before,
             "accuracy": task.accuracy(model), "params": summary(arch)["params"],
             "madds": summary(arch)["madds"], "arch": encode(arch), "reached_target":
             bool(float(predictor.predict(arch)) <= config.target_ms)}
    hist["final"] = final
    (out / "arch.json").write_text(arch.to_json(), encoding="utf-8")
    _save_model_atomic(model, mpath)
    write_json_atomic(hpath, hist)
    return NetAdaptResult(arch, model, hist)


def measure_litert(arch: ArchSpec, store_path: str | Path, **timing) -> float:
    """Measured LiteRT median latency (ms) of ``arch`` on this machine (profiled into ``store_path``)."""
    from hwlat.profiler.profile import profile
    from hwlat.profiler.store import Store
    from hwlat.profiler.timing import TimingConfig
    from hwlat.profiler.workloads import model as model_workload

    profile([arch], "model", str(store_path), "litert", config=TimingConfig(**timing), progress=False)
    df = Store(str(store_path)).frame()
    sel = df[(df["key"] == model_workload(arch).key) & (df["runtime"] == "litert")]
    if not len(sel):
        raise ValueError(f"{store_path}: no LiteRT measurement of {arch.name} (did the runtime fail?)")
    return float(sel["median_ms"].iloc[-1])


def record_measured(out_dir: str | Path, ms: float) -> dict:
    """Add the final network's measured latency to ``DIR/history.json`` (atomically)."""
    hpath = Path(out_dir) / "history.json"
    hist = read_history(hpath)
    if not hist or not hist.get("final"):
        raise ValueError(f"{hpath}: no finished run to add a measurement to")
    hist["final"]["measured_ms"] = float(ms)
    write_json_atomic(hpath, hist)
    return hist

