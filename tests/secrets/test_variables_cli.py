"""`minisched variables ...`: values encrypted at rest, env first, imports all or nothing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.secrets.helpers import cli_fails, cli_ok, raw_rows


def test_set_get_list_delete(secrets_env: Env) -> None:
    env = secrets_env
    assert cli_ok(env, "variables", "set", "region", "eu-west-1", "--description", "where") == (
        "Created variable region\n"
    )
    assert cli_ok(env, "variables", "set", "region", "us-east-2") == "Updated variable region\n"
    cli_ok(env, "variables", "set", "limits", '{"rows": 5}')
    assert cli_ok(env, "variables", "get", "region") == "us-east-2\n"
    assert json.loads(cli_ok(env, "variables", "get", "limits", "--json")) == {"rows": 5}
    assert json.loads(cli_ok(env, "variables", "list", "-o", "json")) == [
        {"key": "limits", "description": None},
        {"key": "region", "description": "where"},
    ]
    table = cli_ok(env, "variables", "list", "--output", "table").splitlines()
    assert [[cell.strip() for cell in line.split("|")] for line in (table[0], *table[2:])] == [
        ["key", "description"],
        ["limits", ""],
        ["region", "where"],
    ]
    assert "us-east-2" not in "\n".join(table)  # a listing never shows values
    cli_ok(env, "variables", "delete", "region")
    assert "variable 'region' is not set" in cli_fails(env, "variables", "get", "region", one_line=True)
    assert cli_ok(env, "variables", "get", "region", "--default", "none") == "none\n"
    assert "does not exist" in cli_fails(env, "variables", "delete", "region", one_line=True)
    events = [event for (event,) in raw_rows("SELECT event FROM log WHERE event LIKE 'cli_variables%'")]
    assert events == ["cli_variables_set"] * 3 + ["cli_variables_delete"]


def test_value_is_encrypted_and_never_audited(secrets_env: Env) -> None:
    cli_ok(secrets_env, "variables", "set", "api_token", "tok-secret-123")
    [(stored,)] = raw_rows("SELECT val FROM variable")
    assert "tok-secret-123" not in str(stored) and str(stored).startswith("gAAAA")
    assert "tok-secret-123" not in str(raw_rows("SELECT extra FROM log"))


def test_environment_variable_comes_first(secrets_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    cli_ok(secrets_env, "variables", "set", "stage", "db")
    secrets_env.vars["MINISCHED_VAR_STAGE"] = "env"
    monkeypatch.setenv("MINISCHED_VAR_STAGE", "env")
    assert cli_ok(secrets_env, "variables", "get", "stage") == "env\n"


def test_export_import_round_trip_and_all_or_nothing(secrets_env: Env, tmp_path: Path) -> None:
    env = secrets_env
    cli_ok(env, "variables", "set", "plain", "text")
    cli_ok(env, "variables", "set", "described", "42", "--description", "the answer")
    path = tmp_path / "variables.json"
    cli_ok(env, "variables", "export", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "described": {"value": "42", "description": "the answer"},
        "plain": "text",
    }
    for key in ("plain", "described"):
        cli_ok(env, "variables", "delete", key)
    cli_ok(env, "variables", "import", str(path))
    assert cli_ok(env, "variables", "get", "described") == "42\n"
    [(imported,)] = raw_rows("SELECT extra FROM log WHERE event = 'cli_variables_import'")
    assert json.loads(str(imported))["keys"] == ["described", "plain"] and "the answer" not in str(imported)
    assert {"key": "described", "description": "the answer"} in json.loads(
        cli_ok(env, "variables", "list", "-o", "json")
    )

    structured = tmp_path / "structured.json"
    structured.write_text(json.dumps({"nums": [1, 2], "flag": True}))
    cli_ok(env, "variables", "import", str(structured))
    assert json.loads(cli_ok(env, "variables", "get", "nums", "-j")) == [1, 2]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fine": "x", "": "empty key"}))
    assert "invalid variable key" in cli_fails(env, "variables", "import", str(bad), one_line=True)
    assert raw_rows("SELECT count(*) FROM variable WHERE key = 'fine'") == [(0,)]
    assert raw_rows("SELECT count(*) FROM log WHERE event = 'cli_variables_import'") == [
        (2,)
    ]  # not the failed one
