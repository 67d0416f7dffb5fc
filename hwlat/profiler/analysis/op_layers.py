"""Per-op times of a whole network placed on its IR layer rows: where the time goes inside it.

With op profiling on, ``benchmark_model`` prints one row per op it ran (:meth:`Store.op_times
<hwlat.profiler.storage.store.Store.op_times>`). An op LiteRT runs itself is named after its output
tensor, ``[<tensor>]:<op index>`` (a list ``[a, b]:i`` for several outputs), and hwlat's exporter
(:mod:`hwlat.profiler.export.tflite`) names every tensor after the layer row of
:func:`hwlat.archs.layers` it computes, helper ops with a suffix after a ``/`` (``stem/pad``,
``blocks.3.dw/hswish``, ``blocks.0.se.expand/hsigmoid``); the network's output tensor is named
``output`` (a task-head network: its output names, which are row names) and an int8 model adds
``_int8`` to the input and output tensors and bridges them with ``QUANTIZE`` / ``DEQUANTIZE``.
So the part of the tensor name before the first ``/``, without ``_int8``, is the row's name.

What cannot be placed on a row stays in the frames, with a ``reason`` (:data:`REASONS`), never
counted as zero nor dropped:

* ``delegated`` — an op run by a delegate, ``Delegate/<op type>:<n>``: XNNPACK merges every layer
  of one op type into one row (``times_called`` > 1), so only its node type is known;
* ``conversion`` — the int8 model's ``QUANTIZE`` of its input and ``DEQUANTIZE`` of its output,
  which belong to no layer;
* ``unknown name`` — a tensor name that is no row of the network (another network's profile,
  a model hwlat did not export);
* ``unreadable name`` — a name in neither form.

Times are milliseconds: ``run_ms`` is an op's time in one run (``avg_ms × times_called``).
"""

from __future__ import annotations

import re

import pandas as pd

from hwlat.archs.ir import ArchSpec
from hwlat.archs.layers import layers

UNPLACED = "unplaced"
"""The ``layer`` of the last row of :func:`layer_times`: every op that is on no layer."""
REASONS = {
    "delegated": "run by a delegate (XNNPACK merges the layers of one op type into one row)",
    "conversion": "the int8 model's conversion of its input or output (QUANTIZE / DEQUANTIZE), no layer",
    "unknown name": "its tensor is no layer of this network",
    "unreadable name": "its name is neither [tensor]:index nor Delegate/type:index",
}
"""Why an op is not placed on a layer (the ``reason`` column), with what each means."""
LAYER_TIME_COLUMNS = ["layer", "kind", "measured_ms", "ops", "reason"]
"""Columns of :func:`layer_times`."""
NODE_TYPE_COLUMNS = ["node_type", "measured_ms", "ops", "times_called", "delegated"]
"""Columns of :func:`node_type_times`."""

_BUILTIN = re.compile(r"^\[(.*)\]:(\d+)$")
_DELEGATED = re.compile(r"^Delegate/.*:\d+$")
_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")


def _row_of(tensor: str, names: set[str], output_row: str | None) -> str | None:
    """The layer row a tensor name belongs to, or None."""
    base = tensor.strip().split("/", 1)[0].removesuffix("_int8")
    if base in names:
        return base
    if base == "output" and output_row is not None:
        return output_row
    return None


def place(name: str, node_type: str, arch_rows: tuple, outputs: tuple = ()) -> tuple[str | None, str | None]:
    """``(layer, reason)`` of one op: its layer row's name and None, or None and a key of
    :data:`REASONS`. ``arch_rows`` is :func:`hwlat.archs.layers` of the network, ``outputs`` its
    ``arch.outputs`` (empty: one output, named ``output``, computed by the last row)."""
    names = {r.name for r in arch_rows}
    output_row = arch_rows[-1].name if arch_rows and not outputs else None
    name = str(name).strip()
    if _DELEGATED.match(name):
        return None, "delegated"
    m = _BUILTIN.match(name)
    tensors = m.group(1).split(",") if m else [name]
    if str(node_type).strip().upper() in _CONVERSIONS:
        return None, "conversion"
    for t in tensors:
        row = _row_of(t, names, output_row)
        if row is not None:
            return row, None
    return None, "unknown name" if m else "unreadable name"


