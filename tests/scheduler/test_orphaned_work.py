"""Work left behind by a SIGKILLed process: nothing it started keeps running or stays claimed.

They do not depend on the database, so they run on SQLite only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, Env
from tests.scheduler.helpers import Procs, dag_source, finished_runs, task_instances, wait_until


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param != "sqlite":
        pytest.skip("the behaviour under test does not depend on the database; checked on SQLite")
    return str(request.param)


def test_tries_of_a_killed_backfill_are_recovered_by_the_scheduler(env: Env, procs: Procs) -> None:
    env.write_dag(
        "bf.py",
        dag_source(
            textwrap.dedent(
                """
                FIRST = Path(__file__).with_suffix(".first-try")

                def slow_first_try():
                    # The first try outlives its killed backfill; only a retry may succeed.
                    if not FIRST.exists():
                        FIRST.touch()
                        time.sleep(120)

                with DAG("bf", schedule="@daily", start_date=START, end_date=START, catchup=False,
                         default_args={"retries": 1, "retry_delay": timedelta(0)}):
                    PythonOperator(task_id="slow", python_callable=slow_first_try)
                """
            )
        ),
    )
    backfill = procs.start("dags", "backfill", "bf", "--start-date", "2024-01-01", "--end-date", "2024-01-01")
    # Its task code has begun (a try whose task never began would go back to scheduled, uncounted).
    first_try = env.dags_folder / "bf.first-try"
    wait_until(first_try.exists, message="the backfill's first try to begin its task")
    os.kill(backfill.pid, signal.SIGKILL)
    backfill.wait()

    procs.scheduler(extra_env={"MINISCHED_ZOMBIE_THRESHOLD": "5"})
    [run] = wait_until(lambda: finished_runs("bf"), timeout=90, message="the backfill run to end")
    assert run.state == "success"
    [ti] = task_instances("bf")
    assert (ti.state, ti.try_number) == ("success", 2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def test_bash_command_dies_with_a_killed_scheduler(env: Env, procs: Procs, tmp_path: Path) -> None:
    pidfile, tmp = tmp_path / "bash.pid", tmp_path / "bash.tmp"
    env.write_dag(
        "long_bash.py",
        dag_source(
            textwrap.dedent(
                f"""
                COMMAND = "echo $$ > {tmp} && mv {tmp} {pidfile}; sleep 30"
                with DAG("long_bash", schedule="@once", start_date=START):
                    BashOperator(task_id="long", bash_command=COMMAND)
                """
            )
        ),
    )
    scheduler = procs.scheduler()
    wait_until(pidfile.is_file, message="the command to start")
    pgid = int(pidfile.read_text())
    try:
        os.kill(scheduler.pid, signal.SIGKILL)
        scheduler.wait()
        wait_until(
            lambda: not _group_alive(pgid), timeout=10, message="the command's process group to be gone"
        )
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
