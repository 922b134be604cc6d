"""Syncing DAGs to `dag` and `serialized_dag`: next_dagrun, paused at creation, idempotence, bulk writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from minisched import settings
from minisched.authoring import DAG, BashOperator, DataInterval, make_schedule
from minisched.authoring.serialize import serialize_dag
from minisched.dagfiles.sync import deactivate_dags, next_dagrun_fields, sync_dags
from minisched.db.session import create_session
from minisched.models import DagModel, DagRun, SerializedDagModel
from tests.conftest import Env
from tests.dagfiles.helpers import NOW, count_statements, dag_rows, dag_source, refresh

START = datetime(2024, 1, 1, tzinfo=UTC)


def _dag(dag_id: str, schedule: str | timedelta | None = "@daily", **kwargs: object) -> DAG:
    with DAG(dag_id, schedule=schedule, start_date=START, **kwargs) as dag:  # type: ignore[arg-type]
        BashOperator(task_id="a", bash_command="echo a") >> BashOperator(task_id="b", bash_command="echo b")
    dag.fileloc = f"/dags/{dag_id}.py"
    return dag


def _sync(*dags: DAG, now: datetime = NOW) -> int:
    with create_session() as session:
        return sync_dags([serialize_dag(dag) for dag in dags], session=session, now=now)


def _scheduled_run(
    dag_id: str, start: datetime, end: datetime, run_type: str = "scheduled"
) -> dict[str, object]:
    return {
        "dag_id": dag_id,
        "run_id": f"{run_type}__{start.isoformat()}",
        "run_type": run_type,
        "state": "success",
        "logical_date": start,
        "data_interval_start": start,
        "data_interval_end": end,
    }


def test_next_dagrun_fields_of_a_cron_schedule_without_catchup() -> None:
    fields = next_dagrun_fields(make_schedule("0 * * * *"), START, None, False, None, NOW)
    assert fields == {
        "next_dagrun": datetime(2024, 3, 10, 11, tzinfo=UTC),
        "next_dagrun_data_interval_start": datetime(2024, 3, 10, 11, tzinfo=UTC),
        "next_dagrun_data_interval_end": datetime(2024, 3, 10, 12, tzinfo=UTC),
        "next_dagrun_create_after": datetime(2024, 3, 10, 12, tzinfo=UTC),
    }


def test_next_dagrun_fields_after_a_run_with_catchup() -> None:
    last = DataInterval(datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 6, tzinfo=UTC))
    fields = next_dagrun_fields(make_schedule("@daily"), START, None, True, last, NOW)
    assert fields["next_dagrun"] == datetime(2024, 1, 6, tzinfo=UTC)
    assert fields["next_dagrun_create_after"] == datetime(2024, 1, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "last"),
    [(None, None), ("@once", DataInterval(START, START))],
    ids=["manual-only", "once-after-its-run"],
)
def test_next_dagrun_fields_are_empty_when_no_run_is_planned(
    schedule: str | None, last: DataInterval | None
) -> None:
    assert set(next_dagrun_fields(make_schedule(schedule), START, None, False, last, NOW).values()) == {None}


def test_once_runs_at_its_start_date() -> None:
    fields = next_dagrun_fields(make_schedule("@once"), START, None, False, None, NOW)
    assert fields["next_dagrun"] == fields["next_dagrun_create_after"] == START


def test_new_dag_rows_carry_every_column(env: Env) -> None:
    dag = _dag("etl", "0 * * * *", description="hourly", max_active_runs=3, max_active_tasks=7)
    assert _sync(dag) == 1
    row = dag_rows()["etl"]
    assert (row.fileloc, row.schedule, row.timezone, row.description) == (
        "/dags/etl.py",
        "0 * * * *",
        "UTC",
        "hourly",
    )
    assert (row.max_active_runs, row.max_active_tasks, row.is_active, row.is_paused) == (3, 7, True, False)
    assert row.next_dagrun == datetime(2024, 3, 10, 11, tzinfo=UTC)
    assert row.next_dagrun_create_after == datetime(2024, 3, 10, 12, tzinfo=UTC)
    assert row.last_parsed_time == NOW


def test_new_dags_start_paused_when_configured(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _sync(_dag("before"))
    monkeypatch.setenv("MINISCHED_DAGS_ARE_PAUSED_AT_CREATION", "true")
    settings.configure()
    _sync(_dag("before", description="changed"), _dag("after"))
    rows = dag_rows()
    assert rows["after"].is_paused is True
    assert rows["before"].is_paused is False  # only new DAGs are affected


def test_a_dag_can_ask_to_start_paused(env: Env) -> None:
    _sync(_dag("shy", is_paused_upon_creation=True))
    assert dag_rows()["shy"].is_paused is True


def test_unchanged_dag_writes_no_serialized_row(env: Env) -> None:
    _sync(_dag("etl"))
    with count_statements() as log:
        _sync(_dag("etl"), now=NOW + timedelta(minutes=1))
    assert log.on("serialized_dag") == []
    assert len(log.on("dag")) == 1  # last_parsed_time moves on


def test_changed_dag_rewrites_its_serialized_row(env: Env) -> None:
    _sync(_dag("etl"))
    with create_session() as session:
        before = session.get(SerializedDagModel, "etl")
    _sync(_dag("etl", default_args={"retries": 4}))
    with create_session() as session:
        after = session.get(SerializedDagModel, "etl")
    assert before is not None and after is not None
    assert before.dag_hash != after.dag_hash
    assert {t["retries"] for t in after.data["tasks"]} == {4}


def test_schedule_change_recomputes_next_dagrun_from_the_latest_scheduled_run(env: Env) -> None:
    _sync(_dag("etl", "@daily", catchup=True))
    with create_session() as session:
        session.execute(
            insert(DagRun),
            [
                _scheduled_run("etl", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)),
                _scheduled_run("etl", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC)),
                _scheduled_run(
                    "etl", datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC), "manual"
                ),
            ],
        )
    _sync(_dag("etl", "0 */6 * * *", catchup=True))
    row = dag_rows()["etl"]
    assert row.schedule == "0 */6 * * *"
    assert row.next_dagrun == datetime(2024, 1, 3, tzinfo=UTC)  # after the latest *scheduled* run
    assert row.next_dagrun_create_after == datetime(2024, 1, 3, 6, tzinfo=UTC)


def test_other_changes_leave_next_dagrun_to_the_scheduler(env: Env) -> None:
    _sync(_dag("etl", catchup=True))
    advanced = datetime(2024, 2, 1, tzinfo=UTC)
    with create_session() as session:
        session.execute(update(DagModel).values(next_dagrun=advanced))
    _sync(_dag("etl", catchup=True, description="new text", default_args={"retries": 2}))
    assert dag_rows()["etl"].next_dagrun == advanced


def test_deactivated_dag_coming_back_is_rescheduled(env: Env) -> None:
    _sync(_dag("etl"))
    with create_session() as session:
        assert deactivate_dags(["etl", "unknown"], session=session) == 1
        session.execute(update(DagModel).values(next_dagrun=None, next_dagrun_create_after=None))
    later = NOW + timedelta(days=3)
    _sync(_dag("etl"), now=later)
    row = dag_rows()["etl"]
    assert row.is_active and row.next_dagrun == datetime(2024, 3, 12, tzinfo=UTC)


def test_syncing_many_dags_costs_a_bounded_number_of_statements(env: Env) -> None:
    dags = [_dag(f"dag_{i}", catchup=True) for i in range(60)]
    with count_statements() as first:
        _sync(*dags)
    with create_session() as session:
        session.execute(
            insert(DagRun),
            [_scheduled_run(f"dag_{i}", START, START + timedelta(days=1)) for i in range(30)],
        )
    changed = [_dag(f"dag_{i}", "@hourly" if i < 30 else "@daily", catchup=True) for i in range(60)]
    with count_statements() as second:
        _sync(*changed)
    assert len(first.statements) <= 4 and len(second.statements) <= 5
    rows = dag_rows()
    assert rows["dag_0"].next_dagrun == START + timedelta(days=1)
    assert rows["dag_59"].next_dagrun == START


def test_refresh_then_sync_is_idempotent_at_the_table_level(env: Env, tmp_path: Path) -> None:
    env.write_dag("etl.py", dag_source("etl"))
    refresh(env.dags_folder)
    with create_session() as session:
        first = session.execute(select(SerializedDagModel.dag_hash, SerializedDagModel.last_updated)).one()
    refresh(env.dags_folder, now=NOW + timedelta(hours=1))
    with create_session() as session:
        again = session.execute(select(SerializedDagModel.dag_hash, SerializedDagModel.last_updated)).one()
    assert first == again
