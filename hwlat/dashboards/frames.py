"""Tables the figures draw, built from a measurement store, predictors and the paper's tables.

Every function returns a plain DataFrame (possibly empty); the figures decide what to say when a
table is empty. Latencies are milliseconds (``*_ms``), MAdds are counts (``madds``, conv + FC
multiply-adds) and ``madds_M`` millions. Accuracies are the *published* ImageNet top-1 (%) of
the paper (arXiv:1905.02244v5 Tables 3 and 9) and TF-slim's README: nothing here is trained.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from hwlat.archs.zoo import zoo_names
from hwlat.errors import HwlatError
from hwlat.files import dumps_strict, finite_or_none
from hwlat.histories import FORMATS as HISTORY_FORMATS
from hwlat.histories import version as history_version
from hwlat.paper import family_label, paper_spellings, paper_tables, paper_zoo_name

MODEL_COLUMNS = [
    "name",
    "family",
    "multiplier",
    "resolution",
    "arch",
    "madds",
    "params",
    "latency_ms",
    "p10_ms",
    "p90_ms",
    "runtime",
    "device",
]


def models(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-network warm measurements of a :meth:`Store.frame`, one row per network and device.

    Columns :data:`MODEL_COLUMNS`: ``family`` is ``large``/``small`` for the V3 zoo, the reference
    name (``V2``, ``MnasNet-A1``, ``Large minimalistic``...) or ``custom``; ``arch`` the codec string.
    """
    if frame is None or frame.empty:
        return pd.DataFrame(columns=MODEL_COLUMNS)
    df = frame[(frame["granularity"] == "model") & (frame["variant"] == "warm")]
    rows = []
    for r in df.itertuples(index=False):
        spec = json.loads(r.spec)
        if "arch" not in spec:
            continue  # a measured file that did not import is no network of the IR
        name = spec.get("name", "custom")
        fam, mult = family_label(name)
        res = re.match(r"in(\d+)", spec.get("arch", ""))
        rows.append(
            {
                "name": name,
                "family": fam,
                "multiplier": mult,
                "resolution": int(res.group(1)) if res else 0,
                "arch": spec.get("arch", ""),
                "madds": int(r.madds),
                "params": int(r.params),
                "latency_ms": r.latency_ms,
                "p10_ms": r.p10_ms,
                "p90_ms": r.p90_ms,
                "runtime": r.runtime,
                "device": r.device,
            }
        )
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def measured_by_arch(model_df: pd.DataFrame | None) -> dict[str, float]:
    """Codec string -> measured latency (ms) of the networks of :func:`models` (empty without any)."""
    if model_df is None or model_df.empty:
        return {}
    return dict(zip(model_df["arch"], model_df["latency_ms"]))


def published() -> pd.DataFrame:
    """Published top-1 (%) and Pixel-1 latency (ms) per (family, multiplier, resolution).

    V3-Large/Small from Table 9, the reference models from Table 3 and the minimalistic models
    from TF-slim's README. Columns ``family, multiplier, resolution, name, top1, pixel1_ms, source``.
    """
    rows = []
    t9 = paper_tables("Table9")
    for (model, mult, res), g in t9.groupby(["model", "multiplier", "resolution"]):
        name = paper_zoo_name(model, mult)
        if name is None:
            continue
        v = dict(zip(g["metric"], g["value"]))
        rows.append(
            {
                "family": family_label(name)[0],
                "multiplier": float(mult),
                "resolution": int(res),
                "name": name,
                "top1": v.get("top1"),
                "pixel1_ms": v.get("latency_pixel1"),
                "source": "paper Table 9",
            }
        )
    # the reference models (Table 3) and the minimalistic ones (TF-slim's README), at 224
    tables = [
        ("paper Table 3", paper_tables("Table3")),
        ("TF-slim README", paper_tables("slim_README", source=None)),
    ]
    for name in zoo_names():
        label, mult = family_label(name)
        if label in ("large", "small", "custom"):
            continue  # V3 multipliers come from Table 9
        for src, tab in tables:  # noqa: B007 - src is the table the loop stopped at
            g = tab[tab["model"].isin(paper_spellings(name)) & (tab["multiplier"].astype(float) == mult)]
            if not g.empty:
                break
        if g.empty:
            continue
        v = dict(zip(g["metric"], g["value"]))
        rows.append(
            {
                "family": label,
                "multiplier": mult,
                "resolution": 224,
                "name": name,
                "top1": v.get("top1"),
                "pixel1_ms": v.get("latency_pixel1"),
                "source": src,
            }
        )
    return pd.DataFrame(rows)


