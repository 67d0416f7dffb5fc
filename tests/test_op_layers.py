"""Per-op times of whole networks placed on their IR layers, and the report's "Inside the network,
measured" section, from op frames and stores written by hand (nothing is measured here)."""

import math

import pandas as pd
import pytest

from hwlat.archs import get_arch, layers
from hwlat.profiler.analysis.op_layers import UNPLACED, layer_times, node_type_times, op_layers

ARCH = ("mobilenetv3_small_050", 96)


def _exported_ops(arch, **kw) -> list[dict]:
    """One profile row per op of hwlat's own export of ``arch``, named as ``benchmark_model``
    names the ops LiteRT runs itself: ``[<output tensor>]:<op index>``; op ``i`` takes 0.01·(i+1) ms."""
    from ai_edge_litert import schema_py_generated as fb

    from hwlat.profiler.export.tflite import build_tflite, op_names

    buf = build_tflite(arch, **kw)
    sg = fb.ModelT.InitFromPackedBuf(buf, 0).subgraphs[0]
    out = []
    for i, (op, node_type) in enumerate(zip(sg.operators, op_names(buf))):
        tensor = sg.tensors[op.outputs[0]].name
        tensor = tensor.decode() if isinstance(tensor, bytes) else tensor
        out.append(
            {"node_type": node_type, "name": f"[{tensor}]:{i}", "avg_ms": 0.01 * (i + 1), "times_called": 1}
        )
    return out


@pytest.fixture(scope="module")
def arch():
    name, res = ARCH
    return get_arch(name, resolution=res)


@pytest.fixture(scope="module")
def exported(arch):
    return {"float": _exported_ops(arch), "int8": _exported_ops(arch, quantize="int8")}


