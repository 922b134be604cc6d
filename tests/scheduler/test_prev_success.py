"""`prev_data_interval_start_success`, `prev_data_interval_end_success` and `prev_start_date_success`:
of the latest successful run before the try's own, read when the try uses them; through the scheduler
and `dags test`."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_runs, dag_source, run_to_end

DAG_FILE = textwrap.dedent(
    """
    def show(prev_data_interval_end_success, prev_start_date_success, **_):
        print("python", prev_data_interval_end_success, bool(prev_start_date_success))

    with DAG(
        "prev",
        schedule="@daily",
        start_date=START,
        end_date=datetime(2024, 1, 3, tzinfo=timezone.utc),
        max_active_runs=1,
        catchup=True,
    ):
        BashOperator(
            task_id="bash",
            bash_command="echo prev={{ prev_data_interval_start_success }}/"
            "{{ prev_data_interval_end_success }} "
            "started={{ prev_start_date_success.year if prev_start_date_success else 'never' }}",
        )
        PythonOperator(task_id="py", python_callable=show)
    """
)
EXPECTED = [
    ("prev=None/None started=never", "python None False"),
    (
        "prev=2024-01-01 00:00:00+00:00/2024-01-02 00:00:00+00:00 started=20",
        "python 2024-01-02 00:00:00+00:00 True",
    ),
    (
        "prev=2024-01-02 00:00:00+00:00/2024-01-03 00:00:00+00:00 started=20",
        "python 2024-01-03 00:00:00+00:00 True",
    ),
]


def _lines(env: Env) -> list[tuple[str, str]]:
    found = []
    for run in dag_runs("prev"):
        bash = env.run_cli("tasks", "logs", "prev", run.run_id, "bash").stdout
        py = env.run_cli("tasks", "logs", "prev", run.run_id, "py").stdout
        [bash_line] = [line for line in bash.splitlines() if line.startswith("prev=")]
        [py_line] = [line[line.index("python ") :] for line in py.splitlines() if "python " in line]
        found.append((bash_line, py_line))
    return found


def _check(env: Env) -> None:
    for (bash, py), (want_bash, want_py) in zip(_lines(env), EXPECTED, strict=True):
        assert bash.startswith(want_bash)  # then the year the previous run started: today's
        assert py == want_py


def test_dags_test_sees_the_previous_successful_run(env: Env) -> None:
    env.write_dag("prev.py", _source())
    for day in ("2024-01-02", "2024-01-03", "2024-01-04"):  # manual runs: intervals end at these
        result = env.run_process("dags", "test", "prev", day)
        assert result.returncode == 0, result.stderr
    _check(env)


@pytest.mark.slow
def test_the_scheduler_gives_each_run_the_one_before_it(env: Env, procs: Procs) -> None:
    env.write_dag("prev.py", _source())
    runs = run_to_end(procs, "prev", count=3)
    assert [run.state for run in runs] == ["success"] * 3
    _check(env)


def _source() -> str:
    return dag_source(DAG_FILE)
