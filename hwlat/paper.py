"""The paper's published numbers, shipped in ``data/`` (package ``hwlat._data``) with provenance.

``paper_tables()`` is the long table (``table, model, multiplier, resolution, metric, value, unit,
source, note``); ``table3()`` the headline comparison of arXiv v5 Table 3 (top-1 %, MAdds in
millions, params in millions, Pixel-1/2/3 latency in ms). These are *published* numbers, never
measurements of this machine.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from hwlat.archs import get_arch, summary
from hwlat.archs.zoo import zoo_family, zoo_name

V5 = "arXiv:1905.02244v5"

# The one map between the paper's model names and hwlat's zoo: zoo family -> (the short label the
# figures use, every spelling of the model in the paper's tables and TF-slim's README).
PAPER_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mobilenetv3_large": ("large", ("V3-Large", "MobileNetV3-Large")),
    "mobilenetv3_small": ("small", ("V3-Small", "MobileNetV3-Small")),
    "mobilenetv3_large_minimal": ("Large minimalistic", ("MobileNetV3-Large minimalistic (float)",)),
    "mobilenetv3_small_minimal": ("Small minimalistic", ("MobileNetV3-Small minimalistic (float)",)),
    "mobilenetv2": ("V2", ("V2",)),
    "mnasnet_a1": ("MnasNet-A1", ("MnasNet-A1",)),
}
_SPELLINGS = {s: fam for fam, (_, spellings) in PAPER_MODELS.items() for s in spellings}


def paper_zoo_name(model: str, multiplier: float) -> str | None:
    """The zoo name of a published model (``("V3-Large", 0.75)`` → ``"mobilenetv3_large_075"``), or
    None when hwlat's zoo does not register it."""
    family = _SPELLINGS.get(model)
    if family is None:
        return None
    name = zoo_name(family, float(multiplier))
    return name if zoo_family(name) else None


def paper_spellings(name: str) -> tuple[str, ...]:
    """Every spelling of a zoo name's model in the published tables (empty for unknown names)."""
    fam = zoo_family(name)
    return PAPER_MODELS[fam[0]][1] if fam and fam[0] in PAPER_MODELS else ()


def family_label(name: str) -> tuple[str, float]:
    """``(label, width multiplier)`` of a zoo name for figures (``("large", 0.75)``, ``("V2", 0.35)``);
    ``("custom", nan)`` for anything outside the paper's families."""
    fam = zoo_family(name)
    if fam is None or fam[0] not in PAPER_MODELS:
        return "custom", float("nan")
    return PAPER_MODELS[fam[0]][0], fam[1]


def data_file(name: str):
    """Path to a shipped data file: package ``hwlat._data`` when installed, else the checkout's
    ``data/`` folder (source tree and editable installs)."""
    try:
        path = resources.files("hwlat._data") / name
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parent.parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"hwlat data file {name!r} is missing from the installation")
    return path


@cache
def _tables() -> pd.DataFrame:
    with data_file("paper_tables.csv").open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def paper_tables(table: str | None = None, source: str | None = V5) -> pd.DataFrame:
    """Published rows, optionally filtered by ``table`` (e.g. ``"Table3"``) and ``source`` prefix."""
    df = _tables()
    if table is not None:
        df = df[df["table"] == table]
    if source is not None:
        df = df[df["source"].str.startswith(source)]
    return df.reset_index(drop=True).copy()


def table3() -> pd.DataFrame:
    """arXiv v5 Table 3 as one row per model, with the matching zoo name where hwlat has one."""
    df = paper_tables("Table3")
    wide = df.pivot_table(
        index=["model", "multiplier", "resolution"], columns="metric", values="value", aggfunc="first"
    ).reset_index()
    wide.columns.name = None
    wide["zoo_name"] = [paper_zoo_name(m, x) for m, x in zip(wide["model"], wide["multiplier"])]
    return wide