def _frame(ops: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(ops)
    return df.assign(run_ms=df["avg_ms"] * df["times_called"])


def test_every_op_of_a_float_export_is_placed_on_its_layer(arch, exported):
    ops = _frame(exported["float"])
    placed = op_layers(ops, arch)
    assert placed["layer"].notna().all(), placed[placed["layer"].isna()]
    by_name = dict(zip(placed["name"].str.extract(r"^\[(.*)\]", expand=False), placed["layer"]))
    assert by_name["stem/pad"] == by_name["stem"] == by_name["stem/hswish"] == "stem"
    assert by_name["blocks.0.se.expand/hsigmoid"] == "blocks.0.se.expand"
    assert by_name["blocks.2.add"] == "blocks.2.add"
    assert by_name["output"] == layers(arch)[-1].name == "classifier"
    lt = layer_times(ops, arch)
    assert list(lt["layer"][:-1]) == [r.name for r in layers(arch)]
    assert lt["layer"].iloc[-1] == UNPLACED and lt["measured_ms"].iloc[-1] == 0
    assert lt["measured_ms"].notna().all() and (lt["ops"][:-1] >= 1).all()
    assert math.isclose(lt["measured_ms"].sum(), ops["run_ms"].sum())
    stem = lt[lt["layer"] == "stem"].iloc[0]
    assert (
        stem["kind"] == "conv" and stem["ops"] == 3 and math.isclose(stem["measured_ms"], 0.01 + 0.02 + 0.03)
    )


def test_int8_conversions_delegated_and_unknown_ops_are_unplaced_never_dropped(arch, exported):
    ops = exported["int8"] + [
        {
            "node_type": "Convolution (NHWC, QC8) DWConv",
            "name": "Delegate/Convolution (NHWC, QC8) DWConv:1",
            "avg_ms": 0.05,
            "times_called": 13,
        },
        {"node_type": "CONV_2D", "name": "[some_other_net/conv]:200", "avg_ms": 0.3, "times_called": 1},
        {"node_type": "CUSTOM", "name": "AllocateTensors/0", "avg_ms": 0.2, "times_called": 1},
    ]
    ops = _frame(ops)
    placed = op_layers(ops, arch)
    reasons = dict(zip(placed["name"], placed["reason"]))
    assert reasons["[input_int8]:0"] == "conversion"
    assert placed.loc[placed["node_type"] == "DEQUANTIZE", "reason"].tolist() == ["conversion"]
    assert placed.loc[placed["node_type"] == "FULLY_CONNECTED", "layer"].tolist() == ["classifier"]
    assert reasons["Delegate/Convolution (NHWC, QC8) DWConv:1"] == "delegated"
    assert reasons["[some_other_net/conv]:200"] == "unknown name"
    assert reasons["AllocateTensors/0"] == "unreadable name"
    assert placed.loc[placed["reason"].isna(), "layer"].notna().all()

    lt = layer_times(ops, arch)
    off = lt[lt["layer"] == UNPLACED].iloc[0]
    assert off["ops"] == 5
    expected = ops["run_ms"][placed["layer"].isna()].sum()
    assert math.isclose(off["measured_ms"], expected) and off["measured_ms"] > 0.05 * 13
    assert "2 conversion" in off["reason"] and "1 delegated" in off["reason"]
    assert "some_other_net/conv" in off["reason"]
    assert math.isclose(lt["measured_ms"].sum(), ops["run_ms"].sum())


def test_an_xnnpack_profile_places_nothing_and_keeps_its_node_types(arch):
    kinds = ("IGEMM", 0.4, 1), ("DWConv", 0.05, 11), ("GEMM", 0.01, 30)
    ops = _frame(
        [
            {
                "node_type": f"Convolution (NHWC, F32) {k}",
                "name": f"Delegate/Convolution (NHWC, F32) {k}:{i}",
                "avg_ms": ms,
                "times_called": n,
            }
            for i, (k, ms, n) in enumerate(kinds)
        ]
    )
    lt = layer_times(ops, arch)
    assert lt["measured_ms"][:-1].isna().all()  # not measured: NaN, never zero
    assert (lt["ops"][:-1] == 0).all()
    assert math.isclose(lt["measured_ms"].iloc[-1], ops["run_ms"].sum())
    types = node_type_times(ops)
    assert types["delegated"].all() and math.isclose(types["measured_ms"].sum(), ops["run_ms"].sum())
    assert types["node_type"].iloc[0] == "Convolution (NHWC, F32) DWConv"  # 0.55 ms, largest first


# -- the report ---------------------------------------------------------------------------------
def _store_with_ops(path, arch, ops_by_repeat, xnnpack_ops=None):
    """A store with one local device, ``arch``'s model workload measured with ``ops`` per repeat,
    and (with ``xnnpack_ops``) a second network whose profile XNNPACK ran."""
    from hwlat.archs.pieces import model
    from hwlat.profiler.storage.device import fingerprint
    from hwlat.profiler.storage.store import Store

    fp = fingerprint("litert", "1.0")
    with Store(path) as st:
        dev = st.add_device(fp)
        nets = [(arch, ops_by_repeat)]
        if xnnpack_ops is not None:
            nets.append((get_arch("mobilenetv3_small_100", resolution=96), [xnnpack_ops]))
        for a, runs in nets:
            w = model(a)
            st.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
            for rep, ops in enumerate(runs):
                total = sum(o["avg_ms"] * o.get("times_called", 1) for o in ops) or 1.0
                st.add_measurement(
                    w.key,
                    dev,
                    {"median_ms": total, "p10_ms": total, "n": 10},
                    "r1",
                    repeat=rep,
                    raw_output="(a benchmark_model output)",
                    ops=ops,
                )
    return fp


def _predictor(path, fp, arch):
    from hwlat.archs import summary
    from hwlat.latency_models import make_predictor

    archs = [
        arch,
        get_arch("mobilenetv3_small_100", resolution=96),
        get_arch("mobilenetv3_small_075", resolution=128),
    ]
    y = [summary(a)["madds"] / 1e6 * 0.02 + 0.1 for a in archs]
    make_predictor("madds").fit(archs, y, fingerprint=fp, runtime="litert").save(path)
    return path


def _inside_part(html: str) -> str:
    assert "<h3>Inside the network, measured</h3>" in html
    return html.split("<h3>Inside the network, measured</h3>", 1)[1]


def test_report_shows_measured_layers_beside_the_predictor(tmp_path, arch, exported):
    from hwlat.dashboards import figures as F
    from hwlat.dashboards import frames as D
    from hwlat.dashboards.report import build_report, inside_figures, load_predictors
    from hwlat.profiler.storage.store import Store

    delegated = [
        {"node_type": "Convolution (NHWC, F32) GEMM", "name": "Delegate/Convolution (NHWC, F32) GEMM:0",
         "avg_ms": 0.02, "times_called": 30},
    ]  # fmt: skip
    extra = {"node_type": "CONV_2D", "name": "[not_a_layer]:999", "avg_ms": 0.5, "times_called": 1}
    ops0 = exported["float"] + [extra]
    ops1 = [{**o, "avg_ms": 2 * o["avg_ms"]} for o in ops0]
    db = tmp_path / "ops.db"
    fp = _store_with_ops(db, arch, [ops0, ops1], xnnpack_ops=delegated)
    pred = _predictor(tmp_path / "pred.json", fp, arch)

    with Store(db, readonly=True) as st:
        frame, ops = st.frame(), st.op_times()
    preds, _ = load_predictors([pred])
    inside = D.inside_layers(ops, frame, next(iter(preds.values())))
    one = inside[inside["network"] == "mobilenetv3_small_050 @96"]
    assert set(one["runs"]) == {2}
    per_run = 1.5 * sum(o["avg_ms"] for o in ops0)  # the mean of the two repeats
    assert math.isclose(one["measured_ms"].sum(), per_run)
    assert one["predicted_ms"][one["layer"] != UNPLACED].notna().all()
    assert math.isclose(one.loc[one["layer"] == UNPLACED, "measured_ms"].item(), 1.5 * 0.5)
    dis = D.layer_disagreements(one)
    assert len(dis) == 10 and dis["diff_ms"].abs().is_monotonic_decreasing

    (fig,) = inside_figures(frame, ops, "this device", preds)
    assert not F.is_note(fig)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == [
        "mobilenetv3_small_050 @96",
        "mobilenetv3_small_100 @96",
    ]
    bars = [t for t in fig.data if t.type == "bar"]
    assert {t.name.split(" (")[0] for t in bars} >= {"measured", "predicted", "measured per node type"}
    notes = [a["text"] for b in fig.layout.updatemenus[0].buttons for a in b.args[1]["annotations"]]
    assert any("unplaced: 0.750 ms" in n and "not_a_layer" in n for n in notes)
    assert any("XNNPACK" in n and "no per-layer comparison" in n for n in notes)

    html = build_report(db, [pred], out=tmp_path / "r.html").read_text()
    assert html.count("plotly.js v") == 1 and html.find("plotly.js v") < html.find("Plotly.newPlot")
    part = _inside_part(html)
    assert "plotly-graph-div" in part and "Inside the network, measured on" in part
    assert "blocks.0.se.expand" in part and "predicted ms" in part  # the disagreement table
    assert "XNNPACK ran this network" in part and "no per-layer comparison" in part


def test_report_without_op_times_says_so(tmp_path, arch):
    from hwlat.dashboards.report import build_report

    db = tmp_path / "noops.db"
    _store_with_ops(db, arch, [[]])  # measured whole, no op profile
    part = _inside_part(build_report(db, out=tmp_path / "n.html").read_text())
    assert "No per-op times of whole networks on this device" in part

    empty = tmp_path / "empty.db"
    from hwlat.profiler.storage.store import Store

    Store(empty).close()
    part = _inside_part(build_report(empty, out=tmp_path / "e.html").read_text())
    assert "No per-op times of whole networks" in part


def test_report_of_a_device_imported_from_benchmark_logs_has_the_section(tmp_path, arch, exported):
    from hwlat.archs.pieces import model
    from hwlat.dashboards.report import build_report
    from hwlat.profiler.storage.benchmark_log import log_fingerprint, parse_log
    from hwlat.profiler.storage.store import Store

    log = parse_log("count=50 first=1200 curr=1000 min=900 max=1300 avg=1000 std=50\n")
    db = tmp_path / "log.db"
    w = model(arch)
    with Store(db) as st:
        dev = st.add_device(log_fingerprint("my phone", log))
        st.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
        st.add_measurement(
            w.key, dev, {"median_ms": 1.0, "n": 50}, "r", raw_output="...", ops=exported["int8"]
        )
    html = build_report(db, out=tmp_path / "l.html").read_text()
    part = _inside_part(html)
    assert "Inside the network, measured on my phone" in part and "blocks.0.dw" in part
    assert "no predictor given" in part  # a predictor of this device is needed for the comparison
