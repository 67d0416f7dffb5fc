"""The quick path of the main job: profile, fit, NetAdapt, report — end to end on this CPU."""

import json

import pytest

from hwlat.cli import main


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    report = out / "report.html"
    assert report.is_file() and str(report.resolve()) in printed
    html = report.read_text()
    assert "plotly" in html.lower() and '<script src="http' not in html
    assert (out / "lat.db").is_file() and (out / "pred_calibrated.json").is_file()
    # NetAdapt reached its target, was fine-tuned and measured with LiteRT, uniform scaling beside it
    hist = json.loads((out / "netadapt_mobilenetv3_small_050_96" / "netadapt" / "history.json").read_text())
    assert hist["final"]["reached_target"] and hist["final"]["measured_ms"] > 0
    assert "measured ratio" in printed and "Search trajectory" in html
    # the published phones: imported, an e2e and a transfer predictor, a report section each
    assert "samsung_a50 (imported)" in html and "pixel2 (imported)" in html
    assert (out / "pred_e2e_samsung_a50.json").is_file() and (out / "pred_transfer_pixel2.json").is_file()
    # a rerun reuses the store: nothing is measured again
    assert main(["demo", "--quick", "--out", str(out), "-q"]) == 0
    again = capsys.readouterr().out
    assert " 0 workloads measured" in again and " 0 failed" in again
    assert "every stage ran" in again.splitlines()[-1]
    # a stage that fails does not end the demo: the rest runs, the report says what did not, exit 3
    import hwlat.experiments.demo

    def broken(*a, **k):
        raise OSError("the phones' table is unreadable")

    monkeypatch.setattr(hwlat.experiments.demo, "_phones", broken)
    report.unlink()
    assert main(["demo", "--quick", "--out", str(out), "-q"]) == 3
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "NOT every stage ran" in last and "phones: FAILED" in last and str(report.resolve()) in last
    html = report.read_text()
    assert "Stage phones: FAILED" in html and "the phones&#39; table is unreadable" in html
    assert "Search trajectory" in html  # the stages after it still ran
