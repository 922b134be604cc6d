"""Task groups: prefixed ids, wiring to roots and leaves, nesting, @task_group, serialization."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from minisched import DAG, EmptyOperator, TaskGroup, chain, task, task_group
from minisched.authoring.serialize import deserialize_dag, serialize_dag
from minisched.exceptions import DagDefinitionError

START = datetime(2024, 1, 1, tzinfo=UTC)


def _edges(dag: DAG) -> set[tuple[str, str]]:
    return {(t.task_id, down) for t in dag.tasks for down in t.downstream_task_ids}


def test_tasks_in_a_group_get_prefixed_ids_and_the_group_wires_as_one() -> None:
    with DAG("grouped", schedule=None, start_date=START) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("load") as load:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            a >> c
        end = EmptyOperator(task_id="end")
        start >> load >> end
    assert (a.task_id, b.task_id, c.task_id) == ("load.a", "load.b", "load.c")
    assert [t.task_id for t in load.roots] == ["load.a", "load.b"]
    assert [t.task_id for t in load.leaves] == ["load.b", "load.c"]
    assert _edges(dag) == {
        ("start", "load.a"),
        ("start", "load.b"),
        ("load.a", "load.c"),
        ("load.b", "end"),
        ("load.c", "end"),
    }
    assert a.task_group is load and start.task_group is None


def test_groups_nest_and_prefix_group_id_false_keeps_plain_ids() -> None:
    with DAG("nested", schedule=None, start_date=START) as dag, TaskGroup("outer") as outer:
        EmptyOperator(task_id="first")
        with TaskGroup("inner") as inner:
            EmptyOperator(task_id="deep")
        with TaskGroup("flat", prefix_group_id=False) as flat:
            EmptyOperator(task_id="plain")
    assert inner.group_id == "outer.inner" and flat.group_id == "outer.flat"
    assert sorted(dag.task_ids) == ["outer.first", "outer.inner.deep", "plain"]
    assert [t.task_id for t in outer.iter_tasks()] == ["outer.first", "outer.inner.deep", "plain"]
    assert set(dag.task_group_dict) == {"outer", "outer.inner", "outer.flat"}


def test_group_to_group_and_lists_and_chain() -> None:
    with DAG("many", schedule=None, start_date=START) as dag:
        with TaskGroup("g1") as g1:
            EmptyOperator(task_id="x")
        with TaskGroup("g2") as g2:
            EmptyOperator(task_id="y")
        z = EmptyOperator(task_id="z")
        w = EmptyOperator(task_id="w")
        chain(g1, g2)
        [g1, g2] >> z
        z >> w
    assert _edges(dag) == {("g1.x", "g2.y"), ("g1.x", "z"), ("g2.y", "z"), ("z", "w")}


def test_group_default_args_sit_between_the_dags_and_the_tasks() -> None:
    dag = DAG("defaults", schedule=None, start_date=START, default_args={"retries": 1, "pool": "p"})
    with TaskGroup("g", dag=dag, default_args={"retries": 4}):
        inherited = EmptyOperator(task_id="inherited")
        own = EmptyOperator(task_id="own", retries=7)
    assert inherited.dag is dag
    assert (inherited.retries, inherited.pool) == (4, "p")
    assert own.retries == 7


def test_task_group_decorator_builds_a_fresh_group_per_call() -> None:
    with DAG("decorated", schedule=None, start_date=START) as dag:

        @task
        def extract() -> None: ...

        @task_group
        def etl() -> None:
            extract() >> extract()

        @task_group(group_id="returns_last")
        def returning() -> object:
            return EmptyOperator(task_id="last")

        start = EmptyOperator(task_id="start")
        first, second = etl(), etl()
        start >> first >> second
        last = returning()
    assert sorted(dag.task_ids) == sorted(
        ["start", "etl.extract", "etl.extract__1", "etl__1.extract", "etl__1.extract__1", "returns_last.last"]
    )
    assert ("start", "etl.extract") in _edges(dag) and ("etl.extract__1", "etl__1.extract") in _edges(dag)
    assert dag.task_group_dict["etl__1"].label == "etl__1"
    assert isinstance(first, TaskGroup) and last.task_id == "returns_last.last"  # type: ignore[union-attr]


def test_duplicate_group_ids_and_a_group_outside_a_dag_are_refused() -> None:
    with DAG("dupes", schedule=None, start_date=START):
        TaskGroup("g")
        with pytest.raises(DagDefinitionError, match="duplicate task group id 'g'"):
            TaskGroup("g")
        EmptyOperator(task_id="t")
        with pytest.raises(DagDefinitionError, match="duplicate task group id 't'"):
            TaskGroup("t")
    with pytest.raises(DagDefinitionError, match="not in a DAG"):
        TaskGroup("orphan")


def test_serialization_keeps_group_membership_and_nesting() -> None:
    with DAG("drawn", schedule=None, start_date=START) as dag, TaskGroup("outer", tooltip="the outside"):
        EmptyOperator(task_id="a")
        with TaskGroup("inner"):
            EmptyOperator(task_id="b")
    data = serialize_dag(dag)
    assert data["task_groups"] == [
        {"group_id": "outer", "label": "outer", "parent_group_id": None, "tooltip": "the outside"},
        {"group_id": "outer.inner", "label": "inner", "parent_group_id": "outer", "tooltip": ""},
    ]
    restored = deserialize_dag(data)
    assert restored.tasks["outer.inner.b"].task_group == "outer.inner"
    assert restored.to_dict() == data
