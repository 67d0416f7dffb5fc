"""Build a PyTorch ``nn.Module`` from an :class:`ArchSpec`, layer by layer from :func:`layers`.

The module's parameter count equals the analytic count of :mod:`hwlat.archs.layers`. Input is
NCHW float32 at the network's resolution (a classifier takes any resolution it can downsample);
output is ``(N, num_classes)`` logits, or for a task-head network its ``outputs`` in order (one
tensor, or a tuple of several), each NCHW with the row's ``(C, H, W)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from hwlat.archs.ir import Act, ArchSpec, SkipSpec
from hwlat.archs.layers import LayerSpec, OpKind, layers

_ACT_MODULES = {
    Act.RELU: nn.ReLU,
    Act.RELU6: nn.ReLU6,
    Act.HSWISH: nn.Hardswish,
    Act.HSIGMOID: nn.Hardsigmoid,
    Act.SWISH: nn.SiLU,
    Act.SIGMOID: nn.Sigmoid,
    Act.IDENTITY: nn.Identity,
}
# BatchNorm settings of the TF-slim / torchvision MobileNetV3 (eps 1e-3, momentum 0.01).
BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def act_module(act: Act) -> nn.Module:
    return _ACT_MODULES[act]()


class ConvBNAct(nn.Sequential):
    """Conv2d (+ BatchNorm) + activation for one conv row of the layer table."""

    def __init__(self, row: LayerSpec):
        pad = row.dilation * (row.kernel - 1) // 2
        mods: list[nn.Module] = [
            nn.Conv2d(row.cin, row.cout, row.kernel, row.stride, pad, row.dilation, row.groups, bias=row.bias)
        ]
        if row.bn:
            mods.append(nn.BatchNorm2d(row.cout, eps=BN_EPS, momentum=BN_MOMENTUM))
        mods.append(act_module(row.act))
        super().__init__(*mods)


class SqueezeExcite(nn.Module):
    """Global mean → 1×1 reduce (+bias, act) → 1×1 expand (+bias, gate) → channel-wise scale."""

    def __init__(self, reduce: LayerSpec, expand: LayerSpec):
        super().__init__()
        self.reduce = ConvBNAct(reduce)
        self.expand = ConvBNAct(expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.expand(self.reduce(s))


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: ``(N, g·c, H, W)`` → view ``(N, g, c, H, W)`` → swap g and c
    → ``(N, c·g, H, W)``; output channel ``j·g + i`` is input channel ``i·c + j``."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class AvgPool(nn.AvgPool2d):
    """Average pooling of a task-head row (VALID, kernel and stride possibly non-square)."""

    def __init__(self, row: LayerSpec):
        super().__init__(row.kernel, row.stride)


class Resize(nn.Module):
    """Bilinear resize to the row's output size (half-pixel centres: ``align_corners=False``)."""

    def __init__(self, row: LayerSpec):
        super().__init__()
        self.size = tuple(row.out_shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)


class Anchors(nn.Module):
    """SSD predictor layout: ``(N, A·k, H, W)`` → ``(N, k, 1, H·W·A)``, position-major then
    anchor (the NHWC reshape to ``[N, H·W·A, k]``, stored channels-first)."""

    def __init__(self, row: LayerSpec):
        super().__init__()
        self.k = row.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        return x.permute(0, 2, 3, 1).reshape(n, -1, self.k).permute(0, 2, 1).unsqueeze(2)


class Combine(nn.Module):
    """The multi-input task-head rows: gate multiplication (broadcast), addition, concatenation
    (along channels, or along W when the channel count is unchanged)."""

    def __init__(self, row: LayerSpec):
        super().__init__()
        self.op = row.op
        self.dim = 1 if row.cout != row.cin else 3

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op is OpKind.MUL:
            return xs[0] * xs[1]
        if self.op is OpKind.ADD:
            return xs[0] + xs[1]
        return torch.cat(xs, dim=self.dim)


def task_module(row: LayerSpec) -> nn.Module:
    """The module of a weightless task-head row (avgpool, resize, anchors, mul, add, concat)."""
    kinds = {
        OpKind.AVGPOOL: AvgPool,
        OpKind.RESIZE: Resize,
        OpKind.ANCHORS: Anchors,
        OpKind.MUL: Combine,
        OpKind.ADD: Combine,
        OpKind.CONCAT: Combine,
    }
    if row.op not in kinds:
        raise ValueError(f"{row.name}: op {row.op.value!r} is not a task-head op")
    return kinds[row.op](row)


