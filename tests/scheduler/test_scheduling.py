"""The scheduler as a real process: catchup, retries, trigger rules and skip propagation."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import Env
from tests.scheduler.helpers import (
    Procs,
    dag_runs,
    dag_source,
    finished_runs,
    floor_hour,
    log_rows,
    run_scheduler_until,
    run_to_end,
    task_instances,
    ti_states,
    wait_until,
)


def test_hourly_catchup_creates_each_missed_interval_once(env: Env, procs: Procs) -> None:
    # Five complete hours before the current one; end_date keeps it at five even if the hour turns
    # while the test runs (the interval starting at end_date is the last one).
    start = floor_hour(datetime.now(UTC)) - timedelta(hours=5)
    env.write_dag(
        "hourly.py",
        dag_source(
            textwrap.dedent(
                f"""
                FIRST = datetime.fromisoformat({start.isoformat()!r})
                with DAG("hourly", schedule="@hourly", start_date=FIRST, end_date=FIRST + timedelta(hours=4),
                         catchup=True, max_active_runs=16):
                    BashOperator(task_id="echo", bash_command="echo interval=$MINISCHED_DATA_INTERVAL_START")
                """
            )
        ),
    )

    def five_done() -> bool:
        runs = dag_runs("hourly")
        return len(runs) >= 5 and all(run.state == "success" for run in runs)

    run_scheduler_until(procs, five_done, num_runs=30)

    runs = dag_runs("hourly")
    expected = [start + timedelta(hours=hour) for hour in range(5)]
    assert [run.logical_date for run in runs] == expected
    for run, logical_date in zip(runs, expected, strict=True):
        assert run.run_id == f"scheduled__{logical_date.isoformat()}"
        assert run.run_type == "scheduled"
        assert run.state == "success"
        assert run.data_interval_start == logical_date
        assert run.data_interval_end == logical_date + timedelta(hours=1)
        assert run.start_date is not None and run.end_date is not None and run.end_date >= run.start_date
    assert {ti.state for ti in task_instances("hourly")} == {"success"}
    assert len(task_instances("hourly")) == 5
    # The task saw its own run's interval.
    first = runs[0]
    log = env.logs_folder / "dag_id=hourly" / f"run_id={first.run_id}" / "task_id=echo" / "attempt=1.log"
    assert "interval=" + start.isoformat() in log.read_text()


def test_failed_tries_are_retried_until_success(env: Env, procs: Procs, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts.txt"
    env.write_dag(
        "flaky.py",
        dag_source(
            textwrap.dedent(
                f"""
                def flaky(try_number):
                    with open({str(attempts)!r}, "a") as out:
                        out.write(f"{{try_number}}\\n")
                    print(f"this is try {{try_number}}")
                    if try_number < 3:
                        raise RuntimeError(f"flaky failure on try {{try_number}}")

                with DAG("flaky", schedule="@once", start_date=START):
                    PythonOperator(task_id="flaky", python_callable=flaky, retries=2,
                                   retry_delay=timedelta(0))
                """
            )
        ),
    )

    [run] = run_to_end(procs, "flaky")

    assert run.state == "success"
    [ti] = task_instances("flaky")
    assert (ti.state, ti.try_number, ti.max_tries) == ("success", 3, 2)
    assert attempts.read_text().split() == ["1", "2", "3"]
    folder = env.logs_folder / "dag_id=flaky" / f"run_id={run.run_id}" / "task_id=flaky"
    assert sorted(path.name for path in folder.glob("*.log")) == [
        "attempt=1.log",
        "attempt=2.log",
        "attempt=3.log",
    ]
    for number in (1, 2):
        text = (folder / f"attempt={number}.log").read_text()
        assert f"this is try {number}" in text
        assert f"RuntimeError: flaky failure on try {number}" in text  # the traceback is in the try's log
    assert "this is try 3" in (folder / "attempt=3.log").read_text()
    events = [(row.event, row.try_number) for row in log_rows("flaky", task_id="flaky")]
    retries = [(event, number) for event, number in events if event == "up_for_retry"]
    assert retries == [("up_for_retry", 1), ("up_for_retry", 2)]
    assert [event for event, _ in events].count("success") == 1
    assert events[-1] == ("success", 3)
    assert [number for event, number in events if event == "running"] == [1, 2, 3]
    failed_events = [row for row in log_rows("flaky", event="up_for_retry")]
    assert "flaky failure on try 1" in (failed_events[0].extra or "")


TRIGGER_RULE_EXPECTATIONS = {
    # Airflow 2 with one successful and one failed direct upstream.
    "all_success": "upstream_failed",
    "all_failed": "skipped",
    "all_done": "success",
    "one_success": "success",
    "one_failed": "success",
    "none_failed": "upstream_failed",
    "always": "success",
}


def test_trigger_rules_skips_and_run_state(env: Env, procs: Procs) -> None:
    env.write_dag(
        "rules.py",
        dag_source(
            textwrap.dedent(
                f"""
                def noop():
                    pass

                def fail():
                    raise ValueError("bad branch")

                def skip():
                    raise SkipTask("nothing to do")

                with DAG("rules", schedule="@once", start_date=START):
                    ok = PythonOperator(task_id="ok", python_callable=noop)
                    bad = PythonOperator(task_id="bad", python_callable=fail)
                    by_rule = {{}}
                    for rule in {list(TRIGGER_RULE_EXPECTATIONS)!r}:
                        by_rule[rule] = PythonOperator(task_id=f"rule_{{rule}}", python_callable=noop,
                                                       trigger_rule=rule)
                        [ok, bad] >> by_rule[rule]
                    # upstream_failed propagates over all_success
                    by_rule["all_success"] >> PythonOperator(task_id="after_upstream_failed",
                                                             python_callable=noop)
                    # skipped propagates over all_success (two hops), not over all_done / none_failed
                    skipper = PythonOperator(task_id="skipper", python_callable=skip)
                    after_skip = PythonOperator(task_id="after_skip", python_callable=noop)
                    skipper >> after_skip >> PythonOperator(task_id="after_after_skip", python_callable=noop)
                    skipper >> PythonOperator(task_id="all_done_after_skip", python_callable=noop,
                                              trigger_rule="all_done")
                    [ok, skipper] >> PythonOperator(task_id="none_failed_after_skip", python_callable=noop,
                                                    trigger_rule="none_failed")
                    # a BashOperator skips itself with exit code 99
                    BashOperator(task_id="bash_skip", bash_command="exit 99") >> PythonOperator(
                        task_id="after_bash_skip", python_callable=noop)
                """
            )
        ),
    )
    # A failure inside the DAG with a leaf that still succeeds: the run succeeds (Airflow 2).
    env.write_dag(
        "cleanup.py",
        dag_source(
            textwrap.dedent(
                """
                def fail():
                    raise ValueError("bad")

                with DAG("cleanup", schedule="@once", start_date=START):
                    PythonOperator(task_id="bad", python_callable=fail) >> BashOperator(
                        task_id="cleanup", bash_command="true", trigger_rule="all_done")
                """
            )
        ),
    )

    proc = procs.scheduler()
    wait_until(lambda: finished_runs("rules") and finished_runs("cleanup"), message="both runs ended")
    assert proc.stop() == 0

    states = ti_states("rules")
    expected = {f"rule_{rule}": state for rule, state in TRIGGER_RULE_EXPECTATIONS.items()}
    expected |= {
        "ok": "success",
        "bad": "failed",
        "after_upstream_failed": "upstream_failed",
        "skipper": "skipped",
        "bash_skip": "skipped",
        "after_skip": "skipped",
        "after_after_skip": "skipped",
        "after_bash_skip": "skipped",
        "all_done_after_skip": "success",
        "none_failed_after_skip": "success",
    }
    assert states == expected
    [run] = dag_runs("rules")
    # failed: leaves rule_all_success, rule_none_failed and after_upstream_failed are upstream_failed
    assert run.state == "failed"
    # Tasks that never ran were decided by the scheduler: no try consumed, an event logged.
    never_ran = {ti.task_id: ti for ti in task_instances("rules") if ti.state in ("upstream_failed",)}
    assert never_ran and all(ti.try_number == 0 for ti in never_ran.values())
    decided = {(row.task_id, row.event) for row in log_rows("rules")}
    assert ("after_upstream_failed", "upstream_failed") in decided
    assert ("after_skip", "skipped") in decided
    assert ti_states("cleanup") == {"bad": "failed", "cleanup": "success"}
    assert dag_runs("cleanup")[0].state == "success"
