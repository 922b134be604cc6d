"""A scheduler iteration issues a bounded number of SQL statements, whatever the number of task
instances or runs it handles: every step is set-based (bulk selects, executemany updates/inserts).

What is compared: SchedulerLoop is driven in-process with the InProcessExecutor (tries run at submit
time, results come back on the next poll) and every periodic step due on every iteration (its intervals
are 0 and the clock it reads jumps ahead between iterations, so nothing depends on how long an
iteration took), so each iteration does the same kinds of work in every setup:

1. start the queued runs, full pass: every `work_*` task None -> scheduled -> queued, tries run;
2. record the results (queued -> running -> success), partial pass: `join` scheduled, queued, run;
3. record `join`, end the runs (success);
4. and 5. idle.

The statements of each iteration (seen by a `before_cursor_execute` listener, so an executemany
counts once) must be the same — same number, same kind and table, in the same order — for 10 vs 1,000
ready task instances in one run, and for one run vs 100 runs, in every iteration.
"""

from __future__ import annotations

import re
import textwrap
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from tests.conftest import Env
from tests.scheduler.helpers import dag_runs, dag_source, task_instances
from tests.sql_statements import recorded_statements

ITERATIONS = 5
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def _shape(statement: str) -> str:
    """`SELECT task_instance`, `UPDATE dag_run`, `BEGIN`: what a statement does, without its parameters."""
    verb = statement.split(None, 1)[0].upper()
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1)}" if table else verb


class _JumpingClock:
    """Stands in for the `time` module of the scheduler's modules: monotonic() jumps 1,000 s per call,
    so every interval-based step (sweeps, recovery, heartbeat, cache re-checks) is due every time."""

    def __init__(self) -> None:
        self._now = time.monotonic()

    def monotonic(self) -> float:
        self._now += 1000.0
        return self._now

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


@pytest.fixture(autouse=True)
def _jumping_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    clock = _JumpingClock()
    for name in ("loop", "dag_cache", "scheduling", "dagruns", "transitions", "recovery", "run_ends"):
        module = importlib.import_module(f"minisched.scheduler.{name}")
        if getattr(module, "time", None) is time:
            monkeypatch.setattr(module, "time", clock)


#: Set while a try runs in-process: what a task's own code reads (e.g. its XCom pulls) is the try's
#: work, not the scheduler's.
_IN_TRY: list[bool] = [False]


def _tries_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from minisched.scheduler.executors import task_runner

    run_try = task_runner.run_try

    def uncounted(*args: Any, **kwargs: Any) -> Any:
        _IN_TRY[0] = True
        try:
            return run_try(*args, **kwargs)
        finally:
            _IN_TRY[0] = False

    monkeypatch.setattr(task_runner, "run_try", uncounted)


def _statements_per_iteration(env: Env, dag_id: str, runs: int) -> list[list[str]]:
    from minisched.db.session import create_session
    from minisched.inputs import parse_datetime
    from minisched.scheduler.executors.inprocess import InProcessExecutor
    from minisched.scheduler.loop import SchedulerLoop, SchedulerOptions
    from minisched.scheduler.manual_runs import trigger_dag

    with create_session() as session:
        for day in range(runs):
            trigger_dag(
                dag_id, session=session, logical_date=parse_datetime("2024-01-01") + timedelta(days=day)
            )
    options = SchedulerOptions(
        logs_folder=env.logs_folder,
        dags_folder=None,
        num_runs=ITERATIONS,
        idle_sleep=0.0,
        heartbeat_interval=0.0,
        refresh_interval=0.0,
        full_sweep_interval=0.0,
        recovery_interval=0.0,
        handle_signals=False,
    )
    with recorded_statements(lambda _statement: not _IN_TRY[0]) as statements:
        marks: list[int] = []
        loop = SchedulerLoop(InProcessExecutor(), options, on_loop=lambda: marks.append(len(statements)))
        assert loop.run() == ITERATIONS
    per_iteration = [
        [_shape(sql) for sql in statements[a:b]] for a, b in zip([0, *marks], marks, strict=False)
    ]
    assert [run.state for run in dag_runs(dag_id)] == ["success"] * runs
    assert {ti.state for ti in task_instances(dag_id)} == {"success"}
    return per_iteration


