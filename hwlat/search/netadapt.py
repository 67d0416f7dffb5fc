"""NetAdapt as MobileNetV3 uses it (arXiv:1905.02244v5 Sec. 4.2), on predicted latency.

Start from a trained seed. Each step must cut predicted latency by at least ``δ_k``
(default ``0.01·L_seed``, optionally decayed per step). Proposals: (1) shrink one expansion
layer; (2) shrink the bottleneck width of every block that shares it (stem included), which keeps
residual connections valid. Each proposal is the smallest cut (channels in multiples of 8) that
meets the step's target on the predictor; all candidate widths of a step are predicted in one
batch. Filters are removed by L2 magnitude and the survivors inherit their weights
(:func:`inherit_weights`); each proposal is fine-tuned for ``T`` steps, scored on a holdout of
the training images (never the validation split), and the one with the largest ΔAcc/|ΔLatency|
(``criterion="slope"``, the paper) or the least accuracy drop (``"least_drop"``, original
NetAdapt) is kept. Repeat until the target, then fine-tune long-term.

**The schedule never dead-ends.** When fewer than ``min_proposals`` proposals can meet ``δ_k``,
the step halves (down to the smallest cut one layer allows, 8 channels), so a step stays a choice
between layers and a cut that ruins accuracy does not win for being the only one left
(:func:`meeting_proposals`). A run that cannot go on (no cut lowers the predicted latency, or
``max_steps``) stops short: its last network is fine-tuned long-term and written as ``final`` with
the reason (:func:`outcome`). The reference implementation (denru01/netadapt) instead takes a
proposal that misses its step with a warning (each block's smallest width when no width meets
it) and raises when none lowers the resource; it decays the step by 0.96 per iteration from
0.025·L by default, where hwlat follows MobileNetV3's 0.01·L without decay.

**Evaluation noise.** Step 0's pick is fine-tuned again with ``noise_repeats`` other seeds
(:func:`evaluation_noise`); every step records the spread of its proposals' holdout accuracies
beside it, so a run shows whether its choices rise above chance.

Before anything is trained, :func:`channel_floor` predicts the seed with every prunable width at
its minimum (8): that share of the latency (per-op overheads, the predictor's network term, the
layers NetAdapt does not cut) no channel cut can remove, and a target below it fails at once.

Files in ``DIR``: each step's weights go to a new ``weights/step_NNNN.pt`` (``seed.pt``,
``final.pt``), then ``history.json`` is written (atomically) naming them, then older weights are
removed. The history is the commit point: a run killed anywhere resumes from the last history
written, with the weights it names, by the same call.
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.cluster.hierarchy import DisjointSet
from torch import nn

from hwlat.archs import CHANNEL_DIVISOR, ArchSpec, encode, se_squeeze, summary, validate
from hwlat.archs.layers import residual_applies
from hwlat.errors import ExtrapolationWarning, FileFormatError
from hwlat.files import atomic_write, atomic_write_text
from hwlat.latency_models.base import predict_noting_extrapolation
from hwlat.search import history as H


# -- proposals -----------------------------------------------------------------------------------
def _cins(arch: ArchSpec) -> list[int]:
    out, c = [], arch.stem.out
    for b in arch.blocks:
        out.append(c)
        c = b.out
    return out


def structure(arch: ArchSpec) -> tuple:
    """Per block: (has expansion conv, has residual) — what a channel cut must not change."""
    return tuple((b.exp != cin, residual_applies(b, cin)) for b, cin in zip(arch.blocks, _cins(arch)))


def _with_exp(b, exp: int):
    se = b.se and dataclasses.replace(b.se, squeeze=se_squeeze(exp))
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
    if new < CHANNEL_DIVISOR or new % CHANNEL_DIVISOR:
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
    out, d = [], CHANNEL_DIVISOR
    for kind, key, width in proposal_kinds(arch):
        for new in range((width - 1) // d * d, d - 1, -d):
            cand = apply_proposal(arch, kind, key, new)
            if cand is not None:
                out.append((kind, key, new, cand))
    return out


def _shrink_all(arch: ArchSpec, bottlenecks_first: bool) -> ArchSpec:
    """Apply the smallest valid cut of every proposal kind until nothing shrinks, expansions or
    bottleneck widths (smallest first) first."""
    for _ in range(100):
        changed = False
        kinds = proposal_kinds(arch)
        if bottlenecks_first:
            kinds = sorted((k for k in kinds if k[0] == "bottleneck"), key=lambda k: k[1]) + [
                k for k in kinds if k[0] == "expansion"
            ]
        for kind, key, width in kinds:
            cur = width if kind == "expansion" else key
            for new in range(CHANNEL_DIVISOR, cur, CHANNEL_DIVISOR):
                cand = apply_proposal(arch, kind, key, new)
                if cand is not None:
                    arch, changed = cand, True
                    break
        if not changed:
            break
    return arch


def floor_candidates(arch: ArchSpec) -> list[ArchSpec]:
    """``arch`` with every prunable width at its minimum (8, or the smallest that keeps the block
    structure), reached in two orders: bottleneck widths are keyed by their value, so cuts that make
    two widths equal tie them from then on, and which minimum is reached depends on the order."""
    return [_shrink_all(arch, False), _shrink_all(arch, True)]


def smallest_reachable(arch: ArchSpec) -> ArchSpec:
    """The one of :func:`floor_candidates` with the fewest MAdds."""
    return min(floor_candidates(arch), key=lambda a: summary(a)["madds"])


# -- weight surgery ------------------------------------------------------------------------------
def _space_layout(arch: ArchSpec) -> tuple[DisjointSet, list[dict[str, str]]]:
    """Channel spaces (which tensor axes must keep the same channels: a residual ties a block's
    output to its input) and, per block, the space of its input, expansion, SE and output."""
    sp = DisjointSet(["stem", "head", "hidden"])
    per_block, prev = [], "stem"
    for i, (has_exp, res) in enumerate(structure(arch)):
        e = f"e{i}" if has_exp else prev
        o = f"o{i}"
        for name in (e, o, f"q{i}"):
            sp.add(name)
        if res:
            sp.merge(o, prev)
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


def _importance(model: nn.Module, sp: DisjointSet) -> dict[str, torch.Tensor]:
    """Per channel space (its root), the summed squared L2 norms of the filters producing it."""
    imp: dict[str, torch.Tensor] = {}

    def add(space: str, conv: nn.Conv2d) -> None:
        r = sp[space]
        v = conv.weight.detach().flatten(1).pow(2).sum(1)
        imp[r] = imp[r] + v if r in imp else v.clone()

    feats = model.features
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
    return imp


def _kept_channels(
    sp: DisjointSet, imp: dict[str, torch.Tensor], old: ArchSpec, new: ArchSpec
) -> dict[str, torch.Tensor]:
    """Per channel space (its root), the sorted indices of the largest-L2 channels ``new`` keeps."""
    old_sizes = _sizes(old)
    keep: dict[str, torch.Tensor] = {}
    for name, n_new in _sizes(new).items():
        if name not in old_sizes or old_sizes[name] == 0:
            continue
        r = sp[name]
        if r in keep:
            if len(keep[r]) != n_new:
                raise ValueError(f"inherit_weights: tied channel space {name} resized inconsistently")
            continue
        keep[r] = torch.sort(torch.argsort(imp[r], descending=True, stable=True)[:n_new]).values
    return keep


@torch.no_grad()
def _copy(dst, src, out_idx, in_idx, depthwise: bool = False) -> None:
    """Copy conv (+ BatchNorm) ``src`` into ``dst``, keeping output channels ``out_idx`` and input
    channels ``in_idx`` (None: all)."""
    cd, cs = _conv(dst), _conv(src)
    w = cs.weight
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None and not depthwise:
        w = w[:, in_idx]
    cd.weight.copy_(w)
    if cs.bias is not None:
        cd.bias.copy_(cs.bias if out_idx is None else cs.bias[out_idx])
    if len(dst) > 2 and isinstance(dst[1], nn.BatchNorm2d):
        for a in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(src[1], a)
            getattr(dst[1], a).copy_(t if out_idx is None else t[out_idx])
        dst[1].num_batches_tracked.copy_(src[1].num_batches_tracked)


def inherit_weights(model: nn.Module, old: ArchSpec, new: ArchSpec, seed: int = 0) -> nn.Module:
    """A model of ``new`` whose channels are the largest-L2 filters of ``model`` (an ``old`` net).

    ``new`` must have ``old``'s structure (same blocks, expansions and residuals) with fewer or
    equal channels. Conv, BatchNorm (incl. running stats), SE and Linear parameters are sliced.
    """
    from hwlat.archs.torch_builder import build_torch

    if structure(new) != structure(old) or len(new.blocks) != len(old.blocks):
        raise ValueError("inherit_weights: the new architecture changes the block structure")
    sp, lay = _space_layout(old)
    keep = _kept_channels(sp, _importance(model, sp), old, new)

    def idx(space: str | None) -> torch.Tensor | None:
        return None if space is None else keep[sp[space]]

    net = build_torch(new, seed=seed)
    feats, nf = model.features, net.features
    _copy(nf[0], feats[0], idx("stem"), None)
    for i, (nb, ob) in enumerate(zip(nf[1:], feats[1:])):
        L = lay[i]
        if not isinstance(ob.expand, nn.Identity):
            _copy(nb.expand, ob.expand, idx(L["exp"]), idx(L["in"]))
        _copy(nb.dw, ob.dw, idx(L["exp"]), None, depthwise=True)
        if not isinstance(ob.se, nn.Identity):
            _copy(nb.se.reduce, ob.se.reduce, idx(L["se"]), idx(L["exp"]))
            _copy(nb.se.expand, ob.se.expand, idx(L["exp"]), idx(L["se"]))
        _copy(nb.project, ob.project, idx(L["out"]), idx(L["exp"]))
    last = lay[-1]["last"]
    if not isinstance(model.head_conv, nn.Identity):
        _copy(net.head_conv, model.head_conv, idx("head"), idx(last))
        last = "head"
    if not isinstance(model.head_hidden, nn.Identity):
        _copy(net.head_hidden, model.head_hidden, idx("hidden"), idx(last))
        last = "hidden"
    with torch.no_grad():
        net.classifier.weight.copy_(model.classifier.weight[:, idx(last)])
        net.classifier.bias.copy_(model.classifier.bias)
    net.eval()
    return net


# -- the search ----------------------------------------------------------------------------------
CRITERIA = ("slope", "least_drop")
"""How a step picks its proposal (:attr:`NetAdaptConfig.criterion`)."""
HOLDOUT = 0.2
"""Share of the task's training images held out to rank proposals (``hwlat netadapt --holdout``)."""


