"""Connections and variables through the API (admin only): a password is never returned, secret
extras and sensitive variables are masked, changes are audited; a try's XCom entries."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tests.api.conftest import Api, write_dag


def json_of(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_connections_crud_never_return_the_password(api: Api) -> None:
    from minisched.db.session import create_session
    from minisched.models import Connection, Log

    body = {
        "connection_id": "warehouse",
        "conn_type": "postgres",
        "host": "db.internal",
        "login": "etl",
        "password": "s3cr3t-pw",
        "port": 5432,
        "schema": "analytics",
        "extra": '{"sslmode": "require", "api_token": "tok-123"}',
    }
    url = "/api/v1/connections"
    created = json_of(api.client.post(url, json=body, headers=api.headers("admin")))
    assert "password" not in created and "s3cr3t-pw" not in str(created) and "tok-123" not in str(created)
    assert created["schema"] == "analytics" and created["port"] == 5432
    assert created["extra"] == '{"api_token": "***", "sslmode": "require"}'
    with create_session() as session:
        stored = session.scalar(select(Connection.password).where(Connection.conn_id == "warehouse"))
    assert stored and "s3cr3t-pw" not in stored
    assert api.client.post(url, json=body, headers=api.headers("admin")).status_code == 409
    listed = json_of(api.client.get(url, headers=api.headers("admin")))
    assert listed["total_entries"] == 1 and "s3cr3t-pw" not in str(listed)
    patched = json_of(
        api.client.patch(
            f"{url}/warehouse", json={**body, "host": "db2.internal"}, headers=api.headers("admin")
        )
    )
    assert patched["host"] == "db2.internal"
    bad_port = api.client.post(
        url, json={**body, "connection_id": "x", "port": 70000}, headers=api.headers("admin")
    )
    assert bad_port.status_code == 400
    assert api.client.delete(f"{url}/warehouse", headers=api.headers("admin")).status_code == 204
    assert api.client.get(f"{url}/warehouse", headers=api.headers("admin")).status_code == 404
    with create_session() as session:
        events = list(session.scalars(select(Log.event).where(Log.owner == "admin-user").order_by(Log.id)))
        extras = " ".join(session.scalars(select(Log.extra).where(Log.owner == "admin-user")))
    assert events == ["api_connection_set", "api_connection_set", "api_connection_delete"]
    assert "s3cr3t-pw" not in extras


def test_nested_secret_extras_are_masked_and_patch_changes_only_what_it_is_given(api: Api) -> None:
    from minisched.db.connections import read_connection

    url = "/api/v1/connections"
    extra = {
        "region": "eu",
        "auth": {"client_secret": "cs-4455", "user": "bob"},
        "hosts": [{"name": "h1", "api_key": "ak-1122"}],
        "private_key": {"pem": "pem-7788"},
        "token": "",
    }
    body = {"connection_id": "wh", "conn_type": "http", "host": "a", "password": "pw-3141", "port": 1}
    created = json_of(api.client.post(url, json={**body, "extra": json.dumps(extra)}, headers=api.headers()))
    shown = json.loads(created["extra"])
    assert shown == {
        "region": "eu",
        "auth": {"client_secret": "***", "user": "bob"},
        "hosts": [{"name": "h1", "api_key": "***"}],
        "private_key": "***",
        "token": "",
    }
    for secret in ("cs-4455", "ak-1122", "pem-7788", "pw-3141"):
        assert secret not in json.dumps(json_of(api.client.get(url, headers=api.headers())))

    # Without update_mask, only the fields given change: the password is not wiped.
    patched = json_of(api.client.patch(f"{url}/wh", json={"host": "b"}, headers=api.headers()))
    assert (patched["host"], patched["port"], patched["conn_type"]) == ("b", 1, "http")
    assert read_connection("wh")["password"] == "pw-3141"  # type: ignore[index]
    # With update_mask, only the fields it names, even when the body gives more.
    masked = api.client.patch(
        f"{url}/wh?update_mask=port", json={"port": 2, "host": "c", "password": None}, headers=api.headers()
    )
    assert (json_of(masked)["port"], json_of(masked)["host"]) == (2, "b")
    stored = read_connection("wh")
    assert stored is not None and stored["password"] == "pw-3141"
    # The extra sent back as shown keeps the stored secrets where it says ***.
    shown["region"] = "us"
    json_of(api.client.patch(f"{url}/wh", json={"extra": json.dumps(shown)}, headers=api.headers()))
    stored = read_connection("wh")
    assert stored is not None and json.loads(stored["extra"]) == {**extra, "region": "us"}
    cleared = api.client.patch(
        f"{url}/wh?update_mask=password", json={"password": None}, headers=api.headers()
    )
    assert json_of(cleared)["host"] == "b" and read_connection("wh")["password"] is None  # type: ignore[index]

    for query, patch, message in (
        ("?update_mask=bogus", {"host": "d"}, "'bogus'"),
        ("?update_mask=host", {"port": 3}, "'host'"),
        ("", {"connection_id": "other"}, "cannot be changed"),
        ("", {"conn_id": "x"}, "conn_id"),
    ):
        refused = api.client.patch(f"{url}/wh{query}", json=patch, headers=api.headers())
        assert refused.status_code == 400 and message in refused.json()["detail"], refused.text
    assert json_of(api.client.get(f"{url}/wh", headers=api.headers()))["host"] == "b"


def test_variables_crud_masks_sensitive_values(api: Api) -> None:
    url = "/api/v1/variables"
    plain = json_of(
        api.client.post(url, json={"key": "region", "value": "eu-west-1"}, headers=api.headers("admin"))
    )
    assert plain == {"key": "region", "value": "eu-west-1", "description": None}
    secret = json_of(
        api.client.post(url, json={"key": "db_password", "value": "hunter2"}, headers=api.headers("admin"))
    )
    assert secret["value"] == "***"
    listed = json_of(api.client.get(url, headers=api.headers("admin")))
    assert [v["key"] for v in listed["variables"]] == ["db_password", "region"] and "hunter2" not in str(
        listed
    )
    changed = json_of(
        api.client.patch(
            f"{url}/region",
            json={"key": "region", "value": "us-east-1", "description": "where"},
            headers=api.headers("admin"),
        )
    )
    assert changed == {"key": "region", "value": "us-east-1", "description": "where"}
    assert api.client.delete(f"{url}/region", headers=api.headers("admin")).status_code == 204
    assert api.client.get(f"{url}/region", headers=api.headers("admin")).status_code == 404


def test_xcom_entries_of_a_try(api: Api) -> None:
    write_dag(api.env)
    assert api.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    run_id = json_of(api.get("/dags/demo/dagRuns"))["dag_runs"][0]["dag_run_id"]
    # extract returned {"rows": 3}: the try's result stored it
    base = f"/dags/demo/dagRuns/{run_id}/taskInstances/extract/xcomEntries"
    entries = json_of(api.get(base))
    assert entries["total_entries"] == 1 and entries["xcom_entries"][0]["key"] == "return_value"
    entry = json_of(api.get(f"{base}/return_value"))
    assert json.loads(entry["value"]) == {"rows": 3}
    assert api.get(f"{base}/nope").status_code == 404