@cache
def fbnet_latencies() -> pd.DataFrame:
    """The published FBNet-space latency table (``data/fbnet_cifar100_latency_ms.csv``: ``idx``,
    ``op0`` … ``op21``, one column per device in ms; provenance in ``data/README.md``)."""
    with data_file("fbnet_cifar100_latency_ms.csv").open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def shipped_predictors() -> list[str]:
    """Names of the predictors shipped in ``data/predictors`` (``load("@NAME")``)."""
    try:
        folder = resources.files("hwlat._data") / "predictors"
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parent.parent / "data" / "predictors"
    return (
        sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")) if folder.is_dir() else []
    )


@cache
def constants() -> dict[str, Any]:
    """Algorithm constants (NAS reward, NetAdapt, h-swish, SE, ...) with their sources."""
    with data_file("constants.json").open("r", encoding="utf-8") as f:
        return json.load(f)


@cache
def mobilenetv3_spec() -> dict[str, Any]:
    """Paper Tables 1 and 2 row by row (``large``, ``small``), with implementation cross-checks."""
    with data_file("mobilenetv3_spec.json").open("r", encoding="utf-8") as f:
        return json.load(f)


def zoo_vs_table3() -> pd.DataFrame:
    """Analytic MAdds/params of the zoo models in paper Table 3 (arXiv v5) beside the published ones.

    Columns: ``model``, ``multiplier``, ``zoo_name``, ``madds_M`` (conv+FC, ours), ``paper_madds_M``,
    ``madds_diff_pct``, ``elementwise_M`` (ours, not in the headline), ``params_M``,
    ``paper_params_M``, ``params_diff_pct``. Resolution 224.
    """
    rows = []
    for r in table3().itertuples(index=False):
        if not isinstance(r.zoo_name, str):
            continue
        s = summary(get_arch(r.zoo_name, resolution=224))
        rows.append(
            {
                "model": r.model,
                "multiplier": r.multiplier,
                "zoo_name": r.zoo_name,
                "madds_M": s["madds"] / 1e6,
                "paper_madds_M": r.madds,
                "madds_diff_pct": 100 * (s["madds"] / 1e6 - r.madds) / r.madds,
                "elementwise_M": s["elementwise"] / 1e6,
                "params_M": s["params"] / 1e6,
                "paper_params_M": r.params,
                "params_diff_pct": 100 * (s["params"] / 1e6 - r.params) / r.params,
            }
        )
    return pd.DataFrame(rows)


# The paper's Section 6 networks: (table, the paper's row, zoo name or factory options, input
# H×W, published params in millions, published MAdds in billions). arXiv v5 Tables 6, 7 and 8,
# read from the ar5iv rendering (index id 70253733526; data/REFERENCE.md). Table 6 does not print
# its input size: 320×320 is SSDLite's (the TF detection zoo's ssd_mobilenet_v3 configs). Tables
# 7/8 "(f)" is full Cityscapes resolution 1024×2048, "(h)" half, 512×1024; Table 8 prints no params.
TASK_SOURCE = f"{V5} Tables 6-8 (ar5iv rendering, index id 70253733526)"


class TaskRow(NamedTuple):
    """One row of the paper's Tables 6–8 (see :data:`TASK_TABLE`)."""

    table: str
    model: str  # the paper's row, as printed
    name: str  # hwlat's zoo name
    options: dict  # factory options (filters, output_stride)
    hw: tuple[int, int]  # input H×W
    params_M: float | None  # published params (millions); Table 8 prints none
    madds_B: float  # published MAdds (billions)
    source_row: tuple[str, float]  # (model, multiplier) of its rows in data/paper_tables.csv