@dataclass
class NetAdaptConfig:
    """Settings of :func:`netadapt`; latencies in ms (predicted), steps in training minibatches.

    ``target_ms`` is the predicted latency to reach. Step ``k`` must cut at least
    ``delta_fraction · L_seed · decay**k`` (the paper: 0.01, no decay). When fewer than
    ``min_proposals`` proposals can meet that, the step halves (down to the smallest cut one layer
    allows, 8 channels), so a step stays a choice between layers; only when no cut lowers the
    predicted latency at all does the run stop short. ``short_steps`` T (paper: 10000) fine-tunes
    each proposal at learning rate ``short_lr`` (None: the task's, meant for training from scratch,
    which undoes more of a trained network in a few steps than it recovers), ``long_steps`` the
    final network at the task's rate; ``criterion`` ``"slope"`` (max ΔAcc/|ΔLat|,
    the paper) or ``"least_drop"`` (original NetAdapt). ``noise_repeats`` extra fine-tunes of step
    0's pick, with other seeds, estimate how much a proposal's accuracy moves by chance alone.
    ``max_steps`` bounds the run: reaching it is a stop short of the target, not an error."""

    target_ms: float
    delta_fraction: float = 0.01
    decay: float = 1.0
    short_steps: int = 20
    long_steps: int = 300
    criterion: str = "slope"
    max_steps: int = 200
    seed: int = 0
    min_proposals: int = 3
    noise_repeats: int = 2
    short_lr: float | None = 3e-4

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be 'slope' or 'least_drop', got {self.criterion!r}")
        if not (0 < self.delta_fraction < 1):
            raise ValueError(f"delta_fraction must be in (0, 1), got {self.delta_fraction}")
        if not (0 < self.decay <= 1):
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")
        if self.min_proposals < 1:
            raise ValueError(f"min_proposals must be at least 1, got {self.min_proposals}")
        if self.noise_repeats < 0:
            raise ValueError(f"noise_repeats must be at least 0, got {self.noise_repeats}")
        if self.short_lr is not None and not self.short_lr > 0:
            raise ValueError(f"short_lr must be positive, got {self.short_lr}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")