def test_statements_per_iteration_do_not_grow_with_task_instances_or_runs(env: Env) -> None:
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import create_session
    from minisched.models import Pool

    body = textwrap.dedent(
        """
        def make(dag_id, width, max_active_runs):
            with DAG(dag_id, schedule=None, start_date=START, max_active_runs=max_active_runs,
                     max_active_tasks=10_000):
                join = PythonOperator(task_id="join", python_callable=lambda: None)
                for number in range(width):
                    PythonOperator(task_id=f"work_{number}", python_callable=lambda: None) >> join

        make("narrow", 10, 1)
        make("wide", 1000, 1)
        make("many_runs", 10, 200)
        """
    )
    env.write_dag("counted.py", dag_source(body))
    refresh_dag_folder(env.dags_folder)
    with create_session() as session:
        session.execute(update(Pool).where(Pool.pool == "default_pool").values(slots=100_000))

    narrow = _statements_per_iteration(env, "narrow", runs=1)
    wide = _statements_per_iteration(env, "wide", runs=1)
    many_runs = _statements_per_iteration(env, "many_runs", runs=100)

    assert len(task_instances("wide")) == 1001 and len(task_instances("many_runs")) == 1100
    counts = {
        name: [len(i) for i in shapes]
        for name, shapes in [("narrow", narrow), ("wide", wide), ("many_runs", many_runs)]
    }
    assert counts["narrow"] == counts["wide"] == counts["many_runs"], counts
    assert narrow == wide, "10 vs 1,000 ready task instances: different statements"
    assert narrow == many_runs, "1 vs 100 runs: different statements"
    # The iterations did the work described above, and the constant is small.
    first, second, third, idle = narrow[0], narrow[1], narrow[2], narrow[3]
    assert "UPDATE dag_run" in first and "INSERT log" in first  # runs started, tis queued (+ events)
    assert "UPDATE task_instance" in second and "UPDATE dag_run" not in second
    assert "UPDATE dag_run" in third  # runs ended
    assert "UPDATE task_instance" not in idle and "INSERT log" not in idle
    assert max(len(i) for i in narrow) <= 40, counts


def test_statements_per_iteration_do_not_grow_with_mapped_instances(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expanding a mapped task over 10 or 1,000 items of an upstream's value, running the instances and
    handing their 1,000 values to a downstream take the same statements.

    Iterations: 1. `numbers` queued and run; 2. its value recorded, `square` expanded (placeholder ->
    instance 0, one bulk insert of the others), all queued and run; 3. the instances recorded, `total`
    queued and run; 4. `total` recorded, the run ends; 5. idle.
    """
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import create_session
    from minisched.models import Pool

    body = textwrap.dedent(
        """
        def make(dag_id, width):
            with DAG(dag_id, schedule=None, start_date=START, max_active_tasks=10_000):
                @task
                def numbers():
                    return list(range(width))

                @task
                def square(x):
                    return x * x

                @task
                def total(values):
                    assert len(values) == width
                    return sum(values)

                total(square.expand(x=numbers()))

        make("mapped_narrow", 10)
        make("mapped_wide", 1000)
        """
    )
    _tries_not_counted(monkeypatch)
    env.write_dag("mapped_counted.py", dag_source(body))
    refresh_dag_folder(env.dags_folder)
    with create_session() as session:
        session.execute(update(Pool).where(Pool.pool == "default_pool").values(slots=100_000))

    narrow = _statements_per_iteration(env, "mapped_narrow", runs=1)
    wide = _statements_per_iteration(env, "mapped_wide", runs=1)

    assert len(task_instances("mapped_wide")) == 1002 and len(task_instances("mapped_narrow")) == 12
    assert narrow == wide, "10 vs 1,000 mapped instances: different statements"
    expanding = narrow[1]
    assert "SELECT xcom" in expanding and "INSERT task_instance" in expanding
    assert max(len(i) for i in narrow) <= 45, [len(i) for i in narrow]


def test_values_add_one_insert_per_iteration_whatever_the_number_of_results(env: Env) -> None:
    """Every task returning a value: the XCom rows of an iteration's results go in one INSERT."""
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import create_session
    from minisched.models import Pool

    body = textwrap.dedent(
        """
        def make(dag_id, width, value):
            with DAG(dag_id, schedule=None, start_date=START, max_active_tasks=10_000):
                join = PythonOperator(task_id="join", python_callable=lambda: value)
                for number in range(width):
                    PythonOperator(task_id=f"work_{number}", python_callable=lambda: value) >> join

        make("narrow", 10, None)
        make("narrow_values", 10, {"rows": 1, "status": "ok"})
        make("wide_values", 1000, {"rows": 1, "status": "ok"})
        """
    )
    env.write_dag("counted.py", dag_source(body))
    refresh_dag_folder(env.dags_folder)
    with create_session() as session:
        session.execute(update(Pool).where(Pool.pool == "default_pool").values(slots=100_000))

    narrow = _statements_per_iteration(env, "narrow", runs=1)
    narrow_values = _statements_per_iteration(env, "narrow_values", runs=1)
    wide_values = _statements_per_iteration(env, "wide_values", runs=1)

    assert narrow_values == wide_values, "10 vs 1,000 results with values: different statements"
    inserts = [shapes.count("INSERT xcom") for shapes in wide_values]
    assert inserts == [0, 1, 1, 0, 0], inserts  # the iterations that record results (see above)
    assert [[s for s in shapes if s != "INSERT xcom"] for shapes in wide_values] == narrow
    with create_session() as session:
        stored = session.execute(text("SELECT count(*) FROM xcom WHERE dag_id = 'wide_values'")).scalar()
    assert stored == 1001
