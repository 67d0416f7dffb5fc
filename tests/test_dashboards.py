"""Dashboards: figures from small tables, "no data" notes, and the self-contained report of a tiny store."""

import argparse
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from hwlat.archs import get_arch
from hwlat.dashboards import figures as F
from hwlat.dashboards import frames as D
from hwlat.dashboards.report import build_report


# -- a tiny real store: two published V3-Small networks measured whole, one of them block by block --
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from hwlat.latency_models import TrainingData, make_predictor
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.timing import TimingConfig

    d = tmp_path_factory.mktemp("dash")
    db = d / "lat.db"
    cfg = TimingConfig(max_seconds=0.3, target=0.05)
    archs = [
        get_arch("mobilenetv3_small_100", resolution=96),
        get_arch("mobilenetv3_small_100", resolution=128),
        get_arch("mobilenetv3_small_035", resolution=96),
    ]
    profile(archs, "model", db, "litert", config=cfg, progress=False)
    profile(archs[:1], "block", db, "litert", config=cfg, progress=False)
    data = TrainingData.from_store(db, "litert")
    paths = []
    for kind, fp in (
        ("madds", data.fingerprint),
        ("madds", {**data.fingerprint, "cpu": "Other CPU", "host": "phone"}),
    ):
        p = make_predictor(kind).fit(
            data.archs(), data.latency_ms, pieces=data.pieces, fingerprint=fp, runtime="litert"
        )
        paths.append(d / f"pred{len(paths)}.json")
        p.save(paths[-1])
    return {"dir": d, "db": db, "pred": paths[0], "other": paths[1], "arch": archs[0]}


def _note_text(fig) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


# -- figures: every one says what is missing -----------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: F.pareto(pd.DataFrame()),
        lambda: F.madds_latency(pd.DataFrame(columns=D.MODEL_COLUMNS)),
        lambda: F.layer_breakdown(None, pd.DataFrame()),
        lambda: F.predictor_error(pd.DataFrame()),
        lambda: F.search_trajectory(None),
        lambda: F.search_trajectory(
            pd.DataFrame(
                {"step": [0, 1], "latency_ms": np.nan, "accuracy": np.nan, "reward": np.nan, "proposal": None}
            )
        ),
        lambda: F.ablation_deltas(pd.DataFrame()),
    ],
)
def test_empty_inputs_give_a_visible_note(make):
    fig = make()
    assert F.is_note(fig)
    assert len(_note_text(fig)) > 20
    assert not fig.data


def test_pareto_front_keeps_only_undominated_points():
    x = [1.0, 2.0, 3.0, 2.5, np.nan]
    y = [60.0, 70.0, 65.0, 72.0, 99.0]
    assert D.pareto_front(x, y).tolist() == [True, True, False, True, False]


def test_published_points_cover_table9_and_references():
    pub = D.published()
    assert len(pub[pub.family.isin(["large", "small"])]) == 19
    row = pub[(pub.name == "mobilenetv3_large_100") & (pub.resolution == 224)].iloc[0]
    assert (row.top1, row.pixel1_ms) == (75.2, 51.2)
    assert {"V2", "MnasNet-A1", "Large minimalistic", "Small minimalistic"} <= set(pub.family)


def test_pareto_figure_has_frontier_and_hidden_pixel1_toggle():
    pts = D.pareto_points(pd.DataFrame(columns=D.MODEL_COLUMNS))
    pts["measured_ms"] = pts["madds"] / 2e7  # a fake device where latency is MAdds
    fig = F.pareto(pts, "fake")
    names = [t.name for t in fig.data]
    assert any("Pareto frontier" in n for n in names)
    pixel = [t for t in fig.data if "Pixel-1" in t.name]
    assert pixel and all(t.visible is False for t in pixel)
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert "+ Pixel-1 (paper)" in labels
    shown = fig.layout.updatemenus[0].buttons[labels.index("+ Pixel-1 (paper)")].args[0]["visible"]
    assert all(shown[i] for i, t in enumerate(fig.data) if "Pixel-1" in t.name)
    assert "ms" in fig.data[0].text[0] and "MAdds" in fig.data[0].text[0]


def test_predictor_error_shows_metrics_and_band():
    rng = np.random.default_rng(0)
    t = rng.uniform(1, 10, 20)
    errs = pd.DataFrame(
        {
            "predictor": ["a"] * 20 + ["madds"] * 20,
            "name": "n",
            "resolution": 224,
            "measured_ms": np.r_[t, t],
            "predicted_ms": np.r_[t * 1.02, t * 1.3],
        }
    )
    fig = F.predictor_error(errs)
    assert [t.name for t in fig.data][0] == "±10 %"
    assert "RMSPE" in _note_text(fig) and "madds" in _note_text(fig)