@dataclass
class NetAdaptResult:
    arch: ArchSpec
    model: nn.Module
    history: dict = field(repr=False)


def _score(criterion: str, acc: float, acc_prev: float, dlat: float) -> float:
    if criterion == "least_drop":
        return acc
    return (acc - acc_prev) / max(abs(dlat), 1e-9)


@dataclass(frozen=True)
class ChannelFloor:
    """What channel cuts can and cannot remove from the seed's predicted latency (ms).

    ``floor_ms`` is the prediction for the seed with every prunable width at its minimum
    (:func:`smallest_reachable`): per-op overheads, the predictor's network term and the layers
    NetAdapt does not cut (stem kernel, head, classifier) stay, whatever the channels.
    """

    seed_ms: float
    floor_ms: float

    @property
    def share(self) -> float:
        """Fraction of the seed's predicted latency that no channel cut removes."""
        return self.floor_ms / self.seed_ms

    def describe(self) -> str:
        if self.floor_ms <= 0:  # a calibrated predictor's network term can be negative
            return (
                f"channel cuts alone could take the seed's {self.seed_ms:.3f} ms predicted to "
                f"{self.floor_ms:.3f} ms (every prunable width at 8; the predictor's network term "
                f"is negative there): no fixed share limits the target"
            )
        return (
            f"{self.floor_ms:.3f} ms of the seed's {self.seed_ms:.3f} ms predicted "
            f"({self.share:.0%}) no channel cut can remove (per-op overheads, the network term, "
            f"the layers NetAdapt does not cut: every prunable width at 8)"
        )

    def check(self, target_ms: float) -> None:
        """Raise ``ValueError`` with the reason when ``target_ms`` cannot be reached by cuts."""
        if target_ms >= self.seed_ms:
            raise ValueError(
                f"target {target_ms:.3f} ms is not below the seed's predicted latency "
                f"{self.seed_ms:.3f} ms: nothing to do"
            )
        if target_ms < self.floor_ms:
            raise ValueError(
                f"target {target_ms:.3f} ms is below what channel cuts can reach: {self.describe()}"
            )


