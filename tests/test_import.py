"""Importing model files into the IR: round trips through three producers, refusals, partial imports.

Producers: hwlat's TFLite exporter (float and int8), hwlat's ONNX exporter, and ``torch.onnx.export``
of the PyTorch builder (BatchNorm not folded, eval mode, opset 17: decomposed activations and
BatchNorm folded by the exporter). A round trip must give back the same network up to what a graph
cannot show (:func:`hwlat.archs.importer.canonical`).
"""

from __future__ import annotations

import io
import time
import warnings

import numpy as np
import pytest
import torch

from hwlat.archs import get_arch, get_space, import_file, task_names, zoo_names
from hwlat.archs.importer import canonical, from_onnx, from_tflite, from_torch, import_onnx, same_arch
from hwlat.archs.ir import SkipSpec
from hwlat.archs.torch_builder import build_torch
from hwlat.errors import HwlatError, UnsupportedGraphError
from hwlat.profiler.export.onnx import build_onnx
from hwlat.profiler.export.tflite import build_tflite


def _torch_onnx(arch) -> bytes:
    net = build_torch(arch).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, arch.in_channels, *arch.hw),),
            buf,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
        )
    return buf.getvalue()


PRODUCERS = {
    "tflite": lambda a: from_tflite(build_tflite(a)),
    "tflite_int8": lambda a: from_tflite(build_tflite(a, quantize="int8")),
    "onnx": lambda a: from_onnx(build_onnx(a)),
    "torch": lambda a: from_onnx(_torch_onnx(a)),
}


def _check(arch, producer: str) -> None:
    got = PRODUCERS[producer](arch)
    assert same_arch(got, arch), (producer, canonical(got, True), canonical(arch, True))


@pytest.mark.parametrize("producer", ["tflite", "onnx", "torch"])
@pytest.mark.parametrize(
    "name", ["mobilenetv3_large_100", "mobilenetv3_small_075", "mobilenetv2_035", "mnasnet_a1"]
)
def test_zoo_round_trip(name, producer):
    _check(get_arch(name, resolution=96), producer)


@pytest.mark.parametrize("producer", ["tflite", "tflite_int8", "onnx", "torch"])
@pytest.mark.parametrize("space", ["large", "small", "fbnet_cifar100", "fbnet_imagenet"])
def test_space_samples_round_trip(space, producer):
    sp = get_space(space)
    rng = np.random.default_rng(7)
    for _ in range(2):
        arch = sp.sample_arch(rng)
        if space in ("large", "small", "fbnet_imagenet"):
            arch = arch.with_resolution(64)
        _check(arch, producer)


@pytest.mark.parametrize("producer", ["tflite", "onnx", "torch"])
@pytest.mark.parametrize("name", ["ssdlite_mobilenetv3_small", "lraspp_mobilenetv3_small_reduced"])
def test_task_round_trip(name, producer):
    arch = get_arch(name)
    arch = arch.with_resolution(320 if "ssd" in name else (128, 256))
    _check(arch, producer)


def test_fbnet_grouped_shuffle_and_skip_are_recognised():
    sp = get_space("fbnet_cifar100")
    # k3_e1_g2 everywhere but a skip conv (stride 2, width change) and an identity skip
    v = [1] * len(sp.dims)
    v[5], v[6] = 8, 8  # stage 2's first layer (stride 2, 24->32) is a skip conv; the next an identity
    arch = sp.decode(v)
    got = from_tflite(build_tflite(arch))
    assert same_arch(got, arch)
    assert any(isinstance(b, SkipSpec) for b in got.blocks)
    assert any(getattr(b, "groups", 1) == 2 for b in got.blocks)
    assert len(got.blocks) == len(arch.blocks) - 1  # the identity skip computes nothing


def test_import_file_by_suffix_and_magic(tmp_path):
    arch = get_arch("mobilenetv3_small_100", resolution=64)
    (tmp_path / "m.tflite").write_bytes(build_tflite(arch))
    (tmp_path / "m.onnx").write_bytes(build_onnx(arch))
    (tmp_path / "noext").write_bytes(build_tflite(arch))
    for name, fmt in (("m.tflite", "tflite"), ("m.onnx", "onnx"), ("noext", "tflite")):
        im = import_file(tmp_path / name)
        assert im.format == fmt and same_arch(im.arch, arch)
        assert im.complete
        layers_named = {r["layer"] for r in im.rows if r["layer"]}
        assert {"stem", "blocks.0.dw", "blocks.0.se.scale", "head.conv", "classifier"} <= layers_named
    im = import_file(tmp_path / "m.onnx")
    assert all(set(r) == {"node", "op", "layer", "partial"} for r in im.rows)
    assert len(im.rows) == len(__import__("onnx").load(str(tmp_path / "m.onnx")).graph.node)