def test_history_reader_is_tolerant(tmp_path):
    (tmp_path / "netadapt.json").write_text(
        json.dumps(
            [
                {"step": 0, "latency_ms": 5.0, "accuracy": 0.9},
                {"step": 1, "latency_ms": 4.5, "acc": 0.89, "proposal": {"cut": "block 3 expansion"}},
            ]
        )
    )
    (tmp_path / "nas.jsonl").write_text(
        "\n".join(json.dumps({"latency_ms": 3 + i, "top1": 0.5 + i / 10, "reward": i}) for i in range(4))
    )
    (tmp_path / "broken.json").write_text("{not json")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        h = D.histories(tmp_path)
    assert set(h) == {"netadapt.json", "nas.jsonl"}
    assert "block 3" in h["netadapt.json"]["proposal"].iloc[1]
    assert h["nas.jsonl"]["step"].tolist() == [0, 1, 2, 3]
    assert not F.is_note(F.search_trajectory(h["netadapt.json"]))
    nas = F.search_trajectory(h["nas.jsonl"])
    assert "Pareto set" in [t.name for t in nas.data]
    assert D.histories(tmp_path / "missing") == {}


def test_ablations_have_paper_deltas_and_madds():
    abl = D.ablations(pd.DataFrame(columns=D.MODEL_COLUMNS))
    last = abl[abl.variant == "original last stage"].iloc[0]
    assert last.delta_madds_M == pytest.approx(34.3, abs=0.1) and last.paper_delta_madds_M == 30
    assert (abl.source == "missing").all()
    fig = F.ablation_deltas(abl)
    assert "not measured" in _note_text(fig)


