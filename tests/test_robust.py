"""Nothing lost, nothing overwritten: bad inputs to the CLI commands that read and write files.

Each case checks the CLI's contract: one line ``hwlat: error: ...`` naming the file, field or
argument, exit 2, no traceback, and no file changed that the command was not asked to change.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hwlat.archs import decode, get_arch, summary
from hwlat.cli import main
from hwlat.errors import FileFormatError, HwlatError
from hwlat.latency_models import TrainingData, load, make_predictor
from hwlat.profiler.storage.store import Store, open_store
from hwlat.search import history as H
from hwlat.search.evaluators import DigitsTask
from hwlat.search.netadapt import NetAdaptConfig, candidates, channel_floor, netadapt

TINY = (
    "in16,stem_k3_s2_c16_hs,ir_k3_s1_e16_c16_re,ir_k3_s2_e64_c24_se16_re,ir_k3_s1_e72_c24_hs,"
    "ir_k5_s2_e96_c40_se24_hs,head_c96_hs_h128_hs,fc10"
)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("hwlat: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


def snapshot(*paths) -> dict:
    """Bytes and mtime of every file under ``paths`` (files or folders)."""
    out = {}
    for p in map(Path, paths):
        for f in [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()):
            out[str(f)] = (f.read_bytes(), f.stat().st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A real LiteRT store of three tiny networks (models and blocks) and predictor files."""
    from hwlat.profiler.measure.profile import profile
    from hwlat.profiler.measure.timing import TimingConfig

    d = tmp_path_factory.mktemp("robust")
    tiny = decode(TINY, name="tiny")
    archs = [tiny, decode(TINY.replace("c40", "c48")), decode(TINY.replace("e72", "e96"))]
    db = d / "lat.db"
    cfg = TimingConfig(max_seconds=0.3, min_sample_ms=0.2, target=0.05)
    profile(archs, ("model", "block"), db, "litert", config=cfg, progress=False)
    data = TrainingData.from_store(db, "litert")
    pred = make_predictor("madds").fit(
        data.archs(), data.latency_ms, fingerprint=data.fingerprint, runtime="litert"
    )
    pred.save(d / "pred.json")
    other = make_predictor("madds").fit(
        data.archs(),
        data.latency_ms,
        fingerprint={**data.fingerprint, "cpu": "ARM", "hostname": "phone"},
        runtime="litert",
    )
    other.save(d / "other.json")
    # monotone in width by construction (latency = MAdds): what NetAdapt's reachability tests need
    family = (
        archs + [c[3] for c in candidates(tiny)[::5]] + [get_arch("mobilenetv3_small_035", resolution=32)]
    )
    mono = make_predictor("madds").fit(
        family,
        [summary(a)["madds"] / 1e6 + 0.05 for a in family],
        fingerprint=data.fingerprint,
        runtime="litert",
    )
    mono.save(d / "mono.json")
    spec = d / "tiny.json"
    spec.write_text(tiny.to_json())
    return {
        "dir": d,
        "db": db,
        "pred": d / "pred.json",
        "other": d / "other.json",
        "mono": d / "mono.json",
        "tiny": tiny,
        "spec": spec,
    }


# -- fit -o: the output path is checked before any fitting ---------------------------------------
@pytest.fixture
def no_fitting(monkeypatch):
    """Reading the store fails loudly: proves the output is checked before any fitting."""

    def refuse(*a, **k):
        raise RuntimeError("the store was read before the output path was checked")

    monkeypatch.setattr(TrainingData, "from_store", refuse)


def test_fit_refuses_to_overwrite_a_store(env, tmp_path, capsys, no_fitting):
    db = tmp_path / "c.db"
    shutil.copy(env["db"], db)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "fit", "--store", db, "--kind", "madds", "-o", db)
    one_line_error(code, err, str(db), "SQLite", "refusing")
    other = tmp_path / "other.db"
    Store(other).close()
    before = snapshot(tmp_path)
    for force in ([], ["--force"]):
        code, _, err = run(capsys, "fit", "--store", db, "--kind", "madds", "-o", other, *force)
        one_line_error(code, err, str(other))
    assert snapshot(tmp_path) == before