TASK_TABLE: tuple[TaskRow, ...] = tuple(
    TaskRow(*r)
    for r in (
        (
            "Table6",
            "V3",
            "ssdlite_mobilenetv3_large",
            {},
            (320, 320),
            4.97,
            0.62,
            ("SSDLite-V3 (Large)", 1.0),
        ),
        (
            "Table6",
            "V3 dagger (reduced tail)",
            "ssdlite_mobilenetv3_large_reduced",
            {},
            (320, 320),
            3.22,
            0.51,
            ("SSDLite-V3 (Large) dagger", 1.0),
        ),
        (
            "Table6",
            "V3-Small",
            "ssdlite_mobilenetv3_small",
            {},
            (320, 320),
            2.49,
            0.21,
            ("SSDLite-V3-Small", 1.0),
        ),
        (
            "Table6",
            "V3-Small dagger (reduced tail)",
            "ssdlite_mobilenetv3_small_reduced",
            {},
            (320, 320),
            1.77,
            0.16,
            ("SSDLite-V3-Small dagger", 1.0),
        ),
        ("Table6", "V2", "ssdlite_mobilenetv2_100", {}, (320, 320), 4.3, 0.80, ("SSDLite-V2", 1.0)),
        ("Table6", "V2 0.5", "ssdlite_mobilenetv2_050", {}, (320, 320), 1.54, 0.27, ("SSDLite-V2", 0.5)),
        ("Table6", "V2 0.35", "ssdlite_mobilenetv2_035", {}, (320, 320), 0.93, 0.16, ("SSDLite-V2", 0.35)),
        ("Table6", "MnasNet", "ssdlite_mnasnet_a1", {}, (320, 320), 4.88, 0.84, ("SSDLite-MnasNet", 1.0)),
        (
            "Table6",
            "MnasNet 0.5",
            "ssdlite_mnasnet_a1_050",
            {},
            (320, 320),
            1.68,
            0.29,
            ("SSDLite-MnasNet", 0.5),
        ),
        (
            "Table6",
            "MnasNet 0.35",
            "ssdlite_mnasnet_a1_035",
            {},
            (320, 320),
            1.02,
            0.18,
            ("SSDLite-MnasNet", 0.35),
        ),
        (
            "Table7",
            "row 7: V3, RF2, LR-ASPP, F=256",
            "lraspp_mobilenetv3_large_reduced",
            {"filters": 256},
            (1024, 2048),
            1.63,
            10.33,
            ("row7: V3 (Large) RF2=yes head=LR-ASPP F=256", 1.0),
        ),
        (
            "Table7",
            "row 8: V3, RF2, LR-ASPP, F=128",
            "lraspp_mobilenetv3_large_reduced",
            {},
            (1024, 2048),
            1.51,
            9.74,
            ("row8: V3 (Large) RF2=yes head=LR-ASPP F=128", 1.0),
        ),
        (
            "Table7",
            "row 11: V3-Small, RF2, LR-ASPP, F=128",
            "lraspp_mobilenetv3_small_reduced",
            {},
            (1024, 2048),
            0.47,
            2.90,
            ("row11: V3-Small RF2=yes head=LR-ASPP F=128", 1.0),
        ),
        (
            "Table8",
            "V3, OS=16 (h)",
            "lraspp_mobilenetv3_large_reduced",
            {},
            (512, 1024),
            None,
            2.48,
            ("V3 (Large) OS=16", 1.0),
        ),
        (
            "Table8",
            "V3, OS=32 (f)",
            "lraspp_mobilenetv3_large_reduced",
            {"output_stride": 32},
            (1024, 2048),
            None,
            7.74,
            ("V3 (Large) OS=32", 1.0),
        ),
        (
            "Table8",
            "V3, OS=32 (h)",
            "lraspp_mobilenetv3_large_reduced",
            {"output_stride": 32},
            (512, 1024),
            None,
            1.98,
            ("V3 (Large) OS=32", 1.0),
        ),
        (
            "Table8",
            "V3-Small, OS=16 (h)",
            "lraspp_mobilenetv3_small_reduced",
            {},
            (512, 1024),
            None,
            0.74,
            ("V3-Small OS=16", 1.0),
        ),
        (
            "Table8",
            "V3-Small, OS=32 (f)",
            "lraspp_mobilenetv3_small_reduced",
            {"output_stride": 32},
            (1024, 2048),
            None,
            2.06,
            ("V3-Small OS=32", 1.0),
        ),
        (
            "Table8",
            "V3-Small, OS=32 (h)",
            "lraspp_mobilenetv3_small_reduced",
            {"output_stride": 32},
            (512, 1024),
            None,
            0.53,
            ("V3-Small OS=32", 1.0),
        ),
    )
)


def _task_arch(name: str, options: dict, hw: tuple[int, int]):
    return get_arch(name, resolution=hw, **options)