def channel_floor(seed_arch: ArchSpec, predictor) -> ChannelFloor:
    """Predict ``seed_arch`` as it is and with every prunable width at its minimum (the lower of
    :func:`floor_candidates`; a heuristic: another order of cuts may reach a little lower)."""
    seed_ms, *floors = np.asarray(
        predictor.predict_many([seed_arch, *floor_candidates(seed_arch)]), dtype=float
    )
    return ChannelFloor(float(seed_ms), float(min(floors)))


# -- the run's files -----------------------------------------------------------------------------
_WEIGHTS = re.compile(r"weights/(seed|final|step_\d{4})\.pt")


def _save_weights(out: Path, model: nn.Module, name: str) -> str:
    """Write ``model``'s weights to ``out/weights/NAME.pt`` atomically; the name for the history."""
    (out / "weights").mkdir(exist_ok=True)
    rel = f"weights/{name}.pt"
    atomic_write(out / rel, lambda tmp: torch.save(model.state_dict(), tmp))
    return rel


def _commit(out: Path, hist: dict) -> None:
    """Write the history (the commit point), then remove weights it no longer names."""
    H.write(out / "history.json", hist)
    _remove_stale_weights(out, hist)


def _remove_stale_weights(out: Path, hist: dict) -> None:
    """Remove weights files (and temporary files) that the history does not name."""
    folder = out / "weights"
    stale = [f for f in folder.iterdir() if f.suffix in (".pt", ".tmp")] if folder.is_dir() else []
    for f in stale + [out / "model.pt"]:  # model.pt: schema 1
        if f.relative_to(out).as_posix() != hist["weights"]:
            f.unlink(missing_ok=True)


