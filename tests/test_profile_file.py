"""``hwlat profile file``, ``hwlat arch import`` and ``hwlat predict FILE``: model files measured as
they are (keyed by their content, resumed like every workload), imported as networks, predicted
and shown beside what was measured. Timings here mean nothing (a shared machine, a tiny budget):
only that the paths work."""

from __future__ import annotations

import json

import pytest

from hwlat.archs import ArchSpec, encode, get_arch
from hwlat.archs.pieces import from_spec
from hwlat.cli import main
from hwlat.profiler.measure.profile import file_key, file_workload
from hwlat.profiler.measure.runners import get_runner
from hwlat.profiler.storage.store import open_store

QUICK = ["--max-seconds", "0.2", "--target", "0.2", "-q"]
ARCH = ("mobilenetv3_small_050", 32)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def arch():
    name, res = ARCH
    return get_arch(name, resolution=res)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same tiny network written by hwlat's two exporters."""
    from hwlat.profiler.export.onnx import build_onnx
    from hwlat.profiler.export.tflite import build_tflite

    d = tmp_path_factory.mktemp("files")
    (d / "net.onnx").write_bytes(build_onnx(arch()))
    (d / "net.tflite").write_bytes(build_tflite(arch()))
    return d / "net.onnx", d / "net.tflite"