def test_fit_refuses_a_foreign_file_unless_forced(env, tmp_path, capsys, no_fitting):
    hist = tmp_path / "history.json"
    hist.write_text('{"kind": "netadapt", "steps": []}')
    before = snapshot(hist)
    code, _, err = run(capsys, "fit", "--store", env["db"], "--kind", "madds", "-o", hist)
    one_line_error(code, err, str(hist), "not an hwlat predictor", "--force")
    assert snapshot(hist) == before


def test_fit_output_folder_problems_come_first(env, tmp_path, capsys, no_fitting):
    for out, needle in ((tmp_path / "nodir" / "x.json", "does not exist"), (tmp_path, "is a folder")):
        code, _, err = run(capsys, "fit", "--store", env["db"], "--kind", "madds", "-o", out)
        one_line_error(code, err, str(out), needle)
        assert ".tmp" not in err
    assert not (tmp_path / "nodir").exists()


def test_fit_writes_and_replaces_predictors(env, tmp_path, capsys):
    hist = tmp_path / "notes.json"
    hist.write_text("[1, 2]")
    code, out, _ = run(capsys, "fit", "--store", env["db"], "--kind", "madds", "-o", hist, "--force")
    assert code == 0 and load(hist).kind == "madds"
    code, out, _ = run(capsys, "fit", "--store", env["db"], "--kind", "lut", "-o", hist)  # ours: replaced
    assert code == 0 and load(hist).kind == "lut"


def test_save_errors_name_the_file_not_its_temporary(env, tmp_path):
    from hwlat.cli._common import error_message
    from hwlat.cli.predict import _save

    with pytest.raises(OSError) as e:
        _save(load(env["pred"]), tmp_path / "gone" / "p.json")
    msg = error_message(e.value)
    assert str(tmp_path / "gone" / "p.json") in msg and ".tmp" not in msg


# -- NetAdapt resume: a killed run resumes, damaged files are one-line errors --------------------
@pytest.fixture(scope="module")
def na(tmp_path_factory):
    """A finished NetAdapt run on the tiny network with a monotone (MAdds) predictor."""
    tiny = decode(TINY, name="tiny")
    archs = [tiny] + [c[3] for c in candidates(tiny)[::5]]
    pred = make_predictor("madds").fit(archs, [summary(a)["madds"] / 1e6 + 0.05 for a in archs])
    task = DigitsTask(16, scratch_steps=20, batch_size=32)
    model = task.train(tiny)
    cfg = NetAdaptConfig(
        target_ms=0.85 * pred.predict(tiny), delta_fraction=0.06, short_steps=2, long_steps=3
    )
    d = tmp_path_factory.mktemp("na") / "run"
    netadapt(tiny, model, task, pred, cfg, d)
    return {"tiny": tiny, "pred": pred, "task": task, "model": model, "cfg": cfg, "dir": d}