def pareto_points(model_df: pd.DataFrame, predictor=None) -> pd.DataFrame:
    """Published networks with their latency here: measured (if in the store) and predicted.

    Columns of :func:`published` plus ``measured_ms``, ``predicted_ms`` (NaN without predictor or
    when it cannot answer), ``madds``, ``params`` and ``arch`` (codec string).
    """
    from hwlat.archs import encode, get_arch, summary

    pub = published()
    meas = measured_by_arch(model_df)
    out = []
    for r in pub.to_dict("records"):
        arch = get_arch(r["name"], resolution=r["resolution"])
        code = encode(arch)
        s = summary(arch)
        pred = np.nan
        if predictor is not None:
            try:
                pred = float(predictor.predict_many([arch])[0])
            except (HwlatError, ValueError):  # a lookup table meets an unmeasured block
                pred = np.nan
        out.append(
            {
                **r,
                "arch": code,
                "madds": s["madds"],
                "params": s["params"],
                "measured_ms": meas.get(code, np.nan),
                "predicted_ms": pred,
            }
        )
    return pd.DataFrame(out)


def pareto_front(x, y) -> np.ndarray:
    """Boolean mask of the points no other point beats: lower ``x`` (ms) and higher ``y`` (top-1)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    mask = np.zeros(len(x), bool)
    best = -np.inf
    for i in sorted(np.flatnonzero(ok), key=lambda i: (x[i], -y[i])):
        if y[i] > best:
            mask[i], best = True, y[i]
    return mask


def measured_blocks(frame: pd.DataFrame, arch) -> pd.DataFrame:
    """Warm block measurements of ``arch`` in store order: ``block`` (index), ``label``, ``latency_ms``.

    Rows are the stem, each bottleneck and the head as :func:`hwlat.archs.pieces.blocks`
    decomposes ``arch``; a block not in ``frame`` has ``latency_ms`` NaN. Empty when none is measured.
    """
    from hwlat.archs.pieces import blocks

    cols = ["block", "label", "latency_ms"]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=cols)
    b = frame[(frame["granularity"] == "block") & (frame["variant"] == "warm")]
    ms = dict(zip(b["key"], b["latency_ms"]))
    rows = [
        {"block": i, "label": w.label, "latency_ms": ms.get(w.key, np.nan)}
        for i, w in enumerate(blocks(arch))
    ]
    df = pd.DataFrame(rows, columns=cols)
    return df if df["latency_ms"].notna().any() else pd.DataFrame(columns=cols)


def block_index(arch) -> dict[str, int]:
    """Layer name -> index of its block (stem 0, bottlenecks, head last) as the profiler times them."""
    from hwlat.archs.layers import block_groups, layers

    return {r.name: i for i, grp in enumerate(block_groups(layers(arch))) for r in grp}


def predicted_blocks(predictor, arch) -> pd.DataFrame | None:
    """``predictor.predict_layers(arch)`` with a ``block_index`` column; None when it cannot answer."""
    if predictor is None:
        return None
    try:
        df = predictor.predict_layers(arch)
    except (HwlatError, ValueError):
        return None
    idx = block_index(arch)
    return df.assign(block_index=[idx.get(n, -1) for n in df["name"]])


INSIDE_COLUMNS = [
    "key",
    "network",
    "layer",
    "kind",
    "measured_ms",
    "predicted_ms",
    "ops",
    "runs",
    "reason",
    "predictor_note",
]
"""Columns of :func:`inside_layers`: per network (``key``, ``network`` its label) one row per layer
row in layer order and a last row ``layer='unplaced'``
(:func:`hwlat.profiler.analysis.op_layers.layer_times`)."""
NODE_TYPE_COLUMNS = ["key", "network", "node_type", "measured_ms", "ops", "times_called", "delegated", "runs"]
"""Columns of :func:`inside_node_types`."""


def _op_networks(ops: pd.DataFrame | None, frame: pd.DataFrame | None) -> list[tuple]:
    """``(key, label, arch, warm ops of every repeat, runs)`` of each whole network of ``frame``
    that ``ops`` (a :meth:`Store.op_times`) holds op times of, in store order."""
    from hwlat.archs import decode

    if ops is None or ops.empty or frame is None or frame.empty:
        return []
    warm = ops[ops["variant"] == "warm"]
    if "device_id" in frame:
        warm = warm[warm["device_id"].isin(set(frame["device_id"]))]
    m = frame[(frame["granularity"] == "model") & (frame["variant"] == "warm")].drop_duplicates("key")
    out = []
    for r in m.itertuples(index=False):
        g = warm[warm["key"] == r.key]
        if g.empty:
            continue
        spec = json.loads(r.spec)
        if "arch" not in spec:
            continue  # a measured file that did not import: no layers to place ops on
        arch = decode(spec["arch"], name=spec.get("name", "custom"))
        runs = len(g[["device_id", "repeat"]].drop_duplicates())
        out.append((r.key, spec.get("label") or r.key, arch, g, runs))
    return out


def inside_layers(ops: pd.DataFrame | None, frame: pd.DataFrame | None, predictor=None) -> pd.DataFrame:
    """Measured time (ms per run) of each layer inside every network with op times, beside the
    predictor's ``predict_layers`` for the same rows.

    ``ops`` is :meth:`Store.op_times`, ``frame`` the :meth:`Store.frame` rows of one device (the
    networks and their specs). Only warm runs; with several repeats ``measured_ms`` is the mean per
    run (``runs`` counts them), so a network's ``measured_ms`` (its ``unplaced`` row included)
    sums to its ops' time per run. ``predicted_ms`` is NaN without a predictor, where it cannot
    answer, and on the ``unplaced`` row; ``predictor_note`` says why, or that it extrapolates.
    Columns :data:`INSIDE_COLUMNS`; empty without op times.
    """
    import warnings

    from hwlat.errors import ExtrapolationWarning
    from hwlat.profiler.analysis.op_layers import UNPLACED, layer_times

    parts = []
    for key, label, arch, g, runs in _op_networks(ops, frame):
        lt = layer_times(g, arch)
        lt["measured_ms"] = lt["measured_ms"] / runs
        pred = None
        note = None if predictor is not None else "no predictor given"
        if predictor is not None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ExtrapolationWarning)
                try:
                    pred = predictor.predict_layers(arch).groupby("name", sort=False)["latency_ms"].sum()
                except (HwlatError, ValueError) as e:
                    note = f"the predictor cannot answer this network: {e}"
            far = [str(w.message) for w in caught if issubclass(w.category, ExtrapolationWarning)]
            if far:
                note = far[0]
        lt["predicted_ms"] = [
            float(pred[n]) if pred is not None and n != UNPLACED and n in pred.index else np.nan
            for n in lt["layer"]
        ]
        parts.append(lt.assign(key=key, network=label, runs=runs, predictor_note=note))
    if not parts:
        return pd.DataFrame(columns=INSIDE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[INSIDE_COLUMNS]


def inside_node_types(ops: pd.DataFrame | None, frame: pd.DataFrame | None) -> pd.DataFrame:
    """Measured time (ms per run, mean over warm repeats) per node type inside every network with
    op times, largest first (:func:`hwlat.profiler.analysis.op_layers.node_type_times`): all there
    is to say where a delegate (XNNPACK) ran the network. Columns :data:`NODE_TYPE_COLUMNS`."""
    from hwlat.profiler.analysis.op_layers import node_type_times

    parts = []
    for key, label, _, g, runs in _op_networks(ops, frame):
        t = node_type_times(g)
        t["measured_ms"] = t["measured_ms"] / runs
        t["times_called"] = t["times_called"] / runs
        parts.append(t.assign(key=key, network=label, runs=runs))
    if not parts:
        return pd.DataFrame(columns=NODE_TYPE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[NODE_TYPE_COLUMNS]


def layer_disagreements(inside: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` layers of one network of :func:`inside_layers` where the predictor is furthest
    from the measurement (largest ``|predicted − measured|``): its rows with ``diff_ms``
    (predicted − measured) and ``diff_pct`` (of measured). Layers without both are left out."""
    cols = ["layer", "kind", "measured_ms", "predicted_ms", "diff_ms", "diff_pct"]
    if inside is None or inside.empty:
        return pd.DataFrame(columns=cols)
    both = inside[inside["measured_ms"].notna() & inside["predicted_ms"].notna()]
    both = both.assign(diff_ms=both["predicted_ms"] - both["measured_ms"])
    both = both.assign(diff_pct=100 * both["diff_ms"] / both["measured_ms"].where(both["measured_ms"] > 0))
    top = both.reindex(both["diff_ms"].abs().sort_values(ascending=False, kind="stable").index)
    return top.head(n)[cols].reset_index(drop=True)