def zoo_vs_tasks() -> pd.DataFrame:
    """Analytic MAdds/params of the Section 6 networks beside the paper's Tables 6–8 (:data:`TASK_TABLE`).

    Columns: ``table``, ``model`` (the paper's row), ``arch`` (hwlat's name), ``resolution``
    (``HxW``), ``madds_B`` (conv+FC, ours), ``paper_madds_B``, ``madds_diff_pct``, ``params_M``,
    ``paper_params_M`` and ``params_diff_pct`` (NaN where the paper prints none).
    """
    rows = []
    for table, model, name, options, hw, p_params, p_madds, _ in TASK_TABLE:
        arch = _task_arch(name, options, hw)
        rows.append(
            {
                "table": table,
                "model": model,
                "arch": arch.name,
                "resolution": f"{hw[0]}x{hw[1]}",
                **_versus(summary(arch), p_params, p_madds),
            }
        )
    return pd.DataFrame(rows)


def task_published() -> pd.DataFrame:
    """The Section 6 networks with the paper's accuracy and phone latency, one row per :data:`TASK_TABLE` row.

    Columns: ``table``, ``model`` (the paper's row), ``name`` (zoo), ``resolution`` (``HxW``),
    ``arch`` (codec string of the exact network), ``task`` (``detection``/``segmentation``),
    ``metric`` (``COCO mAP``, ``Cityscapes val mIOU`` for Table 7, ``Cityscapes test mIOU`` for
    Table 8), ``accuracy`` (mAP points or %), ``paper_ms`` (phone latency, ms) and ``paper_device``
    (Table 6 does not print its phone; Tables 7/8 time one Pixel 3 CPU core at the row's resolution).
    """
    from hwlat.archs import encode

    tabs = paper_tables()
    rows = []
    for r in TASK_TABLE:
        model, mult = r.source_row
        g = tabs[
            (tabs["table"] == r.table) & (tabs["model"] == model) & (tabs["multiplier"].astype(float) == mult)
        ]
        v = dict(zip(g["metric"], g["value"].astype(float)))
        if r.table == "Table6":
            acc, metric, ms, dev = v.get("coco_mAP"), "COCO mAP", v.get("latency"), "phone (not printed)"
        else:
            full = r.hw == (1024, 2048)
            metric = "Cityscapes val mIOU" if r.table == "Table7" else "Cityscapes test mIOU"
            ms = (
                v.get("cpu_time_pixel3_full_res", float("nan")) * 1000
                if full
                else v.get("cpu_time_pixel3_half_res")
            )
            acc, dev = v.get("mIOU"), "Pixel 3 CPU"
        rows.append(
            {
                "table": r.table,
                "model": r.model,
                "name": r.name,
                "resolution": f"{r.hw[0]}x{r.hw[1]}",
                "arch": encode(_task_arch(r.name, r.options, r.hw)),
                "task": "detection" if r.table == "Table6" else "segmentation",
                "metric": metric,
                "accuracy": acc,
                "paper_ms": ms,
                "paper_device": dev,
            }
        )
    return pd.DataFrame(rows)


def _versus(s: dict, p_params: float | None, p_madds: float) -> dict:
    madds, params = s["madds"] / 1e9, s["params"] / 1e6
    return {
        "madds_B": madds,
        "paper_madds_B": p_madds,
        "madds_diff_pct": 100 * (madds - p_madds) / p_madds,
        "params_M": params,
        "paper_params_M": p_params if p_params is not None else float("nan"),
        "params_diff_pct": 100 * (params - p_params) / p_params if p_params else float("nan"),
    }


def paper_task_rows(arch) -> list[dict]:
    """The Tables 6–8 rows that describe ``arch`` (same network and input size), each as
    :func:`zoo_vs_tasks` computes it; empty for any other network."""
    out = []
    for table, model, name, options, hw, p_params, p_madds, _ in TASK_TABLE:
        if arch.hw != hw or not arch.name.startswith(name):
            continue
        ref = _task_arch(name, options, hw)
        if ref.name == arch.name and ref == arch:
            out.append({"table": table, "model": model, **_versus(summary(arch), p_params, p_madds)})
    return out
