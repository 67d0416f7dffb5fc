"""Reading ``benchmark_model`` output: stats lines, summaries, memory, and op profiles as text, CSV
and proto. The logs in tests/data/benchmark_logs are real outputs (sources in SOURCES.md there);
lines built here follow formats quoted in the same places."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwlat.errors import FileFormatError
from hwlat.profiler.storage.benchmark_log import (
    BenchmarkLogError,
    parse_log,
    parse_op_csv,
    parse_op_proto,
    parse_op_table,
    read_log,
)

LOGS = Path(__file__).parent / "data" / "benchmark_logs"
RISCV = LOGS / "mobilenet_v1_riscv64_tf28_op_profiling.txt"


def test_classic_op_profiling_log_reads_timings_and_every_op():
    log = read_log(RISCV)
    assert log.warmup.count == 1 and log.regular.count == 50
    assert log.regular.get("avg") == pytest.approx(2.95034e6)  # scientific notation
    assert log.latency_ms() == pytest.approx(2950.34)  # no median printed: the mean
    assert log.summary_us["Init"] == 17187 and log.summary_us["First inference"] == 3512391
    assert log.memory_mb == {"init": pytest.approx(4.21094), "overall": pytest.approx(46.0859)}
    assert log.params["Num threads"] == "4"
    assert len(log.ops) == 31  # the regular runs only
    types = [op.node_type for op in log.ops]
    assert types.count("CONV_2D") == 15 and types.count("DEPTHWISE_CONV_2D") == 13
    assert log.op_total_ms() == pytest.approx(2949.9, abs=0.5)  # the ops sum to the run
    assert log.ops[0].name == "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0" and log.ops[0].first_ms == 87.754
    stats = log.stats()
    assert stats["median_ms"] == pytest.approx(2950.34) and stats["n"] == 50 and stats["warmup"] == 1
    assert stats["std_ms"] == pytest.approx(109.798)


def test_newer_log_with_info_prefixes_and_xnnpack():
    log = read_log(LOGS / "efficientdet_lite0_x86_xnnpack.txt")
    assert log.xnnpack is True and log.warmup.count == 35 and log.regular.count == 70
    assert log.latency_ms() == pytest.approx(14.2909)
    assert log.memory_mb["overall"] == pytest.approx(34.5234) and log.ops == ()


def test_xnnpack_rows_with_spaces_commas_and_merged_layers():
    ops = parse_op_table((LOGS / "efficientdet_lite0_x86_xnnpack_op_rows.txt").read_text().splitlines())
    assert [o.node_type for o in ops[:3]] == [
        "QUANTIZE",
        "Convolution (NHWC, QC8) IGEMM",
        "Convolution (NHWC, QC8) DWConv",
    ]
    dw = ops[2]
    assert dw.name == "Delegate/Convolution (NHWC, QC8) DWConv:1" and dw.times_called == 13
    assert dw.run_ms == pytest.approx(0.051 * 13)  # 4.317 % of the 15.5 ms run
    assert ops[-1].name.startswith("[StatefulPartitionedCall:3, ") and ops[-1].avg_ms == 3.653


def test_median_preferred_and_logcat_prefix():
    text = (
        "12-03 05:12:11.123  1234  1234 I tflite  : count=10 curr=70000\n"
        "12-03 05:12:12.456  1234  1234 I tflite  : count=1000 first=60000 curr=52000 min=49000 "
        "max=686105 avg=63743.2 std=30000 p5=50000 median=51891 p95=70000\n"
    )
    log = parse_log(text)
    assert log.regular.count == 1000 and log.latency_ms() == pytest.approx(51.891)
    assert log.stats()["mean_ms"] == pytest.approx(63.7432)


def test_old_summary_line_and_peak_memory():
    text = (
        "Average inference timings in us: Warmup: 83235, Init: 38467, Inference: 79760.9\n"
        "Peak memory footprint (MB): init=3.1 overall=12.5\n"
    )
    log = parse_log(text)
    assert log.regular is None and log.latency_ms() == pytest.approx(79.7609)
    assert log.summary_us["Init"] == 38467 and log.memory_mb["overall"] == 12.5


def test_output_without_timings_is_one_clear_error():
    text = (
        "STARTING!\nGraph: [/data/local/tmp/net.tflite]\n"
        "ERROR: Didn't find op for builtin opcode 'CONV_3D' version '1'\n"
        "ERROR: Failed to initialize the interpreter\nBenchmarking failed.\n"
    )
    with pytest.raises(BenchmarkLogError, match="phone.log: no timings of the regular runs") as e:
        parse_log(text, "phone.log")
    assert isinstance(e.value, FileFormatError) and "\n" not in str(e.value)


def _csv_of(ops) -> str:
    """The regular runs' Run Order table as the CSV formatter writes it (stats_calculator.cc):
    ``type, first, avg, %, cdf%, mem KB, times called, name``, commas of names turned into tabs."""
    lines = [
        "Operator-wise Profiling Info for Regular Benchmark Runs:",
        "============================== Run Order ==============================",
        "node type, first, avg_ms, %, cdf%, mem KB, times called, name",
    ]
    for op in ops:
        lines.append(
            f"{op.node_type}, {op.first_ms}, {op.avg_ms}, 1.0%, 1.0%, 0, {op.times_called}, "
            f"{op.name.replace(',', chr(9))}"
        )
    return "\n".join(lines + ["", "Number of nodes executed: 2"]) + "\n"


def test_csv_rows_are_read_from_the_right():
    text_ops = parse_op_table((LOGS / "efficientdet_lite0_x86_xnnpack_op_rows.txt").read_text().splitlines())
    ops = parse_op_csv(_csv_of(text_ops))
    assert [(o.node_type, o.avg_ms, o.times_called) for o in ops] == [
        (o.node_type, o.avg_ms, o.times_called) for o in text_ops
    ]
    assert ops[1].node_type == "Convolution (NHWC, QC8) IGEMM"  # the commas of a type kept


def test_proto_profile_in_run_order():
    from ai_edge_litert import profiling_info_pb2 as pb

    ref = read_log(RISCV).ops
    msg = pb.BenchmarkProfilingData(model_name="mobilenet_v1")
    sg = msg.runtime_profile.subgraph_profiles.add(subgraph_name="main", subgraph_index=0)
    for op in reversed(ref):
        row = sg.per_op_profiles.add(node_type=op.node_type, name=op.name, times_called=1, run_order=op.order)
        row.inference_microseconds.avg = int(round(op.avg_ms * 1000))
        row.inference_microseconds.first = int(round(op.first_ms * 1000))
    ops = parse_op_proto(msg.SerializeToString())
    assert [o.name for o in ops] == [o.name for o in ref]
    assert sum(o.run_ms for o in ops) == pytest.approx(sum(o.run_ms for o in ref), abs=0.05)
    with pytest.raises(BenchmarkLogError, match="not a BenchmarkProfilingData"):
        parse_op_proto(b"\xff\xff\xff garbage")


def test_a_damaged_op_row_names_its_line():
    lines = RISCV.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if "Conv2d_3_depthwise" in line)
    lines[i] = lines[i].split("\t")[0] + "\tgarbled"
    with pytest.raises(BenchmarkLogError, match=f"x.log: line {i + 1}: not an op row"):
        parse_log("\n".join(lines), "x.log")


def test_import_logs_stores_repeats_raw_text_and_ops_once(tmp_path):
    from hwlat.archs import get_arch
    from hwlat.profiler.storage.benchmark_log import import_logs
    from hwlat.profiler.storage.store import Store

    arch = get_arch("mobilenetv3_small_050", resolution=96)
    db = tmp_path / "s.db"
    second = tmp_path / "run2.txt"
    second.write_text(
        RISCV.read_text()
        .replace("avg=2.95034e+06", "avg=2.96e+06")
        .replace("Inference (avg): 2.95034e+06", "Inference (avg): 2.96e+06")
    )
    assert import_logs([RISCV, second], arch, "riscv-qemu", db) == (2, 0)
    assert import_logs([second, RISCV], arch, "riscv-qemu", db) == (0, 2)  # again: nothing added
    with Store(db) as st:
        df = st.frame(repeats=True)
        assert sorted(df["repeat"]) == [0, 1] and sorted(df.median_ms) == pytest.approx([2950.34, 2960.0])
        fp = st.devices().iloc[0]
        assert fp.device == "riscv-qemu (imported)" and fp.runtime == "benchmark_model" and fp.threads == 4
        assert len(st.outputs()) == 2 and st.outputs().text.iloc[0] == RISCV.read_text()
        ops = st.op_times()
        assert len(ops) == 62 and ops.groupby("repeat").run_ms.sum().round(1).tolist() == [2949.9, 2949.9]


def test_import_logs_of_a_file_without_timings_stores_nothing(tmp_path):
    from hwlat.archs import get_arch
    from hwlat.profiler.storage.benchmark_log import import_logs

    bad = tmp_path / "bad.txt"
    bad.write_text("STARTING!\nERROR: Failed to allocate tensors\n")
    with pytest.raises(BenchmarkLogError, match="bad.txt: no timings"):
        import_logs([RISCV, bad], get_arch("mobilenetv3_small_050", resolution=96), "p", tmp_path / "s.db")
    assert not (tmp_path / "s.db").exists()
