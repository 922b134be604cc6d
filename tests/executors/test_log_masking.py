"""run_try masks what the try registered, and the metadata database password, in its log and error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from minisched import masking, settings
from minisched.scheduler.executors.task_runner import run_try
from tests.executors.helpers import log_text, request

DB_PASSWORD = "db-pass-2718"
#: Secrets at every depth: under a sensitive key, in a dict under a plain key, in a list of dicts.
EXTRA = {
    "private_key": "pk-998877",
    "auth": {"client_secret": "cs-445566", "user": "bob-the-user"},
    "hosts": [{"name": "h1", "api_key": "ak-112233"}],
    "credentials": {"key_id": "kid-667788", "pin": 77889911},
}
NESTED_SECRETS = ("cs-445566", "ak-112233", "kid-667788", "77889911")
SOURCE = """
from datetime import datetime, timezone
from minisched import DAG, BashOperator, PythonOperator, Connection
from minisched.settings import get_settings

def show():
    print("db url", get_settings().db_url)
    conn = Connection.get("api")
    print("api", conn.password, "extra", conn.extra)
    raise RuntimeError("gave up on " + conn.password)

with DAG("masked", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    PythonOperator(task_id="show", python_callable=show)
    BashOperator(task_id="bash_env", bash_command="echo bash sees $MINISCHED_DB_URL")
    BashOperator(task_id="bash", bash_command="echo bash prints postgresql://minisched:DB_PASSWORD@db.example/x")
""".replace("DB_PASSWORD", DB_PASSWORD)


@pytest.fixture
def masked_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MINISCHED_HOME", str(tmp_path))
    monkeypatch.setenv("MINISCHED_DB_URL", f"postgresql://minisched:{DB_PASSWORD}@db.example/minisched")
    monkeypatch.setenv(
        "MINISCHED_CONN_API",
        json.dumps({"conn_type": "http", "password": "api-pw-1414", "extra": EXTRA}),
    )
    settings.configure()
    path = tmp_path / "masked.py"
    path.write_text(SOURCE)
    yield path
    settings._current = None
    masking.forget_all()


def test_python_task_log_and_error_are_masked(masked_dag: Path) -> None:
    req = request(masked_dag, "show", dag_id="masked")
    result = run_try(req)
    assert (result.outcome, result.error) == ("failed", "RuntimeError: gave up on ***")
    log = log_text(req)
    assert "db url postgresql://minisched:***@db.example/minisched" in log
    assert (
        'api *** extra {"private_key": "***", "auth": {"client_secret": "***", "user": "bob-the-user"}' in log
    )
    assert '"hosts": [{"name": "h1", "api_key": "***"}]' in log
    assert "RuntimeError: gave up on ***" in log
    for secret in (DB_PASSWORD, "api-pw-1414", "pk-998877", *NESTED_SECRETS):
        assert secret not in log


def test_bash_does_not_even_see_the_database_url(masked_dag: Path) -> None:
    req = request(masked_dag, "bash_env", dag_id="masked")
    assert run_try(req).outcome == "success"
    log = log_text(req)
    assert "bash sees\n" in log and "db.example" not in log and DB_PASSWORD not in log


def test_bash_output_is_masked(masked_dag: Path) -> None:
    req = request(masked_dag, "bash", dag_id="masked")
    assert run_try(req).outcome == "success"
    log = log_text(req)
    assert "bash prints postgresql://minisched:***@db.example/x" in log and DB_PASSWORD not in log
