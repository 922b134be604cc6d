"""Commands run no user code and no user regex inside a database transaction: writers are never blocked.

Each test starts a real command, waits until it is inside the slow user part (a DAG file that waits
for a release file, a catastrophic regex), and then writes from another connection with a timeout.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

from sqlalchemy import create_engine, text

from minisched.dagfiles.loader import REFRESH_LOCK_KEY
from minisched.db.engine import parse_db_url
from tests.conftest import Env
from tests.scheduler.helpers import Procs, task_instances, wait_until

WRITE_TIMEOUT = 10.0


def _write_from_another_connection(env: Env) -> None:
    """A writer gets in within the timeout; on PostgreSQL, no connection is inside a transaction."""
    if env.db.backend == "sqlite":
        connection = sqlite3.connect(env.db.url.removeprefix("sqlite:///"), timeout=WRITE_TIMEOUT)
        try:
            connection.isolation_level = None
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO slot_pool (pool, slots) VALUES ('written_meanwhile', 1)")
            connection.execute("COMMIT")
        finally:
            connection.close()
        return
    engine = create_engine(parse_db_url(env.db.url))
    try:
        with engine.begin() as connection:
            connection.execute(text(f"SET LOCAL lock_timeout = '{int(WRITE_TIMEOUT)}s'"))
            assert connection.scalar(text(f"SELECT pg_try_advisory_xact_lock({REFRESH_LOCK_KEY})"))
            in_transaction = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
            )
            assert in_transaction == 0
            connection.execute(text("INSERT INTO slot_pool (pool, slots) VALUES ('written_meanwhile', 1)"))
    finally:
        engine.dispose()


def test_dags_list_with_a_slow_file_holds_no_transaction(env: Env, procs: Procs, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    env.write_dag(
        "slow.py",
        textwrap.dedent(
            f"""\
            import os, time
            from datetime import datetime, timezone
            from minisched import DAG, BashOperator

            open({str(started)!r}, "w").close()
            for _ in range(3000):
                if os.path.exists({str(release)!r}):
                    break
                time.sleep(0.02)
            with DAG("slow", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
                BashOperator(task_id="t", bash_command="echo")
            """
        ),
    )
    listing = procs.start("dags", "list", "--output", "json")
    wait_until(started.exists, message="the slow DAG file to start importing")
    _write_from_another_connection(env)
    release.write_text("")
    assert listing.wait() == 0, listing.output()
    assert '"dag_id": "slow"' in listing.output()


def test_dags_list_of_another_folder_lists_it_and_deactivates_nothing(env: Env, tmp_path: Path) -> None:
    source = "from minisched import DAG\n"
    env.write_dag("home_dag.py", source + "DAG('home_dag', schedule=None)\n")
    assert env.run_cli("dags", "list").exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "other_dag.py").write_text(source + "DAG('other_dag', schedule=None)\n")
    listed = env.run_cli("dags", "list", "--dags-folder", str(other), "--output", "json")
    assert [row["dag_id"] for row in json.loads(listed.stdout)] == ["other_dag"]
    everything = json.loads(env.run_cli("dags", "list", "--output", "json").stdout)
    assert sorted(row["dag_id"] for row in everything) == ["home_dag", "other_dag"]


def _regex_child(pid: int) -> bool:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return False
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"user_regex.py" in cmdline:
            return True
    return False


def test_a_catastrophic_task_regex_is_stopped_outside_any_transaction(env: Env, procs: Procs) -> None:
    slow_id = "a" * 40 + "_x"  # `(a+)+$` backtracks exponentially on it
    env.write_dag(
        "pipeline.py",
        textwrap.dedent(
            f"""\
            from datetime import datetime, timezone
            from minisched import DAG, BashOperator

            with DAG("pipeline", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
                BashOperator(task_id={slow_id!r}, bash_command="echo")
            """
        ),
    )
    assert env.run_cli("dags", "test", "pipeline", "2024-01-01").exit_code == 0
    clear = procs.start("tasks", "clear", "pipeline", "--task-regex", "(a+)+$", "-y")
    wait_until(lambda: _regex_child(clear.pid), message="the regex to be matched in a child process")
    _write_from_another_connection(env)
    assert clear.wait() == 1
    lines = clear.output().strip().splitlines()
    assert len(lines) == 1 and "took longer than 2 s" in lines[0] and "(a+)+$" in lines[0], lines
    assert [(ti.task_id, ti.state) for ti in task_instances("pipeline")] == [(slow_id, "success")]