def test_task_section_joins_published_accuracy_and_reduced_tail():
    from hwlat.archs import encode

    pub = D.task_points(pd.DataFrame(columns=D.MODEL_COLUMNS))
    assert len(pub) == 19 and (pub.source == "missing").all()
    v3 = pub[pub.model == "V3"].iloc[0]
    assert (v3.metric, v3.accuracy, v3.paper_ms) == ("COCO mAP", 22.0, 137.0)
    half = pub[pub.model == "V3-Small, OS=16 (h)"].iloc[0]
    assert (half.accuracy, half.paper_ms, half.resolution) == (69.4, 327.0, "512x1024")
    assert F.is_note(F.task_latency(pub, D.reduced_tail(None)))
    # two measured networks: the exact codec strings match, nothing else does
    full, red = (
        get_arch(n, resolution=(320, 320))
        for n in ("ssdlite_mobilenetv3_small", "ssdlite_mobilenetv3_small_reduced")
    )
    models = pd.DataFrame(
        [{"arch": encode(full), "latency_ms": 40.0}, {"arch": encode(red), "latency_ms": 30.0}]
    )
    pts = D.task_points(models)
    assert pts[pts.source == "measured"]["here_ms"].tolist() == [40.0, 30.0]
    tail = D.reduced_tail(models).set_index("network")
    row = tail.loc["ssdlite_mobilenetv3_small"]
    assert row.source == "measured" and row.saving_pct == pytest.approx(25.0)
    assert row.paper_saving_pct == pytest.approx(100 * (1 - 43 / 52))
    assert np.isnan(tail.loc["lraspp_mobilenetv3_small", "paper_saving_pct"])
    fig = F.task_latency(pts, D.reduced_tail(models))
    assert not F.is_note(fig) and {"detection, measured", "saved here", "saved (paper)"} <= {
        t.name for t in fig.data
    }
    # a MAdds proxy fitted on small classifiers predicts the rest far outside what it learned from:
    # marked 'extrapolated' in the figure, with no warning per network
    import warnings

    from hwlat.latency_models import make_predictor

    small = [
        get_arch(n, resolution=r)
        for n in ("mobilenetv3_small_050", "mobilenetv3_small_100")
        for r in (96, 128)
    ]
    proxy = make_predictor("madds").fit(small, np.array([1.0, 1.6, 2.0, 3.1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pts = D.task_points(models, proxy)
    assert (pts.source == "measured").sum() == 2 and (pts.source == "extrapolated").sum() == len(pts) - 2
    assert (pts[pts.source == "extrapolated"]["here_ms"] > 0).all()
    fig = F.task_latency(pts, D.reduced_tail(models, proxy))
    assert "segmentation, extrapolated" in {t.name for t in fig.data}


# -- the tiny real store ---------------------------------------------------------------------------
def test_models_and_blocks_from_store(tiny):
    from hwlat.profiler.storage.store import Store

    with Store(tiny["db"], create=False) as st:
        frame = st.frame()
    m = D.models(frame)
    assert sorted(zip(m.family, m.multiplier, m.resolution)) == [
        ("small", 0.35, 96),
        ("small", 1.0, 96),
        ("small", 1.0, 128),
    ]
    b = D.measured_blocks(frame, tiny["arch"])
    assert len(b) > 5 and b["latency_ms"].notna().all()
    assert D.measured_blocks(frame, get_arch("mobilenetv3_large_100")).empty
    pts = D.pareto_points(m)
    assert pts["measured_ms"].notna().sum() == 2  # small 1.0 @96 and @128 are in Table 9
    assert not F.is_note(F.layer_breakdown(None, b))


def _scripts(text: str) -> list[str]:
    return re.findall(r"<script[^>]*\bsrc\s*=\s*['\"]?([^'\" >]+)", text, flags=re.I)


def test_report_is_self_contained(tiny, tmp_path):
    out = build_report(tiny["db"], [tiny["pred"]], runs_dir=None, out=tmp_path / "r.html")
    text = out.read_text()
    assert "plotly.js v" in text or "Plotly" in text[:4_000_000]
    assert len(text) > 3_000_000  # plotly.js itself is embedded
    assert _scripts(text) == []  # no external script of any kind
    assert text.count("Plotly.newPlot") >= 6
    assert "No search history" in text
    runs = tmp_path / "runs" / "netadapt"
    runs.mkdir(parents=True)
    (runs / "history.json").write_text(
        json.dumps(
            [
                {"step": i, "latency_ms": 5 - i, "accuracy": 0.9 - i / 100, "proposal": f"block {i}"}
                for i in range(3)
            ]
        )
    )
    text = build_report(tiny["db"], runs_dir=tmp_path / "runs", out=tmp_path / "h.html").read_text()
    assert "Search trajectory: netadapt" in text and "No search history" not in text


def test_report_notes_bad_input(tiny, tmp_path):
    from hwlat.profiler.storage.store import Store

    empty = tmp_path / "empty.db"
    Store(empty, create=True).close()
    text = build_report(empty, out=tmp_path / "e.html").read_text()
    assert "holds no measurements" in text and text.count("Plotly.newPlot") >= 6
    text = build_report(tiny["db"], out=tmp_path / "o.html", runtime="onnxruntime").read_text()
    assert "no onnxruntime measurements" in text
    text = build_report(
        tiny["db"],
        [tiny["other"], tmp_path / "nope.json"],
        runs_dir=tmp_path / "runs",
        out=tmp_path / "x.html",
    ).read_text()
    assert "predictor/device mismatch" in text
    assert "cannot load" in text
    assert "does not exist" in text


def test_cli_build(tiny, tmp_path, capsys):
    from hwlat.cli.dashboards import add_parsers

    class P(argparse.ArgumentParser):
        def error(self, message):
            raise ValueError(message)

    p = P(prog="hwlat")
    add_parsers(p.add_subparsers(dest="cmd", required=True, parser_class=P))
    args = p.parse_args(
        [
            "dashboard",
            "build",
            "--store",
            str(tiny["db"]),
            "--predictor",
            str(tiny["pred"]),
            "-o",
            str(tmp_path / "c.html"),
        ]
    )
    assert args.func(args) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "c.html").exists()
    args = p.parse_args(["dashboard", "serve", "--store", "x.db"])
    assert (args.host, args.port) == ("127.0.0.1", 8050)
    with pytest.raises(ValueError):
        p.parse_args(["dashboard"])


def test_app_budget_and_click(tiny):
    pytest.importorskip("dash")
    from hwlat.dashboards.app import app_points, best_under, budget_figure, make_app

    pts, _ = app_points(tiny["db"])
    assert len(pts) == 2
    best = best_under(pts, float(pts["latency_ms"].max()))
    assert best["resolution"] == 128  # the higher published top-1 of the two
    assert best_under(pts, 0.0) is None
    assert not F.is_note(budget_figure(pts, 1.0, best))
    app = make_app(tiny["db"], predictor_path=tiny["pred"])
    assert app.layout is not None


def test_predicted_blocks_align_with_measured_blocks(tiny):
    from hwlat.archs.pieces import blocks
    from hwlat.latency_models import load
    from hwlat.profiler.storage.store import Store

    arch = tiny["arch"]
    idx = D.block_index(arch)
    assert sorted(set(idx.values())) == list(range(len(blocks(arch))))
    pb = D.predicted_blocks(load(tiny["pred"]), arch)
    assert pb["block_index"].min() >= 0
    with Store(tiny["db"], create=False) as st:
        m = D.measured_blocks(st.frame(), arch)
    fig = F.layer_breakdown(pb, m)
    assert list(fig.data[0].x) == list(fig.data[1].x)  # same blocks, same labels
    assert D.predicted_blocks(None, arch) is None