class InvertedResidual(nn.Module):
    """One bottleneck, built from its rows of the layer table."""

    def __init__(self, rows: list[LayerSpec]):
        super().__init__()
        by = {r.name.split(".", 2)[2]: r for r in rows}
        self.expand = ConvBNAct(by["expand"]) if "expand" in by else nn.Identity()
        self.shuffle = ChannelShuffle(by["shuffle"].groups) if "shuffle" in by else nn.Identity()
        self.dw = ConvBNAct(by["dw"])
        self.se = SqueezeExcite(by["se.reduce"], by["se.expand"]) if "se.reduce" in by else nn.Identity()
        self.project = ConvBNAct(by["project"])
        self.residual = "add" in by

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.shuffle(self.expand(x)))))
        return x + y if self.residual else y

    def forward_named(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The output and the tensors of its steps by role (``expand``, ``dw``, ``se.scale``...)."""
        t: dict[str, torch.Tensor] = {}
        y = t["expand"] = self.expand(x)
        y = t["shuffle"] = self.shuffle(y)
        y = t["dw"] = self.dw(y)
        y = t["se.scale"] = self.se(y)
        y = t["project"] = self.project(y)
        if self.residual:
            y = t["add"] = x + y
        return y, t


class Skip(nn.Module):
    """FBNet's skip layer: the identity (no rows), or its 1×1 conv + BN + activation (``conv``)."""

    def __init__(self, rows: list[LayerSpec]):
        super().__init__()
        self.conv = ConvBNAct(rows[0]) if rows else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Net(nn.Module):
    """``stem → blocks → head`` with ``features`` (stem + blocks) exposed for feature extraction."""

    def __init__(self, arch: ArchSpec):
        super().__init__()
        rows = layers(arch)
        stem = [r for r in rows if r.stage == "stem"]
        block_rows: list[list[LayerSpec]] = [[] for _ in arch.blocks]
        for r in rows:
            if r.stage == "block":
                block_rows[r.block].append(r)
        head = {r.name: r for r in rows if r.stage == "head"}
        # one module per arch block, so features[i + 1] is block i (an identity skip included)
        blocks = [
            Skip(br) if isinstance(blk, SkipSpec) else InvertedResidual(br)
            for blk, br in zip(arch.blocks, block_rows)
        ]
        self.features = nn.Sequential(ConvBNAct(stem[0]), *blocks)
        self.arch = arch
        if arch.head is None:
            self._task_init(rows)
            return
        self.task_rows = ()
        self.head_conv = ConvBNAct(head["head.conv"]) if "head.conv" in head else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_hidden = ConvBNAct(head["head.hidden"]) if "head.hidden" in head else nn.Identity()
        self.dropout = nn.Dropout(arch.head.dropout)
        fc = head["classifier"]
        self.classifier = nn.Linear(fc.cin, fc.cout)
        self.arch = arch

    def _task_init(self, rows: tuple[LayerSpec, ...]) -> None:
        self.task_rows = tuple(r for r in rows if r.stage == "task")
        self.nodes = nn.ModuleDict(
            {
                key(r.name): ConvBNAct(r) if r.op in (OpKind.CONV, OpKind.DWCONV) else task_module(r)
                for r in self.task_rows
            }
        )
        self.needed = {x for r in self.task_rows for x in r.inputs}

    def forward(self, x: torch.Tensor):
        if self.task_rows:
            return self._forward_task(x)
        x = self.pool(self.head_conv(self.features(x)))
        x = self.head_hidden(x).flatten(1)
        return self.classifier(self.dropout(x))

    def _forward_task(self, x: torch.Tensor):
        env = {"input": x}
        x = self.features[0](x)
        env["stem"] = x
        for i, blk in enumerate(self.features[1:]):
            if isinstance(blk, InvertedResidual):
                x, named = blk.forward_named(x)
                env.update({n: v for role, v in named.items() if (n := f"blocks.{i}.{role}") in self.needed})
            else:
                x = env[f"blocks.{i}.conv"] = blk(x)
        for r in self.task_rows:
            env[r.name] = self.nodes[key(r.name)](*(env[n] for n in r.inputs))
        outs = tuple(env[name] for name in self.arch.outputs)
        return outs[0] if len(outs) == 1 else outs


def key(name: str) -> str:
    """A row name as a module key (``aspp.conv`` → ``aspp_conv``; ModuleDict keys have no dots)."""
    return name.replace(".", "_")


def build_torch(arch: ArchSpec, seed: int | None = 0) -> Net:
    """A randomly initialised ``nn.Module`` for ``arch`` (deterministic for a given ``seed``).

    Initialisation follows torchvision's MobileNetV3: Kaiming-normal convs (fan-out), BN to
    identity, Linear N(0, 0.01).
    """
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    net = Net(arch)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
            with torch.no_grad():
                m.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=gen)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, 0.01, generator=gen)
            nn.init.zeros_(m.bias)
    return net


def fold_bn(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with every Conv2d→BatchNorm2d pair folded into the conv.

    The copy is in eval mode; folded BatchNorms become ``nn.Identity``. Outputs match the original
    in eval mode up to float rounding.
    """
    model = copy.deepcopy(model).eval()
    for mod in model.modules():
        if not isinstance(mod, nn.Sequential):
            continue
        children = list(mod.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                _fold_into(conv, bn)
                setattr(mod, bn_name, nn.Identity())
    return model


@torch.no_grad()
def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bn.bias + (bias - bn.running_mean) * scale)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters of a torch module."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
