"""`minisched pools list / set / delete`, as an operator runs them."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from minisched.db.session import create_session
from minisched.models import Log, Pool, TaskInstance
from tests.conftest import Env

DAG_WITH_POOL = """\
from datetime import datetime, timezone
from minisched import DAG, BashOperator

with DAG("loads", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    for name in ("a", "b", "c"):
        BashOperator(task_id=name, bash_command="true", pool="db", pool_slots=2)
"""


def _pools(env: Env) -> dict[str, dict[str, object]]:
    result = env.run_cli("pools", "list", "--output", "json")
    assert result.exit_code == 0, result.output
    return {row["pool"]: row for row in json.loads(result.stdout)}


def _fails_with_one_line(result: object, *fragments: str) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert all(fragment in stderr for fragment in fragments), stderr


def _set_states(task_states: dict[str, str | None]) -> None:
    with create_session() as session:
        for task_id, state in task_states.items():
            session.execute(update(TaskInstance).where(TaskInstance.task_id == task_id).values(state=state))


def test_pools_list_shows_default_pool_as_table_and_json(env: Env) -> None:
    table = env.run_cli("pools", "list")
    assert table.exit_code == 0
    header, _rule, row = table.stdout.splitlines()
    assert [cell.strip() for cell in header.split("|")] == ["pool", "slots", "occupied_slots", "open_slots"]
    assert [cell.strip() for cell in row.split("|")] == ["default_pool", "128", "0", "128"]
    assert _pools(env) == {
        "default_pool": {"pool": "default_pool", "slots": 128, "occupied_slots": 0, "open_slots": 128}
    }


def test_pools_set_creates_then_updates_and_is_audited(env: Env) -> None:
    created = env.run_cli("pools", "set", "db", "3", "--description", "the warehouse")
    assert created.exit_code == 0 and "Created pool db with 3 slots" in created.stdout
    updated = env.run_cli("pools", "set", "db", "0")
    assert updated.exit_code == 0 and "Updated pool db with 0 slots" in updated.stdout
    assert _pools(env)["db"] == {"pool": "db", "slots": 0, "occupied_slots": 0, "open_slots": 0}
    with create_session() as session:
        assert session.scalar(select(Pool.description).where(Pool.pool == "db")) == "the warehouse"
        events = session.scalars(select(Log.extra).where(Log.event == "cli_pools_set").order_by(Log.id)).all()
    assert [json.loads(extra or "{}")["slots"] for extra in events] == [3, 0]


def test_occupied_slots_are_the_pool_slots_of_queued_and_running_tries(env: Env) -> None:
    env.write_dag("loads.py", DAG_WITH_POOL)
    assert env.run_cli("pools", "set", "db", "5").exit_code == 0
    assert env.run_cli("dags", "list").exit_code == 0  # loads the DAG file
    assert env.run_cli("dags", "trigger", "loads").exit_code == 0
    _set_states({"a": "queued", "b": "running", "c": "success"})
    assert _pools(env)["db"] == {"pool": "db", "slots": 5, "occupied_slots": 4, "open_slots": 1}
    assert _pools(env)["default_pool"]["occupied_slots"] == 0


def test_deleting_a_pool_in_use_is_refused_until_its_tries_finish(env: Env) -> None:
    env.write_dag("loads.py", DAG_WITH_POOL)
    assert env.run_cli("pools", "set", "db", "5").exit_code == 0
    assert env.run_cli("dags", "list").exit_code == 0  # loads the DAG file
    assert env.run_cli("dags", "trigger", "loads").exit_code == 0
    _set_states({"a": "queued", "b": "running"})
    _fails_with_one_line(env.run_cli("pools", "delete", "db"), "'db'", "2 queued or running")
    _set_states({"a": "success", "b": "failed"})
    deleted = env.run_cli("pools", "delete", "db")
    assert deleted.exit_code == 0 and "Deleted pool db" in deleted.stdout
    assert set(_pools(env)) == {"default_pool"}
    with create_session() as session:
        assert session.scalar(select(Log.extra).where(Log.event == "cli_pools_delete")) == '{"pool": "db"}'


def test_pool_errors_are_one_line(env: Env) -> None:
    _fails_with_one_line(env.run_cli("pools", "delete", "default_pool"), "default_pool cannot be deleted")
    _fails_with_one_line(env.run_cli("pools", "delete", "nope"), "'nope' does not exist")
    _fails_with_one_line(env.run_cli("pools", "set", "bad name", "1"), "invalid pool name")
    negative = env.run_cli("pools", "set", "db", "-1")
    assert negative.exit_code == 2 and "-1" in negative.stderr
    assert set(_pools(env)) == {"default_pool"}