def _load_weights(out: Path, hist: dict) -> tuple[ArchSpec, nn.Module]:
    """The current architecture and its weights as the history names them; one-line errors."""
    from hwlat.archs.torch_builder import build_torch

    hpath = out / "history.json"
    try:
        arch = validate(ArchSpec.from_dict(hist["current_arch"]))
    except (ValueError, TypeError) as e:
        raise FileFormatError(
            f"{hpath}: current_arch is not a valid architecture ({e}); {H.todo(hpath)}"
        ) from None
    rel = hist["weights"]
    if rel != "model.pt" and not _WEIGHTS.fullmatch(rel):
        raise FileFormatError(f"{hpath}: names an unexpected weights file {rel!r}; {H.todo(hpath)}")
    wpath = out / rel
    if not wpath.is_file():
        raise FileFormatError(f"{wpath}: missing; {hpath} needs it to resume; {H.todo(hpath)}")
    try:
        state = torch.load(wpath, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        raise FileFormatError(
            f"{wpath}: damaged weights file ({type(e).__name__}); {H.todo(hpath)}"
        ) from None
    model = build_torch(arch)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise FileFormatError(
            f"{wpath}: weights do not match the current_arch of {hpath}; {H.todo(hpath)}"
        ) from None
    model.eval()
    return arch, model


# -- the search ----------------------------------------------------------------------------------
def _resume(out: Path, seed_code: str, cfg: dict) -> dict | None:
    """The run's history if it is this run's; an error if the folder holds another run."""
    hpath = out / "history.json"
    hist = H.read(hpath, "netadapt")
    if hist is None:
        return None
    if hist["seed_arch"] != seed_code or hist["config"] != cfg:
        raise ValueError(
            f"{hpath}: holds another run (other seed network or settings); "
            f"use another output folder or remove it"
        )
    if H.version(hpath, hist) == 1:  # schema 1 kept the current weights in model.pt
        hist["weights"] = "model.pt"
    hist["schema"] = H.SCHEMAS["netadapt"]  # older files (a bare number) are rewritten as this one
    return hist


def _holdout_accuracy(task, model: nn.Module) -> float:
    """The accuracy that ranks proposals: the task's holdout (its validation split without one)."""
    return float(getattr(task, "holdout_accuracy", task.accuracy)(model))


def _start(
    out: Path, seed_arch: ArchSpec, seed_model, task, floor: ChannelFloor, cfg: dict, seed_train_steps
) -> tuple[dict, nn.Module]:
    """Train (or take) the seed, write the first history; ``(history, model)``."""
    model = seed_model if seed_model is not None else task.train(seed_arch, seed_train_steps)
    seed = {
        "predicted_ms": floor.seed_ms,
        "fixed_ms": floor.floor_ms,
        "accuracy": task.accuracy(model),
        "holdout_accuracy": _holdout_accuracy(task, model),
        "params": summary(seed_arch)["params"],
    }
    hist = {
        "schema": H.SCHEMAS["netadapt"],
        "kind": "netadapt",
        "seed_arch": encode(seed_arch),
        "config": cfg,
        "seed": seed,
        "steps": [],
        "current_arch": seed_arch.to_dict(),
        "weights": _save_weights(out, model, "seed"),
        "final": None,
        "ranked_on": getattr(task, "holdout_name", "the validation split"),
    }
    _commit(out, hist)
    return hist, model


def _fine_tune_all(
    model, arch, proposals, task, config: NetAdaptConfig, k: int, pool=None, seed_offset: int = 0
):
    """Per proposal ``((kind, key), (width, arch, ms))``: the network inheriting ``model``'s
    largest filters, fine-tuned ``short_steps`` with seed ``config.seed + k + seed_offset``, and
    its holdout accuracy; on a ``pool`` (:class:`hwlat.search.parallel.RayPool`) in parallel,
    with the same seeds."""
    descs = [f"step {k} {kind} {key}->{new}" for (kind, key), (new, _, _) in proposals]
    seed = config.seed + k + seed_offset
    if pool is None:
        out = []
        for ((_kind, _key), (_new, cand, _m)), desc in zip(proposals, descs):
            net = inherit_weights(model, arch, cand, seed=config.seed)
            task.fine_tune(net, config.short_steps, seed=seed, lr=config.short_lr, desc=desc)
            out.append((net, _holdout_accuracy(task, net)))
        return out
    from hwlat.archs.torch_builder import build_torch

    cands = [cand for _, (_, cand, _) in proposals]
    done = pool.fine_tune_many(
        model, arch, cands, config.short_steps, config.seed, seed, descs, config.short_lr
    )
    out = []
    for cand, (acc, weights) in zip(cands, done):
        net = build_torch(cand)
        net.load_state_dict(weights)
        out.append((net.eval(), acc))
    return out


def _predict_proposals(predictor, archs: list[ArchSpec], first: bool) -> tuple[np.ndarray, str | None]:
    """Predicted ms of a step's proposals, and the predictor's extrapolation warning, if any: shown
    at the first step only (every step's is kept in its record), so a run does not repeat it."""
    ms, extrapolated = predict_noting_extrapolation(predictor, archs)
    if extrapolated and first:
        warnings.warn(
            f"NetAdapt's proposals: {extrapolated} (each step records it in history.json as 'extrapolated')",
            ExtrapolationWarning,
            stacklevel=3,
        )
    return ms, extrapolated


MAX_HALVINGS = 40
"""How often a step may halve: 2**-40 of any step is far below the smallest cut one layer allows."""


def meeting_proposals(
    cands, ms, lat: float, delta: float, min_proposals: int, min_gain: float
) -> tuple[dict, float, int]:
    """The proposals of a step and the reduction they meet: ``(best, step_ms, halvings)``.

    ``best`` maps each proposal ``(kind, key)`` to its largest width ``(width, arch, ms)`` whose
    predicted ``ms`` is at most ``lat - step_ms``. The step starts at ``delta`` and halves while
    fewer than ``min(min_proposals, kinds that some cut speeds up by more than min_gain)`` proposals
    meet it; at the end every kind whose smallest (8-channel) cut lowers the latency is proposed.
    ``best`` is empty only when no cut lowers the predicted latency by more than ``min_gain`` ms.
    """
    gains = lat - np.asarray(ms, dtype=float)
    kinds = {(kind, key) for (kind, key, _, _), g in zip(cands, gains) if g > min_gain}
    need = min(min_proposals, len(kinds))
    step, halvings = float(delta), 0
    while True:
        best: dict[tuple, tuple] = {}
        for (kind, key, new, cand), m, g in zip(cands, ms, gains):
            if g >= step and g > min_gain and ((kind, key) not in best or new > best[(kind, key)][0]):
                best[(kind, key)] = (new, cand, float(m))
        if len(best) >= need or halvings >= MAX_HALVINGS:
            return best, step, halvings
        step, halvings = step / 2, halvings + 1


MIN_GAIN_FRACTION = 1e-4
"""A cut that lowers the predicted latency by at most this share of the seed's lowers nothing."""


def evaluation_noise(
    model, arch: ArchSpec, proposal, accuracy: float, task, config: NetAdaptConfig, k: int
) -> dict:
    """How much a proposal's holdout accuracy moves by chance: ``proposal`` (step ``k``'s pick,
    ``accuracy`` with the run's seed) fine-tuned again with ``config.noise_repeats`` other seeds;
    ``std`` is the sample standard deviation of all its accuracies (fractions), ``binomial_se`` the
    standard error of one accuracy on a holdout of that size."""
    again = [
        _fine_tune_all(model, arch, [proposal], task, config, k, None, seed_offset=1_000 + i)[0]
        for i in range(config.noise_repeats)
    ]  # serial: a pool gives every proposal one seed
    accs = [accuracy] + [a for _, a in again]
    n = len(getattr(task, "holdout_y", getattr(task, "val_y", ())))
    p = float(np.mean(accs))
    (kind, key), (new, _, _) = proposal
    return {
        "proposal": f"{kind} {key}->{new}",
        "holdout_accuracies": accs,
        "std": float(np.std(accs, ddof=1)),
        "binomial_se": float(np.sqrt(p * (1 - p) / n)) if n else None,
        "holdout_size": n,
    }


def describe_noise(noise: dict) -> str:
    """One line on a run's evaluation noise (:func:`evaluation_noise`)."""
    accs = ", ".join(f"{a:.3f}" for a in noise["holdout_accuracies"])
    se = (
        f"; binomial SE on {noise['holdout_size']} images {noise['binomial_se']:.3f}"
        if noise.get("binomial_se")
        else ""
    )
    return (
        f"std {noise['std']:.3f} over {len(noise['holdout_accuracies'])} fine-tunes of {noise['proposal']} "
        f"({accs}){se}"
    )


def describe_step(step: dict) -> list[str]:
    """The lines a run prints after a step: its pick, predicted ms, accuracy, the proposals' spread
    of holdout accuracy, the halved step if it was, and at step 0 the evaluation noise."""
    c = step["chosen"]
    halved = f", step halved {step['halvings']}x to {step['step_ms']:.3f} ms" if step["halvings"] else ""
    lines = [
        f"step {step['step']}: {c['kind']} {c['key']}->{c['width']} {step['predicted_ms']:.3f} ms, "
        f"acc {step['accuracy']:.3f} ({len(step['candidates'])} proposals, holdout accuracy spread "
        f"{step['accuracy_spread']:.3f}{halved})"
    ]
    if "noise" in step:
        lines.append(f"evaluation noise: {describe_noise(step['noise'])}")
    return lines


class _Stop(Exception):
    """A step found no cut: the run stops short with this reason."""


def _step(
    k: int,
    arch: ArchSpec,
    model: nn.Module,
    lat: float,
    acc_prev: float,
    seed_ms: float,
    task,
    predictor,
    config: NetAdaptConfig,
    pool=None,
) -> tuple[dict, ArchSpec, nn.Module]:
    """One NetAdapt step from ``arch`` at ``lat`` ms: ``(step record, new arch, new model)``;
    the proposals fine-tuned on ``pool`` when given (see :func:`_fine_tune_all`). Raises
    :class:`_Stop` with the reason when no channel cut lowers the predicted latency."""
    delta = config.delta_fraction * seed_ms * config.decay**k
    t0 = time.time()
    cands = candidates(arch)
    if not cands:
        raise _Stop("every prunable width is at its minimum (8 channels)")
    ms, extrapolated = _predict_proposals(predictor, [c[3] for c in cands], first=k == 0)
    best, step_ms, halvings = meeting_proposals(
        cands, ms, lat, delta, config.min_proposals, MIN_GAIN_FRACTION * seed_ms
    )
    if not best:
        raise _Stop(
            f"no channel cut lowers the predicted latency below {lat:.3f} ms "
            f"(by more than {MIN_GAIN_FRACTION * seed_ms * 1e3:.2f} us)"
        )
    considered, chosen = [], None
    proposals = sorted(best.items())
    parent, parent_model = arch, model
    tuned = _fine_tune_all(model, arch, proposals, task, config, k, pool)
    for ((kind, key), (new, cand, m)), (net, a) in zip(proposals, tuned):
        rec = {
            "kind": kind,
            "key": int(key),
            "width": int(new),
            "predicted_ms": m,
            "holdout_accuracy": a,
            "score": _score(config.criterion, a, acc_prev, lat - m),
        }
        considered.append(rec)
        if chosen is None or rec["score"] > chosen[0]["score"]:
            chosen = (rec, cand, net, ((kind, key), (new, cand, m)))
    rec, arch, model, pick = chosen
    accs = [c["holdout_accuracy"] for c in considered]
    step = {
        "step": k,
        "delta_ms": delta,
        "step_ms": step_ms,
        "halvings": halvings,
        "goal_ms": lat - step_ms,
        "chosen": rec,
        "predicted_ms": rec["predicted_ms"],
        "holdout_accuracy": rec["holdout_accuracy"],
        "accuracy": task.accuracy(model),
        "accuracy_spread": max(accs) - min(accs),
        "params": summary(arch)["params"],
        "arch": encode(arch),
        "candidates": considered,
        "n_predicted": len(cands),
        "seconds": time.time() - t0,
    }
    if k == 0 and config.noise_repeats:
        step["noise"] = evaluation_noise(parent_model, parent, pick, rec["holdout_accuracy"], task, config, k)
    if extrapolated:
        step["extrapolated"] = extrapolated
    return step, arch, model


def _finish(
    out: Path,
    hist: dict,
    arch: ArchSpec,
    model: nn.Module,
    task,
    predictor,
    config: NetAdaptConfig,
    stopped: str | None,
) -> None:
    """Long-term fine-tune, then record the final network (weights, arch.json, history); a run that
    stopped short of its target records why (``stopped``) beside what it reached."""
    acc_before = hist["steps"][-1]["accuracy"] if hist["steps"] else hist["seed"]["accuracy"]
    task.fine_tune(model, config.long_steps, seed=config.seed + 10_000, desc="long-term fine-tune")
    ms = float(predictor.predict(arch))
    s = summary(arch)
    reached = bool(ms <= config.target_ms)
    hist["final"] = {
        "predicted_ms": ms,
        "accuracy_before_long": acc_before,
        "accuracy": task.accuracy(model),
        "params": s["params"],
        "madds": s["madds"],
        "arch": encode(arch),
        "target_ms": config.target_ms,
        "reached_target": reached,
        "stopped": None if reached else stopped,
    }
    hist["weights"] = _save_weights(out, model, "final")
    atomic_write_text(out / "arch.json", arch.to_json())
    _commit(out, hist)


def outcome(hist: dict) -> str:
    """One line: what a finished run reached, its target, and why it stopped short if it did."""
    fin, seed = hist["final"], hist["seed"]
    n = len(hist["steps"])
    reached = (
        f"{fin['predicted_ms']:.3f} ms predicted ({fin['predicted_ms'] / seed['predicted_ms']:.2f} of "
        f"the seed's {seed['predicted_ms']:.3f} ms) in {n} step{'s' * (n != 1)}"
    )
    target = fin.get("target_ms", hist["config"]["target_ms"])
    if fin["reached_target"]:
        return f"NetAdapt reached its target {target:.3f} ms: {reached}"
    return f"NetAdapt stopped short of its target {target:.3f} ms at {reached}: {fin.get('stopped')}"


def netadapt(
    seed_arch: ArchSpec,
    seed_model: nn.Module | None,
    task,
    predictor,
    config: NetAdaptConfig,
    out_dir: str | Path,
    callback: Callable[[dict], None] | None = None,
    seed_train_steps: int | None = None,
    pool=None,
) -> NetAdaptResult:
    """Run (or resume) NetAdapt from ``seed_arch`` down to ``config.target_ms`` predicted latency.

    ``seed_model`` is the trained seed; None trains it from scratch with ``task.train``.
    ``callback(step_record)`` is called after every step. A run never dead-ends on its schedule
    (see :class:`NetAdaptConfig`): one that cannot go on (no cut lowers the predicted latency, or
    ``max_steps``) stops short, keeps its last network, fine-tunes it long-term and writes
    ``final`` with ``reached_target`` False and the reason in ``stopped`` (:func:`outcome` says it
    in one line). A target at or above the seed's prediction, or below what channel cuts can reach
    (:func:`channel_floor`), fails before anything is trained. With a
    ``pool`` (:class:`hwlat.search.parallel.RayPool`) the proposals of a step are fine-tuned in
    parallel, with the seeds of the serial run: the result is the same.
    """
    out = H.out_dir(out_dir)
    seed_arch = validate(seed_arch)
    hist = _resume(out, encode(seed_arch), dataclasses.asdict(config))
    if hist is None:
        floor = channel_floor(seed_arch, predictor)
        floor.check(config.target_ms)
        hist, model = _start(
            out, seed_arch, seed_model, task, floor, dataclasses.asdict(config), seed_train_steps
        )
        arch = seed_arch
    else:
        arch, model = _load_weights(out, hist)
        _remove_stale_weights(out, hist)  # a run killed after writing weights, before the history
        if hist["final"] is not None:
            return NetAdaptResult(arch, model, hist)
    seed_ms = hist["seed"]["predicted_ms"]
    stopped = None
    while True:
        steps = hist["steps"]
        lat = steps[-1]["predicted_ms"] if steps else seed_ms
        if lat <= config.target_ms:
            break
        if len(steps) >= config.max_steps:
            stopped = f"max_steps ({config.max_steps}) reached"
            break
        prev = steps[-1] if steps else hist["seed"]
        acc_prev = prev.get("holdout_accuracy", prev["accuracy"])
        try:
            step, arch, model = _step(
                len(steps), arch, model, lat, acc_prev, seed_ms, task, predictor, config, pool
            )
        except _Stop as e:
            stopped = str(e)
            break
        steps.append(step)
        hist["current_arch"] = arch.to_dict()
        hist["weights"] = _save_weights(out, model, f"step_{step['step']:04d}")
        _commit(out, hist)
        if callback:
            callback(step)
    _finish(out, hist, arch, model, task, predictor, config, stopped)
    return NetAdaptResult(arch, model, hist)


def measure_litert_side_by_side(
    archs: Sequence[ArchSpec], store_path: str | Path, repeats: int = 3, **timing
) -> list[float]:
    """LiteRT latency (ms) of each of ``archs`` on this machine, all timed in one interleaved batch
    (the same rounds, so a slow phase of the machine hits them alike) in ``repeats`` passes of fresh
    interpreters; each value is its latency in the store (the median of its repeats' low
    quantiles). Stored in ``store_path``; a network already stored there keeps its stored value."""
    from hwlat.archs.pieces import model as model_workload
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.timing import TimingConfig
    from hwlat.profiler.storage.store import open_store

    archs = list(archs)
    profile(
        archs,
        "model",
        str(store_path),
        "litert",
        config=TimingConfig(**timing),
        batch=len(archs),
        repeats=repeats,
        progress=False,
    )
    with open_store(store_path, readonly=True) as st:
        df = st.frame(runtime="litert")
    ms = dict(zip(df["key"], df["latency_ms"]))
    out = []
    for a in archs:
        key = model_workload(a).key
        if key not in ms:
            raise ValueError(f"{store_path}: no LiteRT measurement of {a.name} (did the runtime fail?)")
        out.append(float(ms[key]))
    return out


def record_result(out_dir: str | Path, **fields) -> dict:
    """Add ``fields`` to the finished run's ``final`` record in ``DIR/history.json`` (atomically),
    e.g. ``measured_ms`` of the final network; returns the history."""
    hpath = Path(out_dir) / "history.json"
    hist = H.read(hpath, "netadapt")
    if not hist or not hist.get("final"):
        raise ValueError(f"{hpath}: no finished run to add a measurement to")
    hist["final"].update(fields)
    H.write(hpath, hist)
    return hist


def record_measured(out_dir: str | Path, ms: float) -> dict:
    """Add the final network's measured latency (ms) to ``DIR/history.json`` (atomically)."""
    return record_result(out_dir, measured_ms=float(ms))


def record_baseline(out_dir: str | Path, name: str, rec: dict) -> dict:
    """Store a baseline beside the run (e.g. ``"uniform"`` width scaling: ``predicted_ms``,
    ``accuracy``, optional ``measured_ms``) in ``DIR/history.json``, for the report."""
    hpath = Path(out_dir) / "history.json"
    hist = H.read(hpath, "netadapt")
    if not hist:
        raise ValueError(f"{hpath}: no NetAdapt run to add a baseline to")
    hist.setdefault("baselines", {})[name] = rec
    H.write(hpath, hist)
    return hist
