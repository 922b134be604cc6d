"""Real DAG files run by the real scheduler read connections and variables; their logs show `***`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text

from minisched.db.session import create_session
from tests.conftest import Env
from tests.scheduler.helpers import Procs, dag_source, run_to_end, ti_states
from tests.secrets.conftest import new_key, use_keys

PASSWORD = 'p@ss"w/rd&x-42'
TOKEN = "tok-7f3a9c"
ENV_PASSWORD = "env-pw-31337"
#: The metadata database's password (PostgreSQL; the test server trusts every local login, so any works).
DB_PASSWORD = "db-pw-27182"

DAG = """
import json, logging, shlex, subprocess, urllib.parse
from minisched import BaseHook, Connection, Variable
from minisched.settings import get_settings

def read_secrets():
    conn = BaseHook.get_connection("warehouse")
    print("raw", conn.password, "host", conn.host, "port", conn.port, "extra", conn.extra_dejson)
    print("quoted", urllib.parse.quote(conn.password, safe=""))
    print("json", json.dumps({"password": conn.password}))
    print("uri", conn.get_uri())
    logging.getLogger("task").info("logged %s", conn.password)
    print("token", Variable.get("api_token"))
    print("region", Variable.get("region"))
    print("absent", Variable.get("absent", default_var="fallback"))
    print("limits", Variable.get("limits", deserialize_json=True)["rows"])
    print("env password", Connection.get("from_env").password)
    print("stage", Variable.get("stage"))
    print("short", Variable.get("short_token"), "five", Variable.get("five_token"))
    print("db password", urllib.parse.urlsplit(get_settings().db_url).password)
    # Straight to fd 1 from child processes, bypassing Python's streams.
    os.system("echo from a shell: " + shlex.quote(conn.password))
    subprocess.run(["printf", "from printf: %s\\n", conn.password], check=True)
    Variable.set("seen_region", Variable.get("region"), description="written by a task")

def leak_in_error():
    raise ValueError("cannot log in with " + Connection.get("warehouse").password)

with DAG("secrets", schedule=None, start_date=START) as dag:
    PythonOperator(task_id="read", python_callable=read_secrets)
    PythonOperator(task_id="leak", python_callable=leak_in_error)
