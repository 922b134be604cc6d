"""The endpoints that change something: each writes an audit row naming the token."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.api.conftest import Api, write_dag


def json_of(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def audit_rows(event: str) -> list[Any]:
    from minisched.db.session import create_session
    from minisched.models import Log

    with create_session() as session:
        return list(
            session.execute(select(Log.owner, Log.dag_id, Log.run_id, Log.extra).where(Log.event == event))
        )


def test_pause_and_unpause(api: Api) -> None:
    write_dag(api.env)
    body = json_of(api.client.patch("/api/v1/dags/demo", json={"is_paused": True}, headers=api.headers("op")))
    assert body["is_paused"] is True
    assert json_of(api.get("/dags?paused=true"))["total_entries"] == 1
    assert audit_rows("api_pause")[0][:2] == ("op-user", "demo")
    bad = api.client.patch("/api/v1/dags/demo", json={"is_paused": "maybe"}, headers=api.headers("op"))
    assert bad.status_code == 400 and "is_paused" in bad.json()["detail"]
    missing = api.client.patch("/api/v1/dags/nope", json={"is_paused": True}, headers=api.headers("op"))
    assert missing.status_code == 404


def test_trigger_with_conf_and_logical_date(api: Api) -> None:
    write_dag(api.env)
    body = {"logical_date": "2024-05-01T06:00:00+02:00", "conf": {"table": "users"}}
    run = json_of(api.client.post("/api/v1/dags/demo/dagRuns", json=body, headers=api.headers("op")))
    assert run["state"] == "queued" and run["conf"] == {"table": "users"}
    assert run["logical_date"].startswith("2024-05-01T04:00:00")
    assert run["dag_run_id"] == "manual__2024-05-01T04:00:00+00:00"
    again = api.client.post("/api/v1/dags/demo/dagRuns", json=body, headers=api.headers("op"))
    assert again.status_code == 409 and "already has a run" in again.json()["detail"]
    bad_conf = api.client.post("/api/v1/dags/demo/dagRuns", json={"conf": [1]}, headers=api.headers("op"))
    assert bad_conf.status_code == 400
    bad_date = api.client.post(
        "/api/v1/dags/demo/dagRuns", json={"logical_date": "soon"}, headers=api.headers("op")
    )
    assert bad_date.status_code == 400 and "logical_date" in bad_date.json()["detail"]
    unknown = api.client.post("/api/v1/dags/demo/dagRuns", json={"colour": 1}, headers=api.headers("op"))
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    ((owner, dag_id, run_id, extra),) = audit_rows("api_trigger")
    assert (owner, dag_id, run_id) == ("op-user", "demo", run["dag_run_id"]) and "users" in extra


def test_trigger_with_a_conf_the_params_refuse_is_a_400_and_creates_no_run(api: Api) -> None:
    api.env.write_dag(
        "checked.py",
        "from datetime import datetime, timezone\n"
        "from minisched import DAG, EmptyOperator, Param\n"
        "with DAG('checked', schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),\n"
        "         params={'rows': Param(10, type='integer', minimum=1)}):\n"
        "    EmptyOperator(task_id='t')\n",
    )
    assert api.env.run_cli("dags", "list").exit_code == 0
    body = {"conf": {"rows": 0}}
    refused = api.client.post("/api/v1/dags/checked/dagRuns", json=body, headers=api.headers("op"))
    assert refused.status_code == 400, refused.text
    assert "param 'rows': 0 is less than the minimum of 1" in refused.json()["detail"]
    assert json_of(api.get("/dags/checked/dagRuns"))["total_entries"] == 0


def _tested_run(api: Api, *, fail_load: bool = False) -> str:
    write_dag(api.env, load_command="exit 1" if fail_load else "echo loading")
    api.env.run_cli("dags", "test", "demo", "2024-03-01")
    return str(json_of(api.get("/dags/demo/dagRuns"))["dag_runs"][0]["dag_run_id"])


def test_clear_task_instances_is_a_dry_run_by_default(api: Api) -> None:
    run_id = _tested_run(api, fail_load=True)
    states = {
        t["task_id"]: t["state"]
        for t in json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances"))["task_instances"]
    }
    assert states == {"extract": "success", "load": "failed", "report": "upstream_failed"}
    url = "/api/v1/dags/demo/clearTaskInstances"
    dry = json_of(api.client.post(url, json={}, headers=api.headers("op")))
    assert sorted(t["task_id"] for t in dry["task_instances"]) == ["load", "report"]
    assert json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances/load"))["state"] == "failed"
    assert audit_rows("api_clear") == []
    done = json_of(
        api.client.post(url, json={"dry_run": False, "task_ids": ["load"]}, headers=api.headers("op"))
    )
    assert [t["task_id"] for t in done["task_instances"]] == ["load"]
    assert json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances/load"))["state"] is None
    assert json_of(api.get(f"/dags/demo/dagRuns/{run_id}"))["state"] == "queued"
    assert audit_rows("api_clear")[0][0] == "op-user"
    unknown = api.client.post(url, json={"task_ids": ["nope"]}, headers=api.headers("op"))
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]


def test_clear_a_run(api: Api) -> None:
    run_id = _tested_run(api)
    url = f"/api/v1/dags/demo/dagRuns/{run_id}/clear"
    dry = json_of(api.client.post(url, json={}, headers=api.headers("op")))
    assert len(dry["task_instances"]) == 3
    run = json_of(api.client.post(url, json={"dry_run": False}, headers=api.headers("op")))
    assert run["state"] == "queued" and run["dag_run_id"] == run_id
    tis = json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances"))["task_instances"]
    assert {t["state"] for t in tis} == {None}


def test_mark_task_instance_and_run(api: Api) -> None:
    run_id = _tested_run(api, fail_load=True)
    url = f"/api/v1/dags/demo/dagRuns/{run_id}/taskInstances/load"
    ref = json_of(api.client.patch(url, json={"new_state": "success"}, headers=api.headers("op")))
    assert ref["task_id"] == "load"
    assert json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances/load"))["state"] == "success"
    assert json_of(api.get(f"/dags/demo/dagRuns/{run_id}"))["state"] == "queued"
    run = json_of(
        api.client.patch(
            f"/api/v1/dags/demo/dagRuns/{run_id}", json={"state": "failed"}, headers=api.headers("op")
        )
    )
    assert run["state"] == "failed"
    assert audit_rows("api_mark_success")[0][0] == "op-user"
    assert audit_rows("api_mark_run_failed")[0][0] == "op-user"
    bad = api.client.patch(url, json={"new_state": "running"}, headers=api.headers("op"))
    assert bad.status_code == 400


def test_pools_crud(api: Api) -> None:
    url = "/api/v1/pools"
    created = json_of(
        api.client.post(
            url, json={"name": "db", "slots": 3, "description": "warehouse"}, headers=api.headers("op")
        )
    )
    assert created == {
        "name": "db",
        "slots": 3,
        "occupied_slots": 0,
        "running_slots": 0,
        "queued_slots": 0,
        "scheduled_slots": 0,
        "deferred_slots": 0,
        "open_slots": 3,
        "description": "warehouse",
        "include_deferred": False,
    }
    assert api.client.post(url, json={"name": "db", "slots": 1}, headers=api.headers("op")).status_code == 409
    patched = json_of(api.client.patch(f"{url}/db", json={"slots": 5}, headers=api.headers("op")))
    assert patched["slots"] == 5 and patched["description"] == "warehouse"
    listed = json_of(api.get("/pools?order_by=-slots"))
    assert listed["total_entries"] == 2 and [p["name"] for p in listed["pools"]] == ["default_pool", "db"]
    assert api.client.delete(f"{url}/db", headers=api.headers("op")).status_code == 204
    assert api.get("/pools/db").status_code == 404
    refused = api.client.delete(f"{url}/default_pool", headers=api.headers("op"))
    assert refused.status_code == 400 and "cannot be deleted" in refused.json()["detail"]
    negative = api.client.post(url, json={"name": "x", "slots": -1}, headers=api.headers("op"))
    assert negative.status_code == 400
    assert [row[0] for row in audit_rows("api_pool_set")] == ["op-user", "op-user"]
    assert len(audit_rows("api_pool_delete")) == 1


def test_logs_are_paged_by_byte_offset(api: Api) -> None:
    write_dag(api.env, load_command="python3 -c 'print(\\\"é\\\" * 3000)'")
    api.env.run_cli("dags", "test", "demo", "2024-03-01")
    run_id = json_of(api.get("/dags/demo/dagRuns"))["dag_runs"][0]["dag_run_id"]
    url = f"/dags/demo/dagRuns/{run_id}/taskInstances/load/logs/1"
    full = api.client.get(
        f"/api/v1{url}?full_content=true", headers={**api.headers("viewer"), "Accept": "text/plain"}
    ).text
    assert "é" * 3000 in full
    pieces, token = [], None
    for _ in range(100):
        query = "?max_bytes=1001" + (f"&token={token}" if token else "")
        page = json_of(api.get(url + query))
        if not page["content"]:
            break
        pieces.append(page["content"])
        token = page["continuation_token"]
    assert "".join(pieces) == full and len(pieces) > 5
    assert api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances/load/logs/2").status_code == 404
    assert api.get(url + "?token=garbage").status_code == 400


def test_a_page_of_a_100_mb_log_reads_only_that_page(api: Api) -> None:
    import tracemalloc

    from minisched.db.session import create_session
    from minisched.service.logs import log_file

    write_dag(api.env)
    api.env.run_cli("dags", "test", "demo", "2024-03-01")
    run_id = json_of(api.get("/dags/demo/dagRuns"))["dag_runs"][0]["dag_run_id"]
    with create_session() as session:
        path = log_file("demo", run_id, "load", 1, session=session)
    with path.open("r+b") as handle:  # sparse: 100 MB of log without writing them
        handle.truncate(100 * 1024 * 1024)
        handle.seek(0, 2)
        handle.write(b"the last line\n")
    size = path.stat().st_size
    url = f"/dags/demo/dagRuns/{run_id}/taskInstances/load/logs/1"
    first = json_of(api.get(url + "?max_bytes=1000"))
    tracemalloc.start()
    try:
        page = json_of(api.get(url + f"?max_bytes=1000&token={first['continuation_token']}"))
        for _ in range(3):
            page = json_of(api.get(url + f"?max_bytes=1000&token={page['continuation_token']}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(page["content"]) == 1000 and peak < 5 * 1024 * 1024
    from minisched.service.logs import encode_token

    tail = json_of(api.get(url + f"?max_bytes=100000&token={encode_token(size - 14)}"))
    assert tail["content"] == "the last line\n"


def test_pool_slots_split_into_queued_and_running(api: Api) -> None:
    from sqlalchemy import update

    from minisched.db.session import create_session
    from minisched.models import TaskInstance

    _tested_run(api)
    with create_session() as session:
        session.execute(update(TaskInstance).where(TaskInstance.task_id == "load").values(state="running"))
        session.execute(update(TaskInstance).where(TaskInstance.task_id == "report").values(state="queued"))
    pool = json_of(api.get("/pools/default_pool"))
    assert (pool["occupied_slots"], pool["running_slots"], pool["queued_slots"]) == (2, 1, 1)
    assert pool["open_slots"] == 126


def test_trigger_refuses_a_hostile_conf_and_creates_no_run(api: Api) -> None:
    write_dag(api.env)
    deep: Any = 1
    for _ in range(600):
        deep = {"a": deep}
    for text in ('{"conf": {"x": NaN}}', '{"conf": {"x": Infinity}}'):
        response = api.client.post(
            "/api/v1/dags/demo/dagRuns",
            content=text,
            headers={**api.headers("op"), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert "finite" in response.json()["detail"]
    too_deep = api.client.post("/api/v1/dags/demo/dagRuns", json={"conf": deep}, headers=api.headers("op"))
    assert too_deep.status_code == 400 and "deep" in too_deep.json()["detail"]
    assert json_of(api.get("/dags/demo/dagRuns"))["total_entries"] == 0


def test_a_body_that_is_not_json_is_a_400_problem(api: Api) -> None:
    write_dag(api.env)
    headers = {**api.headers("admin"), "Content-Type": "application/json"}
    for method, path, body in (
        ("POST", "/api/v1/pools", b'{"name": "p", slots: 1}'),
        ("POST", "/api/v1/dags/demo/dagRuns", b"{"),
        ("PATCH", "/api/v1/dags/demo", b"not json"),
        ("POST", "/api/v1/connections", b'{"connection_id": "c",,}'),
        ("PATCH", "/api/v1/variables/v", b"\xff\xfe"),
    ):
        response = api.client.request(method, path, content=body, headers=headers)
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 400 and problem["instance"] == path
        assert "not valid JSON" in problem["detail"], problem
    for body in (b'"a string"', b"[1]", b""):
        response = api.client.request("POST", "/api/v1/pools", content=body, headers=headers)
        assert response.status_code == 400 and response.json()["status"] == 400, (body, response.text)


def test_trigger_with_a_run_id_of_its_own(api: Api) -> None:
    """Airflow's TriggerDAGRun takes `dag_run_id`: scripts name runs to find them again."""
    write_dag(api.env)
    body = {"dag_run_id": "nightly-fix_2024.05:1+a~b", "logical_date": "2024-05-01T00:00:00Z"}
    run = json_of(api.client.post("/api/v1/dags/demo/dagRuns", json=body, headers=api.headers("op")))
    assert run["dag_run_id"] == "nightly-fix_2024.05:1+a~b"
    assert json_of(api.get("/dags/demo/dagRuns/nightly-fix_2024.05%3A1%2Ba~b"))["conf"] == {}
    again = {"dag_run_id": "nightly-fix_2024.05:1+a~b", "logical_date": "2024-06-01T00:00:00Z"}
    clash = api.client.post("/api/v1/dags/demo/dagRuns", json=again, headers=api.headers("op"))
    assert clash.status_code == 409 and "nightly-fix" in clash.json()["detail"]
    for bad in ("a/b", "../x", "", "x" * 251, "naïve"):
        refused = api.client.post(
            "/api/v1/dags/demo/dagRuns", json={"dag_run_id": bad}, headers=api.headers("op")
        )
        assert refused.status_code == 400 and "dag_run_id" in refused.json()["detail"], bad
    assert json_of(api.get("/dags/demo/dagRuns"))["total_entries"] == 1
    assert [row[2] for row in audit_rows("api_trigger")] == ["nightly-fix_2024.05:1+a~b"]