def predictor_errors(model_df: pd.DataFrame, predictors: dict) -> pd.DataFrame:
    """Predicted against measured latency (ms) of every measured network, per predictor.

    ``predictors`` maps a label to a fitted predictor. Columns ``predictor, name, resolution,
    measured_ms, predicted_ms, trained`` (whether the predictor was fitted on that network); a
    network a predictor cannot answer is left out.
    """
    from hwlat.archs import decode, encode

    cols = ["predictor", "name", "resolution", "measured_ms", "predicted_ms", "trained"]
    if model_df is None or model_df.empty or not predictors:
        return pd.DataFrame(columns=cols)
    archs = [decode(a, name=n) for a, n in zip(model_df["arch"], model_df["name"])]
    rows = []
    for label, pred in predictors.items():
        seen = {encode(a) for a in getattr(pred, "train_archs_", ())}
        for a, r in zip(archs, model_df.itertuples(index=False)):
            try:
                p = float(pred.predict_many([a])[0])
            except (HwlatError, ValueError):
                continue
            rows.append(
                {
                    "predictor": label,
                    "name": r.name,
                    "resolution": r.resolution,
                    "measured_ms": r.latency_ms,
                    "predicted_ms": p,
                    "trained": r.arch in seen,
                }
            )
    return pd.DataFrame(rows, columns=cols)


