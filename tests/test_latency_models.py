"""Latency predictors on real LiteRT measurements of small networks (measured once per session)."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from strategies import archs

from hwlat.archs import BlockSpec, SearchSpace, mobilenetv3
from hwlat.archs.layers import OpKind, layers
from hwlat.archs.segments import role
from hwlat.cli import main
from hwlat.errors import ExtrapolationWarning, MissingEntryError
from hwlat.latency_models import (
    LookupTable,
    MAddsProxy,
    Regression,
    TrainingData,
    load,
    make_predictor,
    metrics,
    noise_floor,
)
from hwlat.latency_models.evaluate import holdout, split_by_arch
from hwlat.latency_models.features import piece_groups, width_signature
from hwlat.profiler.measure.profile import profile
from hwlat.profiler.measure.timing import TimingConfig

FAST = TimingConfig(max_seconds=0.4, min_sample_ms=0.2, target=0.05)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("lat") / "s.db"
    archs = [
        mobilenetv3(f, width_mult=m, resolution=r)
        for f in ("small", "large")
        for m in (0.35, 0.5)
        for r in (96, 128)
    ]
    rng = np.random.default_rng(0)
    space = SearchSpace.mobilenetv3_small(resolution=96)
    archs += [space.sample_arch(rng) for _ in range(6)]
    for gran in ("block", "model"):
        profile(archs, gran, path, "litert", config=FAST, progress=False)
    return path


@pytest.fixture(scope="module")
def data(store):
    return TrainingData.from_store(store, "litert")


def test_metrics_definitions():
    m = metrics([1.0, 2.0, 4.0, 10.0], [1.04, 2.3, 4.0, 9.0])
    assert m["acc5"] == 0.5 and m["acc10"] == 0.75 and m["worst_pct"] == pytest.approx(15.0)
    assert m["kendall_tau"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(
        np.sqrt((0.04**2 + 0.09 + 1) / 4)
    )
    with pytest.raises(ValueError):
        metrics([1.0], [1.0])
    assert noise_floor([[1.0, 1.02, 0.98], [5.0, 5.0]]) == pytest.approx(100 * 0.01, rel=0.1)


def test_footprint_calibration_recovers_a_known_term_despite_outliers():
    rng = np.random.default_rng(0)
    wmb, n = rng.uniform(0.5, 30, 120), rng.integers(10, 22, 120).astype(float)
    s = rng.uniform(0.5, 20, 120)  # summed pieces (ms)
    y = s + 0.05 * np.maximum(0, wmb - 6.0) + 0.004 * n + 0.02
    y[:6] *= 1.6  # end-to-end runs caught by a slow phase
    cal = LookupTable(calibration="footprint")
    cal._fit_calibration(s, np.stack([wmb, n], 1), y)
    assert cal.gamma_ms_per_mb_ == pytest.approx(0.05, rel=0.1)
    assert cal.per_piece_ms_ == pytest.approx(0.004, abs=0.002)
    assert 3.0 <= cal.cache_mb_ <= 9.0
    off = LookupTable(calibration="offset")
    off._fit_calibration(s, np.stack([wmb, n], 1), s + 0.3)
    assert off.offset_ms_ == pytest.approx(0.3, rel=1e-3)


def test_training_data(data):
    assert len(data.models) == 14 and set(data.pieces["granularity"]) == {"block"}
    assert data.fingerprint["runtime"] == "litert" and data.archs()[0].name.startswith("mobilenetv3_small")


@pytest.mark.parametrize("kind", ["madds", "lut", "regression", "calibrated"])
def test_fit_predict_interface(data, kind):
    archs, y = data.archs(), data.latency_ms
    pred = make_predictor(kind).fit(
        archs, y, pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
    )
    one = pred.predict(archs[0])
    many = pred.predict_many(archs)
    assert isinstance(one, float) and one == pytest.approx(many[0]) and (many > 0).all()
    assert np.allclose(pred.predict(archs), many)
    layers = pred.predict_layers(archs[3])
    assert layers["latency_ms"].sum() == pytest.approx(pred.predict(archs[3]), rel=1e-9)
    assert set(layers.columns) >= {"name", "op", "latency_ms"}
    assert -1 <= pred.score(archs, y) <= 1
    assert clone(pred).get_params() == pred.get_params()


def test_learned_predictors_fit_their_training_data_better_than_madds(data):
    archs, y = data.archs(), data.latency_ms
    fits = {k: make_predictor(k).fit(archs, y, pieces=data.pieces) for k in ("madds", "calibrated")}
    err = {k: metrics(y, p.predict_many(archs))["rmspe"] for k, p in fits.items()}
    assert err["calibrated"] < err["madds"]


def test_lookup_table_missing_entry_is_never_zero(data):
    archs, y = data.archs(), data.latency_ms
    unseen = mobilenetv3("small", width_mult=0.75, resolution=112)
    strict = LookupTable(on_missing="raise").fit(archs, y, pieces=data.pieces)
    with pytest.raises(MissingEntryError, match="not in the table"):
        strict.predict(unseen)
    assert strict.coverage([unseen]) < 1
    fallback = LookupTable(on_missing="regression").fit(archs, y, pieces=data.pieces)
    assert fallback.predict(unseen) > 0


def test_regression_predicts_arbitrary_channel_counts(data):
    """NetAdapt proposals have widths never measured: the regression still answers."""
    import dataclasses

    reg = Regression().fit(data.archs(), data.latency_ms, pieces=data.pieces)
    base = mobilenetv3("small", width_mult=0.5, resolution=96)
    blocks = list(base.blocks)
    blocks[4] = dataclasses.replace(blocks[4], exp=blocks[4].exp - 8)
    cut = dataclasses.replace(base, blocks=tuple(blocks))
    a, b = reg.predict(base), reg.predict(cut)
    assert 0 < b and np.isfinite(b) and a > 0


def test_unknown_piece_type_raises_naming_it(data):
    reg = Regression(granularity="kernel")
    with pytest.raises(ValueError, match="no measured kernels"):
        reg.fit(data.archs(), data.latency_ms, pieces=data.pieces)


def test_bad_params_are_clear(data):
    with pytest.raises(ValueError, match="calibration"):
        LookupTable(calibration="magic").fit(data.archs(), data.latency_ms, pieces=data.pieces)
    with pytest.raises(ValueError, match="needs measured pieces"):
        LookupTable().fit(data.archs(), data.latency_ms)
    with pytest.raises(ValueError, match="unknown predictor kind"):
        make_predictor("oracle")
    with pytest.raises(ValueError, match="not fitted"):
        MAddsProxy().predict_many(data.archs())


def test_save_load_round_trip_and_refusals(data, tmp_path):
    pred = make_predictor("calibrated").fit(
        data.archs(), data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
    )
    path = tmp_path / "p.json"
    pred.save(path)
    back = load(path)
    assert np.array_equal(back.predict_many(data.archs()), pred.predict_many(data.archs()))
    doc = json.loads(path.read_text())
    assert doc["schema"] == "hwlat.predictor" and doc["state"]["fingerprint"]["runtime"] == "litert"
    doc["version"] = 99
    (tmp_path / "new.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="newer"):
        load(tmp_path / "new.json")
    (tmp_path / "junk.json").write_text("PK\x03\x04 not json")
    with pytest.raises(ValueError, match="not an hwlat predictor"):
        load(tmp_path / "junk.json")
    other = dict(data.fingerprint, cpu="Cortex-A76", hostname="pixel")
    with pytest.raises(ValueError, match="mismatch"):
        back.check_device(other)
    with pytest.warns(UserWarning, match="mismatch"):
        back.check_device(other, strict=False)
    back.check_device(data.fingerprint, "litert")


@pytest.mark.parametrize("kind", ["regression", "calibrated"])
def test_load_reuses_the_cv_choice_and_refits_identically(data, tmp_path, kind):
    pred = make_predictor(kind).fit(
        data.archs(), data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
    )
    reg = getattr(pred, "regressor_", None) or pred.fallback_
    assert reg.cv_rmse_, "the first fit chooses its estimators by grouped CV"
    pred.save(tmp_path / "p.json")
    back = load(tmp_path / "p.json")
    back_reg = getattr(back, "regressor_", None) or back.fallback_
    assert back_reg.choice_ == reg.choice_ and back_reg.cv_rmse_ == {}  # no CV on load
    assert np.array_equal(back.predict_many(data.archs()), pred.predict_many(data.archs()))


def test_holdout_harness(data):
    tr, te = split_by_arch(14, 0.3, seed=1)
    assert len(set(tr) & set(te)) == 0 and len(tr) + len(te) == 14
    report, fitted = holdout(data, seed=1)
    assert list(report["predictor"]) == ["madds", "lut", "regression", "calibrated"]
    assert (report["n"] == len(te)).all() and set(fitted) == set(report["predictor"])


def test_cli_fit_predict_evaluate(store, tmp_path, capsys):
    pred = tmp_path / "p.json"
    assert main(["fit", "--store", str(store), "--kind", "calibrated", "-o", str(pred)]) == 0
    assert str(pred) in capsys.readouterr().out
    assert (
        main(["predict", "--predictor", str(pred), "mobilenetv3_small_050", "-r", "96", "--json", "--layers"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out[0]["name"] == "mobilenetv3_small_050" and out[0]["latency_ms"] > 0
    assert sum(x["latency_ms"] for x in out[0]["layers"]) == pytest.approx(out[0]["latency_ms"])
    # every network of the store was used to fit: nothing left to evaluate on
    assert main(["evaluate", "--store", str(store), "--predictor", str(pred)]) == 2
    assert "not trained on" in capsys.readouterr().err
    code = main(["fit", "--store", str(tmp_path / "none.db"), "--kind", "lut", "-o", str(pred)])
    assert code == 2


def test_cli_evaluate_on_unseen_networks(store, tmp_path, capsys):
    data = TrainingData.from_store(store)
    archs, y = data.archs(), data.latency_ms
    pred = make_predictor("calibrated").fit(
        archs[:9], y[:9], pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
    )
    pred.save(tmp_path / "p.json")
    assert main(["evaluate", "--store", str(store), "--predictor", str(tmp_path / "p.json"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["n"] == 5 and {"acc5", "acc10", "rmspe", "kendall_tau", "spearman"} <= set(rows[0])


@pytest.mark.parametrize("kind", ["calibrated", "regression"])
def test_compiled_space_equals_per_arch_prediction(data, kind):
    from hwlat.latency_models.space_table import compile_space

    pred = make_predictor(kind).fit(data.archs(), data.latency_ms, pieces=data.pieces)
    space = SearchSpace.mobilenetv3_small(resolution=96)
    compiled = compile_space(pred, space)
    rng = np.random.default_rng(7)
    V = np.array([space.sample(rng) for _ in range(40)])
    np.testing.assert_allclose(
        compiled.predict(V), pred.predict_many([space.decode(v) for v in V]), rtol=1e-9
    )
    bad = V[:2].copy()
    bad[1, 3] = 99
    with pytest.raises(ValueError, match="vector 1: position 3"):
        compiled.predict(bad)


def test_compile_rejects_what_it_cannot_vectorise(data):
    from hwlat.latency_models.space_table import compile_space

    madds = make_predictor("madds").fit(data.archs(), data.latency_ms)
    with pytest.raises(ValueError, match="block-level"):
        compile_space(madds, SearchSpace.mobilenetv3_small(resolution=96))


def test_cli_evaluate_prints_the_noise_floor_of_repeats(store, tmp_path, capsys):
    import shutil

    copy = tmp_path / "s.db"
    shutil.copy(store, copy)
    data = TrainingData.from_store(copy)
    archs, y = data.archs(), data.latency_ms
    pred = make_predictor("lut").fit(
        archs[:9], y[:9], pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
    )
    pred.save(tmp_path / "p.json")
    assert main(["evaluate", "--store", str(copy), "--predictor", str(tmp_path / "p.json")]) == 0
    assert "noise floor: unknown" in capsys.readouterr().out
    profile(archs[9:], "model", copy, "litert", config=FAST, progress=False, repeats=2)
    assert main(["evaluate", "--store", str(copy), "--predictor", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert "noise floor, one repeat against another on 5 networks" in out
    assert main(["evaluate", "--store", str(copy), "--predictor", str(tmp_path / "p.json"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["floor_n"] == 5 and 0 <= row["floor_acc10"] <= 1


# --- monotone in width: fewer channels never predict slower -----------------------------------


@pytest.fixture(scope="module")
def fitted(data):
    return {
        k: make_predictor(k).fit(
            data.archs(), data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
        )
        for k in ("madds", "lut", "regression", "calibrated")
    }


def _widths(arch) -> list[tuple]:
    """Every channel width a cut can change: (field, block index or None, width)."""
    out = [("stem", None, arch.stem.out)]
    for i, b in enumerate(arch.blocks):
        out.append(("out", i, b.out))
        if isinstance(b, BlockSpec):
            out.append(("exp", i, b.exp))
            if b.se is not None:
                out.append(("se", i, b.se.squeeze))
    out += [(f, None, getattr(arch.head, f)) for f in ("conv", "hidden") if getattr(arch.head, f)]
    return out


def _cut(arch, field, i, new):
    if field == "stem":
        return dataclasses.replace(arch, stem=dataclasses.replace(arch.stem, out=new))
    if field in ("conv", "hidden"):
        return dataclasses.replace(arch, head=dataclasses.replace(arch.head, **{field: new}))
    b = arch.blocks[i]
    nb = (
        dataclasses.replace(b, se=dataclasses.replace(b.se, squeeze=new))
        if field == "se"
        else dataclasses.replace(b, **{field: new})
    )
    return dataclasses.replace(arch, blocks=(*arch.blocks[:i], nb, *arch.blocks[i + 1 :]))


def _structure(arch) -> list[tuple]:
    return [
        (r.stage, r.block, role(r), r.op, r.groups if r.op is not OpKind.DWCONV else 0) for r in layers(arch)
    ]


def _narrower(arch, data):
    """``arch`` with one layer narrower, the rest of the network unchanged (or None)."""
    field, i, width = data.draw(st.sampled_from(_widths(arch)))
    assume(width > 1)
    new = data.draw(st.integers(1, width - 1))
    try:
        cut = _cut(arch, field, i, new)
        same = _structure(cut) == _structure(arch)
    except ValueError:  # e.g. widths no longer divisible by a grouped conv's groups
        return None
    return cut if same else None


_space_archs = st.integers(0, 2**32 - 1).map(
    lambda s: SearchSpace.mobilenetv3_small(resolution=96).sample_arch(np.random.default_rng(s))
)


@pytest.mark.parametrize("kind", ["madds", "regression", "calibrated"])
@settings(max_examples=40, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(arch=st.one_of(_space_archs, archs()), data=st.data())
def test_fewer_channels_never_predict_slower(fitted, kind, arch, data):
    cut = _narrower(arch, data)
    assume(cut is not None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)  # random networks are far from the data
        before, after = fitted[kind].predict_many([arch, cut])
    assert after <= before * (1 + 1e-12)


@settings(max_examples=40, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_lookup_table_never_answers_slower_for_fewer_channels(fitted, data):
    """The table refuses unmeasured blocks; what it answers never rises as a width falls."""
    lut, arch = fitted["lut"], data.draw(st.sampled_from(_TRAIN))
    cut = _narrower(arch, data)
    assume(cut is not None)
    try:
        after = lut.predict(cut)
    except MissingEntryError:
        return
    assert after <= lut.predict(arch) * (1 + 1e-12)


def test_lookup_table_orders_measured_networks_by_width(fitted):
    """Every pair of measured networks where one is the other with fewer channels somewhere."""
    lut, pairs = fitted["lut"], 0
    for a in _TRAIN:
        for b in _TRAIN:
            sa, sb = layers(a), layers(b)
            if a is b or a.resolution != b.resolution or _structure(a) != _structure(b):
                continue
            if all(
                x.in_shape[0] <= y.in_shape[0] and x.out_shape[0] <= y.out_shape[0] for x, y in zip(sa, sb)
            ):
                pairs += 1
                assert lut.predict(a) <= lut.predict(b) * (1 + 1e-12)
    assert pairs >= 2


_TRAIN: list = []


@pytest.fixture(scope="module", autouse=True)
def _training_networks(data):
    _TRAIN[:] = data.archs()


def test_table_entries_are_measurements_made_monotone(fitted, data):
    from hwlat.latency_models.predictors import _envelope

    for kind in ("lut", "calibrated"):
        pred = fitted[kind]
        for X, t, _ in pred.families_.values():
            lo, hi = _envelope(X, t, X)
            entry = np.sqrt(lo * hi)
            below = (X[:, None, :] <= X[None, :, :]).all(-1)
            assert not (below & (entry[:, None] > entry[None, :] * (1 + 1e-12))).any()
            consistent = lo == hi  # no narrower measurement is slower: the table is the truth
            assert np.allclose(entry[consistent], t[consistent], rtol=1e-12)
        assert 0 <= pred.n_adjusted_ < len(pred.table_)


def test_unmeasured_widths_lie_between_their_measured_neighbours(fitted):
    """A cut below a measured block is never slower than it, and a cut between two measured widths
    of one block config is between their table entries."""
    cal = fitted["calibrated"]
    pieces = [w for g in piece_groups(_TRAIN[0]) for w in g.pieces]
    for w in pieces:
        config, x = width_signature(w)
        X, t, _ = cal.families_[config]
        own = cal.table_[w.key]
        narrower = [v for v in (x[-1] - 8, x[-1] // 2) if v >= 1]
        for new in narrower:  # the block's output width, narrower
            rows = list(w.rows)
            last = rows[-1]
            rows[-1] = dataclasses.replace(last, out_shape=(new, *last.out_shape[1:]))
            cut = dataclasses.replace(w, key=f"{w.key}-cut{new}", rows=tuple(rows))
            assert cal._ms_of([cut])[0] <= own * (1 + 1e-12)


# --- extrapolation: outside the training range warns, naming it -------------------------------


def _with_block(arch, i, **kw):
    return dataclasses.replace(
        arch, blocks=(*arch.blocks[:i], dataclasses.replace(arch.blocks[i], **kw), *arch.blocks[i + 1 :])
    )


def test_predictions_outside_the_training_range_warn_naming_it(fitted):
    base = mobilenetv3("small", width_mult=0.5, resolution=96)
    k9 = _with_block(base, 2, kernel=9)
    for kind in ("regression", "calibrated"):
        with pytest.warns(ExtrapolationWarning, match=r"bneck kernel 9 never measured \(measured: 3, 5"):
            fitted[kind].predict(k9)
        with pytest.warns(ExtrapolationWarning, match="kernel 9 never measured"):
            fitted[kind].predict(k9)  # again: every prediction that extrapolates says so
        with pytest.warns(ExtrapolationWarning, match="activation swish never measured"):
            fitted[kind].predict(_with_block(base, 3, act="swish"))
    for kind in ("madds", "regression", "calibrated"):
        with pytest.warns(
            ExtrapolationWarning, match="resolution 4000 px is far outside the training networks' 96-128 px"
        ):
            fitted[kind].predict(base.with_resolution(4000))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        for pred in fitted.values():
            pred.predict_many(_TRAIN)  # what it was fitted on: no warning


def test_an_absurd_resolution_warns_before_any_work(fitted):
    huge = mobilenetv3("small", width_mult=0.5, resolution=100_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ms = fitted["calibrated"].predict(huge)
    assert ms > 0 and "resolution 100000 px" in str(caught[0].message)


# --- state in and out, the kinds registry ---------------------------------------------------


def test_state_round_trip_is_json_and_refits_identically(fitted, data):
    from hwlat.latency_models.kinds import KINDS

    for kind, pred in fitted.items():
        state = json.loads(json.dumps(pred.get_state()))
        back = type(pred).from_state(state)
        assert np.array_equal(back.predict_many(_TRAIN), pred.predict_many(_TRAIN))
        assert back.get_params() == {**pred.get_params(), **state["params"]}
        assert set(KINDS[kind].params.items()) <= set(pred.get_params().items())
        assert [a.name for a in back.train_archs_] == [a.name for a in pred.train_archs_]
    reg = fitted["regression"]
    assert isinstance(reg.get_state()["params"]["estimator"], dict)  # the CV's choice, a parameter


def test_version_1_and_2_files_still_load(fitted, tmp_path):
    cal = fitted["calibrated"]
    s = cal.get_state()
    old_pieces = [{("median_ms" if k == "latency_ms" else k): v for k, v in p.items()} for p in s["pieces"]]
    v1 = {
        "schema": "hwlat.predictor",
        "version": 1,
        "hwlat_version": "0.1.0",
        "class": "LookupTable",
        "params": {k: v for k, v in s["params"].items() if k != "estimator"},
        "fingerprint": s["fingerprint"],
        "runtime": s["runtime"],
        "train": {"archs": s["train"]["archs"], "latency_ms": s["train"]["latency_ms"]},
        "estimator_choices": s["params"]["estimator"],
        "pieces": old_pieces,
    }
    v2 = {
        "schema": "hwlat.predictor",
        "version": 2,
        "hwlat_version": "0.1.0",
        "class": "LookupTable",
        "state": {**s, "pieces": old_pieces},
    }
    for name, doc in (("v1", v1), ("v2", v2)):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        back = load(tmp_path / f"{name}.json")
        assert np.array_equal(back.predict_many(_TRAIN), cal.predict_many(_TRAIN)), name


@pytest.mark.parametrize(
    "damage, field",
    [
        (lambda d: d.update(state=[]), "state: expected an object"),
        (lambda d: d["state"]["train"].update(latency_ms=[1.0]), "networks but 1 latencies"),
        (lambda d: d["state"]["train"]["archs"].__setitem__(0, "in96,nonsense"), "state.train.archs"),
        (lambda d: d["state"]["pieces"][0].pop("spec"), r"state.pieces\[0\]"),
        (lambda d: d["state"]["params"].update(colour="red"), "unknown parameter"),
        (lambda d: d.update({"class": "Oracle"}), "unknown predictor class 'Oracle'"),
        (lambda d: d.update(version="2"), "version: expected a positive integer"),
    ],
)
def test_damaged_predictor_files_name_file_and_field(fitted, tmp_path, damage, field):
    from hwlat.errors import FileFormatError

    path = tmp_path / "p.json"
    fitted["lut"].save(path)
    doc = json.loads(path.read_text())
    damage(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=field) as e:
        load(path)
    assert str(path) in str(e.value)
