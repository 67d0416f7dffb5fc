"""Tolerances for comparing two floating-point evaluations of one computation, derived from the
dtype, the size of the values and the length of the reductions, not from what one CPU printed.

Two float32 pipelines that compute the same network (torch with AVX512, AVX2 or scalar ATen kernels,
BatchNorm folded or not, LiteRT with or without XNNPACK, ONNX Runtime) differ only in rounding: the
order in which each output's products are summed, FMA or not, how an activation is approximated.

* One output of a reduction of length ``K`` (a conv's ``cin/groups·k²`` products, a pooling
  window, a classifier's ``cin``) is a sum whose terms have random signs: it is ``~√K`` times a
  term, and ``K`` roundings of partial sums of that size perturb it by ``~√K·eps`` of its
  typical magnitude (a random walk; the worst case ``K·eps`` needs every rounding to go one way,
  and blocked SIMD sums are better than sequential ones).
* Layer after layer the relative errors add up; independent ones in quadrature, so a chain of
  rows with reduction lengths ``K_1…K_L`` ends with ``~eps·√(ΣK_l)`` of the output's typical
  magnitude. :func:`reduction_length` is that ``ΣK_l``.
* Every output of a layer carries an error of the size of the layer's *typical* output, so an
  output that happens to be near zero has the same absolute error as a large one: the tolerance
  is absolute, scaled to ``max|ref|`` (a relative tolerance fails on numerical zeros).

``FLOAT32_C`` is the safety factor on top of ``eps·√(ΣK)``: it covers the largest of many outputs
(a few standard deviations), activation approximations of a few ulps, and layers that amplify
errors more than they shrink them (ReLU, squeeze-excite gates). Measured over the ``numerics``
tests with torch on AVX512, AVX2 and scalar ATen kernels and AVX512 / AVX2 oneDNN convs: whole
networks and segments stay below ``0.65·eps·√(ΣK)·max|ref|``, single activation rows reach
``1.0`` (one ulp of a sigmoid); ``c = 16`` leaves a factor 16 to 25 for other CPUs' LiteRT and
ONNX Runtime kernels. The bound stays small against what a real bug does: a dropped bias, a wrong
padding, a transposed kernel or a skipped layer moves outputs by ``O(max|ref|)``; a BN fold that
drops the shift ``(bias - mean)·scale`` fails it 700-5000-fold, one that forgets ``bn.eps``
(1e-5 per layer) still 15-140-fold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7
EPS64 = float(np.finfo(np.float64).eps)  # 2.22e-16

FLOAT32_C = 16.0


def _elements(shape) -> int:
    return int(np.prod(shape))


def row_reduction(row) -> int:
    """How many terms one output element of ``row`` sums (``>= 1``), from its shapes:
    ``cin/groups·k²`` for a conv, the flattened input for a classifier, the window for a pooling,
    the 4 taps of a bilinear resize, 1 for elementwise rows."""
    from hwlat.archs.layers import OpKind

    area = lambda k: k[0] * k[1] if isinstance(k, tuple) else k * k  # noqa: E731
    if row.op in (OpKind.CONV, OpKind.DWCONV):
        return max(1, row.cin // row.groups * area(row.kernel))
    if row.op is OpKind.FC:
        return _elements(row.in_shape)
    if row.op is OpKind.POOL:
        return row.in_shape[1] * row.in_shape[2]
    if row.op is OpKind.AVGPOOL:
        return max(1, min(area(row.kernel), row.in_shape[1] * row.in_shape[2]))
    if row.op is OpKind.RESIZE:
        return 4
    return 1


def reduction_length(rows: Iterable) -> int:
    """``ΣK_l`` over ``rows`` (an architecture's :func:`hwlat.archs.layers` or a segment)."""
    from hwlat.archs.ir import ArchSpec

    if isinstance(rows, ArchSpec):
        from hwlat.archs import layers

        rows = layers(rows)
    return sum(row_reduction(r) for r in rows)


def float32_atol(ref, reduction: int, c: float = FLOAT32_C) -> float:
    """Absolute tolerance between two float32 evaluations of ``ref`` (any array) whose outputs
    went through reductions of total length ``reduction``: ``c·eps32·√reduction·max|ref|``."""
    scale = float(np.abs(np.asarray(ref, dtype=np.float64)).max()) if np.size(ref) else 0.0
    return c * EPS32 * math.sqrt(max(1, reduction)) * scale


def assert_float32_close(actual, ref, reduction: int, c: float = FLOAT32_C, msg: str = "") -> float:
    """``|actual - ref| <= float32_atol(ref, reduction, c)`` elementwise (and equal shapes);
    returns the largest difference."""
    actual = np.asarray(actual.detach() if hasattr(actual, "detach") else actual)
    ref = np.asarray(ref.detach() if hasattr(ref, "detach") else ref)
    assert actual.shape == ref.shape, (actual.shape, ref.shape, msg)
    atol = float32_atol(ref, reduction, c)
    np.testing.assert_allclose(
        actual, ref, rtol=0, atol=atol, err_msg=f"{msg} (float32, ΣK={reduction}, c={c})"
    )
    return float(np.abs(actual.astype(np.float64) - ref).max()) if actual.size else 0.0
