"""Dynamic task mapping through real DAG files: expanded by the scheduler (and by `dags test`), one
task instance per item, each with its own state, log and XCom; downstreams see every instance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from minisched.db.session import create_session
from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_source, run_to_end

DAG = """
from minisched import EmptyOperator

with DAG("mapped", schedule=None, start_date=START) as dag:
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def add(x, y, ti=None):
        return {"sum": x + y, "map_index": ti.map_index}

    @task
    def total(values):
        return sorted(v["sum"] for v in values)

    @task
    def nothing():
        return []

    @task
    def each(x):
        return x

    @task
    def fragile(x):
        if x == 2:
            raise ValueError("two is bad")
        return x

    @task(trigger_rule="all_done")
    def count(values):
        return len(values)

    total(add.partial(y=10).expand(x=numbers()))
    each.expand(x=nothing()) >> EmptyOperator(task_id="after_empty")
    broken = fragile.expand(x=[1, 2])
    broken >> EmptyOperator(task_id="after_broken")
    count(broken)
    BashOperator.partial(task_id="echo").expand(bash_command=["echo a-{{ ti.map_index }}", "echo b"])
    add.override(task_id="pairs").expand_kwargs([{"x": 1, "y": 2}, {"x": 3, "y": 4}])
"""

EXPECTED = {
    ("numbers", -1): "success",
    ("add", 0): "success",
    ("add", 1): "success",
    ("add", 2): "success",
    ("total", -1): "success",
    ("nothing", -1): "success",
    ("each", -1): "skipped",
    ("after_empty", -1): "skipped",
    ("fragile", 0): "success",
    ("fragile", 1): "failed",
    ("after_broken", -1): "upstream_failed",
    ("count", -1): "success",
    ("echo", 0): "success",
    ("echo", 1): "success",
    ("pairs", 0): "success",
    ("pairs", 1): "success",
}


def _states() -> dict[tuple[str, int], str | None]:
    with create_session() as session:
        rows = session.execute(
            text("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = 'mapped'")
        )
        return {(task_id, map_index): state for task_id, map_index, state in rows}


def _values() -> dict[tuple[str, int], Any]:
    from sqlalchemy import select

    from minisched.models import XCom

    with create_session() as session:
        rows = session.execute(
            select(XCom.task_id, XCom.map_index, XCom.value).where(
                XCom.dag_id == "mapped", XCom.key == "return_value"
            )
        )
        return {(task_id, map_index): value for task_id, map_index, value in rows}


def _run_id() -> str:
    with create_session() as session:
        return str(session.execute(text("SELECT run_id FROM dag_run WHERE dag_id = 'mapped'")).scalar_one())


def _check_run(env: Env) -> None:
    assert _states() == EXPECTED
    values = _values()
    assert [values[("add", i)] for i in range(3)] == [{"sum": 10 + n, "map_index": n - 1} for n in (1, 2, 3)]
    assert values[("total", -1)] == [11, 12, 13]
    assert values[("count", -1)] == 1  # the failed instance pushed nothing
    assert (values[("echo", 0)], values[("echo", 1)]) == ("a-0", "b")
    assert (values[("pairs", 0)]["sum"], values[("pairs", 1)]["sum"]) == (3, 7)

    run_id = _run_id()
    shown = env.run_cli("tasks", "states-for-dag-run", "mapped", run_id, "-o", "json")
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert {(row["task_id"], row["map_index"]): row["state"] for row in rows} == EXPECTED
    task_folder = Path(env.logs_folder) / "dag_id=mapped" / f"run_id={run_id}" / "task_id=fragile"
    assert (task_folder / "map_index=1" / "attempt=1.log").is_file()
    logs = env.run_cli("tasks", "logs", "mapped", run_id, "fragile", "--map-index", "1")
    assert logs.exit_code == 0, logs.output
    assert "two is bad" in logs.stdout and "map_index=1" in logs.stdout
    unmapped = env.run_cli("tasks", "logs", "mapped", run_id, "fragile")
    assert unmapped.exit_code == 1 and "--map-index" in unmapped.stderr


@pytest.mark.slow
def test_mapped_tasks_run_through_the_scheduler(env: Env, procs: Procs) -> None:
    env.write_dag("mapped.py", dag_source(DAG))
    for args in (("dags", "list"), ("dags", "trigger", "mapped")):
        assert env.run_cli(*args).exit_code == 0
    runs = run_to_end(procs, "mapped")
    assert runs[0].state == "failed"  # after_broken is a leaf and upstream_failed
    _check_run(env)


def test_mapped_tasks_run_in_dags_test(env: Env) -> None:
    env.write_dag("mapped.py", dag_source(DAG))
    result = env.run_cli("dags", "test", "mapped")
    assert result.exit_code == 1, result.output  # the run failed, as it should
    assert "of mapped: failed" in result.output
    _check_run(env)
    one = env.run_cli("tasks", "test", "mapped", "echo", "--map-index", "0")
    assert one.exit_code == 0 and "a-0" in one.stdout, one.output
    whole = env.run_cli("tasks", "test", "mapped", "echo")
    assert whole.exit_code == 1 and "task 'echo' is mapped: run one of its instances" in whole.stderr


def test_clearing_a_mapped_task_runs_its_instances_again(env: Env) -> None:
    env.write_dag("mapped.py", dag_source(DAG))
    assert env.run_cli("dags", "test", "mapped").exit_code == 1
    cleared = env.run_cli("tasks", "clear", "mapped", "--task-regex", "^fragile$", "--downstream", "-y")
    assert cleared.exit_code == 0, cleared.output
    states = _states()
    assert states[("fragile", 0)] is None and states[("fragile", 1)] is None
    assert states[("after_broken", -1)] is None and states[("add", 0)] == "success"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "each.expand(x=3)",
            "task 'each': 'x' must be a list (or another task's value) to map over, got int",
        ),
        ("each.expand(y=[1])", "@task each() has no argument 'y' to map"),
        (
            "BashOperator.partial(task_id='b').expand(command=['x'])",
            "task 'b': BashOperator has no argument 'command' to map",
        ),
        (
            "BashOperator.partial(task_id='b').expand(retries=[1])",
            "task 'b': 'retries' cannot be mapped",
        ),
    ],
)
def test_bad_mapping_is_one_line_naming_the_task(env: Env, body: str, message: str) -> None:
    source = (
        "with DAG('bad', schedule=None, start_date=START):\n    @task\n    def each(x):\n        return x\n\n"
    )
    env.write_dag("bad.py", dag_source(source + f"    {body}\n"))
    result = env.run_cli("dags", "list-import-errors")
    assert result.exit_code == 0, result.output
    assert message in result.output


RESIZED = """
with DAG("resized", schedule=None, start_date=START):
    @task
    def sizes():
        return list(range(int(Path(os.environ["SIZE_FILE"]).read_text())))

    @task
    def each(x):
        return x

    @task
    def collect(values):
        return values

    collect(each.expand(x=sizes()))
