from __future__ import annotations

from pathlib import Path

import pytest

from trademaster.launchers.perf_analyzer import (
    PerfAnalyzerError,
    PerfRow,
    parse_perf_csv,
    perf_analyzer_command,
)
from trademaster.launchers.tools import ServingTools

# Written by perf_analyzer 2.50 with `-f report.csv --verbose-csv` against this project's server.
REPORT = """\
Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,\
Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,\
p90 latency,p95 latency,p99 latency,Avg latency,request/response,response wait
1,1016.06,2,99,609,11,137,118,0,902,1028,1125,2616,980,2,968
2,1852.23,2,223,553,16,164,115,0,1028,1209,1278,2359,1076,2,1067
"""


def test_parse_perf_csv(tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_text(REPORT)

    rows = parse_perf_csv(report)

    assert rows[0] == PerfRow(
        concurrency=1,
        inferences_per_s=1016.06,
        p50_latency_us=902,
        p90_latency_us=1028,
        p95_latency_us=1125,
        p99_latency_us=2616,
        avg_latency_us=980,
        server_queue_us=609,
        server_compute_input_us=11,
        server_compute_infer_us=137,
        server_compute_output_us=118,
    )
    assert [row.concurrency for row in rows] == [1, 2]


def test_parse_perf_csv_returns_sweep_order_whatever_the_report_order(tmp_path: Path) -> None:
    header, first, second = REPORT.strip().split("\n")
    report = tmp_path / "report.csv"
    report.write_text(f"{header}\n{second}\n{first}\n")

    rows = parse_perf_csv(report)

    assert [(row.concurrency, row.inferences_per_s) for row in rows] == [(1, 1016.06), (2, 1852.23)]


def test_parse_perf_csv_without_server_columns(tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_text(
        "Concurrency,Inferences/Second,p50 latency,p90 latency,p95 latency,p99 latency\n"
        "4,100.5,10,20,30,40\n"
    )

    (row,) = parse_perf_csv(report)

    assert row.inferences_per_s == 100.5
    assert row.server_queue_us is None


def test_parse_perf_csv_rejects_missing_latency(tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_text("Concurrency,Inferences/Second\n1,10\n")

    with pytest.raises(PerfAnalyzerError, match="p50 latency"):
        parse_perf_csv(report)


def test_command_has_model_url_range_and_shapes(tmp_path: Path) -> None:
    tools = ServingTools.from_project_root(tmp_path)

    cmd = perf_analyzer_command(
        tools,
        "mlp",
        "127.0.0.1:9001",
        tmp_path / "r.csv",
        protocol="http",
        concurrency_range=(1, 8, 2),
        batch_size=4,
        input_data=tmp_path / "data.json",
        shapes={"tokens": [32]},
        extra_args=["--async"],
    )

    assert cmd[0] == str(tools.perf_analyzer)
    joined = " ".join(cmd)
    for expected in (
        "-m mlp",
        "-u 127.0.0.1:9001",
        "-i http",
        "-b 4",
        "--concurrency-range 1:8:2",
        f"-f {tmp_path / 'r.csv'}",
        f"--input-data {tmp_path / 'data.json'}",
        "--shape tokens:32",
    ):
        assert expected in joined
    assert cmd[-1] == "--async"


def test_command_rejects_bad_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="concurrency_range"):
        perf_analyzer_command(
            ServingTools.from_project_root(tmp_path), "m", "u", tmp_path, concurrency_range=(1,)
        )
