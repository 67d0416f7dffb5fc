"""Kernel efficiency by op type and the anomalies far below it (hwlat profile anomalies)."""

import json

import numpy as np
import pandas as pd
import pytest

from hwlat.archs import SearchSpace, get_arch
from hwlat.archs.pieces import kernels
from hwlat.cli import main
from hwlat.dashboards import figures as F
from hwlat.profiler.analysis.anomalies import anomalies, efficiency, efficiency_summary
from hwlat.profiler.measure.profile import profile
from hwlat.profiler.measure.timing import TimingConfig
from hwlat.profiler.storage.store import Store

FAST = TimingConfig(max_seconds=0.3, min_sample_ms=0.2, target=0.05)


def _frame(arch, ms_per_madd: dict, overhead_ms=0.01):
    """A store-like frame of ``arch``'s kernels timed by a known cost model (ms per MAdd by op and
    kernel size), to check the analysis against a known answer."""
    rows = []
    for w in kernels(arch):
        spec = w.spec()
        main_row = max(spec["rows"], key=lambda r: r["madds"])
        rate = ms_per_madd.get((main_row["op"], main_row["k"]), 1e-7)
        rows.append(
            {
                "key": w.key,
                "granularity": "kernel",
                "variant": "warm",
                "device": "dev",
                "device_key": "d1",
                "runtime": "litert",
                "madds": w.madds,
                "latency_ms": overhead_ms + rate * w.madds,
                "spec": json.dumps(spec),
            }
        )
    return pd.DataFrame(rows)


def test_seven_by_seven_depthwise_ten_times_slower_is_found():
    rng = np.random.default_rng(0)
    space = SearchSpace.mobilenetv3_large()
    archs = [space.sample_arch(rng) for _ in range(4)]
    frame = pd.concat(
        [_frame(a, {("dwconv", 7): 1e-6, ("dwconv", 3): 1e-7, ("dwconv", 5): 1e-7}) for a in archs]
    ).drop_duplicates("key")
    found = anomalies(frame, factor=3)
    assert len(found) and set(found["kernel"]) == {7} and set(found["op"]) == {"dwconv"}
    n7 = sum(1 for r in frame.itertuples() if json.loads(r.spec)["label"].startswith("dwconv k7"))
    big7 = [r for r in efficiency(frame).itertuples() if r.op == "dwconv" and r.kernel == 7 and r.madds > 1e6]
    assert len(found) >= len(big7) > 0 and n7 >= len(found)
    summ = efficiency_summary(efficiency(frame)).set_index(["op", "kernel"])
    assert summ.loc[("dwconv", 7), "median_gmacs"] < summ.loc[("dwconv", 5), "median_gmacs"] / 3
    fig = F.op_efficiency(efficiency(frame))
    assert not F.is_note(fig) and any("slower" in t.name for t in fig.data)


def test_uniform_device_has_no_anomalies():
    frame = _frame(get_arch("mobilenetv3_large_100"), {})
    assert anomalies(frame, factor=2).empty
    assert F.is_note(F.op_efficiency(efficiency(frame.iloc[0:0])))
    with pytest.raises(ValueError, match="factor must be > 1"):
        anomalies(frame, factor=1)


def test_anomalies_command_on_real_measurements(tmp_path, capsys):
    store = tmp_path / "k.db"
    profile(
        [get_arch("mobilenetv3_small_035", resolution=96)],
        "kernel",
        store,
        "litert",
        config=FAST,
        progress=False,
    )
    assert main(["profile", "anomalies", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "median efficiency (GMAC/s) by op type and kernel size" in out and "dwconv" in out
    assert main(["profile", "anomalies", "--store", str(store), "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
    with Store(store) as st:
        eff = efficiency(st.frame())
    assert {"conv1x1", "dwconv", "se"} <= set(eff["op"]) and (eff["gmacs"] > 0).all()