"""


def _resized_states() -> dict[int, str | None]:
    with create_session() as session:
        rows = session.execute(
            text("SELECT map_index, state FROM task_instance WHERE dag_id = 'resized' AND task_id = 'each'")
        )
        return dict(rows.all())


@pytest.mark.slow
def test_a_cleared_mapped_task_is_counted_again(env: Env, procs: Procs, tmp_path: Path) -> None:
    size = tmp_path / "size"
    size.write_text("3")
    scheduler_env = {"SIZE_FILE": str(size)}
    env.write_dag("resized.py", dag_source(RESIZED))
    for args in (("dags", "list"), ("dags", "trigger", "resized")):
        assert env.run_cli(*args).exit_code == 0
    run_to_end(procs, "resized", extra_env=scheduler_env)
    assert _resized_states() == {0: "success", 1: "success", 2: "success"}

    for new_size, expected in (
        ("2", {0: "success", 1: "success", 2: "removed"}),
        ("4", {0: "success", 1: "success", 2: "success", 3: "success"}),
    ):
        size.write_text(new_size)
        cleared = env.run_cli("tasks", "clear", "resized", "--task-regex", "^sizes$", "--downstream", "-y")
        assert cleared.exit_code == 0, cleared.output
        run_to_end(procs, "resized", extra_env=scheduler_env)
        assert _resized_states() == expected
        collected = _collected()
        assert collected == list(range(int(new_size))), collected


def _collected() -> Any:
    from sqlalchemy import select

    from minisched.models import XCom

    with create_session() as session:
        return session.scalar(select(XCom.value).where(XCom.dag_id == "resized", XCom.task_id == "collect"))
