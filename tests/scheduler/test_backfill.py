"""`dags backfill`: the runs of a date range, inclusive and aligned, resumable after Ctrl-C."""

from __future__ import annotations

import signal
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_runs, dag_source, task_instances, wait_until

DAILY = dag_source(
    'with DAG("daily", schedule="@daily", start_date=START, catchup=False):\n'
    '    BashOperator(task_id="t", bash_command="echo $MINISCHED_DS")\n'
)


def test_backfill_runs_every_aligned_date_in_the_range_inclusive(env: Env) -> None:
    env.write_dag("daily.py", DAILY)
    result = env.run_process("dags", "backfill", "daily", "-s", "2024-02-01", "-e", "2024-02-07")
    assert result.returncode == 0, result.stderr
    runs = [run for run in dag_runs("daily") if run.run_type == "backfill"]
    expected = [datetime(2024, 2, day, tzinfo=UTC) for day in range(1, 8)]
    assert [run.logical_date for run in runs] == expected
    assert all(run.state == "success" for run in runs)
    assert [run.run_id for run in runs] == [f"backfill__{day.isoformat()}" for day in expected]
    assert "7/7 runs done, 0 failed" in result.stderr
    ds_logged = env.logs_folder / "dag_id=daily" / f"run_id={runs[0].run_id}" / "task_id=t" / "attempt=1.log"
    assert "2024-02-01" in ds_logged.read_text()


def test_backfill_aligns_to_the_schedule_and_reads_naive_dates_as_utc(env: Env) -> None:
    env.write_dag("daily.py", DAILY)
    result = env.run_process(
        "dags", "backfill", "daily", "-s", "2024-03-01T05:00", "-e", "2024-03-03T00:00", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "backfill__2024-03-02T00:00:00+00:00",
        "backfill__2024-03-03T00:00:00+00:00",
    ]
    assert dag_runs("daily") == []  # a dry run creates nothing


def test_backfill_errors_are_one_line(env: Env) -> None:
    env.write_dag("daily.py", DAILY)
    for args in (
        ["nope", "-s", "2024-01-01", "-e", "2024-01-02"],
        ["daily", "-s", "yesterday", "-e", "2024-01-02"],
        ["daily", "-s", "2024-01-05", "-e", "2024-01-02"],
    ):
        result = env.run_process("dags", "backfill", *args)
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_backfill_resumes_after_ctrl_c_without_rerunning_successful_tries(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    env.write_dag(
        "slow.py",
        dag_source(
            textwrap.dedent(
                f"""
                def work(ds, try_number):
                    time.sleep(0.5)
                    with open({str(marks)!r}, "a") as out:
                        out.write(f"{{ds}} {{try_number}}\\n")

                with DAG("slow", schedule="@daily", start_date=START, max_active_runs=1):
                    PythonOperator(task_id="work", python_callable=work)
                """
            )
        ),
    )
    first = procs.start("dags", "backfill", "slow", "-s", "2024-04-01", "-e", "2024-04-04")
    wait_until(lambda: any(run.state == "success" for run in dag_runs("slow")), message="one backfilled run")
    first.popen.send_signal(signal.SIGINT)
    first.wait()
    assert "Traceback" not in first.output()
    done_before = {run.run_id for run in dag_runs("slow") if run.state == "success"}
    assert done_before and len(done_before) < 4, "the backfill was interrupted before its end"
    assert not [ti for ti in task_instances("slow") if ti.state in ("queued", "running")]

    second = procs.run("dags", "backfill", "slow", "-s", "2024-04-01", "-e", "2024-04-04")
    assert second.popen.returncode == 0, second.output()
    runs = dag_runs("slow")
    assert len(runs) == 4 and all(run.state == "success" for run in runs)
    days = [line.split()[0] for line in marks.read_text().splitlines()]
    assert sorted(set(days)) == ["2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04"]
    for run in runs:
        if run.run_id in done_before:  # succeeded before Ctrl-C: not run again
            assert days.count(run.logical_date.date().isoformat()) == 1
            assert [ti.try_number for ti in task_instances("slow", run.run_id)] == [1]


def test_backfill_and_dags_test_beside_a_running_scheduler_keep_their_runs(env: Env, procs: Procs) -> None:
    env.write_dag("daily.py", DAILY)
    assert env.run_cli("dags", "list").exit_code == 0
    scheduler = procs.scheduler()
    backfill = procs.run("dags", "backfill", "daily", "-s", "2024-05-01", "-e", "2024-05-03")
    assert backfill.popen.returncode == 0, backfill.output()
    tested = procs.run("dags", "test", "daily", "2024-06-01")
    assert tested.popen.returncode == 0, tested.output()
    scheduler.stop()
    scheduler.assert_clean_exit()
    from minisched.db.session import create_session
    from minisched.models import DagRun, Job

    with create_session() as session:
        creators = {
            run.run_type: session.get(Job, run.creating_job_id).job_type if run.creating_job_id else None
            for run in session.query(DagRun).filter(DagRun.run_type != "scheduled")
        }
    assert creators == {"backfill": "backfill", "manual": "dag_test"}
    for run in dag_runs("daily"):
        if run.run_type != "scheduled":
            assert run.state == "success"
    # The dags test ran its task in its own process, not in the scheduler's workers.
    test_run = next(run for run in dag_runs("daily") if run.run_type == "manual")
    [ti] = task_instances("daily", test_run.run_id)
    assert ti.pid == tested.pid
