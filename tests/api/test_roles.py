"""Who may do what: every endpoint with no token, a wrong token, and each role."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, app_with, make_tokens, token_checker, write_dag
from tests.conftest import (
    Database,
    Env,
    _drop,
    _make_env,
    _new_database,
    _pg_admin_url,
    _pg_execute,
    _teardown_env,
    _with_database,
)
from tests.secrets.conftest import new_key, use_keys

ROLES = ("viewer", "op", "admin")
RUN = "/dags/demo/dagRuns/manual__2024-03-01T00:00:00+00:00"
MAPPED_RUN = "/dags/mapped_demo/dagRuns/manual__2024-03-01T00:00:00+00:00"
MAPPED_DAG = """
from datetime import datetime, timezone
from minisched import DAG, task

with DAG("mapped_demo", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    @task
    def double(x):
        return 2 * x

    double.expand(x=[1, 2])
"""
# (method, path, json body, least role that may call it)
ENDPOINTS = [
    ("GET", "/dags", None, "viewer"),
    ("GET", "/dags/demo", None, "viewer"),
    ("GET", "/dags/demo/tasks", None, "viewer"),
    ("GET", "/dags/demo/dagRuns", None, "viewer"),
    ("GET", RUN, None, "viewer"),
    ("GET", RUN + "/taskInstances", None, "viewer"),
    ("GET", RUN + "/taskInstances/extract", None, "viewer"),
    ("GET", RUN + "/taskInstances/extract/logs/1", None, "viewer"),
    ("GET", "/pools", None, "viewer"),
    ("GET", "/pools/default_pool", None, "viewer"),
    ("GET", "/dags/demo/tasks/extract", None, "viewer"),
    ("GET", "/importErrors", None, "viewer"),
    ("GET", "/importErrors/1", None, "viewer"),
    ("GET", "/eventLogs", None, "viewer"),
    ("GET", "/eventLogs/1", None, "viewer"),
    ("PATCH", "/dags/demo", {"is_paused": False}, "op"),
    ("POST", "/dags/demo/dagRuns", {"conf": {}}, "op"),
    ("PATCH", RUN, {"state": "success"}, "op"),
    ("POST", RUN + "/clear", {"dry_run": True}, "op"),
    ("PATCH", RUN + "/taskInstances/extract", {"new_state": "success", "dry_run": True}, "op"),
    ("POST", "/dags/demo/clearTaskInstances", {"dry_run": True}, "op"),
    ("POST", "/pools", {"name": "p_new", "slots": 1}, "op"),
    ("PATCH", "/pools/default_pool", {"slots": 128}, "op"),
    ("DELETE", "/pools/p_gone", None, "op"),
    ("GET", RUN + "/taskInstances/extract/xcomEntries", None, "viewer"),
    ("GET", MAPPED_RUN + "/taskInstances/double/1", None, "viewer"),
    ("PATCH", MAPPED_RUN + "/taskInstances/double/1", {"new_state": "success", "dry_run": True}, "op"),
    ("GET", RUN + "/taskInstances/extract/xcomEntries/return_value", None, "viewer"),
    ("GET", "/connections", None, "admin"),
    ("POST", "/connections", {"connection_id": "c_new", "conn_type": "http"}, "admin"),
    ("GET", "/connections/c_keep", None, "admin"),
    ("PATCH", "/connections/c_keep", {"connection_id": "c_keep", "conn_type": "ftp"}, "admin"),
    ("DELETE", "/connections/c_gone", None, "admin"),
    ("GET", "/variables", None, "admin"),
    ("POST", "/variables", {"key": "v_new", "value": "1"}, "admin"),
    ("GET", "/variables/v_keep", None, "admin"),
    ("PATCH", "/variables/v_keep", {"key": "v_keep", "value": "2"}, "admin"),
    ("DELETE", "/variables/v_gone", None, "admin"),
]
#: Answer without a token (tests/api/test_reads.py checks them).
PUBLIC = {("GET", "/health"), ("GET", "/version")}


@pytest.fixture
def demo(api: Api) -> Api:
    return _populate(api)


def _populate(api: Api) -> Api:
    """Two DAGs run once, an import error, and a pool, variables and connections to change or delete."""
    api.env.write_dag("broken.py", "def broken(:\n")
    write_dag(api.env)
    assert api.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    api.env.write_dag("mapped_demo.py", MAPPED_DAG)
    mapped = api.env.run_cli("dags", "test", "mapped_demo", "2024-03-01")
    assert mapped.exit_code == 0, mapped.output
    admin = api.headers("admin")
    api.client.post("/api/v1/pools", json={"name": "p_gone", "slots": 1}, headers=admin)
    for key in ("v_gone", "v_keep"):
        api.client.post("/api/v1/variables", json={"key": key, "value": "1"}, headers=admin)
    for conn_id in ("c_gone", "c_keep"):
        api.client.post(
            "/api/v1/connections", json={"connection_id": conn_id, "conn_type": "http"}, headers=admin
        )
    return api


@dataclass(frozen=True)
class _Snapshot:
    env: Env
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def _demo_snapshots() -> Iterator[dict[str, _Snapshot]]:
    """The demo state, built once per backend in this process; each matrix test gets its own copy of
    the database (the home folder, read-only to these tests, is shared)."""
    built: dict[str, _Snapshot] = {}
    yield built
    for snapshot in built.values():
        _drop(snapshot.env.db)


@pytest.fixture
def demo_copy(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    _templates: dict[str, str],
    _demo_snapshots: dict[str, _Snapshot],
) -> Iterator[Api]:
    """What `demo` gives, for the cost of a database copy: the matrix has 40 endpoints on 2 backends,
    and building the demo (two `dags test` runs) per test cost more than the tests themselves."""
    from minisched import masking

    if backend not in _demo_snapshots:
        _demo_snapshots[backend] = _build_snapshot(backend, tmp_path / "snapshot", monkeypatch, _templates)
    snapshot = _demo_snapshots[backend]
    database = _copy(snapshot.env.db, tmp_path)
    env = replace(snapshot.env, db=database, vars={**snapshot.env.vars, "MINISCHED_DB_URL": database.url})
    _configure(env, monkeypatch)
    try:
        with TestClient(app_with(token_checker()), raise_server_exceptions=True) as client:
            yield Api(client, snapshot.tokens, env)
    finally:
        masking.forget_all()
        _teardown_env()
        _drop(database)


def _build_snapshot(
    backend: str, folder: Path, monkeypatch: pytest.MonkeyPatch, templates: dict[str, str]
) -> _Snapshot:
    folder.mkdir()
    env = _make_env(
        _new_database(backend, folder, initialized=True, templates=templates), folder, monkeypatch
    )
    try:
        use_keys(env, monkeypatch, new_key())
        tokens = make_tokens()
        with TestClient(app_with(token_checker()), raise_server_exceptions=True) as client:
            _populate(Api(client, tokens, env))
    finally:
        _teardown_env()  # no connection to it stays open: PostgreSQL copies only an idle database
    return _Snapshot(env, tokens)


def _copy(source: Database, folder: Path) -> Database:
    if source.backend == "sqlite":
        path = folder / "minisched.db"
        shutil.copyfile(source.url.removeprefix("sqlite:///"), path)
        return Database("sqlite", f"sqlite:///{path}")
    admin_url = _pg_admin_url()
    assert admin_url is not None
    name = f"minisched_t_{uuid.uuid4().hex[:12]}"
    _pg_execute(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{source._cleanup[0]}"')
    return Database("postgresql", _with_database(admin_url, name), [name])


def _configure(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from minisched import settings
    from minisched.db import session

    for key, value in env.vars.items():
        monkeypatch.setenv(key, value)
    settings.configure()
    session.configure_orm(env.db_url)


def test_the_matrix_covers_every_operation_of_the_spec(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    operations = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, ops in spec["paths"].items()
        for method in ops
    }
    covered = {(method, _template(path, spec)) for method, path, _, _ in ENDPOINTS} | PUBLIC
    assert operations == covered


def _template(path: str, spec: dict[str, object]) -> str:
    """The spec's path that a concrete path of the matrix is an instance of."""
    parts = path.split("/")
    matches = []
    for candidate in spec["paths"]:  # type: ignore[attr-defined]
        template = candidate.removeprefix("/api/v1").split("/")
        if len(template) == len(parts) and all(
            t == p or (t.startswith("{") and t.endswith("}")) for t, p in zip(template, parts, strict=True)
        ):
            matches.append(template)
    if not matches:
        return path
    # `.../{task_id}/xcomEntries` over `.../{task_id}/{map_index}`: the most literal segments win.
    best = max(matches, key=lambda template: sum(not t.startswith("{") for t in template))
    return "/".join(best)


@pytest.mark.parametrize(
    ("method", "path", "body", "least"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_role_matrix(demo_copy: Api, method: str, path: str, body: object, least: str) -> None:
    demo = demo_copy
    url = f"/api/v1{path}"
    anonymous = demo.client.request(method, url, json=body)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    forged = demo.client.request(method, url, json=body, headers={"Authorization": "Bearer msk_forged"})
    assert forged.status_code == 401
    for role in reversed(ROLES):
        response = demo.client.request(method, url, json=body, headers=demo.headers(role))
        if role == "admin":
            assert response.status_code < 300, response.text
        elif ROLES.index(role) >= ROLES.index(least):
            # A second create or delete may conflict; what matters is that the token was let through.
            assert response.status_code in (200, 204, 404, 409), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert f"needs {least}" in response.json()["detail"]


def test_a_revoked_token_stops_working(api: Api) -> None:
    from minisched.db.session import create_session
    from minisched.service.tokens import revoke_token

    assert api.get("/dags").status_code == 200
    with create_session() as session:
        revoke_token("viewer-user", session=session)
    assert api.get("/dags").status_code == 401


def test_every_list_pages_orders_and_refuses_an_unknown_order(demo: Api) -> None:
    """Each list of the spec (a response with total_entries) takes limit/offset/order_by; an unknown
    field to order by, or a bad limit or offset, is a 400 problem naming it."""
    spec = demo.client.get("/api/v1/openapi.json").json()
    lists = []
    for method, path, _, least in ENDPOINTS:
        if method != "GET":
            continue
        operation = spec["paths"]["/api/v1" + _template(path, spec)]
        ref = operation["get"]["responses"]["200"]["content"]["application/json"]["schema"].get("$ref", "")
        schema = spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
        if "total_entries" in schema.get("properties", {}):
            params = {p["name"] for p in operation["get"].get("parameters", [])}
            assert {"limit", "offset", "order_by"} <= params, path
            lists.append((path, "admin" if least == "admin" else "viewer"))
    assert ("/dags/demo/tasks", "viewer") in lists and len(lists) >= 10
    for path, role in lists:
        whole = demo.get(path, role=role)
        assert whole.status_code == 200, (path, whole.text)
        total = whole.json()["total_entries"]
        paged = demo.get(path, role=role, params={"limit": 1, "offset": 1})
        assert paged.status_code == 200 and paged.json()["total_entries"] == total, path
        items = next(value for key, value in paged.json().items() if key != "total_entries")
        assert len(items) == min(1, max(total - 1, 0)), path
        for params, word in (({"order_by": "-no_such_field"}, "no_such_field"), ({"limit": 0}, "limit")):
            bad = demo.get(path, role=role, params=params)
            assert bad.status_code == 400, (path, params, bad.text)
            assert bad.headers["content-type"] == "application/problem+json" and word in bad.json()["detail"]
        assert demo.get(path, role=role, params={"offset": -1}).status_code == 400, path


def test_tasks_are_ordered_by_a_field_then_task_id(demo: Api) -> None:
    ids = [t["task_id"] for t in demo.get("/dags/demo/tasks?order_by=-task_id").json()["tasks"]]
    assert ids == ["report", "load", "extract"]
    by_owner = demo.get("/dags/demo/tasks", params={"order_by": "owner", "limit": 2, "offset": 1}).json()
    assert [t["task_id"] for t in by_owner["tasks"]] == ["load", "report"] and by_owner["total_entries"] == 3


def test_a_revoked_token_stops_working_on_a_server_that_remembers_tokens(api: Api) -> None:
    """The webserver's checker remembers a token's row for 2 s (so /dags reads no token row per
    request); a revoked token is refused once that memory expires, without a restart."""
    import time

    from fastapi.testclient import TestClient

    from minisched.api.app import create_app
    from minisched.db.session import create_session
    from minisched.service.tokens import TokenChecker, revoke_token

    checker = create_app().state.tokens
    assert isinstance(checker, TokenChecker)
    headers = api.headers("viewer")
    with TestClient(create_app(checker)) as client:
        assert client.get("/api/v1/dags", headers=headers).status_code == 200
        with create_session() as session:
            revoke_token("viewer-user", session=session)
        deadline = time.monotonic() + 60
        while client.get("/api/v1/dags", headers=headers).status_code == 200:
            assert time.monotonic() < deadline, "the revoked token still works after 60 s"
            time.sleep(0.05)
        assert client.get("/api/v1/dags", headers=headers).status_code == 401


def test_every_change_writes_an_audit_row_naming_the_token(demo: Api) -> None:
    """Each mutating operation of the matrix (a dry run changes nothing) leaves one audit row or more,
    owned by the calling token's name."""
    from sqlalchemy import func, select

    from minisched.db.session import create_session
    from minisched.models import Log

    def rows_of(owner: str) -> int:
        with create_session() as session:
            return int(session.scalar(select(func.count()).where(Log.owner == owner)) or 0)

    changes = [e for e in ENDPOINTS if e[0] != "GET" and not (e[2] or {}).get("dry_run")]  # type: ignore[attr-defined]
    assert len(changes) >= 12
    silent = []
    for method, path, body, least in changes:
        owner = f"{least}-user"
        before = rows_of(owner)
        response = demo.client.request(method, f"/api/v1{path}", json=body, headers=demo.headers(least))
        assert response.status_code < 300, (method, path, response.text)
        if rows_of(owner) <= before:
            silent.append((method, path))
    assert silent == []
