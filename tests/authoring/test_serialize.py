"""Serialized DAGs: JSON-safe, deterministic, and enough for the scheduler on their own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from minisched import DAG, BashOperator, PythonOperator, task
from minisched.authoring import EmptyOperator
from minisched.authoring.schedules import CronSchedule, DataInterval
from minisched.authoring.serialize import SerializedDag, dag_hash, deserialize_dag, serialize_dag


def extract() -> None:
    return None


def build_etl() -> DAG:
    with DAG(
        "etl",
        schedule="0 * * * *",
        start_date=datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")),
        end_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=True,
        max_active_runs=3,
        max_active_tasks=5,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "owner": "data"},
        tags=["example", "etl"],
        description="hourly load",
        dagrun_timeout=timedelta(hours=1),
    ) as dag:
        a = PythonOperator(task_id="extract", python_callable=extract, doc="pulls rows")
        b = BashOperator(
            task_id="load",
            bash_command="echo $MINISCHED_DS",
            execution_timeout=timedelta(minutes=5),
            retry_exponential_backoff=True,
            max_retry_delay=timedelta(minutes=10),
            trigger_rule="all_done",
            pool_slots=2,
        )

        @task(retries=3, pool="db", priority_weight=10, depends_on_past=True)
        def report() -> None: ...

        a >> b >> report()
    return dag


def test_serialized_dag_is_plain_json_with_the_scheduler_fields() -> None:
    data = serialize_dag(build_etl())
    assert json.loads(json.dumps(data)) == data
    assert list(data)[:6] == ["format_version", "dag_id", "fileloc", "schedule", "timezone", "start_date"]
    assert data["schedule"] == "0 * * * *"
    assert data["timezone"] == "Europe/Berlin"
    assert data["start_date"] == "2023-12-31T23:00:00+00:00"
    assert data["end_date"] == "2025-01-01T00:00:00+00:00"
    assert (data["catchup"], data["max_active_runs"], data["max_active_tasks"]) == (True, 3, 5)
    assert data["dagrun_timeout"] == 3600
    assert data["tags"] == ["example", "etl"]
    assert data["owner"] == "data"
    assert data["fileloc"] == __file__
    tasks = {t["task_id"]: t for t in data["tasks"]}
    assert [t["task_id"] for t in data["tasks"]] == ["extract", "load", "report"]
    assert tasks["load"] == {
        "task_id": "load",
        "operator": "BashOperator",
        "owner": "data",
        "upstream_task_ids": ["extract"],
        "downstream_task_ids": ["report"],
        "retries": 1,
        "retry_delay": 30.0,
        "retry_exponential_backoff": True,
        "max_retry_delay": 600.0,
        "execution_timeout": 300.0,
        "pool": "default_pool",
        "pool_slots": 2,
        "priority_weight": 11,
        "trigger_rule": "all_done",
        "depends_on_past": False,
        "doc": None,
        "task_group": None,
    }
    assert tasks["extract"]["priority_weight"] == 12  # 1 + 1 + 10 downstream
    assert tasks["extract"]["doc"] == "pulls rows"
    assert tasks["report"]["operator"] == "DecoratedPythonOperator"
    assert (tasks["report"]["retries"], tasks["report"]["pool"], tasks["report"]["depends_on_past"]) == (
        3,
        "db",
        True,
    )


def test_round_trip_through_json_gives_an_equal_structure() -> None:
    data = serialize_dag(build_etl())
    restored = deserialize_dag(json.loads(json.dumps(data)))
    assert restored == deserialize_dag(data)
    assert restored.to_dict() == data
    assert dag_hash(restored.to_dict()) == dag_hash(data)


def test_hash_is_stable_and_changes_with_the_dag() -> None:
    first, second = serialize_dag(build_etl()), serialize_dag(build_etl())
    assert dag_hash(first) == dag_hash(second)
    assert len(dag_hash(first)) == 32
    changed = build_etl()
    changed.get_task("load").retries = 9
    assert dag_hash(serialize_dag(changed)) != dag_hash(first)


def test_serialized_dag_answers_scheduler_questions() -> None:
    dag = deserialize_dag(serialize_dag(build_etl()))
    assert isinstance(dag, SerializedDag)
    assert dag.dag_id == "etl"
    assert dag.roots == ["extract"] and dag.leaves == ["report"]
    assert dag.topological_order == ["extract", "load", "report"]
    assert dag.task_ids == ["extract", "load", "report"]
    assert dag.tasks["load"].upstream_task_ids == ("extract",)
    assert dag.tasks["load"].execution_timeout == timedelta(minutes=5)
    assert dag.tasks["load"].trigger_rule == "all_done"
    assert isinstance(dag.schedule, CronSchedule) and dag.timetable is dag.schedule
    assert dag.schedule.timezone_name == "Europe/Berlin"
    assert dag.start_date == datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert dag.next_retry_delay("load", 3) == timedelta(seconds=120)
    assert dag.next_retry_delay("load", 10) == timedelta(minutes=10)
    assert dag.tasks["extract"].next_retry_delay(2) == timedelta(seconds=30)


def test_serialized_and_live_dag_schedule_alike() -> None:
    live = build_etl()
    stored = deserialize_dag(json.loads(json.dumps(serialize_dag(live))))
    last: DataInterval | None = None
    starts = []
    for _ in range(3):
        expected = live.next_dagrun_info(last)
        assert expected is not None and stored.next_dagrun_info(last) == expected
        starts.append(expected.start)
        last = expected
    # Midnight in Berlin is 23:00 UTC in winter.
    assert starts == [
        datetime(2023, 12, 31, 23, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 1, tzinfo=UTC),
    ]


def test_retry_jitter_matches_between_live_and_serialized_tasks() -> None:
    live = build_etl()
    stored = deserialize_dag(serialize_dag(live))
    logical = datetime(2024, 1, 1, tzinfo=UTC)
    assert stored.next_retry_delay("load", 2, logical) == live.get_task("load").next_retry_delay(2, logical)


def test_minimal_dag_serializes_nulls() -> None:
    with DAG("manual") as dag:
        EmptyOperator(task_id="only")
    data = serialize_dag(dag)
    assert (data["schedule"], data["start_date"], data["end_date"], data["dagrun_timeout"]) == (
        None,
        None,
        None,
        None,
    )
    restored = deserialize_dag(json.loads(json.dumps(data)))
    assert restored.schedule.summary is None
    assert restored.next_dagrun_info(None) is None


def test_unknown_format_version_is_refused() -> None:
    import pytest

    data = serialize_dag(DAG("v"))
    data["format_version"] = 99
    with pytest.raises(ValueError, match="format 99 is not supported"):
        deserialize_dag(data)


def test_queue_is_serialized_only_when_set_so_other_dags_keep_their_hash() -> None:
    import pytest

    from minisched.exceptions import DagDefinitionError

    with DAG("queues", schedule=None, default_args={"queue": "gpu"}) as dag:
        EmptyOperator(task_id="on_gpu")
        EmptyOperator(task_id="on_cpu", queue="cpu")
    with DAG("plain", schedule=None) as plain:
        EmptyOperator(task_id="anywhere")

    data = serialize_dag(dag)
    assert {t["task_id"]: t["queue"] for t in data["tasks"]} == {"on_cpu": "cpu", "on_gpu": "gpu"}
    restored = deserialize_dag(json.loads(json.dumps(data)))
    assert restored.tasks["on_gpu"].queue == "gpu" and restored.tasks["on_cpu"].queue == "cpu"
    assert restored.tasks["on_gpu"].to_dict()["queue"] == "gpu"

    plain_data = serialize_dag(plain)
    assert "queue" not in plain_data["tasks"][0]
    assert deserialize_dag(plain_data).tasks["anywhere"].queue is None
    assert dag_hash(plain_data) == dag_hash(deserialize_dag(plain_data).to_dict())

    bad_queue = pytest.raises(DagDefinitionError, match="queue must be a non-empty string")
    with bad_queue, DAG("bad", schedule=None):
        EmptyOperator(task_id="nowhere", queue="")
