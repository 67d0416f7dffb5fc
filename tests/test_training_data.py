"""Training data read from a store: unstable repeats are kept with a warning naming them, and the
phase normalisation rescales each row by the reference workload of its own rounds."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from hwlat.archs import mobilenetv3
from hwlat.archs.pieces import model
from hwlat.cli import main
from hwlat.latency_models.training_data import TrainingData, UnstableWarning, phase_normalised
from hwlat.profiler.storage.device import fingerprint
from hwlat.profiler.storage.store import Store

STATS = {"std_ms": 0.2, "n": 50, "warmup": 10, "ci95_ms": 0.05, "started_at": "2025-01-01T00:00:00+00:00"}


def _store(path, repeats: dict[str, list[tuple[float, float]]]):
    """Networks (by zoo multiplier) with their repeats as (latency_ms, ref_ms): the latency is the
    repeat's p10, its median and p90 are 10 % and 50 % above it."""
    with Store(path) as s:
        dev = s.add_device(fingerprint("litert", "1.0", threads=1))
        for mult, reps in repeats.items():
            w = model(mobilenetv3("small", width_mult=float(mult), resolution=96))
            s.add_workload(w.key, w.granularity, w.spec(), w.madds, w.params)
            for r, (ms, ref) in enumerate(reps):
                s.add_measurement(
                    w.key,
                    dev,
                    {
                        **STATS,
                        "p10_ms": ms,
                        "median_ms": 1.1 * ms,
                        "p90_ms": 1.5 * ms,
                        "mean_ms": 1.2 * ms,
                        "ref_ms": ref,
                    },
                    "run",
                    repeat=r,
                )
    return path


def test_unstable_repeats_are_kept_with_a_warning_naming_them(tmp_path, capsys):
    db = _store(
        tmp_path / "s.db",
        {
            "0.5": [(1.0, 0.1), (1.01, 0.1)],
            "0.75": [(2.0, 0.1), (3.0, 0.1), (2.1, 0.1)],
            "1.0": [(3.0, 0.1), (3.02, 0.1)],
        },
    )
    with pytest.warns(
        UnstableWarning, match=r"1 workloads whose repeats disagree.*mobilenetv3_small_075 @96 \(48 %\)"
    ):
        data = TrainingData.from_store(db)
    assert len(data.models) == 3  # never dropped
    assert sorted(data.latency_ms) == pytest.approx([1.005, 2.1, 3.01])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stable store: no warning
        TrainingData.from_store(_store(tmp_path / "ok.db", {"0.5": [(1.0, 0.1)], "1.0": [(3.0, 0.1)]}))
    # the CLI fits it and prints the warning as one line (a real process: pytest records warnings)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwlat",
            "fit",
            "--store",
            str(db),
            "--kind",
            "madds",
            "-o",
            str(tmp_path / "p.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"hwlat: warning: {db}: 1 workloads whose repeats disagree"
    )
    assert "mobilenetv3_small_075" in lines[0]
    # `profile show` lists the same workload, from the same definition of unstable
    assert main(["profile", "show", "--store", str(db)]) == 0
    shown = capsys.readouterr().out
    assert (
        "1 workloads whose repeats disagree" in shown
        and "47.6 %" in shown
        and "mobilenetv3_small_075 @96" in shown
    )


def test_phase_normalisation_rescales_by_the_reference_of_the_same_rounds(tmp_path):
    df = pd.DataFrame({"latency_ms": [2.0, 4.0, 3.0, 5.0], "ref_ms": [0.1, 0.2, np.nan, 0.1]})
    # the typical reference is the median of the known ones (0.1): the slow-phase row is halved
    assert phase_normalised(df) == pytest.approx([2.0, 2.0, 3.0, 5.0])
    assert phase_normalised(df.assign(ref_ms=np.nan)) == pytest.approx(df["latency_ms"])
    db = _store(tmp_path / "s.db", {"0.5": [(1.0, 0.1)], "0.75": [(4.0, 0.2)], "1.0": [(3.0, 0.1)]})
    raw = TrainingData.from_store(db).latency_ms
    norm = TrainingData.from_store(db, normalise_phase=True).latency_ms
    assert sorted(raw) == pytest.approx([1.0, 3.0, 4.0]) and sorted(norm) == pytest.approx([1.0, 2.0, 3.0])
    assert (
        main(
            [
                "fit",
                "--store",
                str(db),
                "--kind",
                "madds",
                "--normalise-phase",
                "-o",
                str(tmp_path / "p.json"),
            ]
        )
        == 0
    )
