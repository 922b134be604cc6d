"""DAG-level `on_success_callback` / `on_failure_callback`: called once when a run ends, with the
run's context, by a process other than the scheduler; a request outlives a scheduler that dies."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_runs, dag_source, run_to_end, wait_until


def callbacks_dag(calls: Path) -> str:
    """`good` succeeds and `bad` fails; both report their DAG callbacks to `calls`."""
    return dag_source(
        textwrap.dedent(
            f"""
            from minisched import dag as dag_decorator

            def report(context):
                run = context["dag_run"]
                with open({str(calls)!r}, "a") as out:
                    out.write(
                        f"{{run.dag_id}} {{run.run_id}} reason={{context['reason']}} state={{run.state}} "
                        f"ds={{context['ds']}} pid={{os.getpid()}}\\n"
                    )

            def broken(context):
                raise RuntimeError("the DAG callback broke")

            with DAG("good", schedule=None, start_date=START, on_success_callback=[broken, report],
                     on_failure_callback=report):
                BashOperator(task_id="fine", bash_command="true")

            @dag_decorator(schedule=None, start_date=START, on_failure_callback=report,
                           on_success_callback=report)
            def bad():
                BashOperator(task_id="fails", bash_command="exit 3")

            bad()
            """
        )
    )


def _calls(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def _requests_left() -> int:
    from minisched.db.session import create_session
    from minisched.models import DagCallbackRequest

    with create_session() as session:
        return int(session.scalar(select(func.count()).select_from(DagCallbackRequest)) or 0)


def _trigger(env: Env, dag_id: str) -> None:
    result = env.run_cli("dags", "trigger", dag_id, "--logical-date", "2024-03-01")
    assert result.exit_code == 0, result.output


def test_the_scheduler_has_another_process_call_them_once(env: Env, procs: Procs, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    env.write_dag("callbacks.py", callbacks_dag(calls))
    assert env.run_cli("dags", "list").exit_code == 0
    _trigger(env, "good")
    _trigger(env, "bad")
    scheduler = procs.scheduler()
    wait_until(lambda: len(_calls(calls)) == 2 and _requests_left() == 0, message="both DAG callbacks")
    scheduler.stop()
    scheduler.assert_clean_exit()
    run_id = "manual__2024-03-01T00:00:00+00:00"
    assert sorted(line.rsplit(" pid=", 1)[0] for line in _calls(calls)) == [
        f"bad {run_id} reason=task_failure state=failed ds=2024-03-01",
        f"good {run_id} reason=success state=success ds=2024-03-01",
    ]
    assert {line.rsplit("pid=", 1)[1] for line in _calls(calls)} != {str(scheduler.pid)}
    callback_log = (env.logs_folder / "dag_callbacks.log").read_text()
    assert "on_success_callback broken of DAG 'good', run" in callback_log
    assert "RuntimeError: the DAG callback broke" in callback_log
    assert [run.state for run in dag_runs("good")] == ["success"]  # the broken callback changed nothing
    assert [run.state for run in dag_runs("bad")] == ["failed"]


def test_a_request_left_behind_is_called_by_the_next_scheduler(
    env: Env, procs: Procs, tmp_path: Path
) -> None:
    from minisched.db.session import create_session
    from minisched.models import DagCallbackRequest

    calls = tmp_path / "calls.txt"
    env.write_dag("callbacks.py", callbacks_dag(calls))
    assert env.run_cli("dags", "list").exit_code == 0
    _trigger(env, "bad")
    [run] = run_to_end(procs, "bad")
    wait_until(lambda: _requests_left() == 0, message="the first call")
    assert len(_calls(calls)) == 1
    # As if the callback process had been killed mid-call long ago: its claim is stale.
    with create_session() as session:
        session.execute(
            insert(DagCallbackRequest).values(
                dag_id="bad",
                run_id=run.run_id,
                kind="failure",
                reason="task_failure",
                created_at=datetime.now(UTC) - timedelta(hours=1),
                claimed_at=datetime.now(UTC) - timedelta(hours=1),
                claimed_by="gone:1",
            )
        )
    scheduler = procs.scheduler()
    wait_until(lambda: _requests_left() == 0, message="the request left behind")
    wait_until(lambda: len(_calls(calls)) == 2, message="the second call")
    scheduler.stop()
    scheduler.assert_clean_exit()


def test_dags_test_calls_them_before_it_returns(env: Env, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    env.write_dag("callbacks.py", callbacks_dag(calls))
    good = env.run_process("dags", "test", "good", "2024-03-01")
    assert good.returncode == 0, good.stderr
    bad = env.run_process("dags", "test", "bad", "2024-03-01")
    assert bad.returncode == 1, bad.stderr
    run_id = "manual__2024-03-01T00:00:00+00:00"
    assert [line.rsplit(" pid=", 1)[0] for line in _calls(calls)] == [
        f"good {run_id} reason=success state=success ds=2024-03-01",
        f"bad {run_id} reason=task_failure state=failed ds=2024-03-01",
    ]
    assert "RuntimeError: the DAG callback broke" in good.stderr
    assert _requests_left() == 0