def op_layers(ops: pd.DataFrame, arch: ArchSpec) -> pd.DataFrame:
    """``ops`` (rows of :meth:`Store.op_times`, or any frame with ``name``, ``node_type`` and
    ``run_ms`` or ``avg_ms``/``times_called``) with two more columns: ``layer``, the name of the
    row of ``layers(arch)`` each op computes (None where it cannot be placed) and ``reason``,
    why not (a key of :data:`REASONS`; None when placed). Adds ``run_ms`` when missing."""
    rows = layers(arch)
    out = ops.copy()
    if "run_ms" not in out:
        called = out["times_called"] if "times_called" in out else 1
        out["run_ms"] = out["avg_ms"] * called
    placed = [place(n, t, rows, tuple(arch.outputs)) for n, t in zip(out["name"], out["node_type"])]
    out["layer"] = pd.Series([p[0] for p in placed], index=out.index, dtype=object)
    out["reason"] = pd.Series([p[1] for p in placed], index=out.index, dtype=object)
    return out


def _reasons(unplaced: pd.DataFrame) -> str | None:
    """``"3 delegated, 1 unknown name (foo)"``: what the unplaced ops are, or None without any."""
    if unplaced.empty:
        return None
    parts = []
    for reason, g in unplaced.groupby("reason", sort=False):
        what = f"{len(g)} {reason}"
        if reason in ("unknown name", "unreadable name"):
            shown = list(dict.fromkeys(g["name"]))
            what += " (" + ", ".join(shown[:3]) + (", ..." if len(shown) > 3 else "") + ")"
        parts.append(what)
    return ", ".join(parts)


def layer_times(ops: pd.DataFrame, arch: ArchSpec) -> pd.DataFrame:
    """Measured time (ms) per layer row of ``arch``: the ``run_ms`` of the ops placed on it
    (:func:`op_layers`), summed.

    Columns :data:`LAYER_TIME_COLUMNS`: one row per row of ``layers(arch)`` in layer order
    (``kind`` its :class:`~hwlat.archs.layers.OpKind` value; ``measured_ms`` NaN where no op was
    placed on it: not measured, not zero; ``ops`` how many ops were), then a last row
    ``layer=`` :data:`UNPLACED` with every other op (``measured_ms`` 0 without any) and in
    ``reason`` how many of them there are and why. ``measured_ms`` sums to the ops' total
    ``run_ms``: give the ops of one run (one measurement), or divide by the number of runs.
    """
    rows = layers(arch)
    placed = op_layers(ops, arch)
    on = placed[placed["layer"].notna()]
    per = on.groupby("layer", sort=False)["run_ms"].agg(["sum", "size"])
    out = pd.DataFrame(
        {
            "layer": [r.name for r in rows],
            "kind": [r.op.value for r in rows],
            "measured_ms": [float(per["sum"][r.name]) if r.name in per.index else float("nan") for r in rows],
            "ops": [int(per["size"][r.name]) if r.name in per.index else 0 for r in rows],
            "reason": None,
        },
        columns=LAYER_TIME_COLUMNS,
    )
    off = placed[placed["layer"].isna()]
    last = pd.DataFrame(
        [
            {
                "layer": UNPLACED,
                "kind": None,
                "measured_ms": float(off["run_ms"].sum()),
                "ops": len(off),
                "reason": _reasons(off),
            }
        ],
        columns=LAYER_TIME_COLUMNS,
    )
    return pd.concat([out.astype({"reason": object}), last], ignore_index=True)


def node_type_times(ops: pd.DataFrame) -> pd.DataFrame:
    """Measured time (ms) per node type, largest first: what is left to say of a network whose ops
    a delegate ran (no op of it can be placed on a layer). Columns :data:`NODE_TYPE_COLUMNS`:
    ``measured_ms`` the summed ``run_ms``, ``ops`` the profile rows, ``times_called`` their calls
    per run, ``delegated`` whether the rows are a delegate's. Sums to the ops' total."""
    if ops.empty:
        return pd.DataFrame(columns=NODE_TYPE_COLUMNS)
    df = ops if "run_ms" in ops else ops.assign(run_ms=ops["avg_ms"] * ops.get("times_called", 1))
    df = df.assign(
        delegated=[bool(_DELEGATED.match(str(n).strip())) for n in df["name"]],
        times_called=df["times_called"] if "times_called" in df else 1,
    )
    out = (
        df.groupby("node_type", sort=False)
        .agg(
            measured_ms=("run_ms", "sum"),
            ops=("run_ms", "size"),
            times_called=("times_called", "sum"),
            delegated=("delegated", "all"),
        )
        .reset_index()
        .sort_values("measured_ms", ascending=False, kind="stable")
    )
    return out[NODE_TYPE_COLUMNS].reset_index(drop=True)
