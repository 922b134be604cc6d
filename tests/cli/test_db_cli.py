"""The db commands through the real command line, bad input included."""

from __future__ import annotations

import json

from sqlalchemy import select

from minisched.db import migrate
from minisched.db.session import create_session
from minisched.models import Log
from tests.conftest import Env


def test_db_current_check_and_check_migrations(env: Env) -> None:
    assert env.run_cli("db", "current").output.strip() == migrate.head_revision(env.db_url)
    assert env.run_cli("db", "check").exit_code == 0
    assert env.run_cli("db", "check-migrations").exit_code == 0


def test_check_migrations_fails_below_head(env: Env) -> None:
    assert env.run_cli("downgradedb", "--to-revision", "0002_log_extra", "-y").exit_code == 0
    result = env.run_process("db", "check-migrations")
    assert result.returncode == 1
    assert "0002_log_extra" in result.stderr and "upgradedb" in result.stderr
    assert env.run_cli("upgradedb").exit_code == 0
    assert env.run_cli("db", "check-migrations").exit_code == 0


def test_downgradedb_asks_for_confirmation(env: Env) -> None:
    result = env.run_cli("downgradedb", "--to-revision", "base", input="n\n")
    assert result.exit_code == 1
    assert env.run_cli("db", "current").output.strip() == migrate.head_revision(env.db_url)


def test_resetdb_drops_data_and_reinitializes(env: Env) -> None:
    assert env.run_cli("resetdb", "-y").exit_code == 0
    with create_session() as session:
        events = session.scalars(select(Log.event)).all()
    assert events == ["cli_resetdb"]


def test_unreachable_database_is_one_line_with_password_masked(env: Env) -> None:
    bad = {**env.vars, "MINISCHED_DB_URL": "postgresql://admin:hunter2@127.0.0.1:1/nope"}
    for command in (["db", "check"], ["initdb"], ["upgradedb"], ["db", "current"]):
        result = _run(env, bad, *command)
        assert result.returncode == 1, command
        assert "hunter2" not in result.stderr + result.stdout
        assert "***" in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_malformed_url_and_unknown_revision(env: Env) -> None:
    result = _run(env, {**env.vars, "MINISCHED_DB_URL": "not a url"}, "db", "check")
    assert result.returncode == 1 and "invalid database URL" in result.stderr
    result = env.run_process("upgradedb", "--to-revision", "does_not_exist")
    assert result.returncode == 1
    assert "does_not_exist" in result.stderr and "Traceback" not in result.stderr


def test_config_prints_effective_settings_masked(env: Env) -> None:
    vars_ = {**env.vars, "MINISCHED_DB_URL": "postgresql://admin:hunter2@db.example/x"}
    result = _run(env, vars_, "config", "--output", "json")
    assert result.returncode == 0, result.stderr
    settings = {row["setting"]: row["value"] for row in json.loads(result.stdout)}
    assert settings["db_url"] == "postgresql://admin:***@db.example/x"
    assert settings["dags_folder"] == str(env.dags_folder)


def test_upgradedb_writes_an_audit_row(env: Env) -> None:
    assert env.run_cli("upgradedb").exit_code == 0
    with create_session() as session:
        row = session.scalars(select(Log).where(Log.event == "cli_upgradedb")).one()
    assert json.loads(row.extra or "{}") == {"to_revision": "heads"}
    assert row.owner


def _run(env: Env, vars_: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "minisched", *args],
        env={**os.environ, **vars_},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_commands_on_a_database_without_schema_say_to_run_initdb(bare_env: Env) -> None:
    for command in (["dags", "list"], ["pools", "list"], ["runs"], ["dags", "trigger", "x"]):
        result = bare_env.run_process(*command)
        assert result.returncode == 1, command
        assert "minisched initdb" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