def _paper_ablation_deltas() -> dict[str, dict]:
    """The paper's reported deltas (Pixel-1 ms, MAdds M) of each variant against V3-Large 1.0."""
    from hwlat.paper import constants, paper_tables

    t5 = paper_tables("Table5")
    lat = {
        m.split(": ", 1)[1]: v
        for m, v in zip(
            t5[t5.metric == "latency_pixel1"]["model"], t5[t5.metric == "latency_pixel1"]["value"]
        )
    }
    base = lat.get("V3-Large 1.0 (default h-swish placement)", np.nan)
    out = {k: {"paper_delta_ms": v - base, "paper_delta_madds_M": np.nan} for k, v in lat.items()}
    c = constants().get("efficient_last_stage", {})
    out["original last stage"] = {
        "paper_delta_ms": c.get("latency_saving_ms", {}).get("v5_and_ICCV", np.nan),
        "paper_delta_madds_M": c.get("madds_saving_M", np.nan),
    }
    stem = c.get("first_layer_16_filters_saving", {}).get("v5_and_ICCV", {})
    out["32-filter ReLU stem"] = {
        "paper_delta_ms": stem.get("ms", np.nan),
        "paper_delta_madds_M": stem.get("MAdds_M", np.nan),
    }
    return out


def ablations(model_df: pd.DataFrame, predictor=None) -> pd.DataFrame:
    """Latency and MAdds deltas of the paper's ablations on this device, beside the paper's.

    Each variant of :data:`hwlat.archs.zoo.ABLATIONS` is compared with V3-Large 1.0 at 224. Latency is the
    store's measurement when both networks are measured (``source='measured'``), else the
    predictor's (``'predicted'``), else NaN (``'missing'``). Columns ``ablation, variant, source,
    delta_ms, delta_madds_M, paper_delta_ms, paper_delta_madds_M``.
    """
    from hwlat.archs import encode, mobilenetv3, summary
    from hwlat.archs.zoo import ablation_variants

    meas = measured_by_arch(model_df)
    paper = _paper_ablation_deltas()
    rows = []
    for abl, var, kw, base_kw in ablation_variants():
        a, b = mobilenetv3("large", **kw), mobilenetv3("large", **base_kw)
        ma, mb = meas.get(encode(a)), meas.get(encode(b))
        if ma is not None and mb is not None:
            src, d = "measured", ma - mb
        elif predictor is not None:
            try:
                pa, pb = predictor.predict_many([a, b])
                src, d = "predicted", float(pa - pb)
            except (HwlatError, ValueError):
                src, d = "missing", np.nan
        else:
            src, d = "missing", np.nan
        rows.append(
            {
                "ablation": abl,
                "variant": var,
                "source": src,
                "delta_ms": d,
                "delta_madds_M": (summary(a)["madds"] - summary(b)["madds"]) / 1e6,
                **paper.get(var, {"paper_delta_ms": np.nan, "paper_delta_madds_M": np.nan}),
            }
        )
    return pd.DataFrame(rows)