"""


@pytest.fixture
def keyed(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from minisched import masking

    use_keys(env, monkeypatch, new_key())
    yield env
    masking.forget_all()


def _log(env: Env, task_id: str, dag_id: str = "secrets") -> str:
    """The latest try's log of `task_id` in the DAG's only run."""
    result = env.run_cli("tasks", "logs", dag_id, _run_id(dag_id), task_id)
    assert result.exit_code == 0, result.output
    return result.stdout


def _run_id(dag_id: str) -> str:
    with create_session() as session:
        query = text("SELECT run_id FROM dag_run WHERE dag_id = :dag_id")
        return str(session.execute(query, {"dag_id": dag_id}).scalar_one())


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_a_task_reads_secrets_and_its_log_masks_them(keyed: Env, procs: Procs, executor: str) -> None:
    env = keyed
    env.write_dag("secrets.py", dag_source(DAG))
    uri = f"postgres://svc:{quote(PASSWORD, safe='')}@db.example:5432/dwh?sslmode=require"
    for args in (
        ("connections", "add", "warehouse", "--conn-uri", uri),
        ("variables", "set", "api_token", TOKEN),
        ("variables", "set", "region", "eu-west-1"),
        ("variables", "set", "limits", '{"rows": 7}'),
        ("variables", "set", "short_token", "abcd"),  # under 5 characters: not masked, as in Airflow
        ("variables", "set", "five_token", "abcde"),
        ("variables", "set", "stage", "from-the-database"),
        ("dags", "list"),
        ("dags", "trigger", "secrets"),
    ):
        result = env.run_cli(*args)
        assert result.exit_code == 0, result.output
    env.vars["MINISCHED_CONN_FROM_ENV"] = json.dumps({"conn_type": "http", "password": ENV_PASSWORD})
    env.vars["MINISCHED_VAR_STAGE"] = "from-the-environment"  # read before the database

    db_url = env.db_url
    if env.db.backend == "postgresql":
        db_url = db_url.replace("postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@", 1)
        assert DB_PASSWORD in db_url
    run_to_end(procs, "secrets", extra_env={"MINISCHED_EXECUTOR": executor, "MINISCHED_DB_URL": db_url})

    assert ti_states("secrets") == {"read": "success", "leak": "failed"}
    read = _log(env, "read")
    assert "host db.example port 5432 extra {'sslmode': 'require'}" in read
    assert "region eu-west-1" in read and "absent fallback" in read and "limits 7" in read
    for line in ("raw ***", "quoted ***", 'json {"password": "***"}', "logged ***", "token ***"):
        assert line in read, read
    assert "env password ***" in read
    assert "short abcd five ***" in read and "stage from-the-environment" in read
    assert ("db password ***" if env.db.backend == "postgresql" else "db password None") in read
    assert "from a shell: ***" in read and "from printf: ***" in read
    assert env.run_cli("variables", "get", "seen_region").stdout == "eu-west-1\n"
    assert "uri postgres://svc:***@db.example:5432/dwh?sslmode=require" in read
    leak = _log(env, "leak")
    assert "ValueError: cannot log in with ***" in leak
    for secret in (
        PASSWORD,
        quote(PASSWORD, safe=""),
        json.dumps(PASSWORD)[1:-1],
        TOKEN,
        ENV_PASSWORD,
        DB_PASSWORD,
    ):
        assert secret not in read and secret not in leak
    with create_session() as session:
        audit = [str(row) for row in session.execute(text("SELECT event, extra FROM log"))]
    assert any("cannot log in with ***" in row for row in audit), audit
    assert not any(PASSWORD in row or TOKEN in row for row in audit)
    # The task's change to a variable is audited, naming the try and the key, never the value.
    with create_session() as session:
        changed = session.execute(
            text("SELECT dag_id, task_id, try_number, extra FROM log WHERE event = 'task_variable_set'")
        ).all()
    assert [tuple(row) for row in changed] == [("secrets", "read", 1, '{"key": "seen_region"}')]


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "variables_connections.py"


@pytest.mark.slow
def test_the_example_runs_without_its_variable_and_connection_then_with_them(
    keyed: Env, procs: Procs
) -> None:
    env = keyed
    shutil.copy(EXAMPLE, env.dags_folder / EXAMPLE.name)
    [first] = run_to_end(procs, "example_variables_connections")
    assert first.state == "success"
    log = _log(env, "read_settings", "example_variables_connections")
    assert "exporting up to 100 rows from region eu-west-1" in log
    warehouse = _log(env, "check_warehouse", "example_variables_connections")
    assert "checking the warehouse for 100 rows from region eu-west-1" in warehouse  # the upstream's value
    assert "is not defined; nothing to check" in warehouse

    for args in (
        ("variables", "set", "example_region", "us-east-2"),
        (
            "connections",
            "add",
            "example_warehouse",
            "--conn-uri",
            "postgres://etl:s3cret-pw@db.example:5432/dwh",
        ),
        ("tasks", "clear", "example_variables_connections", "-y"),
    ):
        result = env.run_cli(*args)
        assert result.exit_code == 0, result.output
    run_to_end(procs, "example_variables_connections")
    assert ti_states("example_variables_connections") == {
        "read_settings": "success",
        "check_warehouse": "success",
    }
    log = _log(env, "read_settings", "example_variables_connections")
    assert "region us-east-2" in log
    warehouse = _log(env, "check_warehouse", "example_variables_connections")
    assert "checking the warehouse for 100 rows from region us-east-2" in warehouse
    assert "would connect to db.example:5432 as etl" in warehouse
    assert "with password *** (masked in this log) via postgres://etl:***@db.example:5432/dwh" in warehouse
    assert "s3cret-pw" not in warehouse


PEEK_DAG = """
import subprocess

def peek():
    print("python sees the db url:", "MINISCHED_DB_URL" in os.environ)
    print("python sees the token:", os.environ.get("MINISCHED_CANARY_TOKEN"))
    child = subprocess.run(["env"], capture_output=True, text=True, check=True).stdout
    names = [line.split("=")[0] for line in child.splitlines()]
    print("a child sees:", sorted(name for name in names if "CANARY" in name or "DB_URL" in name))

with DAG("peek", schedule=None, start_date=START) as dag:
    PythonOperator(task_id="peek", python_callable=peek)
"""


def test_dags_test_and_tasks_test_run_tasks_without_minischeds_credentials(env: Env) -> None:
    """Tries run in the CLI's own process see the environment a scheduler's worker gives them."""
    env.write_dag("peek.py", dag_source(PEEK_DAG))
    env.vars["MINISCHED_CANARY_TOKEN"] = "canary-5150"
    tested = env.run_process("tasks", "test", "peek", "peek", "2024-03-01")
    assert tested.returncode == 0, tested.stderr
    ran = env.run_process("dags", "test", "peek", "2024-03-01")
    assert ran.returncode == 0, ran.stderr
    dag_log = next(env.logs_folder.glob("dag_id=peek/run_id=*/task_id=peek/attempt=1.log")).read_text()
    for output in (tested.stdout, dag_log):
        assert "python sees the db url: False" in output, output
        assert "python sees the token: None" in output, output
        assert "a child sees: []" in output, output
        assert "canary-5150" not in output