def _copy_run(na, tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(na["dir"], d)
    return d


def test_netadapt_files_are_one_unit_per_step(na):
    h = json.loads((na["dir"] / "history.json").read_text())
    assert h["schema"] == H.SCHEMAS["netadapt"] and h["weights"] == "weights/final.pt"
    assert sorted(p.name for p in (na["dir"] / "weights").iterdir()) == ["final.pt"]
    assert h["final"]["reached_target"] and h["seed"]["fixed_ms"] < h["seed"]["predicted_ms"]


def test_netadapt_killed_between_weights_and_history_resumes(na, tmp_path, monkeypatch):
    real = H.write

    def killed_after_weights(path, hist):
        if hist["steps"]:  # step 0's weights are on disk; the kill comes before its history
            raise KeyboardInterrupt
        return real(path, hist)

    d = tmp_path / "run"
    monkeypatch.setattr(H, "write", killed_after_weights)
    with pytest.raises(KeyboardInterrupt):
        netadapt(na["tiny"], na["model"], na["task"], na["pred"], na["cfg"], d)
    monkeypatch.setattr(H, "write", real)
    h = json.loads((d / "history.json").read_text())
    assert h["steps"] == [] and h["weights"] == "weights/seed.pt"
    assert sorted(p.name for p in (d / "weights").iterdir()) == ["seed.pt", "step_0000.pt"]
    res = netadapt(na["tiny"], None, na["task"], na["pred"], na["cfg"], d)  # the same call resumes
    assert res.history["final"]["reached_target"]
    assert sorted(p.name for p in (d / "weights").iterdir()) == ["final.pt"]
    uninterrupted = json.loads((na["dir"] / "history.json").read_text())["steps"]
    assert [(s["arch"], s["chosen"]) for s in res.history["steps"]] == [
        (s["arch"], s["chosen"]) for s in uninterrupted
    ]


def _damage(d: Path, how: str, na) -> None:
    hp = d / "history.json"
    h = json.loads(hp.read_text())
    if how == "truncated weights":
        w = d / h["weights"]
        w.write_bytes(w.read_bytes()[:200])
    elif how == "missing weights":
        (d / h["weights"]).unlink()
    elif how == "history []":
        hp.write_text("[]")
    elif how == "truncated history":
        hp.write_text(hp.read_text()[:100])
    elif how == "arch does not match weights":
        h["current_arch"] = na["tiny"].to_dict()
        hp.write_text(json.dumps(h))
    elif how == "schema 999":
        hp.write_text(json.dumps({**h, "schema": 999}))
    elif how == "weights outside the run":
        hp.write_text(json.dumps({**h, "weights": "../../etc/passwd"}))
    elif how == "step without latency":
        h["steps"][0].pop("predicted_ms")
        hp.write_text(json.dumps(h))
    else:
        hp.write_text(json.dumps({**h, "kind": "nas"}))


@pytest.mark.parametrize(
    "how, message",
    [
        ("truncated weights", "damaged weights file"),
        ("missing weights", "missing"),
        ("history []", "not an hwlat run history"),
        ("truncated history", "corrupt history"),
        ("arch does not match weights", "do not match the current_arch"),
        ("schema 999", "schema 999 is newer"),
        ("weights outside the run", "unexpected weights file"),
        ("step without latency", "step 0 has no valid 'predicted_ms'"),
        ("other kind", "'nas' history"),
    ],
)
def test_netadapt_damaged_files_are_one_line_errors(na, tmp_path, how, message):
    d = _copy_run(na, tmp_path)
    _damage(d, how, na)
    before = snapshot(d)
    with pytest.raises(FileFormatError, match=message) as e:
        netadapt(na["tiny"], None, na["task"], na["pred"], na["cfg"], d)
    msg = str(e.value)
    assert "\n" not in msg and str(d) in msg and "start over" in msg
    assert snapshot(d) == before


def test_netadapt_cli_damaged_history(env, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "history.json").write_text("[]")
    before = snapshot(out)
    code, _, err = run(
        capsys,
        "netadapt",
        env["spec"],
        "--target-ratio",
        "0.8",
        "--predictor",
        env["mono"],
        "--out",
        out,
        "-r",
        "16",
    )
    one_line_error(code, err, str(out / "history.json"), "start over")
    assert snapshot(out) == before


# -- profile import: all or nothing, damage named ------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle of the tiny network's blocks with real results from its runner (run twice: the
    second run resumes after a last line cut short, which it drops and measures again)."""
    from hwlat.profiler.measure.bundle import write_bundle

    out = write_bundle([decode(TINY)], "block", tmp_path_factory.mktemp("bundle") / "b")
    runner = [sys.executable, str(out / "run_bundle.py")]
    r = subprocess.run(runner + ["--limit", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = out / "results.jsonl"
    text = res.read_text()
    res.write_text(text[:-40])  # killed while writing the last line
    r = subprocess.run(runner, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = res.read_text().splitlines()
    assert all(json.loads(x) for x in lines)  # the cut line was dropped, not kept in the middle
    n = len(json.loads((out / "manifest.json").read_text())["workloads"])
    assert sum(json.loads(x)["type"] == "measurement" for x in lines) == n
    return out


def _bundle_variant(bundle, tmp_path, edit) -> Path:
    d = tmp_path / "b"
    shutil.copytree(bundle, d)
    lines = (d / "results.jsonl").read_text().splitlines()
    (d / "results.jsonl").write_text(edit(lines))
    return d


def _set_stats(line: str, **stats) -> str:
    rec = json.loads(line)
    rec["stats"].update(stats)
    return json.dumps(rec)


def _first_meas(lines) -> int:
    return next(i for i, x in enumerate(lines) if json.loads(x)["type"] == "measurement")


@pytest.mark.parametrize(
    "name, edit, needles",
    [
        ("garbage line", lambda L: "\n".join(L[:2] + ["{garbage"] + L[2:]) + "\n", ["line 3: not JSON"]),
        (
            "no run header",
            lambda L: "\n".join(x for x in L if json.loads(x)["type"] != "run") + "\n",
            ["has no run header"],
        ),
        ("JSON array line", lambda L: "\n".join(L + ["[1, 2]"]) + "\n", ["a JSON list"]),
        (
            "median 0",
            lambda L: (
                "\n".join(
                    L[: _first_meas(L)]
                    + [_set_stats(L[_first_meas(L)], median_ms=0)]
                    + L[_first_meas(L) + 1 :]
                )
                + "\n"
            ),
            ["median_ms", "> 0"],
        ),
        (
            "p10 > p90",
            lambda L: (
                "\n".join(
                    L[: _first_meas(L)]
                    + [_set_stats(L[_first_meas(L)], p10_ms=9.0, p90_ms=1.0)]
                    + L[_first_meas(L) + 1 :]
                )
                + "\n"
            ),
            ["p10_ms", "p90_ms"],
        ),
        (
            "two bad lines",
            lambda L: "\n".join(["nope"] + L + ['{"type": "measurement", "run_id": "x", "key": "k"}']) + "\n",
            ["2 line(s) refused", "line 1: not JSON", "workload 'k' is not in the manifest"],
        ),
    ],
)
def test_import_is_all_or_nothing(bundle, tmp_path, capsys, name, edit, needles):
    d = _bundle_variant(bundle, tmp_path, edit)
    store = tmp_path / "s.db"
    before = snapshot(d)
    code, out, err = run(capsys, "profile", "import", d, "--store", store)
    one_line_error(code, err, str(d / "results.jsonl"), "nothing imported", *needles)
    assert not store.exists() and snapshot(d) == before


def test_import_tolerates_only_a_cut_last_line(bundle, tmp_path, capsys):
    d = _bundle_variant(bundle, tmp_path, lambda L: "\n".join(L) + "\n" + L[-1][:30])
    n = len(json.loads((d / "manifest.json").read_text())["workloads"])
    code, out, err = run(capsys, "profile", "import", d, "--store", tmp_path / "s.db")
    assert code == 0 and f"line {n + 3} is cut short" in out and f"imported {n} measurements" in out


def test_import_rolls_back_on_a_store_conflict(bundle, tmp_path, capsys):
    """A workload already stored with other content: nothing of the import lands."""
    d = _bundle_variant(bundle, tmp_path, lambda L: "\n".join(L) + "\n")
    manifest = json.loads((d / "manifest.json").read_text())
    w = manifest["workloads"][-1]
    store = tmp_path / "s.db"
    with Store(store) as st:
        st.add_workload(w["key"], w["granularity"], w["spec"], w["madds"] + 1, w["params"])
    code, _, err = run(capsys, "profile", "import", d, "--store", store)
    one_line_error(code, err, "different madds")
    with Store(store, readonly=True) as st:
        assert st.frame().empty and st.devices().empty


def test_damaged_manifest_is_named(bundle, tmp_path, capsys):
    d = _bundle_variant(bundle, tmp_path, lambda L: "\n".join(L) + "\n")
    m = d / "manifest.json"
    m.write_text(m.read_text()[:300])
    code, _, err = run(capsys, "profile", "import", d / "results.jsonl", "--store", tmp_path / "s.db")
    one_line_error(code, err, str(m), "damaged bundle manifest")


# -- read-only stores: read, never created or changed --------------------------------------------
def test_read_only_store_can_be_read(env, tmp_path):
    """A store in a folder nobody may write (as on a read-only mount): every reader works, the
    writer says why it cannot; not a byte changes. Run as an unprivileged user when root."""
    import tempfile

    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("needs setpriv to drop root")
    ro = Path(tempfile.mkdtemp(prefix="hwlat-ro-"))
    outdir = Path(tempfile.mkdtemp(prefix="hwlat-out-"))
    try:
        shutil.copy(env["db"], ro / "lat.db")
        for p in (ro / "lat.db", env["pred"]):
            os.chmod(p, 0o644)
        os.chmod(outdir, 0o777)
        os.chmod(ro, 0o555)
        os.chmod(ro / "lat.db", 0o444)
        before = snapshot(ro)
        user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        db = str(ro / "lat.db")
        commands = [
            ["profile", "show", "--store", db],
            ["profile", "show", "--store", db, "--json"],
            ["profile", "export", "--store", db, "-o", str(outdir / "x.csv")],
            ["fit", "--store", db, "--kind", "lut", "-o", str(outdir / "p.json")],
            ["dashboard", "build", "--store", db, "-o", str(outdir / "r.html")],
            ["profile", "models", TINY, "--store", db, "-q"],
        ]
        script = (
            "import contextlib, io, json, sys\nfrom hwlat.cli import main\nres = []\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    out, err = io.StringIO(), io.StringIO()\n"
            "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
            "        code = main(argv)\n"
            "    res.append([code, out.getvalue(), err.getvalue()])\n"
            "print(json.dumps(res))\n"
        )
        r = subprocess.run(
            [*user, sys.executable, "-c", script, json.dumps(commands)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=outdir,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        res = json.loads(r.stdout.splitlines()[-1])
        for argv, (code, _out, err) in zip(commands[:-1], res):
            assert code == 0, (argv, err)
        assert len(json.loads(res[1][1])) == len(Store(env["db"], readonly=True).frame())
        code, _, err = res[-1]
        one_line_error(code, err, db, "read-only")
        assert snapshot(ro) == before and sorted(os.listdir(ro)) == ["lat.db"]
    finally:
        os.chmod(ro, 0o755)
        shutil.rmtree(ro)
        shutil.rmtree(outdir)


def test_open_store_readonly_never_creates(tmp_path):
    with pytest.raises(HwlatError, match="no such store") as e:
        with open_store(tmp_path / "none.db", readonly=True):
            pass
    assert "create=False" not in str(e.value) and not (tmp_path / "none.db").exists()
    (tmp_path / "empty.db").touch()
    with pytest.raises(HwlatError, match="empty file, not an hwlat store$"):
        Store(tmp_path / "empty.db", readonly=True)


# -- error messages: one short line, bugs keep their traceback -----------------------------------
def test_long_arguments_are_not_echoed(capsys):
    code, _, err = run(capsys, "arch", "show", "x" * 10_000)
    one_line_error(code, err)
    assert len(err) < 400


def test_out_that_is_a_file(env, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep me")
    code, _, err = run(
        capsys,
        "netadapt",
        env["spec"],
        "--target-ratio",
        "0.8",
        "--predictor",
        env["mono"],
        "--out",
        f,
        "-r",
        "16",
    )
    one_line_error(code, err, str(f), "is a file", "--out")
    code, _, err = run(capsys, "demo", "--out", f)
    one_line_error(code, err, str(f), "is a file")
    assert f.read_text() == "keep me"


def test_missing_store_message(tmp_path, capsys):
    code, _, err = run(capsys, "profile", "show", "--store", tmp_path / "s.db")
    one_line_error(code, err, str(tmp_path / "s.db"), "no such store")
    assert "create=False" not in err and not (tmp_path / "s.db").exists()


def test_a_bug_keeps_its_traceback(monkeypatch, capsys):
    import hwlat.cli.arch as cli

    for exc in (RuntimeError("a bug"), KeyError("params")):

        def boom(args, exc=exc):
            raise exc

        monkeypatch.setattr(cli, "_arch_list", boom)
        with pytest.raises(type(exc)):
            main(["arch", "list"])


# -- dashboard serve: port checks ----------------------------------------------------------------
def test_serve_port_is_checked(env, capsys):
    code, _, err = run(capsys, "dashboard", "serve", "--store", env["db"], "--port", "70000")
    one_line_error(code, err, "--port", "70000 is not a port number")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run(capsys, "dashboard", "serve", "--store", env["db"], "--port", port)
    one_line_error(code, err, f"--port {port}", "127.0.0.1")
    assert "serving on" not in out


# -- predict checks the device and runtime -------------------------------------------------------
def test_predict_checks_device_and_runtime(env, capsys):
    code, _, err = run(capsys, "predict", "--predictor", env["other"], "mobilenetv3_small_035")
    one_line_error(code, err, "device mismatch")
    with pytest.warns(UserWarning, match="device mismatch"):
        code, out, _ = run(
            capsys, "predict", "--predictor", env["other"], "mobilenetv3_small_035", "--allow-other-device"
        )
    assert code == 0 and "mobilenetv3_small_035" in out
    code, _, err = run(
        capsys, "predict", "--predictor", env["pred"], "mobilenetv3_small_035", "--runtime", "onnxruntime"
    )
    one_line_error(code, err, "runtime 'litert'")
    code, out, _ = run(capsys, "predict", "--predictor", env["pred"], "mobilenetv3_small_035")
    assert code == 0 and " ms" in out


# -- NetAdapt targets: reached when reachable, refused at the start when not ---------------------
def test_netadapt_reaches_a_reachable_target(na):
    h = json.loads((na["dir"] / "history.json").read_text())
    lats = [h["seed"]["predicted_ms"]] + [s["predicted_ms"] for s in h["steps"]]
    assert all(b < a for a, b in zip(lats, lats[1:]))
    assert h["final"]["predicted_ms"] <= na["cfg"].target_ms and h["final"]["reached_target"]


def test_unreachable_target_fails_at_the_start(na, env, tmp_path, capsys):
    floor = channel_floor(na["tiny"], na["pred"])
    assert 0 < floor.floor_ms < floor.seed_ms and 0 < floor.share < 1
    cfg = NetAdaptConfig(target_ms=0.9 * floor.floor_ms, short_steps=2, long_steps=3)

    class NoTraining(DigitsTask):
        def train(self, *a, **k):
            raise AssertionError("trained before the target was checked")

    with pytest.raises(ValueError, match="below what channel cuts can reach") as e:
        netadapt(na["tiny"], None, NoTraining(16), na["pred"], cfg, tmp_path / "run")
    assert f"{floor.share:.0%}" in str(e.value) and "no channel cut can remove" in str(e.value)
    assert not (tmp_path / "run" / "history.json").exists()
    fl = channel_floor(env["tiny"], load(env["mono"]))
    code, out, err = run(
        capsys,
        "netadapt",
        env["spec"],
        "--target-ms",
        f"{0.9 * fl.floor_ms:.6f}",
        "--predictor",
        env["mono"],
        "--out",
        tmp_path / "cli",
        "-r",
        "16",
    )
    one_line_error(code, err, "below what channel cuts can reach", "no channel cut can remove")
    assert "no channel cut can remove" in out  # said before the run starts
    assert not (tmp_path / "cli" / "history.json").exists()


# -- latency_function says which prediction path it takes ----------------------------------------
def test_latency_function_says_its_path(env):
    from hwlat.archs import SearchSpace
    from hwlat.search.nas import latency_function

    space = SearchSpace.mobilenetv3_small(resolution=32, num_classes=10)
    data = TrainingData.from_store(env["db"], "litert")
    reg = make_predictor("regression").fit(
        data.archs(), data.latency_ms, pieces=data.pieces, fingerprint=data.fingerprint, runtime="litert"
    )
    vs = [space.sample(np.random.default_rng(i)) for i in range(5)]
    fast, slow = latency_function(reg, space), latency_function(load(env["pred"]), space)
    assert fast.path == "compiled" and slow.path == "predict_many" and "not block-level" in slow.describe()
    np.testing.assert_allclose(fast(vs), reg.predict_many([space.decode(v) for v in vs]), rtol=1e-9)


# -- the report's search section ------------------------------------------------------------------
def test_report_reads_only_histories(na, env, tmp_path):
    from hwlat.dashboards import figures as F
    from hwlat.dashboards import frames as D
    from hwlat.search.netadapt import record_baseline, record_measured

    runs = tmp_path / "runs"
    shutil.copytree(na["dir"], runs / "netadapt")
    shutil.copy(env["pred"], runs / "pred_madds.json")
    (runs / "compare.json").write_text(json.dumps({"netadapt": {"steps": 3}}))
    (runs / "notes.json").write_text('{"hello": "world"}')
    h = D.histories(runs)
    assert set(h) == {"netadapt/history.json"}
    fig = F.search_trajectory(h["netadapt/history.json"])
    assert [t.name for t in fig.data] == ["NetAdapt", "seed / final"]
    phases = list(h["netadapt/history.json"]["phase"])
    assert phases[0] == "seed" and phases[-1] == "final" and set(phases[1:-1]) == {"step"}
    record_measured(runs / "netadapt", 0.5)
    record_baseline(
        runs / "netadapt",
        "uniform",
        {"width_mult": 0.5, "predicted_ms": 0.2, "accuracy": 0.4, "measured_ms": 0.3},
    )
    df = D.histories(runs)["netadapt/history.json"]
    fig = F.search_trajectory(df)
    assert "baselines" in [t.name for t in fig.data] and "uniform x0.5" in list(df["proposal"])
    assert df[df["phase"] == "final"]["measured_ms"].iloc[0] == 0.5


# -- hwlat demo compare ---------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_compare_small(env, tmp_path, capsys):
    out = tmp_path / "cmp"
    code, printed, err = run(
        capsys,
        "demo",
        "compare",
        "--predictor",
        env["mono"],
        "--out",
        out,
        "--seed-arch",
        env["spec"],
        "-r",
        "16",
        "--seed-steps",
        "10",
        "--short-steps",
        "1",
        "--long-steps",
        "2",
        "--delta",
        "0.05",
        "--ratio",
        "0.85",
        "--nas-budget",
        "3",
        "--nas-steps",
        "1",
        "--nas-controllers",
        "random",
        "--max-seconds",
        "0.3",
    )
    assert code == 0, err
    res = json.loads((out / "compare.json").read_text())
    na = res["netadapt"]
    assert na["final_predicted_ms"] <= na["target_predicted_ms"] and na["final_measured_ms"] > 0
    un = res[
        "uniform"
    ]  # matched on measured latency: the largest multiplier not slower than NetAdapt's result
    assert un["measured_ms"] == un["tried_ms"][f"{un['width_mult']:g}"] <= na["final_measured_ms"]
    above = [v for k, v in un["tried_ms"].items() if float(k) > un["width_mult"]]
    assert all(v > na["final_measured_ms"] for v in above) or un["width_mult"] == 1.0
    assert res["nas"]["random"]["candidates"] == 3
    hist = json.loads((out / "netadapt" / "history.json").read_text())
    assert hist["baselines"]["uniform"]["width_mult"] == res["uniform"]["width_mult"] < 1
    assert "NetAdapt:" in printed and "uniform x" in printed and "no channel cut can remove" in printed


def test_demo_compare_bad_input(env, tmp_path, capsys):
    code, _, err = run(
        capsys, "demo", "compare", "--predictor", env["mono"], "--out", tmp_path, "--skip", "nas,x"
    )
    one_line_error(code, err, "--skip", "'x'")
    code, _, err = run(capsys, "demo", "compare", "--predictor", env["other"], "--out", tmp_path)
    one_line_error(code, err, "device mismatch")
    assert list(tmp_path.iterdir()) == []


def test_uniform_scale_keeps_structure(env):
    from hwlat.experiments.compare import uniform_scale
    from hwlat.search.netadapt import structure

    for arch in (env["tiny"], get_arch("mobilenetv3_small_100"), get_arch("mobilenetv2_100")):
        for m in (0.25, 0.5, 0.75, 1.0):
            s = uniform_scale(arch, m)
            assert structure(s) == structure(arch) and all(b.out % 8 == 0 for b in s.blocks)
            assert summary(s)["madds"] <= summary(arch)["madds"] * 1.05
    assert uniform_scale(env["tiny"], 1.0).blocks == env["tiny"].blocks


# -- the property test ----------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=12,
)
_files = st.one_of(
    st.binary(max_size=400),
    _json.map(lambda v: json.dumps(v).encode()),
    st.lists(_json, max_size=5).map(lambda vs: "\n".join(map(json.dumps, vs)).encode()),
)
_fuzz = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _clean(code: int, err: str) -> None:
    assert code == 0 or (code == 2 and err.startswith("hwlat: error: ") and err.count("\n") == 1), err


@_fuzz
@given(data=_files, target=st.sampled_from(["results.jsonl", "manifest.json"]))
def test_fuzz_profile_import(bundle, tmp_path_factory, capsys, data, target):
    d = tmp_path_factory.mktemp("fz") / "b"
    shutil.copytree(bundle, d)
    (d / target).write_bytes(data)
    store = d.parent / "s.db"
    before = snapshot(d)
    code, _, err = run(capsys, "profile", "import", d, "--store", store)
    _clean(code, err)
    assert snapshot(d) == before


@_fuzz
@given(data=_files)
def test_fuzz_fit_and_predict(env, tmp_path_factory, capsys, data):
    d = tmp_path_factory.mktemp("fz")
    f = d / "input"
    f.write_bytes(data)
    before = snapshot(d)
    code, _, err = run(capsys, "fit", "--store", f, "--kind", "madds", "-o", d / "p.json")
    _clean(code, err)
    code2, _, err = run(capsys, "predict", "--predictor", f, "mobilenetv3_small_035")
    _clean(code2, err)
    assert code == code2 == 2 and snapshot(d) == before


@_fuzz
@given(
    data=_files,
    key=st.sampled_from(
        [
            "schema",
            "kind",
            "seed_arch",
            "config",
            "seed",
            "steps",
            "current_arch",
            "weights",
            "final",
            "whole",
        ]
    ),
    value=_json,
)
def test_fuzz_netadapt_resume(na, tmp_path_factory, data, key, value):
    d = tmp_path_factory.mktemp("fz") / "run"
    shutil.copytree(na["dir"], d)
    hp = d / "history.json"
    if key == "whole":
        hp.write_bytes(data)
    else:
        h = json.loads(hp.read_text())
        h[key] = value
        hp.write_text(json.dumps(h))
    before = snapshot(d)
    try:
        res = netadapt(na["tiny"], None, na["task"], na["pred"], na["cfg"], d)
    except (HwlatError, ValueError) as e:
        assert "\n" not in str(e) and str(d) in str(e)
        assert snapshot(d) == before
    else:
        assert res.history["final"] is not None and isinstance(res.model, torch.nn.Module)


def test_outputs_never_overwrite_a_store(env, tmp_path, capsys):
    db = tmp_path / "x.json"  # a store, whatever its name
    shutil.copy(env["db"], db)
    before = snapshot(db)
    for argv in (
        ["export", "tflite", "mobilenetv3_small_035", "-o", db],
        ["profile", "export", "--store", env["db"], "-o", db],
        ["dashboard", "build", "--store", env["db"], "-o", db],
    ):
        code, _, err = run(capsys, *argv)
        one_line_error(code, err, str(db), "refusing to overwrite")
    assert snapshot(db) == before


def test_readonly_open_of_an_older_store(tmp_path, monkeypatch):
    from test_store import _v1_store

    path = tmp_path / "v1.db"
    _v1_store(path)
    with Store(path, readonly=True) as st:  # writable: upgraded in place first, as any open does
        assert len(st.frame()) == 1
    ro = tmp_path / "ro"
    ro.mkdir()
    _v1_store(ro / "v1.db")
    before = snapshot(ro)
    real = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **kw: (
            False if mode & os.W_OK and ro in (Path(p), Path(p).parent) else real(p, mode, **kw)
        ),
    )
    with pytest.raises(HwlatError, match="older schema on a read-only location") as e:
        Store(ro / "v1.db", readonly=True)
    assert str(ro / "v1.db") in str(e.value) and snapshot(ro) == before
