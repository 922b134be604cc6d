"""Run-level rules through a real scheduler: catchup=False, max_active_runs, depends_on_past, pausing."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from tests.conftest import Env
from tests.scheduler.helpers import (
    Procs,
    dag_runs,
    dag_source,
    floor_hour,
    run_scheduler_until,
    ti_states,
    wait_until,
)


def test_catchup_false_creates_only_the_latest_complete_interval(env: Env, procs: Procs) -> None:
    env.write_dag(
        "latest.py",
        dag_source(
            'with DAG("latest", schedule="@hourly", start_date=START, catchup=False):\n'
            '    BashOperator(task_id="t", bash_command="true")\n'
        ),
    )
    run_scheduler_until(procs, lambda: [r for r in dag_runs("latest") if r.state == "success"], num_runs=20)
    runs = dag_runs("latest")
    latest_start = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    assert len(runs) == 1
    # The hour may have turned while the test ran: the run is one of the last two complete hours.
    assert runs[0].logical_date in {latest_start, latest_start - timedelta(hours=1)}
    assert runs[0].data_interval_end == runs[0].logical_date + timedelta(hours=1)


def test_max_active_runs_holds_back_runs_and_depends_on_past_orders_them(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    spans = tmp_path / "spans.txt"
    first = floor_hour(datetime.now(UTC)) - timedelta(hours=4)
    env.write_dag(
        "serial.py",
        dag_source(
            textwrap.dedent(
                f"""
                FIRST = datetime.fromisoformat({first.isoformat()!r})

                def work(logical_date):
                    began = time.time()
                    time.sleep(0.3)
                    with open({str(spans)!r}, "a") as out:
                        out.write(f"{{logical_date.isoformat()}} {{began}} {{time.time()}}\\n")

                with DAG("serial", schedule="@hourly", start_date=FIRST, end_date=FIRST + timedelta(hours=3),
                         catchup=True, max_active_runs=1):
                    PythonOperator(task_id="work", python_callable=work, depends_on_past=True)
                """
            )
        ),
    )
    proc = procs.scheduler()
    peak = 0

    def all_done() -> bool:
        nonlocal peak
        runs = dag_runs("serial")
        peak = max(peak, sum(run.state == "running" for run in runs))
        return len(runs) == 4 and all(run.state == "success" for run in runs)

    wait_until(all_done, interval=0.02, message="4 serial runs")
    proc.stop()
    proc.assert_clean_exit()
    assert peak <= 1
    lines = [line.split() for line in spans.read_text().splitlines()]
    assert [line[0] for line in lines] == [(first + timedelta(hours=h)).isoformat() for h in range(4)]
    for earlier, later in pairwise(lines):
        assert float(later[1]) >= float(earlier[2])  # never overlapping, in logical-date order


def test_paused_dag_gets_no_runs_until_unpaused(env: Env, procs: Procs) -> None:
    env.write_dag(
        "paused.py",
        dag_source(
            'with DAG("paused", schedule="@hourly", start_date=START, catchup=False):\n'
            '    BashOperator(task_id="t", bash_command="true")\n'
        ),
    )
    assert env.run_cli("dags", "pause", "paused").exit_code == 0
    triggered = env.run_cli("dags", "trigger", "paused")
    assert triggered.exit_code == 0, triggered.output
    procs.scheduler("--num-runs", "20").wait()
    runs = dag_runs("paused")
    assert [(run.run_type, run.state) for run in runs] == [("manual", "queued")]
    assert env.run_cli("dags", "unpause", "paused").exit_code == 0
    run_scheduler_until(
        procs, lambda: len(dag_runs("paused")) == 2 and all(r.state == "success" for r in dag_runs("paused"))
    )
    assert {ti_states("paused", run.run_id)["t"] for run in dag_runs("paused")} == {"success"}


def test_depends_on_past_runs_wait_for_each_other_without_max_active_runs(env: Env, procs: Procs) -> None:
    first = floor_hour(datetime.now(UTC)) - timedelta(hours=3)
    env.write_dag(
        "chained.py",
        dag_source(
            textwrap.dedent(
                f"""
                FIRST = datetime.fromisoformat({first.isoformat()!r})
                with DAG("chained", schedule="@hourly", start_date=FIRST, end_date=FIRST + timedelta(hours=2),
                         catchup=True):
                    PythonOperator(task_id="work", python_callable=lambda: time.sleep(0.3),
                                   depends_on_past=True)
                """
            )
        ),
    )
    run_scheduler_until(
        procs,
        lambda: len(dag_runs("chained")) == 3 and all(r.state != "running" for r in dag_runs("chained")),
    )
    assert [run.state for run in dag_runs("chained")] == ["success"] * 3


def test_tasks_of_a_missing_or_too_small_pool_do_not_starve_the_others(env: Env, procs: Procs) -> None:
    env.write_dag(
        "pools.py",
        dag_source(
            'with DAG("pools", schedule=None, max_active_tasks=64):\n'
            "    for i in range(40):\n"
            '        BashOperator(task_id=f"lost{i}", bash_command="true", pool="nope",'
            " priority_weight=100)\n"
            '    BashOperator(task_id="huge", bash_command="true", pool_slots=500, priority_weight=100)\n'
            '    BashOperator(task_id="fine", bash_command="true", priority_weight=1)\n'
        ),
    )
    assert env.run_cli("dags", "trigger", "pools", "--dags-folder", str(env.dags_folder)).exit_code == 0
    proc = procs.scheduler()
    wait_until(lambda: ti_states("pools").get("fine") == "success", message="the default-pool task to run")
    # The sweep (every 2 s) says why the others stay scheduled.
    wait_until(lambda: "pool 'nope' does not exist" in proc.output(), message="the missing-pool warning")
    wait_until(
        lambda: "needs 500 slots of pool 'default_pool'" in proc.output(), message="the pool-size warning"
    )
    proc.stop()
    states = ti_states("pools")
    assert {states[f"lost{i}"] for i in range(40)} == {"scheduled"} and states["huge"] == "scheduled"
