"""Devices measured elsewhere: importing latency tables, --device selection, the e2e and transfer
predictors, the shipped ARM block tables, suggest, and the report section, on the published FBNet
data shipped in data/ (real measurements of real phones; nothing here is timed)."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from build_shipped_predictors import fbnet_archs, split

from hwlat.archs import get_arch
from hwlat.archs.space import get_space
from hwlat.cli import main
from hwlat.errors import ExtrapolationWarning
from hwlat.latency_models import EndToEnd, MAddsProxy, TrainingData, Transfer, load
from hwlat.latency_models.metrics import metrics
from hwlat.paper import data_file, fbnet_latencies
from hwlat.profiler.storage.device import device_key
from hwlat.profiler.storage.store import Store
from hwlat.profiler.storage.tables import TableError, import_table, table_fingerprint

SPACE = "fbnet_cifar100"
OPS = [f"op{i}" for i in range(22)]


@pytest.fixture(scope="module")
def table():
    return fbnet_latencies()


@pytest.fixture(scope="module")
def rows(table):
    """A seeded sample of 700 rows: 400 to fit on, 300 held out."""
    idx = np.random.default_rng(1).permutation(len(table))[:700]
    return idx[:400], idx[400:]


@pytest.fixture(scope="module")
def archs(table, rows):
    tr, te = rows
    return fbnet_archs(tr), fbnet_archs(te)


def _csv(table, path, idx, cols=("samsung_a50", "pixel2")):
    table.iloc[idx][["idx", *OPS, *cols]].to_csv(path, index=False)
    return path


# -- import-table -----------------------------------------------------------------------------------


def test_import_table_stores_every_row_as_a_model_of_the_named_device(tmp_path, table):
    csv = _csv(table, tmp_path / "t.csv", np.arange(30))
    db = tmp_path / "s.db"
    c = import_table(
        csv, db, "samsung_a50", "samsung_a50", space=SPACE, source="published: test", runtime="tflite"
    )
    assert (c["rows"], c["added"], c["skipped"]) == (30, 30, 0)
    data = TrainingData.from_store(db, device="samsung_a50")
    assert len(data.models) == 30 and data.runtime == "tflite"
    assert data.fingerprint["name"] == "samsung_a50" and data.fingerprint["source"] == "published: test"
    np.testing.assert_allclose(data.latency_ms, table["samsung_a50"].to_numpy()[:30])
    sp = get_space(SPACE)
    assert [tuple(sp.encode_arch(a)) for a in data.archs()] == [tuple(v) for v in table[OPS].to_numpy()[:30]]
    again = import_table(
        csv, db, "samsung_a50", "samsung_a50", space=SPACE, source="other words", runtime="tflite"
    )
    assert (again["added"], again["skipped"]) == (0, 30)  # same values: nothing new, no error


def test_import_table_by_codec_strings(tmp_path):
    from hwlat.archs import encode

    names = ["mobilenetv3_small_100", "mobilenetv3_large_100"]
    pd.DataFrame({"arch": [encode(get_arch(n)) for n in names], "name": names, "ms": [11.5, 33.0]}).to_csv(
        tmp_path / "bm.csv", index=False
    )
    c = import_table(tmp_path / "bm.csv", tmp_path / "s.db", "my-pixel7", "ms")
    assert c["added"] == 2
    data = TrainingData.from_store(tmp_path / "s.db", device="my-pixel7")
    assert sorted(data.models["name"]) == sorted(names)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda df: df.drop(columns=["op7"]), "missing 'op7'"),
        (
            lambda df: df.assign(samsung_a50=df["samsung_a50"].astype(object).where(df.index != 3, "fast")),
            "line 5, column 'samsung_a50': latency 'fast' is not a number",
        ),
        (
            lambda df: df.assign(samsung_a50=df["samsung_a50"].where(df.index != 2, 0.0)),
            "line 4, column 'samsung_a50': latency must be a positive number",
        ),
        (
            lambda df: df.assign(samsung_a50=df["samsung_a50"].astype(object).where(df.index != 2, "")),
            "line 4, column 'samsung_a50': no latency",
        ),
        (
            lambda df: df.assign(op5=df["op5"].where(df.index != 6, 9)),
            "line 8, column 'op5': index 9 is outside space fbnet_cifar100 (0..8)",
        ),
        (
            lambda df: pd.concat([df, df.iloc[[1]].assign(samsung_a50=df["samsung_a50"].iloc[1] + 1)]),
            "the architecture of line 3 again, with a different latency",
        ),
    ],
)
def test_bad_tables_are_refused_whole_with_file_line_and_column(tmp_path, table, edit, message):
    df = edit(table.iloc[:10][["idx", *OPS, "samsung_a50"]].reset_index(drop=True))
    df.to_csv(tmp_path / "bad.csv", index=False)
    db = tmp_path / "s.db"
    import_table(
        _csv(table, tmp_path / "ok.csv", np.arange(10, 12), ("samsung_a50",)),
        db,
        "samsung_a50",
        "samsung_a50",
        space=SPACE,
    )
    with pytest.raises(TableError, match="bad.csv") as e:
        import_table(tmp_path / "bad.csv", db, "samsung_a50", "samsung_a50", space=SPACE)
    assert message in str(e.value) and "\n" not in str(e.value)
    with Store(db, create=False) as st:  # nothing half-imported
        assert len(st.frame()) == 2


def test_import_refuses_a_missing_column_and_a_changed_value(tmp_path, table):
    csv = _csv(table, tmp_path / "t.csv", np.arange(5))
    with pytest.raises(TableError, match="no latency column 'pixel9'"):
        import_table(csv, tmp_path / "s.db", "p", "pixel9", space=SPACE)
    with pytest.raises(TableError, match="op0, op1"):
        import_table(csv, tmp_path / "s.db", "p", "pixel2")  # neither --space nor an arch column
    import_table(csv, tmp_path / "s.db", "p", "pixel2", space=SPACE)
    changed = table.iloc[:5][["idx", *OPS, "pixel2"]].assign(pixel2=lambda d: d["pixel2"] + 1)
    changed.to_csv(tmp_path / "t2.csv", index=False)
    with pytest.raises(TableError, match="already holds"):
        import_table(tmp_path / "t2.csv", tmp_path / "s.db", "p", "pixel2", space=SPACE)


def test_cli_import_table_one_line_errors(tmp_path, table, capsys):
    csv = _csv(table, tmp_path / "t.csv", np.arange(5))
    assert (
        main(
            [
                "profile",
                "import-table",
                str(csv),
                "--store",
                str(tmp_path / "s.db"),
                "--device",
                "pixel2",
                "--column",
                "pixel3x",
                "--space",
                SPACE,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("hwlat: error: ") and "pixel3x" in err and err.count("\n") == 1
    assert (
        main(
            [
                "profile",
                "import-table",
                str(csv),
                "--store",
                str(tmp_path / "s.db"),
                "--device",
                "pixel2",
                "--column",
                "pixel2",
                "--space",
                SPACE,
                "--runtime",
                "tflite",
            ]
        )
        == 0
    )
    assert "5 measurements added" in capsys.readouterr().out


# -- --device -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phones(tmp_path_factory, table, rows):
    """A store with the samsung_a50 and pixel2 columns of 700 rows, two devices."""
    tmp = tmp_path_factory.mktemp("phones")
    csv = _csv(table, tmp / "phones.csv", np.sort(np.concatenate(rows)))
    db = tmp / "phones.db"
    for col in ("samsung_a50", "pixel2"):
        import_table(
            csv, db, col, col, space=SPACE, source="published: HW-NAS-Bench via HELP", runtime="tflite"
        )
    return db


def test_device_selection_by_name_key_or_prefix_and_no_guessing(tmp_path, phones):
    key = device_key(table_fingerprint("pixel2", "x", runtime="tflite"))
    for ref in ("pixel2", key, key[:8]):
        assert TrainingData.from_store(phones, device=ref).device_key == key
    with pytest.raises(ValueError, match="2 devices.*samsung_a50.*pixel2|2 devices.*pixel2.*samsung_a50"):
        TrainingData.from_store(phones)
    with pytest.raises(ValueError, match="no device 'pixel9'"):
        TrainingData.from_store(phones, device="pixel9")
    # the same name under two runtimes: two devices, and the name alone is ambiguous
    from hwlat.archs import encode

    db = tmp_path / "two.db"
    pd.DataFrame({"arch": [encode(get_arch("mobilenetv3_small_100"))], "ms": [5.0]}).to_csv(
        tmp_path / "x.csv", index=False
    )
    for rt in ("tflite", "nnapi"):
        import_table(tmp_path / "x.csv", db, "pixel7", "ms", runtime=rt)
    with pytest.raises(ValueError, match="2 devices match 'pixel7', give its key"):
        TrainingData.from_store(db, device="pixel7")
    assert TrainingData.from_store(db, runtime="nnapi", device="pixel7").runtime == "nnapi"


def test_cli_device_on_fit_evaluate_and_profile_show(tmp_path, phones, capsys):
    assert main(["profile", "show", "--store", str(phones), "--device", "pixel2"]) == 0
    out = capsys.readouterr().out
    assert "pixel2 (imported)" in out and "samsung_a50" not in out and "700" in out
    assert main(["fit", "--store", str(phones), "--kind", "madds", "-o", str(tmp_path / "m.json")]) == 2
    assert "choose one with --device" in capsys.readouterr().err
    assert (
        main(
            [
                "fit",
                "--store",
                str(phones),
                "--kind",
                "e2e",
                "--device",
                "samsung_a50",
                "-o",
                str(tmp_path / "e.json"),
            ]
        )
        == 0
    )
    assert "device samsung_a50" in capsys.readouterr().out
    assert load(tmp_path / "e.json").fingerprint_["name"] == "samsung_a50"
    # evaluate on the other phone's networks: the predictor's own device is the default
    assert (
        main(
            [
                "evaluate",
                "--store",
                str(phones),
                "--predictor",
                "@pixel3",
                "--device",
                "pixel2",
                "--allow-other-device",
                "--json",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res[0]["n"] == 700 and res[0]["spearman"] > 0.6


# -- e2e ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samsung_e2e(table, rows, archs):
    tr, _ = rows
    return EndToEnd().fit(
        archs[0],
        table["samsung_a50"].to_numpy()[tr],
        fingerprint=table_fingerprint("samsung_a50", "published", "tflite"),
        runtime="tflite",
    )


def test_e2e_learns_a_phone_from_network_latencies_only(table, rows, archs, samsung_e2e):
    tr, te = rows
    y = table["samsung_a50"].to_numpy()
    m = metrics(y[te], samsung_e2e.predict_many(archs[1]))
    proxy = metrics(y[te], MAddsProxy().fit(archs[0], y[tr]).predict_many(archs[1]))
    # 400 noisy whole-network latencies (whole ms, ~5 % slow outliers): better than the proxy
    assert m["acc10"] >= 0.85 and m["spearman"] >= proxy["spearman"] + 0.01
    assert samsung_e2e.chosen_["feature_ridge"] < 100  # it learned more than MAdds


def test_e2e_layers_sum_to_the_total_and_answer_unseen_blocks(samsung_e2e, archs):
    a = archs[1][0]
    lay = samsung_e2e.predict_layers(a)
    assert lay["latency_ms"].sum() == pytest.approx(samsung_e2e.predict(a), rel=1e-9)
    assert (lay.groupby("block")["latency_ms"].sum() > 0).all()
    # blocks and widths no FBNet network contains (SE, h-swish, 7x7, 224 px): features answer
    v3 = get_arch("mobilenetv3_large_100")
    with pytest.warns(ExtrapolationWarning, match="224 px"):  # trained at 32 px: it says so
        assert 0 < samsung_e2e.predict(v3) < 1e4
    imagenet = get_space("fbnet_imagenet").sample_arch(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert samsung_e2e.predict(imagenet) > samsung_e2e.predict(archs[1][0])
        # more channels never predict a faster network (w >= 0)
        assert samsung_e2e.predict(get_arch("mobilenetv3_large_100")) > samsung_e2e.predict(
            get_arch("mobilenetv3_large_075")
        )


@pytest.mark.filterwarnings("ignore::hwlat.errors.ExtrapolationWarning")
def test_e2e_with_few_networks_falls_back_to_the_madds_proxy(table, rows, archs):
    tr, te = rows
    y = table["pixel2"].to_numpy()
    for n in (5, 10):
        p = EndToEnd().fit(archs[0][:n], y[tr[:n]])
        assert p.chosen_["feature_ridge"] == 100.0  # the most regularised: MAdds-like
        proxy = MAddsProxy().fit(archs[0][:n], y[tr[:n]])
        assert (
            metrics(y[te], p.predict_many(archs[1]))["spearman"]
            >= metrics(y[te], proxy.predict_many(archs[1]))["spearman"] - 0.01
        )


def test_e2e_file_round_trip_restores_the_state(tmp_path, samsung_e2e, archs):
    samsung_e2e.save(tmp_path / "e.json")
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["class"] == "EndToEnd" and doc["state"]["learned"]["features"][0] == "madds"
    back = load(tmp_path / "e.json")
    np.testing.assert_array_equal(back.predict_many(archs[1][:20]), samsung_e2e.predict_many(archs[1][:20]))


@pytest.mark.numerics
def test_e2e_recovers_a_lookup_table_sum_exactly(table, rows, archs):
    """The raspi4 column is a sum of per-block table entries: 400 networks recover them."""
    tr, te = rows
    y = table["raspi4"].to_numpy()
    m = metrics(y[te], EndToEnd().fit(archs[0], y[tr]).predict_many(archs[1]))
    assert m["acc5"] == 1.0 and m["worst_pct"] < 0.5


# -- the shipped ARM tables ------------------------------------------------------------------------


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["pixel3", "raspi4"])
def test_shipped_block_tables_are_exact_on_rows_they_were_not_fitted_on(table, name):
    pred = load(f"@{name}")
    assert pred.fingerprint_["name"] == name and pred.kind == "e2e"
    _, held = split(len(table))
    sample = held[::10]  # 310 of the 3,100 held-out rows
    m = metrics(table[name].to_numpy()[sample], pred.predict_many(fbnet_archs(sample)))
    assert m["acc5"] == 1.0 and m["worst_pct"] < 0.01


@pytest.mark.numerics
@pytest.mark.slow
def test_shipped_tables_are_what_the_build_gives_and_exact_on_every_held_out_row(table):
    from build_shipped_predictors import build

    from hwlat.latency_models.e2e import arch_blocks

    _, held = split(len(table))
    archs = fbnet_archs(held)
    # a weight's share of a network: ms per feature unit times the feature's mean per network
    per_net = np.mean([arch_blocks(a)[1].sum(0) for a in archs[::10]], axis=0)
    for name in ("pixel3", "raspi4"):
        state = build(name)
        shipped = json.loads(data_file(f"predictors/{name}.json").read_text())["state"]
        assert state["learned"]["chosen"] == shipped["learned"]["chosen"]
        # A float64 fit (normal equations, Cholesky, BVLS; κ ≈ 4e5 at the chosen ridges) on BLAS
        # kernels that differ by CPU. It solves in ms per network, so rounding moves every weight
        # by ~κ·eps64 ≈ 1e-10 of the mean latency, not of the weight itself (fc_madds' weight is
        # a numerical zero: 1.6e-13 here, 1.8e-13 on another host; rtol fails on it). Hence: the
        # shares of the mean held-out latency agree to 1e-6 of it (other OpenBLAS kernels,
        # OPENBLAS_CORETYPE=Sandybridge or Prescott, move them by <= 1e-9).
        ms = table[name].to_numpy()[held].mean()
        np.testing.assert_allclose(
            np.multiply(state["learned"]["weights_ms"], per_net),
            np.multiply(shipped["learned"]["weights_ms"], per_net),
            rtol=0,
            atol=1e-6 * ms,
        )
        m = metrics(table[name].to_numpy()[held], load(f"@{name}").predict_many(archs))
        assert m["acc5"] == 1.0


def test_cli_predict_with_a_shipped_table(capsys):
    ref = "fbnet_cifar100:" + ",".join(["0"] * 22)
    assert main(["predict", "--predictor", "@raspi4", ref, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 5 < out[0]["latency_ms"] < 60
    assert main(["predict", "--predictor", "@pixel9", ref]) == 2
    assert "shipped: @pixel3, @raspi4" in capsys.readouterr().err


# -- transfer ----------------------------------------------------------------------------------------


def test_transfer_to_a_new_device_from_five_networks(table, rows, archs):
    tr, te = rows
    y = table["raspi4"].to_numpy()
    t = Transfer(sources=[load("@pixel3")]).fit(
        archs[0][:5], y[tr[:5]], fingerprint=table_fingerprint("raspi4", "x", "tflite")
    )
    m = metrics(y[te], t.predict_many(archs[1]))
    assert m["spearman"] >= 0.9 and m["acc10"] >= 0.8
    assert t.source_devices[0]["name"] == "pixel3" and t.source_names_ == ["e2e:pixel3"]


def test_transfer_file_embeds_its_sources_and_layers_sum(tmp_path, table, rows, archs, samsung_e2e):
    tr, te = rows
    y = table["pixel2"].to_numpy()
    t = Transfer(sources=[samsung_e2e, load("@raspi4")], madds=True).fit(archs[0][:20], y[tr[:20]])
    t.save(tmp_path / "t.json")
    back = load(tmp_path / "t.json")
    np.testing.assert_allclose(back.predict_many(archs[1][:20]), t.predict_many(archs[1][:20]), rtol=1e-12)
    assert [d["name"] for d in back.source_devices] == ["samsung_a50", "raspi4"]
    assert len(back.weights_) == 3 and (back.weights_ >= 0).all()
    lay = back.predict_layers(archs[1][0])
    assert lay["latency_ms"].sum() == pytest.approx(back.predict(archs[1][0]))


def test_cli_fit_transfer_and_suggest(tmp_path, phones, capsys):
    assert (
        main(
            [
                "suggest",
                "--source",
                "@pixel3",
                "--space",
                SPACE,
                "-n",
                "6",
                "--pool",
                "200",
                "-o",
                str(tmp_path / "todo.csv"),
            ]
        )
        == 0
    )
    first = capsys.readouterr().out
    assert main(["suggest", "--source", "@pixel3", "--space", SPACE, "-n", "6", "--pool", "200"]) == 0
    assert capsys.readouterr().out.splitlines()[:6] == first.splitlines()[:6]  # deterministic
    todo = pd.read_csv(tmp_path / "todo.csv")
    assert len(todo) == 6 and todo["latency_ms"].isna().all()
    pred = load("@raspi4")  # "measure" them: the raspi4 table stands in for the new device here
    sp = get_space(SPACE)
    todo["latency_ms"] = pred.predict_many([sp.decode(v) for v in todo[OPS].to_numpy()])
    todo.to_csv(tmp_path / "done.csv", index=False)
    db = tmp_path / "new.db"
    assert (
        main(
            [
                "profile",
                "import-table",
                str(tmp_path / "done.csv"),
                "--store",
                str(db),
                "--device",
                "board",
                "--column",
                "latency_ms",
                "--space",
                SPACE,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "fit",
                "--kind",
                "transfer",
                "--source",
                "@pixel3",
                "--store",
                str(db),
                "--device",
                "board",
                "-o",
                str(tmp_path / "t.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fitted transfer on 6 networks" in out and "e2e:pixel3 (weight" in out
    assert main(["fit", "--kind", "transfer", "--store", str(db), "-o", str(tmp_path / "u.json")]) == 2
    assert "--source" in capsys.readouterr().err


def test_suggest_spreads_latency_and_covers_choices():
    from hwlat.latency_models.suggest import suggest

    src = load("@pixel3")
    picks = suggest([src], SPACE, 8, seed=0, pool=300)
    ms = [p.predicted_ms[0] for p in picks]
    assert ms == sorted(ms) and ms[-1] > 1.3 * ms[0]
    covered = {(i, v) for p in picks for i, v in enumerate(p.vector)}
    rng = np.random.default_rng(5)
    sp = get_space(SPACE)
    rand = {(i, v) for _ in range(8) for i, v in enumerate(sp.sample(rng))}
    assert len(covered) >= len(rand)
    assert [p.ref for p in suggest([src], SPACE, 8, seed=0, pool=300)] == [p.ref for p in picks]


# -- report and search -------------------------------------------------------------------------------


def test_report_has_a_section_per_imported_device(tmp_path, phones, samsung_e2e):
    from hwlat.dashboards.report import build_report

    samsung_e2e.save(tmp_path / "e.json")
    html = build_report(
        phones, predictor_paths=[tmp_path / "e.json", "@pixel3"], out=tmp_path / "r.html"
    ).read_text()
    assert "samsung_a50 (imported)" in html and "pixel2 (imported)" in html
    assert html.count("Measured vs predicted latency on") == 2
    assert html.count("Error against N measured networks") == 2
    assert "Imported from a table: published: HW-NAS-Bench via HELP" in html
    assert (
        main(
            [
                "dashboard",
                "build",
                "--store",
                str(phones),
                "--device",
                "pixel2",
                "-o",
                str(tmp_path / "p.html"),
            ]
        )
        == 0
    )
    one = (tmp_path / "p.html").read_text()
    assert "pixel2 (imported)" in one and "samsung_a50 (imported)" not in one


@pytest.mark.numerics
def test_e2e_tables_compile_over_the_fbnet_space_for_nas():
    from hwlat.latency_models.space_table import compile_space
    from hwlat.search.nas import latency_function

    sp, pred = get_space(SPACE), load("@raspi4")
    V = np.array([sp.sample(np.random.default_rng(i)) for i in range(100)])
    np.testing.assert_allclose(
        compile_space(pred, sp).predict(V), pred.predict_many([sp.decode(v) for v in V]), rtol=1e-12
    )
    assert "compiled" in latency_function(pred, sp).describe()


@pytest.mark.slow
def test_search_on_the_fbnet_space_with_a_shipped_table(tmp_path, capsys):
    assert (
        main(
            [
                "search",
                "--controller",
                "random",
                "--space",
                SPACE,
                "--predictor",
                "@raspi4",
                "--target-ms",
                "30",
                "--budget",
                "2",
                "--batch",
                "2",
                "--train-steps",
                "1",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert "best of 2" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "arch.json").read_text())["resolution"] == 32


@pytest.mark.slow
def test_a_non_editable_install_ships_the_table_and_the_block_tables(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(root),
        ],
        check=True,
        timeout=600,
        cwd=tmp_path,
    )
    code = (
        "import hwlat, hwlat.paper as r; from hwlat.latency_models import load; "
        "assert 'site' in hwlat.__file__; print(len(r.fbnet_latencies()), r.shipped_predictors(), "
        "load('@pixel3').kind, r.data_file('LICENSE.HELP-MIT.txt').is_file())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4000", "['pixel3',", "'raspi4']", "e2e", "True"]