def _latency_here(archs: list, codes: list[str], meas: dict, predictor) -> list[tuple[str, float]]:
    """(source, ms) per network: the store's measurement, else the predictor's ('predicted', or
    'extrapolated' where the predictor warned that the network is far outside what it learned
    from: the figure shows it, instead of a warning per network), else ('missing', NaN)."""
    from hwlat.latency_models.base import predict_noting_extrapolation

    out = []
    for a, code in zip(archs, codes):
        if code in meas:
            out.append(("measured", float(meas[code])))
            continue
        if predictor is None:
            out.append(("missing", np.nan))
            continue
        try:
            ms, far = predict_noting_extrapolation(predictor, [a])
        except (HwlatError, ValueError):
            out.append(("missing", np.nan))
            continue
        out.append(("extrapolated" if far else "predicted", float(ms[0])))
    return out


def task_points(model_df: pd.DataFrame, predictor=None) -> pd.DataFrame:
    """The paper's detection and segmentation networks (Tables 6–8) with their latency here.

    One row per :func:`hwlat.paper.task_published` row, with ``source``/``here_ms`` as in
    :func:`ablations` (measured, else predicted, else missing) beside the published accuracy and
    phone latency (``paper_ms``).
    """
    from hwlat.archs import decode
    from hwlat.paper import task_published

    pub = task_published()
    meas = measured_by_arch(model_df)
    here = _latency_here(
        [decode(a, name=n) for a, n in zip(pub["arch"], pub["name"])], list(pub["arch"]), meas, predictor
    )
    return pub.assign(source=[s for s, _ in here], here_ms=[m for _, m in here])