@pytest.fixture
def foreign_onnx(tmp_path):
    """A valid ONNX graph no importer places as a MobileNet layer (one Sin node)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Sin", ["x"], ["y"], name="sine")], "sine", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "sine.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def stored(db):
    with open_store(db, readonly=True) as st:
        return st.frame()


def test_two_files_of_one_network_are_two_workloads_and_resume(files, tmp_path, capsys):
    onnx_file, tflite_file = files
    db = tmp_path / "s.db"
    code, out, _ = run(
        capsys, "profile", "file", onnx_file, tflite_file, "--store", db, "--repeats", 2, *QUICK
    )
    assert code == 0, out
    keys = {file_key(onnx_file.read_bytes()), file_key(tflite_file.read_bytes())}
    df = stored(db)
    assert set(df["key"]) == keys and len(keys) == 2
    assert set(df["granularity"]) == {"model"} and (df["repeats"] == 2).all()
    assert dict(zip(df["key"], df["runtime"])) == {
        file_key(onnx_file.read_bytes()): "onnxruntime",
        file_key(tflite_file.read_bytes()): "litert",
    }
    specs = {k: json.loads(s) for k, s in zip(df["key"], df["spec"])}
    for f in files:
        spec = specs[file_key(f.read_bytes())]
        assert spec["file"]["name"] == f.name and spec["file"]["format"] == f.suffix[1:]
        assert len(spec["file"]["sha256"]) == 64 and spec["file"]["bytes"] == f.stat().st_size
    # a second run measures nothing
    code, out, _ = run(
        capsys, "profile", "file", onnx_file, tflite_file, "--store", db, "--repeats", 2, *QUICK
    )
    assert code == 0 and out.count(" 0 measured, 1 already stored") == 2, out
    assert len(stored(db)) == 2


def test_a_copy_under_another_name_is_the_same_workload(files, tmp_path, capsys):
    onnx_file, _ = files
    db, copy = tmp_path / "s.db", tmp_path / "renamed.onnx"
    copy.write_bytes(onnx_file.read_bytes())
    assert run(capsys, "profile", "file", onnx_file, "--store", db, "--repeats", 1, *QUICK)[0] == 0
    code, out, _ = run(capsys, "profile", "file", copy, "--store", db, "--repeats", 1, *QUICK)
    assert code == 0 and "0 measured, 1 already stored" in out
    (spec,) = stored(db)["spec"]
    assert json.loads(spec)["file"]["name"] == "net.onnx"  # the first name it was stored under


def test_a_file_that_does_not_import_is_measured(foreign_onnx, tmp_path, capsys):
    db = tmp_path / "s.db"
    code, out, _ = run(capsys, "profile", "file", foreign_onnx, "--store", db, "--repeats", 1, *QUICK)
    assert code == 0 and "not imported" in out and "1 measured" in out
    (spec,) = stored(db)["spec"]
    assert "arch" not in json.loads(spec)


def test_the_stored_spec_rebuilds_without_bytes_and_a_runner_refuses_it(foreign_onnx):
    w = file_workload(foreign_onnx).workload
    back = from_spec(w.key, json.loads(json.dumps(w.spec())))
    assert back.file == w.file and back.content is None and back.spec() == w.spec()
    with pytest.raises(ValueError, match="measured where it is"):
        get_runner("onnxruntime").prepare(back)  # what a farm host rebuilding it from its spec meets
    with pytest.raises(ValueError, match="does not run .onnx"):
        get_runner("litert").prepare(w)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.onnx"], "no such file"),
        (["junk.onnx"], "not a .tflite or .onnx model"),
        (["junk.tflite", "--runtime", "onnxruntime"], "not a .tflite or .onnx model"),
        (["net.onnx", "--runtime", "litert"], "does not run .onnx files (--runtime onnxruntime does)"),
        (["net.tflite", "--runtime", "torch"], "does not run .tflite files"),
        (["net.onnx", "--runtime", "tvm"], "unknown runtime"),
    ],
)
def test_bad_files_are_one_line_errors(files, tmp_path, capsys, monkeypatch, argv, message):
    for f in files:
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "junk.onnx").write_text("not a model")
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "profile", "file", *argv, "--store", "s.db", *QUICK)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.db").exists()  # refused before anything was measured


@pytest.mark.parametrize("which", [0, 1], ids=["onnx", "tflite"])
def test_arch_import_prints_the_codec_and_writes_json(files, tmp_path, capsys, which):
    f = files[which]
    out_json = tmp_path / "spec.json"
    code, out, err = run(capsys, "arch", "import", f, "-o", out_json)
    assert code == 0, err
    assert out.splitlines()[0] == encode(arch())
    assert "node" in out.splitlines()[2] and "layer" in out.splitlines()[2]
    back = ArchSpec.from_json(out_json.read_text())
    assert encode(back) == encode(arch())


def test_arch_import_errors_are_one_line(foreign_onnx, tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    for f in (junk, foreign_onnx, tmp_path / "missing.tflite"):
        code, _, err = run(capsys, "arch", "import", f)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    code, out, err = run(capsys, "arch", "import", foreign_onnx, "--allow-partial")
    assert code == 0, err
    assert "could not place" in out or "no network placed" in out


def test_imported_files_carry_their_codec(files, tmp_path, capsys):
    db = tmp_path / "s.db"
    assert run(capsys, "profile", "file", *files, "--store", db, "--repeats", 1, *QUICK)[0] == 0
    assert {json.loads(s)["arch"] for s in stored(db)["spec"]} == {encode(arch())}


def test_predict_files_beside_what_was_measured(files, tmp_path, capsys):
    onnx_file, tflite_file = files
    db, pred = tmp_path / "s.db", tmp_path / "p.json"
    nets = ["mobilenetv3_small_050", "mobilenetv3_small_075"]
    assert run(capsys, "profile", "models", *nets, "-r", 32, "--store", db, "--repeats", 1, *QUICK)[0] == 0
    assert run(capsys, "fit", "--store", db, "--kind", "madds", "-o", pred)[0] == 0
    assert run(capsys, "profile", "file", *files, "--store", db, "--repeats", 1, *QUICK)[0] == 0
    code, out, err = run(capsys, "predict", "--predictor", pred, onnx_file, tflite_file, "--store", db)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(onnx_file)) and lines[1].startswith(str(tflite_file))
    assert "measured" in lines[1] and "not in the store" in lines[0]  # the onnx file ran on onnxruntime
    code, out, _ = run(
        capsys, "predict", "--predictor", pred, onnx_file, tflite_file, "--store", db, "--json"
    )
    recs = json.loads(out)
    assert recs[0]["latency_ms"] == pytest.approx(recs[1]["latency_ms"])  # one network
    assert recs[0]["measured_ms"] is None and recs[1]["measured_ms"] > 0
    assert recs[1]["key"] == file_key(tflite_file.read_bytes()) and recs[1]["arch"] == encode(arch())
    # without --store, as for any architecture; zoo names unchanged
    code, out, _ = run(capsys, "predict", "--predictor", pred, tflite_file, "mobilenetv3_small_050", "-r", 32)
    assert code == 2  # -r does not apply to a file
    code, out, _ = run(capsys, "predict", "--predictor", pred, tflite_file, encode(arch()))
    assert code == 0 and len(out.splitlines()) == 2 and "measured" not in out
    assert out.splitlines()[0].split()[-2] == out.splitlines()[1].split()[-2]  # the same network


def test_a_store_with_a_file_that_did_not_import_still_fits_and_reports(foreign_onnx, tmp_path, capsys):
    db, pred = tmp_path / "s.db", tmp_path / "p.json"
    nets = ["mobilenetv3_small_050", "mobilenetv3_small_075"]
    assert (
        run(
            capsys,
            "profile",
            "models",
            *nets,
            "-r",
            32,
            "--store",
            db,
            "--repeats",
            1,
            "--runtime",
            "onnxruntime",
            *QUICK,
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "profile",
            "file",
            foreign_onnx,
            "--store",
            db,
            "--repeats",
            1,
            "--runtime",
            "onnxruntime",
            *QUICK,
        )[0]
        == 0
    )
    code, _, err = run(
        capsys, "fit", "--store", db, "--kind", "madds", "-o", pred, "--runtime", "onnxruntime"
    )
    assert code == 0, err
    code, _, err = run(
        capsys, "dashboard", "build", "--store", db, "--predictor", pred, "-o", tmp_path / "r.html"
    )
    assert code == 0, err
