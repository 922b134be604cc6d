"""The alembic history: models == head, reversible with data in place, safe to run concurrently."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from minisched.db import migrate
from minisched.db.engine import make_engine
from minisched.models import Base
from tests.conftest import Env

HEAD = "0010_dag_owners_tags"
NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def _execute(url: str, *statements: tuple[str, dict[str, object]]) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for sql, params in statements:
                connection.execute(text(sql), params)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_models_match_head_revision(bare_env: Env) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migrate.upgrade(bare_env.db_url)
    engine = make_engine(bare_env.db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_history_is_linear_with_at_least_three_reversible_steps() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    revisions = list(script.walk_revisions())
    assert len(revisions) >= 3
    assert len(script.get_heads()) == 1
    for revision in revisions:
        assert revision.module.downgrade.__code__.co_code, revision.revision


CORE_ROWS: list[tuple[str, dict[str, object]]] = [
    (
        "INSERT INTO dag (dag_id, fileloc, is_paused, is_active, schedule, timezone, max_active_runs, "
        "max_active_tasks) VALUES ('d1', '/f.py', false, true, '@daily', 'UTC', 16, 16)",
        {},
    ),
    (
        "INSERT INTO serialized_dag (dag_id, fileloc, data, dag_hash, last_updated) "
        "VALUES ('d1', '/f.py', :data, 'h', :now)",
        {"data": json.dumps({"tasks": []}), "now": NOW},
    ),
    (
        "INSERT INTO dag_run (dag_id, run_id, run_type, state, logical_date) "
        "VALUES ('d1', 'r1', 'manual', 'success', :now)",
        {"now": NOW},
    ),
    (
        "INSERT INTO task_instance (dag_id, run_id, task_id, state, try_number, max_tries, pool, pool_slots, "
        "priority_weight, hostname) VALUES ('d1', 'r1', 't1', 'success', 1, 0, 'default_pool', 1, 1, 'h')",
        {},
    ),
    ("INSERT INTO slot_pool (pool, slots) VALUES ('p', 4)", {}),
    ("INSERT INTO log (dttm, event, dag_id) VALUES (:now, 'success', 'd1')", {"now": NOW}),
]
CORE_COUNTS = "SELECT (SELECT count(*) FROM dag), (SELECT count(*) FROM serialized_dag), " + (
    "(SELECT count(*) FROM dag_run), (SELECT count(*) FROM task_instance), "
    "(SELECT count(*) FROM slot_pool), (SELECT count(*) FROM log)"
)
HEAD_ROWS: list[tuple[str, dict[str, object]]] = [
    (
        "INSERT INTO job (job_type, state, hostname, pid, start_date, latest_heartbeat) "
        "VALUES ('scheduler', 'running', 'h', 1, :now, :now)",
        {"now": NOW},
    ),
    (
        "INSERT INTO import_error (filename, stacktrace, timestamp) VALUES ('/b.py', 'boom', :now)",
        {"now": NOW},
    ),
    (
        "INSERT INTO dag_file (fileloc, content_hash, size, mtime, dag_ids, last_parsed_time) "
        "VALUES ('/f.py', 'abc', 10, 1.5, '[\"d1\"]', :now)",
        {"now": NOW},
    ),
    ("INSERT INTO log (dttm, event, extra) VALUES (:now, 'cli_x', '{\"a\": 1}')", {"now": NOW}),
    ("UPDATE task_instance SET queued_by_job_id = 1", {}),
    (
        "INSERT INTO connection (conn_id, conn_type, host, password, extra) "
        "VALUES ('pg', 'postgres', 'db.example', 'token-1', 'token-2')",
        {},
    ),
    ("INSERT INTO variable (key, val, description) VALUES ('k', 'token-3', 'd')", {}),
    (
        "INSERT INTO xcom (dag_id, run_id, task_id, key, value, timestamp) "
        "VALUES ('d1', 'r1', 't1', 'return_value', '[1, 2]', :now)",
        {"now": NOW},
    ),
]
MAPPED_ROWS: list[tuple[str, dict[str, object]]] = [
    (
        "INSERT INTO task_instance (dag_id, run_id, task_id, map_index, state, try_number, max_tries, pool, "
        f"pool_slots, priority_weight, hostname) VALUES ('d1', 'r1', 't2', {index}, 'success', 1, 0, "
        "'default_pool', 1, 1, 'h')",
        {},
    )
    for index in (0, 1)
]
MAP_INDEXES = "SELECT task_id, map_index FROM task_instance ORDER BY task_id, map_index"
SECRET_TABLES = ("connection", "variable", "xcom")
API_TOKEN_ROW = (
    "INSERT INTO api_token (name, role, token_hash, created_at) VALUES ('ci', 'op', :digest, :now)",
    {"digest": "0" * 64, "now": NOW},
)


def test_upgrade_downgrade_round_trips_keep_the_rows(bare_env: Env) -> None:
    url = bare_env.db_url
    migrate.upgrade(url, "0001_core_tables")
    _execute(url, *CORE_ROWS)
    migrate.upgrade(url)
    assert _rows(url, CORE_COUNTS) == [(1, 1, 1, 1, 1, 1)]
    _execute(url, *HEAD_ROWS)
    assert _rows(
        url,
        "SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM import_error), "
        "(SELECT count(*) FROM dag_file)",
    ) == [(1, 1, 1)]
    assert _rows(url, "SELECT task_id, map_index, key FROM xcom") == [("t1", -1, "return_value")]
    _execute(url, API_TOKEN_ROW)
    migrate.downgrade(url, "0005_connections_variables_xcom")
    assert "api_token" not in _tables(url) and _rows(url, "SELECT count(*) FROM connection") == [(1,)]
    migrate.upgrade(url)
    assert _rows(url, "SELECT count(*) FROM api_token") == [(0,)]

    _execute(url, *MAPPED_ROWS)
    assert _rows(url, MAP_INDEXES) == [("t1", -1), ("t2", 0), ("t2", 1)]
    migrate.downgrade(url, "0007_task_log")
    assert _rows(url, "SELECT task_id FROM task_instance ORDER BY task_id") == [("t1",), ("t2",)]
    migrate.upgrade(url)
    assert _rows(url, MAP_INDEXES) == [("t1", -1), ("t2", -1)]
    _execute(url, ("DELETE FROM task_instance WHERE task_id = 't2'", {}))

    migrate.downgrade(url, "0004_dag_file")
    assert set(SECRET_TABLES).isdisjoint(_tables(url))
    assert _rows(url, "SELECT count(*) FROM dag_file") == [(1,)]
    migrate.upgrade(url)
    assert {"connection", "variable", "xcom"} <= _tables(url)
    _execute(url, *HEAD_ROWS[-3:])

    migrate.downgrade(url, "0001_core_tables")
    assert {"job", "import_error", "dag_file", *SECRET_TABLES}.isdisjoint(_tables(url))
    assert _rows(url, CORE_COUNTS) == [(1, 1, 1, 1, 1, 2)]
    assert _rows(url, "SELECT task_id, state, try_number FROM task_instance") == [("t1", "success", 1)]

    migrate.upgrade(url)
    assert migrate.current_revision(url) == HEAD
    assert _rows(url, CORE_COUNTS) == [(1, 1, 1, 1, 1, 2)]
    assert _rows(url, "SELECT count(*) FROM log WHERE extra IS NOT NULL") == [(0,)]
    assert _rows(url, "SELECT queued_by_job_id FROM task_instance") == [(None,)]

    migrate.downgrade(url, "base")
    assert _tables(url) <= {"alembic_version"}
    migrate.upgrade(url)
    assert migrate.current_revision(url) == HEAD
    assert _rows(url, CORE_COUNTS) == [(0, 0, 0, 0, 0, 0)]


def test_dag_owners_and_tags_are_filled_from_the_serialized_dags(bare_env: Env) -> None:
    url = bare_env.db_url
    migrate.upgrade(url, "0009_dag_callback_request")
    data = {"owner": "ann, bob", "tags": ["etl", "daily"], "tasks": []}
    _execute(
        url,
        CORE_ROWS[0],
        (CORE_ROWS[0][0].replace("'d1', '/f.py'", "'d2', '/g.py'"), {}),
        (
            "INSERT INTO serialized_dag (dag_id, fileloc, data, dag_hash, last_updated) "
            "VALUES ('d1', '/f.py', :data, 'h', :now)",
            {"data": json.dumps(data), "now": NOW},
        ),
    )
    migrate.upgrade(url)
    rows = _rows(url, "SELECT dag_id, owners, tags FROM dag ORDER BY dag_id")
    assert [(dag_id, owners, json.loads(tags) if tags else tags) for dag_id, owners, tags in rows] == [
        ("d1", "ann, bob", ["etl", "daily"]),
        ("d2", None, None),  # never parsed: nothing to copy
    ]
    migrate.downgrade(url, "0009_dag_callback_request")
    assert _rows(url, "SELECT count(*) FROM dag") == [(2,)]


def test_foreign_keys_cascade_from_dag_run_to_task_instances_and_xcom(env: Env) -> None:
    _execute(env.db_url, *CORE_ROWS, HEAD_ROWS[-1])
    _execute(env.db_url, ("DELETE FROM dag_run", {}))
    assert _rows(env.db_url, "SELECT (SELECT count(*) FROM task_instance), (SELECT count(*) FROM xcom)") == [
        (0, 0)
    ]


def test_initdb_twice_is_idempotent(bare_env: Env) -> None:
    for _ in range(2):
        result = bare_env.run_cli("initdb")
        assert result.exit_code == 0, result.output
    assert _rows(bare_env.db_url, "SELECT pool, slots FROM slot_pool") == [("default_pool", 128)]
    assert migrate.current_revision(bare_env.db_url) == HEAD
    assert _rows(bare_env.db_url, "SELECT count(*) FROM log WHERE event = 'cli_initdb'") == [(2,)]


def test_two_concurrent_upgradedb_processes_both_succeed(bare_env: Env) -> None:
    processes = [bare_env.popen("upgradedb") for _ in range(3)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert migrate.current_revision(bare_env.db_url) == HEAD
    assert migrate.is_at_head(bare_env.db_url)


def test_show_sql_only_prints_ddl_without_touching_the_database(bare_env: Env) -> None:
    result = bare_env.run_cli("upgradedb", "--show-sql-only")
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE task_instance" in result.output
    assert migrate.current_revision(bare_env.db_url) is None


def test_sqlite_engine_settings(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    finally:
        engine.dispose()


def test_unsupported_backend_is_a_config_error() -> None:
    from minisched.settings import ConfigError

    with pytest.raises(ConfigError, match="unsupported database"):
        make_engine("mysql://u@h/db")