# The paper's reduced-tail ablation (the blocks between C4 and C5 at half width): detection in
# Table 6 (V3 vs V3 dagger, 320x320), segmentation in Table 7 rows 5 -> 6 (RF2, with R-ASPP F=256,
# Pixel 3 at half resolution). hwlat re-measures the same pairs, LR-ASPP F=128 for segmentation.
REDUCED_TAIL_PAIRS = (
    (
        "detection",
        "ssdlite_mobilenetv3_large",
        (320, 320),
        ("Table6", "SSDLite-V3 (Large)", "SSDLite-V3 (Large) dagger", "latency", 1.0),
    ),
    (
        "detection",
        "ssdlite_mobilenetv3_small",
        (320, 320),
        ("Table6", "SSDLite-V3-Small", "SSDLite-V3-Small dagger", "latency", 1.0),
    ),
    (
        "segmentation",
        "lraspp_mobilenetv3_large",
        (512, 1024),
        (
            "Table7",
            "row5: V3 (Large) RF2=no head=R-ASPP F=256",
            "row6: V3 (Large) RF2=yes head=R-ASPP F=256",
            "cpu_time_pixel3_half_res",
            1.0,
        ),
    ),
    ("segmentation", "lraspp_mobilenetv3_small", (512, 1024), None),
)


def reduced_tail(model_df: pd.DataFrame, predictor=None) -> pd.DataFrame:
    """The reduced-tail ablation here beside the paper's, one row per :data:`REDUCED_TAIL_PAIRS` entry.

    Columns ``task, network, resolution, source`` (of both latencies: measured, predicted or
    missing), ``full_ms, reduced_ms, saving_pct`` (100·(1 − reduced/full)) and ``paper_saving_pct``
    (NaN where the paper has no pair).
    """
    from hwlat.archs import encode, get_arch

    meas = measured_by_arch(model_df)
    tabs = paper_tables()
    rows = []
    for task, name, hw, paper in REDUCED_TAIL_PAIRS:
        a, b = get_arch(name, resolution=hw), get_arch(name + "_reduced", resolution=hw)
        (sa, ma), (sb, mb) = _latency_here([a, b], [encode(a), encode(b)], meas, predictor)
        saving = np.nan
        if paper is not None:
            table, full, red, metric, mult = paper
            g = tabs[
                (tabs["table"] == table)
                & (tabs["metric"] == metric)
                & (tabs["multiplier"].astype(float) == mult)
            ]
            v = dict(zip(g["model"], g["value"].astype(float)))
            saving = 100 * (1 - v[red] / v[full])
        rows.append(
            {
                "task": task,
                "network": name,
                "resolution": f"{hw[0]}x{hw[1]}",
                "source": sa if sa == sb else f"{sa}/{sb}",
                "full_ms": ma,
                "reduced_ms": mb,
                "saving_pct": 100 * (1 - mb / ma),
                "paper_saving_pct": saving,
            }
        )
    return pd.DataFrame(rows)


HISTORY_COLUMNS = ["step", "phase", "latency_ms", "measured_ms", "accuracy", "reward", "proposal", "arch"]
_METRICS = ("latency_ms", "predicted_ms", "accuracy", "reward")  # the keys of hwlat's step records


def _netadapt_frame(h: dict) -> pd.DataFrame:
    """An hwlat NetAdapt history: seed, each step, the final network (after the long fine-tune)
    and any baselines (e.g. uniform width scaling), latency = predicted ms."""
    fin = h.get("final")
    seed_measured = fin.get("seed_measured_ms") if isinstance(fin, dict) else None
    rows = [
        {
            "step": 0,
            "phase": "seed",
            "latency_ms": h["seed"].get("predicted_ms"),
            "measured_ms": seed_measured,
            "accuracy": h["seed"].get("accuracy"),
            "proposal": "seed",
            "arch": h.get("seed_arch"),
        }
    ]
    for s in h.get("steps") or []:
        c = s.get("chosen") or {}
        rows.append(
            {
                "step": s.get("step", len(rows) - 1) + 1,
                "phase": "step",
                "latency_ms": s.get("predicted_ms"),
                "accuracy": s.get("accuracy"),
                "arch": s.get("arch"),
                "proposal": f"{c.get('kind', '')} {c.get('key', '')} -> {c.get('width', '')}".strip(),
            }
        )
    if isinstance(fin, dict):
        rows.append(
            {
                "step": len(rows),
                "phase": "final",
                "latency_ms": fin.get("predicted_ms"),
                "measured_ms": fin.get("measured_ms"),
                "accuracy": fin.get("accuracy"),
                "proposal": "after long-term fine-tune",
                "arch": fin.get("arch"),
            }
        )
    for name, b in (h.get("baselines") or {}).items():
        if isinstance(b, dict):
            label = f"{name} x{b['width_mult']:g}" if "width_mult" in b else name
            rows.append(
                {
                    "step": np.nan,
                    "phase": name,
                    "latency_ms": b.get("predicted_ms"),
                    "measured_ms": b.get("measured_ms"),
                    "accuracy": b.get("accuracy"),
                    "proposal": label,
                }
            )
    return pd.DataFrame(rows)


