"""The benchmark scripts keep working: `python -m benchmarks --quick` exits 0 and prints every figure.

No timing is asserted here (timings belong in benchmarks/RESULTS.md, not in tests). The one target
checked is a count: the scheduler loop issues the same number of SQL statements whatever the number of
ready task instances and active runs (issue 6, "SQL per loop").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FIGURES = [
    # in-run baselines, and the figures stated as ratios to them (issue 15)
    "baseline.python_floor",
    "baseline.pool_round_trip",
    "baseline.pool_rate",
    "vs_baseline.scheduler.parallel.large.pool_share",
    "vs_baseline.latency.chain.hop_round_trips",
    "vs_baseline.startup.help",
    # 1. throughput
    *(
        f"scheduler.{shape}.{size}.{what}"
        for shape in ("parallel", "chain")
        for size in ("small", "large")
        for what in ("tasks_per_s", "ms_per_task", "trigger_to_first_start", "run_tasks_per_s")
    ),
    "scheduler.values.large.throughput_ratio",
    *(
        f"dags_test.{shape}.{size}.{what}"
        for shape in ("parallel", "chain")
        for size in ("small", "large")
        for what in ("wall_s", "wall_tasks_per_s", "inproc_tasks_per_s", "inproc_ms_per_task")
    ),
    "dags_test.parallel.marginal_wall_ms_per_task",
    "dags_test.chain.marginal_wall_ms_per_task",
    # 8. web server
    "webserver.dag_list.ms",
    "webserver.dag_list.statements",
    "webserver.grid.ms",
    "webserver.grid.statements",
    "webserver.api_dags.rps",
    "webserver.api_dags.rps_per_cpu_s",
    "webserver.api_version.rps",
    "webserver.api_version.rps_per_cpu_s",
    "webserver.api_dags.vs_version",
    "webserver.api_dags.paced_rps",
    "webserver.api_dags.paced_p99_ms",
    "webserver.load_client.cpu_ms_per_request",
    # 10. scheduler under API load
    "api_load.scheduler_alone.tasks_per_s",
    "api_load.scheduler_loaded.tasks_per_s",
    "api_load.slowdown",
    "api_load.api_dags.rps",
    "api_load.api_dags.p50_ms",
    "api_load.api_dags.p99_ms",
    "api_load.api_server.cores",
    "api_load.api_dags.rps_during_run",
    "api_load.load_client.cpu_ms_per_request",
    "api_load.cores.alone",
    "api_load.cores.loaded",
    # 2. SQL per loop
    *(
        f"sql_per_loop.{mode}.{case}"
        for mode in ("steady", "periodic")
        for case in (
            "few_ready_one_run",
            "many_ready_one_run",
            "many_ready_many_runs",
            "many_ready_values",
            "values_extra",
            "spread",
        )
    ),
    # 3. commits
    "commits.local.per_task",
    "commits.local.statements_per_task",
    "commits.dags_test.per_task",
    "commits.dags_test.statements_per_task",
    # 4. start-up
    "startup.python_floor",
    "startup.help",
    "startup.version",
    "startup.initdb",
    # 5. parsing
    "parsing.first.seconds",
    "parsing.first.imports",
    "parsing.first.writes",
    "parsing.reload.seconds",
    "parsing.reload.imports",
    "parsing.reload.writes",
    "parsing.reload.statements",
    "parsing.reload_vs_first",
    "parsing.dags_list.seconds",
    # 6. memory
    "memory.scheduler_peak_rss",
    "memory.scheduler_rss_after_load",
    "memory.tree_peak_pss",
    "memory.folder_load_seconds",
    # 7. latency
    "latency.chains.edge_median",
    "latency.chains.edge_p99",
    "latency.chains.slot_adjusted_median",
    "latency.chains.slot_adjusted_p99",
    "latency.chains.start_gap_median",
    "latency.chain.edge_median",
    "latency.chain.edge_p99",
    "latency.chain.pool_round_trip",
    "latency.chain.hop_round_trips_per_run",
]


#: Timing figures and the in-run baseline each must also be given as a ratio to.
BASELINE_RATIOS = {
    "scheduler.parallel.large.tasks_per_s": "% of pool rate",
    "latency.chain.edge_median": "round trips (interleaved)",
    "dags_test.parallel.small.wall_s": "x python -c pass",
    "startup.help": "x python -c pass",
}


def _run_benchmarks(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINISCHED_")}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # well under a minute on a quiet machine, minutes on a loaded one: only stops a hang
        check=False,
    )


def _table_rows(stdout: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 6:
            rows[cells[1]] = cells
    return rows


@pytest.mark.slow
def test_quick_benchmarks_run_and_print_every_figure() -> None:
    results_md = REPO / "benchmarks" / "RESULTS.md"
    before = results_md.stat().st_mtime_ns if results_md.exists() else None
    done = _run_benchmarks()
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"
    rows = _table_rows(done.stdout)
    missing = [name for name in FIGURES if name not in rows]
    assert not missing, f"figures missing from the table: {missing}\n{done.stdout[-3000:]}"
    unmeasured = [name for name in FIGURES if rows[name][2] == "n/a"]
    assert not unmeasured, f"figures without a value: {unmeasured}"
    for name, baseline in BASELINE_RATIOS.items():
        assert baseline in rows[name][8], f"{name} is not given as a ratio to {baseline!r}: {rows[name]}"
    after = results_md.stat().st_mtime_ns if results_md.exists() else None
    assert before == after, "--quick must not rewrite benchmarks/RESULTS.md"


@pytest.mark.slow
def test_sql_statements_per_scheduler_loop_do_not_grow_with_ready_tasks_or_runs() -> None:
    done = _run_benchmarks("--only", "sql_per_loop")
    assert done.returncode == 0, done.stderr[-5000:]
    rows = _table_rows(done.stdout)
    for mode in ("steady", "periodic"):
        counts = {
            case: rows[f"sql_per_loop.{mode}.{case}"][2]
            for case in ("few_ready_one_run", "many_ready_one_run", "many_ready_many_runs")
        }
        assert len(set(counts.values())) == 1, f"{mode} loop statement counts differ: {counts}"
        assert float(rows[f"sql_per_loop.{mode}.values_extra"][2]) <= 1, rows[
            f"sql_per_loop.{mode}.values_extra"
        ]


@pytest.mark.slow
def test_airflow_side_by_side_reports_speedups_against_the_airflow_command(tmp_path: Path) -> None:
    """The side-by-side plumbing, with a stand-in `airflow` that does nothing (no Airflow install)."""
    airflow = tmp_path / "venv" / "bin" / "airflow"
    airflow.parent.mkdir(parents=True)
    airflow.write_text("#!/bin/sh\nexit 0\n")
    airflow.chmod(0o755)
    done = _run_benchmarks(
        "--only", "airflow", extra_env={"MINISCHED_BENCH_AIRFLOW_VENV": str(airflow.parent.parent)}
    )
    assert done.returncode == 0, done.stderr[-5000:]
    rows = _table_rows(done.stdout)
    for name in (
        "vs_airflow.help.speedup",
        "vs_airflow.dags_test.parallel.10.speedup",
        "vs_airflow.dags_test.chain.10.speedup",
    ):
        assert name in rows, f"{name} missing:\n{done.stdout[-3000:]}"
        assert float(rows[name][2]) > 0, rows[name]
        assert rows[name][4] in (">= 5", ">= 15"), rows[name]
