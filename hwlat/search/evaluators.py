"""Accuracy evaluators behind one protocol: ``evaluate(arch, model=None) -> accuracy in [0, 1]``.

- :class:`DigitsTask` — scikit-learn's bundled handwritten digits (1797 images, 8x8, 10 classes),
  upsampled to ``resolution`` and replicated to 3 channels, with a fixed seeded 80/20 split.
- :class:`ImageFolderTask` — a folder of class subfolders of images (the user's own data, e.g. an
  ImageNet subset), loaded with PIL + numpy, augmented without torchvision.
- :class:`PublishedTable` — the paper's published ImageNet top-1 for zoo architectures (Table 9,
  then Table 3). These are *published numbers*, never measurements of this machine.

Trainable tasks share :meth:`TrainableTask.train` (from scratch, ``scratch_steps``),
:meth:`~TrainableTask.fine_tune` (short-term ``T`` or long-term steps) and :meth:`~TrainableTask.accuracy`.
Everything is deterministic for a seed (torch.manual_seed, seeded batch order and augmentation).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwlat.archs.ir import ArchSpec
from hwlat.archs.layers import validate

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class Evaluator(Protocol):
    """What NetAdapt and NAS need from an accuracy source."""

    name: str
    num_classes: int
    resolution: int

    def evaluate(self, arch: ArchSpec, model: nn.Module | None = None) -> float:
        """Accuracy in [0, 1] of ``arch`` (trained from scratch) or of the given trained ``model``."""
        ...


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)


class TrainableTask:
    """A classification dataset held in memory as float tensors, with training and evaluation.

    Subclasses fill ``train_x`` (N, 3, R, R), ``train_y``, ``val_x``, ``val_y``, then call
    :meth:`_hold_out` (``holdout_fraction`` of the training split ranks NetAdapt's proposals).
    """

    name = "task"
    flip = False  # horizontal flip augmentation (wrong for digits)

    def __init__(
        self,
        resolution: int,
        num_classes: int,
        *,
        scratch_steps: int = 300,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        seed: int = 0,
        shift: int = 2,
        progress: bool = False,
        threads: int | None = 1,
        bn_batches: int = 8,
    ):
        if resolution < 8:
            raise ValueError(f"resolution must be at least 8 pixels, got {resolution}")
        self.resolution, self.num_classes = int(resolution), int(num_classes)
        self.scratch_steps, self.batch_size, self.lr = int(scratch_steps), int(batch_size), float(lr)
        self.weight_decay, self.seed, self.shift, self.progress = (
            weight_decay,
            int(seed),
            int(shift),
            progress,
        )
        self.threads, self.bn_batches = threads, int(bn_batches)

    # -- architecture ------------------------------------------------------------------------
    def adapt(self, arch: ArchSpec) -> ArchSpec:
        """``arch`` with this task's classes and resolution (what is trained and what latency is predicted for)."""
        return validate(dataclasses.replace(arch, num_classes=self.num_classes, resolution=self.resolution))

    def _check(self, arch: ArchSpec) -> None:
        if arch.num_classes != self.num_classes:
            raise ValueError(
                f"{arch.name}: {arch.num_classes} classes, task {self.name!r} has "
                f"{self.num_classes} (use task.adapt(arch))"
            )

    # -- training ----------------------------------------------------------------------------
    def _batch(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.train_y)
        idx = torch.randint(0, n, (min(self.batch_size, n),), generator=gen)
        x, y = self.train_x[idx], self.train_y[idx]
        if self.shift > 0:  # random translation by up to `shift` pixels (zero padding)
            s = self.shift
            xp = F.pad(x, (s, s, s, s))
            dx = torch.randint(0, 2 * s + 1, (len(x),), generator=gen)
            dy = torch.randint(0, 2 * s + 1, (len(x),), generator=gen)
            ar = torch.arange(self.resolution)
            rows, cols = (dy[:, None] + ar)[:, None, :, None], (dx[:, None] + ar)[:, None, None, :]
            x = xp[
                torch.arange(len(x))[:, None, None, None],
                torch.arange(x.shape[1])[None, :, None, None],
                rows,
                cols,
            ]
        if self.flip:
            f = torch.rand(len(x), generator=gen) < 0.5
            x = torch.where(f[:, None, None, None], x.flip(3), x)
        return x, y

    def fine_tune(
        self,
        model: nn.Module,
        steps: int,
        *,
        seed: int | None = None,
        lr: float | None = None,
        desc: str = "fine-tune",
    ) -> nn.Module:
        """Train ``model`` in place for ``steps`` minibatch steps (Adam, cosine decay); return it."""
        seed = self.seed if seed is None else seed
        if steps <= 0:
            return model
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            opt = torch.optim.Adam(model.parameters(), lr=lr or self.lr, weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            model.train()
            for _ in _progress(range(steps), self.progress, desc):
                x, y = self._batch(gen)
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            self.recalibrate_bn(model)
        finally:
            torch.set_num_threads(old_threads)
        return model

    @torch.no_grad()
    def recalibrate_bn(self, model: nn.Module, batches: int | None = None) -> nn.Module:
        """Recompute BatchNorm running statistics on training images (cumulative average).

        The TF-style BN momentum (0.01) barely moves in a few hundred steps, so short fine-tunes
        are evaluated with recalibrated statistics; returns ``model`` in eval mode.
        """
        batches = self.bn_batches if batches is None else batches
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        n = len(self.train_y)
        bs = max(1, min(256, n))
        for i in range(min(batches, -(-n // bs))):
            model(self.train_x[i * bs : (i + 1) * bs])
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.eval()
        return model

    def fastest_threads(self, arch: ArchSpec, choices: tuple[int, ...] | None = None, steps: int = 3) -> int:
        """The torch thread count (of ``choices``, default 1 up to the cores this process may use)
        that trains ``arch`` fastest on this host now: ``steps`` minibatch steps each, after one
        warm-up step, timed interleaved twice. A core busy with other work makes more threads
        slower, not faster, so this is measured rather than assumed."""
        import os
        import time

        from hwlat.archs.torch_builder import build_torch

        choices = choices or tuple(range(1, len(os.sched_getaffinity(0)) + 1))
        if len(choices) == 1:
            return choices[0]
        self._check(arch)
        model = build_torch(arch, seed=self.seed).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # timing only: the weights stay as they are
        gen = torch.Generator().manual_seed(self.seed)
        old = torch.get_num_threads()
        best: dict[int, float] = {}
        try:
            for _ in range(2):
                for n in choices:
                    torch.set_num_threads(n)
                    for i in range(steps + 1):
                        if i == 1:
                            t0 = time.perf_counter()
                        x, y = self._batch(gen)
                        F.cross_entropy(model(x), y).backward()
                        opt.step()
                        opt.zero_grad(set_to_none=True)
                    best[n] = min(best.get(n, float("inf")), time.perf_counter() - t0)
        finally:
            torch.set_num_threads(old)
        return min(best, key=best.get)

    def train(self, arch: ArchSpec, steps: int | None = None, *, seed: int | None = None) -> nn.Module:
        """A freshly initialised model of ``arch`` trained from scratch for ``steps`` (default ``scratch_steps``)."""
        from hwlat.archs.torch_builder import build_torch

        self._check(arch)
        seed = self.seed if seed is None else seed
        model = build_torch(arch, seed=seed)
        return self.fine_tune(
            model, self.scratch_steps if steps is None else steps, seed=seed, desc=f"train {arch.name}"
        )

    @staticmethod
    @torch.no_grad()
    def _top1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        correct = 0
        for i in range(0, len(y), 256):
            correct += int((model(x[i : i + 256]).argmax(1) == y[i : i + 256]).sum())
        return correct / max(1, len(y))

    def accuracy(self, model: nn.Module) -> float:
        """Top-1 accuracy on the validation split (eval mode)."""
        return self._top1(model, self.val_x, self.val_y)

    def _hold_out(self, fraction: float, seed: int) -> None:
        """Move a seeded ``fraction`` of the training split into a holdout set, on which
        :meth:`holdout_accuracy` ranks NetAdapt's proposals (the NetAdapt paper's holdout from the
        training set), so the choice never looks at the validation split; 0 keeps no holdout."""
        if not 0 <= fraction < 1:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {fraction}")
        if fraction == 0 or len(self.train_y) < 2:
            self.holdout_x, self.holdout_y, self.holdout_name = self.val_x, self.val_y, "the validation split"
            return
        keep, hold = _split(len(self.train_y), fraction, seed + 1)
        self.holdout_x, self.holdout_y = self.train_x[hold], self.train_y[hold]
        self.train_x, self.train_y = self.train_x[keep], self.train_y[keep]
        self.holdout_name = f"a holdout of {len(hold)} training images"

    def holdout_accuracy(self, model: nn.Module) -> float:
        """Top-1 accuracy on the holdout set (the validation split when the task keeps none)."""
        return self._top1(model, self.holdout_x, self.holdout_y)

    def evaluate(self, arch: ArchSpec, model: nn.Module | None = None) -> float:
        if model is None:
            model = self.train(arch)
        return self.accuracy(model)


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return perm[n_val:], perm[:n_val]


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6)


class DigitsTask(TrainableTask):
    """scikit-learn's handwritten digits, 8x8 upsampled (bilinear) to ``resolution``, 3 channels."""

    name = "digits"

    def __init__(
        self,
        resolution: int = 32,
        *,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        holdout_fraction: float = 0.0,
        **kw,
    ):
        from sklearn.datasets import load_digits

        super().__init__(resolution, 10, **kw)
        d = load_digits()
        x = torch.from_numpy(_normalise(d.images.astype(np.float32) / 16.0))[:, None]
        x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        x = x.expand(-1, 3, -1, -1).contiguous()
        y = torch.from_numpy(d.target.astype(np.int64))
        tr, va = _split(len(y), val_fraction, split_seed)
        self.train_x, self.train_y = x[tr], y[tr]
        self.val_x, self.val_y = x[va], y[va]
        self._hold_out(holdout_fraction, split_seed)
        self.shift = max(0, min(self.shift, self.resolution // 8))


class ImageFolderTask(TrainableTask):
    """``root/<class>/<image>`` loaded with PIL, resized to ``resolution`` (squashed), RGB.

    Classes are the sorted subfolder names; a seeded ``val_fraction`` of the images is held out.
    Augmentation: random translation and horizontal flip. An empty folder, a folder without
    class subfolders or an unreadable image raises ``ValueError`` naming it.
    """

    name = "imagefolder"
    flip = True

    def __init__(
        self,
        root: str | Path,
        resolution: int = 64,
        *,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        holdout_fraction: float = 0.0,
        **kw,
    ):
        from PIL import Image, UnidentifiedImageError

        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"{root}: dataset folder does not exist (expected <folder>/<class>/<images>)")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(classes) < 2:
            raise ValueError(f"{root}: need at least 2 class subfolders of images, found {len(classes)}")
        files, labels = [], []
        for ci, c in enumerate(classes):
            fs = sorted(p for p in (root / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not fs:
                raise ValueError(f"{root / c}: class folder has no images ({', '.join(IMAGE_SUFFIXES)})")
            files += fs
            labels += [ci] * len(fs)
        super().__init__(resolution, len(classes), **kw)
        self.classes = classes
        arrs = []
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("RGB").resize((self.resolution, self.resolution), Image.BILINEAR)
                    arrs.append(np.asarray(im, dtype=np.float32) / 255.0)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                raise ValueError(f"{f}: corrupt or unreadable image ({e})") from None
        x = np.stack(arrs).transpose(0, 3, 1, 2)
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        std = x.std(axis=(0, 2, 3), keepdims=True) + 1e-6
        x = torch.from_numpy(((x - mean) / std).astype(np.float32))
        y = torch.tensor(labels, dtype=torch.int64)
        if len(y) < 2:
            raise ValueError(f"{root}: need at least 2 images")
        tr, va = _split(len(y), val_fraction, split_seed)
        self.train_x, self.train_y = x[tr], y[tr]
        self.val_x, self.val_y = x[va], y[va]
        self._hold_out(holdout_fraction, split_seed)


class PublishedTable:
    """ImageNet top-1 published in the paper (arXiv:1905.02244v5 Table 9, then Table 3).

    PUBLISHED numbers for zoo architectures at the published resolution; no training happens and
    ``model`` is ignored. Anything not in the tables raises ``ValueError``.
    """

    name = "published"
    num_classes = 1000
    resolution = 224
    label = "published ImageNet top-1 (arXiv:1905.02244v5 Tables 9/3), not measured here"

    def __init__(self):
        from hwlat.paper import paper_tables, paper_zoo_name

        table = {}
        for t in ("Table9", "Table3"):
            tab = paper_tables(t)
            for r in tab[tab["metric"] == "top1"].itertuples():
                name = paper_zoo_name(r.model, r.multiplier)
                if name:
                    table.setdefault((name, int(r.resolution)), float(r.value) / 100)
        self.table = table

    def evaluate(self, arch: ArchSpec, model: nn.Module | None = None) -> float:
        key = (arch.name, int(arch.resolution))
        if key not in self.table:
            known = ", ".join(f"{n}@{r}" for n, r in sorted(self.table))
            raise ValueError(
                f"no published ImageNet top-1 for {arch.name!r} at {arch.resolution} px (published: {known})"
            )
        return self.table[key]


def make_task(spec: str, resolution: int | None = None, **kw) -> TrainableTask:
    """``"digits"`` or a dataset folder path → a trainable task."""
    if spec == "digits":
        return DigitsTask(resolution or 32, **kw)
    if spec == "published":
        raise ValueError("the published table cannot train or fine-tune; use --task digits or a folder")
    return ImageFolderTask(spec, resolution or 64, **kw)
