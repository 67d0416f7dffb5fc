"""CLI, in process: output, JSON, one-line errors with a non-zero exit."""

import json

import pytest

from hwlat.archs import encode, get_arch, summary
from hwlat.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_arch_list(capsys):
    code, out, _ = run(capsys, "arch", "list")
    assert code == 0 and "mobilenetv3_large_100" in out.split() and "mnasnet_a1" in out.split()


def test_arch_madds_json(capsys, tmp_path):
    spec_file = tmp_path / "small.json"
    spec_file.write_text(get_arch("mobilenetv3_small_075").to_json())
    codec = encode(get_arch("mobilenetv2_035"))
    code, out, _ = run(
        capsys,
        "arch",
        "madds",
        "mobilenetv3_large_100",
        str(spec_file),
        codec,
        "--resolution",
        "192",
        "--json",
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["mobilenetv3_large_100", "mobilenetv3_small_075", "custom"]
    assert all(r["resolution"] == 192 and isinstance(r["madds"], int) for r in rows)
    assert rows[0]["madds"] == summary(get_arch("mobilenetv3_large_100", resolution=192))["madds"]
    assert rows[0]["params"] == 5_483_032


def test_arch_show(capsys, tmp_path):
    f = tmp_path / "arch.txt"
    f.write_text(encode(get_arch("mobilenetv3_small_100")))
    code, out, _ = run(capsys, "arch", "show", str(f), "-r", "96")
    assert code == 0
    assert "blocks.10.se.reduce" in out and "2,542,856 params" in out and "@ 96x96" in out


def test_demo_prints_table3(capsys):
    code, out, _ = run(capsys, "demo", "--table-only")
    assert code == 0 and "mobilenetv3_large_100" in out and "219.00" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["arch", "show", "resnet50"], "unknown architecture 'resnet50'"),
        (
            ["arch", "madds", "in224,stem_k3_s2_c16_hs,ir_k3_s3_e16_c16_re,head_c8_hs,fc10"],
            "stride must be 1 or 2",
        ),
        (["arch", "madds", "mobilenetv3_large_100", "-r", "8"], "too small"),
        (["arch", "madds", "mobilenetv3_large_100", "-r", "0"], "arch.resolution"),
        (["arch", "frobnicate"], "invalid choice"),
        (["arch", "show"], "required"),
        ([], "required"),
    ],
)
def test_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_bad_json_file(capsys, tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"schema": "hwlat.arch/1", "name": "x"')
    code, _, err = run(capsys, "arch", "show", str(f))
    assert code == 2 and "not valid JSON" in err and err.count("\n") == 1


def test_python_m_entry_point():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "hwlat", "arch", "madds", "mobilenetv3_small_100", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and json.loads(r.stdout)[0]["params"] == 2_542_856
