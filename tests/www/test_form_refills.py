"""A refused UI form loses nothing: it comes back as a 400 page with one error and every field as it
was typed -- except a secret (a connection's password, a sensitive variable's value), which is never
echoed: its field comes back empty with a note to type it again. And nothing is stored, audit row
included."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from markupsafe import escape

from tests.api.conftest import write_dag
from tests.secrets.conftest import new_key, use_keys
from tests.www.conftest import Browser


@dataclass(frozen=True)
class Refusal:
    """A form post the UI refuses, the error it must show and the field (if any) never echoed."""

    path: str
    data: dict[str, str]
    error: str
    secret: str | None = None
    kept: tuple[str, ...] = field(default=())


def _stored() -> dict[str, list[tuple[Any, ...]]]:
    """Every row a form could write, whole (an encrypted value changes when it is written again)."""
    from sqlalchemy import select

    from minisched.db.session import create_session
    from minisched.models import Connection, DagRun, Log, Pool, Variable

    queries = {
        "pool": select(Pool.pool, Pool.slots, Pool.description),
        "variable": select(Variable.key, Variable.val, Variable.description),
        "connection": select(Connection.conn_id, Connection.password, Connection.extra),
        "dag_run": select(DagRun.dag_id, DagRun.run_id),
        "log": select(Log.id),
    }
    with create_session() as session:
        return {name: sorted(tuple(row) for row in session.execute(query)) for name, query in queries.items()}


def _shows(html: str, name: str, value: str) -> bool:
    """Whether the form field `name` holds `value` (an input's value or a textarea's text)."""
    tag = _field(html, name)
    shown = str(escape(value))
    if tag.startswith("<textarea"):
        return tag.endswith(f">{shown}</textarea>")
    return f'value="{shown}"' in tag or (not value and "value=" not in tag)


def _field(html: str, name: str) -> str:
    found = re.findall(
        rf'<input[^>]*\bname="{name}"[^>]*>|<textarea[^>]*\bname="{name}"[^>]*>[^<]*</textarea>', html
    )
    assert len(found) == 1, (name, found)
    return str(found[0])


def _assert_refused(browser: Browser, refusal: Refusal) -> None:
    before = _stored()
    response = browser.post(refusal.path, refusal.data)
    where = (refusal.path, refusal.error)
    assert response.status_code == 400, (*where, response.status_code)
    assert "text/html" in response.headers["content-type"]
    html = response.text
    errors = re.findall(r'<div class="error-box"[^>]*>(.*?)</div>', html, re.S)
    assert len(errors) == 1 and refusal.error in errors[0], (*where, errors)
    for name in refusal.kept or [name for name in refusal.data if name != refusal.secret]:
        assert _shows(html, name, refusal.data[name]), (*where, name)
    if refusal.secret:
        secret = refusal.data[refusal.secret]
        assert secret not in html and str(escape(secret)) not in html, where
        assert f'id="{refusal.secret}-note"' in html and "type it again" in html, where
        assert _shows(html, refusal.secret, ""), where
    else:
        assert "type it again" not in html, where
    assert _stored() == before, where


@pytest.fixture
def admin(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> Browser:
    use_keys(browser.env, monkeypatch, new_key())
    browser.login("admin")
    return browser


def test_a_refused_pool_form_keeps_what_was_typed(admin: Browser) -> None:
    assert admin.post("/pools", {"name": "etl", "slots": "4", "description": "nightly"}).status_code == 303
    for refusal in [
        Refusal("/pools", {"name": "etl2", "slots": "four", "description": "new"}, "is not a whole number"),
        Refusal("/pools", {"name": "etl2", "slots": str(2**31), "description": "big"}, "use 0 to 2147483647"),
        Refusal("/pools", {"name": "bad name!", "slots": "3", "description": "d"}, "invalid pool name"),
        Refusal("/pools", {"name": "", "slots": "3", "description": "no name"}, "invalid pool name"),
        # Changing a pool that exists: the stored pool stays as it was.
        Refusal("/pools", {"name": "etl", "slots": "-1", "description": "changed"}, "use 0 to 2147483647"),
        Refusal("/pools", {"name": "etl", "slots": "8", "description": "a\0b"}, "NUL character"),
    ]:
        _assert_refused(admin, refusal)
    edit = admin.client.get("/pools", params={"edit": "etl"}).text
    assert (
        _shows(edit, "name", "etl") and _shows(edit, "slots", "4") and _shows(edit, "description", "nightly")
    )


def test_a_refused_variable_form_keeps_what_was_typed_but_never_a_sensitive_value(admin: Browser) -> None:
    for key, value in [("region", "eu-west"), ("db_password", "old-secret-1")]:
        assert admin.post("/variables", {"key": key, "value": value, "description": ""}).status_code == 303
    too_long = "x" * 251
    for refusal in [
        Refusal("/variables", {"key": too_long, "value": "plain", "description": "d"}, "use 1 to 250"),
        Refusal("/variables", {"key": "", "value": "some <value>", "description": "d"}, "use 1 to 250"),
        Refusal("/variables", {"key": "region", "value": "us-east", "description": "a\0b"}, "NUL character"),
        # The key says secret (the masking rule's words): the value never comes back into the page.
        Refusal(
            "/variables",
            {"key": f"api_key_{too_long}", "value": "hunter2-secret", "description": "for the CRM"},
            "use 1 to 250",
            secret="value",
        ),
        Refusal(
            "/variables",
            {"key": "db_password", "value": "new-secret-2", "description": "a\0b"},
            "NUL character",
            secret="value",
        ),
    ]:
        _assert_refused(admin, refusal)
    edit = admin.client.get("/variables", params={"edit": "db_password"}).text
    assert "old-secret-1" not in edit and 'id="value-note"' in edit and _shows(edit, "value", "")
    plain = admin.client.get("/variables", params={"edit": "region"}).text
    assert _shows(plain, "value", "eu-west") and 'id="value-note"' not in plain


def test_a_variable_key_made_sensitive_by_the_setting_is_never_echoed(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINISCHED_SENSITIVE_VAR_KEYS", "pin")
    use_keys(browser.env, monkeypatch, new_key())
    browser.login("admin")
    data = {"key": "card_pin" + "x" * 250, "value": "98765-4321", "description": "d"}
    _assert_refused(browser, Refusal("/variables", data, "use 1 to 250", secret="value"))


def test_a_refused_connection_form_keeps_what_was_typed_and_stores_nothing(admin: Browser) -> None:
    typed = {
        "conn_id": "warehouse",
        "conn_type": "postgres",
        "host": "db.example",
        "login": "etl",
        "password": "s3cret-pw",
        "port": "5432",
        "schema": "sales",
        "extra": "{}",
    }
    assert admin.post("/connections", typed).status_code == 303
    for refusal in [
        Refusal("/connections", {**typed, "conn_id": "c2", "extra": '{"a": 1'}, "not valid JSON", "password"),
        Refusal("/connections", {**typed, "conn_id": "c2", "port": "huge"}, "port", "password"),
        Refusal("/connections", {**typed, "password": "other-pw-2"}, "already exists", "password"),
        Refusal("/connections", {**typed, "conn_id": "c3", "conn_type": ""}, "needs a type", "password"),
        Refusal("/connections", {**typed, "conn_id": "my conn"}, "invalid connection id", "password"),
        Refusal("/connections", {**typed, "conn_id": ""}, "invalid connection id", "password"),
    ]:
        _assert_refused(admin, refusal)


def test_a_refused_trigger_keeps_the_conf_and_the_date(admin: Browser) -> None:
    write_dag(admin.env)
    assert admin.post("/dags/demo/trigger", {"conf": "{}", "logical_date": "2024-02-01"}).status_code == 303
    for refusal in [
        Refusal(
            "/dags/demo/trigger",
            {"conf": '{"table": "users"', "logical_date": "2024-02-02"},
            "not valid JSON",
        ),
        Refusal("/dags/demo/trigger", {"conf": '{"table": "users"}', "logical_date": "soon"}, "logical date"),
        Refusal(
            "/dags/demo/trigger", {"conf": '{"a": 1}', "logical_date": "2024-02-01"}, "already has a run"
        ),
    ]:
        _assert_refused(admin, refusal)


def test_forms_without_typed_fields_are_refused_with_one_error_and_store_nothing(admin: Browser) -> None:
    """Mark, clear and delete carry no typed text: their refusal is one error page, nothing stored."""
    write_dag(admin.env)
    assert admin.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    run = "/dags/demo/runs/manual__2024-03-01T00%3A00%3A00%2B00%3A00"
    before = _stored()
    for path, data, status, error in [
        (f"{run}/mark", {"state": "bogus"}, 400, "bogus"),
        (f"{run}/tasks/load/mark", {"state": "bogus"}, 400, "bogus"),
        ("/dags/demo/clear", {"run_id": "nope", "task_id": "load"}, 404, "nope"),
        ("/pools/default_pool/delete", {}, 400, "default_pool cannot be deleted"),
    ]:
        response = admin.post(path, data)
        assert response.status_code == status and error in response.text, (path, response.status_code)
    assert _stored() == before
