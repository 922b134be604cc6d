"""`minisched connections ...`: stored encrypted, shown masked, audited without secrets, imported whole."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.secrets.helpers import cli_fails, cli_ok, raw_rows

URI = "postgresql://bob:s%40cret-pw9@db.example:5432/app?sslmode=require"
PASSWORD = "s@cret-pw9"


def test_add_from_uri_get_list_and_delete(secrets_env: Env) -> None:
    env = secrets_env
    assert cli_ok(env, "connections", "add", "warehouse", "--conn-uri", URI) == "Added connection warehouse\n"
    [shown] = json.loads(cli_ok(env, "connections", "get", "warehouse", "-o", "json"))
    assert shown == {
        "conn_id": "warehouse",
        "conn_type": "postgres",
        "description": None,
        "host": "db.example",
        "schema": "app",
        "login": "bob",
        "password": "***",
        "port": 5432,
        "extra": {"sslmode": "require"},
    }
    [revealed] = json.loads(cli_ok(env, "connections", "get", "warehouse", "--show-secrets", "-o", "json"))
    assert revealed["password"] == PASSWORD
    for table in (
        cli_ok(env, "connections", "list"),
        cli_ok(env, "connections", "get", "warehouse", "-o", "table"),
    ):
        header, _, row = ([cell.strip() for cell in line.split("|")] for line in table.splitlines())
        cells = dict(zip(header, row, strict=True))
        assert (cells["conn_id"], cells["password"], cells["host"]) == ("warehouse", "***", "db.example")
        assert PASSWORD not in table

    assert cli_ok(env, "connections", "delete", "warehouse") == "Deleted connection warehouse\n"
    assert json.loads(cli_ok(env, "connections", "list", "-o", "json")) == []
    assert "does not exist" in cli_fails(env, "connections", "delete", "warehouse")
    audit = raw_rows("SELECT event, extra FROM log WHERE event LIKE 'cli_connections%' ORDER BY id")
    assert [(event, json.loads(str(extra))["conn_id"]) for event, extra in audit] == [
        ("cli_connections_add", "warehouse"),
        ("cli_connections_delete", "warehouse"),  # the failed second delete changed nothing: no row
    ]
    assert PASSWORD not in str(audit)


def test_secrets_are_encrypted_in_the_row_and_absent_from_the_audit(secrets_env: Env) -> None:
    env = secrets_env
    extra = json.dumps({"api_key": "key-abcdef", "region": "eu-central-1"})
    cli_ok(
        env,
        *("connections", "add", "api", "--conn-type", "http", "--conn-host", "api.example"),
        *("--conn-login", "svc", "--conn-password", "hunter2-pw", "--conn-extra", extra),
    )
    [(password, stored_extra, host)] = raw_rows("SELECT password, extra, host FROM connection")
    assert host == "api.example"
    for secret in ("hunter2-pw", "key-abcdef", "eu-central-1"):
        assert secret not in str(password) and secret not in str(stored_extra)
    assert str(password).startswith("gAAAA")
    [shown] = json.loads(cli_ok(env, "connections", "get", "api", "-o", "json"))
    assert shown["extra"] == {"api_key": "***", "region": "eu-central-1"}
    audit = raw_rows("SELECT event, extra FROM log WHERE event LIKE 'cli_connections%'")
    assert [event for event, _ in audit] == ["cli_connections_add"]
    assert "hunter2-pw" not in str(audit) and "key-abcdef" not in str(audit)
    assert json.loads(str(audit[0][1]))["conn_id"] == "api"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conn-uri", "not a uri"], "is not a URI"),
        (["--conn-type", "http", "--conn-extra", "[1]"], "extra must be a JSON object"),
        (["--conn-json", '{"conn_type": "http", "hots": "x"}'], "unknown field(s) hots"),
        (["--conn-json", "{nope"], "invalid JSON"),
        (["--conn-uri", "http://h:99999/"], "port"),
    ],
)
def test_bad_input_is_one_line_and_stores_nothing(secrets_env: Env, args: list[str], message: str) -> None:
    error = cli_fails(secrets_env, "connections", "add", "bad", *args)
    assert message in error and len(error.strip().splitlines()) == 1
    assert raw_rows("SELECT count(*) FROM connection") == [(0,)]


def test_usage_errors_and_duplicates(secrets_env: Env) -> None:
    env = secrets_env
    cli_fails(env, "connections", "add", "x", code=2)
    cli_fails(env, "connections", "add", "x", "--conn-uri", URI, "--conn-host", "h", code=2)
    cli_ok(env, "connections", "add", "x", "--conn-uri", URI)
    assert "already exist" in cli_fails(env, "connections", "add", "x", "--conn-type", "http")
    assert "does not exist" in cli_fails(env, "connections", "get", "nope")
    assert "invalid connection id 'a b'" in cli_fails(env, "connections", "add", "a b", "--conn-type", "http")


def test_environment_connection_comes_first(secrets_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env = secrets_env
    cli_ok(env, "connections", "add", "shared", "--conn-uri", URI)
    monkeypatch.setenv("MINISCHED_CONN_SHARED", json.dumps({"conn_type": "http", "host": "env.example"}))
    env.vars["MINISCHED_CONN_SHARED"] = json.dumps({"conn_type": "http", "host": "env.example"})
    [shown] = json.loads(cli_ok(env, "connections", "get", "shared", "-o", "json"))
    assert (shown["conn_type"], shown["host"]) == ("http", "env.example")
    env.vars["MINISCHED_CONN_ONLY_ENV"] = "mysql://u:p4ssword@h:3306/s"
    monkeypatch.setenv("MINISCHED_CONN_ONLY_ENV", "mysql://u:p4ssword@h:3306/s")
    [only] = json.loads(cli_ok(env, "connections", "get", "only_env", "-o", "json"))
    assert (only["host"], only["port"], only["password"]) == ("h", 3306, "***")


def test_export_then_import_round_trips(secrets_env: Env, tmp_path: Path) -> None:
    env = secrets_env
    cli_ok(env, "connections", "add", "warehouse", "--conn-uri", URI, "--conn-description", "dwh")
    cli_ok(env, "connections", "add", "api", "--conn-type", "http", "--conn-extra", '{"a": [1, 2]}')
    before = json.loads(cli_ok(env, "connections", "list", "--show-secrets", "-o", "json"))
    path = tmp_path / "connections.json"
    cli_ok(env, "connections", "export", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["warehouse"]["password"] == PASSWORD
    for conn_id in ("warehouse", "api"):
        cli_ok(env, "connections", "delete", conn_id)

    assert cli_ok(env, "connections", "import", str(path)) == f"Imported 2 connection(s) from {path}\n"
    assert json.loads(cli_ok(env, "connections", "list", "--show-secrets", "-o", "json")) == before
    events = [event for (event,) in raw_rows("SELECT event FROM log WHERE event LIKE 'cli_connections%'")]
    assert events.count("cli_connections_import") == 1 and events.count("cli_connections_export") == 1


def test_import_is_all_or_nothing(secrets_env: Env, tmp_path: Path) -> None:
    env = secrets_env
    cli_ok(env, "connections", "add", "taken", "--conn-uri", URI)
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({"fresh": {"conn_type": "http"}, "taken": {"conn_type": "http"}}))
    assert "taken already exist" in cli_fails(env, "connections", "import", str(clash))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"fresh": {"conn_type": "http"}, "bad": {"conn_type": "http", "port": "x"}}))
    assert "port 'x' is not a number" in cli_fails(env, "connections", "import", str(broken))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2")
    assert "is not valid JSON" in cli_fails(env, "connections", "import", str(garbage))
    assert raw_rows("SELECT conn_id FROM connection") == [("taken",)]

    cli_ok(env, "connections", "import", str(clash), "--overwrite")
    assert raw_rows("SELECT conn_id, conn_type FROM connection ORDER BY conn_id") == [
        ("fresh", "http"),
        ("taken", "http"),
    ]