def _steps_of(obj) -> list | None:
    """The list of step records of a parsed history file, or None when it is not a history."""
    if isinstance(obj, dict):
        if obj.get("kind") == "nas":
            return [
                {**c, "latency_ms": c.get("predicted_ms")}
                for c in obj.get("candidates") or []
                if isinstance(c, dict)
            ]
        obj = next((obj[k] for k in ("steps", "candidates") if k in obj), None)
    if not isinstance(obj, list):
        return None
    steps = [s for s in obj if isinstance(s, dict)]
    return steps if any(k in s for s in steps for k in _METRICS) else None


def read_history(path) -> pd.DataFrame | None:
    """Read a search history; None (silently) when the file is not one.

    A history is an hwlat NetAdapt history (``kind: netadapt``: one row per phase, seed → steps →
    final, plus baselines such as uniform width scaling; ``latency_ms`` is predicted,
    ``measured_ms`` when measured), an hwlat NAS history (``kind: nas``: one row per candidate),
    both of a format :mod:`hwlat.histories` reads (:func:`hwlat.histories.version`; other versions
    are skipped), or a JSON list of step records, ``{"steps": [...]}`` or JSON lines whose records
    carry ``latency_ms`` (or ``predicted_ms``), ``accuracy`` or ``reward``, as hwlat's step
    records do; ``step``, ``proposal`` and ``arch`` are read too; steps are numbered in file order
    when ``step`` is absent. Columns :data:`HISTORY_COLUMNS` plus whatever else the records hold.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("kind"), str) and obj["kind"] in HISTORY_FORMATS:
        try:
            history_version(p, obj)
        except HwlatError:
            return None
    if isinstance(obj, dict) and obj.get("kind") == "netadapt" and isinstance(obj.get("seed"), dict):
        df = _netadapt_frame(obj)
    else:
        steps = _steps_of(obj)
        if steps is None:
            return None
        df = pd.DataFrame(steps)
    if "latency_ms" not in df and "predicted_ms" in df:  # hwlat's step records predict the latency
        df["latency_ms"] = df["predicted_ms"]
    for key in ("latency_ms", "measured_ms", "accuracy", "reward"):
        df[key] = pd.to_numeric(df[key], errors="coerce") if key in df else np.nan
    for key in ("proposal", "arch", "phase"):
        if key not in df:
            df[key] = None
        # a record without the key is NaN here: None (was the text "NaN"); objects as strict JSON
        df[key] = [
            v
            if v is None or isinstance(v, str)
            else None
            if finite_or_none(v) is None
            else dumps_strict(finite_or_none(v))
            for v in df[key]
        ]
    if "step" not in df:
        df["step"] = np.arange(len(df))
    return df


def histories(runs_dir) -> dict[str, pd.DataFrame]:
    """Every search history (:func:`read_history`) among the ``*.json``/``*.jsonl`` files under
    ``runs_dir`` (recursively), by relative path; other files (predictors, summaries) are skipped."""
    if runs_dir is None or not Path(runs_dir).is_dir():
        return {}
    root = Path(runs_dir)
    out = {}
    for f in sorted([*root.rglob("*.json"), *root.rglob("*.jsonl")]):
        df = read_history(f)
        if df is not None and not df.empty:
            out[str(f.relative_to(root))] = df
    return out
