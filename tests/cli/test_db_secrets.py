"""The database's secrets: a password with '@' in the URL, the SQLite file's mode, masked audit rows."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from minisched.db.engine import parse_db_url
from tests.conftest import PG_ENV, Env, _pg_execute, _require_pg


def _minisched(
    home: Path, db_url: str, *args: str, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MINISCHED_") or k == PG_ENV}
    environ |= {"MINISCHED_HOME": str(home), "MINISCHED_DB_URL": db_url}

    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "minisched", *args],
        env=environ,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=set_umask,
    )


def test_a_password_with_an_unencoded_at_sign_is_refused(tmp_path: Path) -> None:
    url = "postgresql://someone:p@ss-word@127.0.0.1:1/x"
    result = _minisched(tmp_path, url, "db", "check")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "URL-encode it" in lines[0], result.stderr
    assert "ss-word" not in result.stderr and "p@" not in result.stderr


def test_a_url_encoded_password_with_an_at_sign_works(tmp_path: Path) -> None:
    admin_url = _require_pg()
    role, database, password = (
        f"minisched_at_{uuid.uuid4().hex[:8]}",
        f"minisched_at_{uuid.uuid4().hex[:8]}",
        "p@ss:w/rd",
    )
    _pg_execute(
        admin_url,
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}'",
        f"CREATE DATABASE {database} OWNER {role}",
    )
    try:
        admin = make_url(admin_url)
        url = f"postgresql://{role}:p%40ss%3Aw%2Frd@{admin.host}:{admin.port}/{database}"
        assert parse_db_url(url).password == password
        initdb = _minisched(tmp_path, url, "initdb")
        assert initdb.returncode == 0, initdb.stderr
        pools = _minisched(tmp_path, url, "pools", "list", "--output", "json")
        assert pools.returncode == 0, pools.stderr
        assert [row["pool"] for row in json.loads(pools.stdout)] == ["default_pool"]
        config = _minisched(tmp_path, url, "config")
        assert f"{role}:***@{admin.host}" in config.stdout and "p%40ss" not in config.stdout
    finally:
        _pg_execute(
            admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f"DROP ROLE IF EXISTS {role}"
        )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    home = tmp_path / "home"
    database = home / "minisched.db"
    result = _minisched(home, f"sqlite:///{database}", "initdb", umask=0)
    assert result.returncode == 0, result.stderr
    assert _mode(database) == 0o600
    assert _mode(home) == 0o700
    written = _minisched(home, f"sqlite:///{database}", "pools", "set", "p", "2", umask=0)
    assert written.returncode == 0, written.stderr
    for sidecar in (home / "minisched.db-wal", home / "minisched.db-shm"):
        if sidecar.exists():
            assert _mode(sidecar) == 0o600, sidecar

    database.chmod(0o644)  # made by an older version: tightened on next use
    assert _minisched(home, f"sqlite:///{database}", "pools", "list", umask=0).returncode == 0
    assert _mode(database) == 0o600


def test_a_large_description_and_conf_are_stored_and_masked(env: Env) -> None:
    """~120 KB (close to Linux's 128 KB limit for one argument) went through a quadratic masker."""
    from tests.scheduler.helpers import dag_runs, dag_source, log_rows

    secret = "postgresql://bob:hunter2@db.example/prod"
    text = ("letters" * 17_000) + f" {secret} " + ("x://y:" * 1_000)
    assert env.run_cli("pools", "set", "big", "1", "--description", text).exit_code == 0
    [row] = log_rows(None, event="cli_pools_set")
    extra = json.loads(row.extra)
    assert "hunter2" not in row.extra and "bob:***@db.example" in extra["description"]
    assert len(extra["description"]) == len(text) - len("hunter2") + 3

    env.write_dag(
        "d.py",
        dag_source(
            'with DAG("d", schedule=None, start_date=START):\n'
            '    BashOperator(task_id="t", bash_command="true")\n'
        ),
    )
    assert env.run_cli("dags", "list").exit_code == 0
    conf = {"blob": text, "nested": {"password": "s3cr3t"}}
    trigger = env.run_process("dags", "trigger", "d", "--conf", json.dumps(conf))
    assert trigger.returncode == 0, trigger.stderr
    [run] = dag_runs("d")
    assert run.conf == conf
    [audit] = log_rows("d", event="cli_dags_trigger")
    assert "hunter2" not in audit.extra and "s3cr3t" not in audit.extra