def test_from_torch():
    arch = get_arch("mobilenetv3_small_100", resolution=64)
    assert same_arch(from_torch(build_torch(arch), (1, 3, 64, 64)), arch)


def test_resolution_and_classes_come_from_the_graph():
    arch = get_arch("mobilenetv3_small_100", resolution=(96, 128), num_classes=10)
    got = from_tflite(build_tflite(arch))
    assert got.resolution == (96, 128) and got.num_classes == 10


class _Attention(torch.nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.q, self.k, self.v = (torch.nn.Linear(d, d) for _ in range(3))

    def forward(self, x):
        a = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) / 8.0, dim=-1)
        return a @ self.v(x)


def _attention_onnx(tmp_path):
    path = tmp_path / "attn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Attention().eval(), (torch.zeros(1, 16, 64),), str(path), dynamo=False, opset_version=17
        )
    return path


def test_transformer_block_is_refused_in_one_line(tmp_path):
    path = _attention_onnx(tmp_path)
    with pytest.raises(UnsupportedGraphError) as e:
        import_file(path)
    msg = str(e.value)
    assert isinstance(e.value, HwlatError) and isinstance(e.value, ValueError)
    assert "\n" not in msg and msg.startswith("attn.onnx: node ")
    assert "MatMul" in msg and "1x16x64" in msg and "the IR has no attention" in msg


def test_allow_partial_lists_what_cannot_be_placed(tmp_path):
    im = import_file(_attention_onnx(tmp_path), allow_partial=True)
    assert im.arch is None and not im.complete
    assert any(r["partial"] for r in im.rows)
    # a classifier whose last stage uses an op the IR lacks (a max pool): the backbone is placed
    arch = get_arch("mobilenetv3_small_100", resolution=64)
    net = build_torch(arch).eval()
    net.pool = torch.nn.AdaptiveMaxPool2d(1)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), buf, dynamo=False, opset_version=17)
    with pytest.raises(
        UnsupportedGraphError,
        match=r"node /pool/MaxPool \(MaxPool, inputs 1x576x2x2\).*the IR has no max pooling",
    ):
        import_onnx(buf.getvalue())
    im = import_onnx(buf.getvalue(), allow_partial=True)
    placed = {r["layer"] for r in im.rows if r["layer"]}
    assert "blocks.10.project" in placed
    bad = [r for r in im.rows if r["partial"]]
    assert bad and bad[0]["op"] == "MaxPool"


def test_asymmetric_padding_is_refused():
    from hwlat.archs.importer.onnx_front import read_onnx  # noqa: F401

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pad = torch.nn.ZeroPad2d((0, 1, 0, 1))
            self.conv = torch.nn.Conv2d(3, 8, 3, 2)

        def forward(self, x):
            return self.conv(self.pad(x))

    with pytest.raises(UnsupportedGraphError, match="symmetric"):
        from_torch(Net(), (1, 3, 32, 32))


# --- the whole zoo and many samples (slow) --------------------------------------------------------

BUDGET_S = 170.0


@pytest.mark.slow
def test_every_zoo_and_task_network_round_trips():
    for name in zoo_names():
        for p in ("tflite", "onnx", "torch"):
            _check(get_arch(name), p)
        _check(get_arch(name), "tflite_int8")
    for name in task_names():
        for p in ("tflite", "onnx", "torch"):
            _check(get_arch(name), p)


@pytest.mark.slow
def test_many_space_samples_round_trip_within_budget():
    """Round-robin over spaces and producers until the time budget; every one must round-trip."""
    spaces = ("large", "small", "fbnet_cifar100", "fbnet_imagenet")
    rngs = {s: np.random.default_rng(100 + i) for i, s in enumerate(spaces)}
    counts = {(s, p): 0 for s in spaces for p in PRODUCERS}
    start = time.monotonic()
    while time.monotonic() - start < BUDGET_S:
        for s in spaces:
            arch = get_space(s).sample_arch(rngs[s])
            for p in PRODUCERS:
                _check(arch, p)
                counts[(s, p)] += 1
    print("round trips per (space, producer):", counts)
    assert min(counts.values()) >= 3
