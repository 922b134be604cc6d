"""The read endpoints: Airflow's shapes, paging, ordering, problem JSON for errors."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api, write_dag


def json_of(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_dags_list_and_detail(api: Api) -> None:
    for dag_id in ("alpha", "beta", "gamma"):
        write_dag(api.env, dag_id)
    body = json_of(api.get("/dags?limit=2&order_by=-dag_id"))
    assert body["total_entries"] == 3
    assert [d["dag_id"] for d in body["dags"]] == ["gamma", "beta"]
    second = json_of(api.get("/dags?limit=2&offset=2&order_by=-dag_id"))
    assert [d["dag_id"] for d in second["dags"]] == ["alpha"]
    dag = json_of(api.get("/dags/alpha"))
    assert dag["is_paused"] is False and dag["is_active"] is True
    assert dag["tags"] == [{"name": "demo"}] and dag["owners"] == ["data"]
    assert dag["schedule_interval"] is None and dag["has_import_errors"] is False
    assert dag["fileloc"].endswith("alpha.py")


def test_tasks_of_a_dag(api: Api) -> None:
    write_dag(api.env)
    body = json_of(api.get("/dags/demo/tasks"))
    assert body["total_entries"] == 3
    tasks = {t["task_id"]: t for t in body["tasks"]}
    assert tasks["extract"]["downstream_task_ids"] == ["load"]
    assert tasks["load"]["class_ref"]["class_name"] == "BashOperator"
    assert tasks["load"]["retry_delay"] == {
        "__type": "TimeDelta",
        "days": 0,
        "seconds": 300,
        "microseconds": 0,
    }
    assert json_of(api.get("/dags/demo/tasks/report"))["downstream_task_ids"] == []
    assert api.get("/dags/demo/tasks/nope").status_code == 404


def test_runs_and_task_instances_after_a_test_run(api: Api) -> None:
    write_dag(api.env)
    assert api.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    runs = json_of(api.get("/dags/demo/dagRuns"))
    assert runs["total_entries"] == 1
    run = runs["dag_runs"][0]
    assert run["state"] == "success" and run["run_type"] == "manual" and run["external_trigger"] is True
    assert run["logical_date"].startswith("2024-03-01T00:00:00")
    run_id = run["dag_run_id"]
    assert json_of(api.get(f"/dags/demo/dagRuns/{run_id}"))["dag_run_id"] == run_id
    tis = json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances?order_by=-task_id"))
    assert tis["total_entries"] == 3
    assert [t["task_id"] for t in tis["task_instances"]] == ["report", "load", "extract"]
    assert {t["state"] for t in tis["task_instances"]} == {"success"}
    ti = json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances/load"))
    assert ti["try_number"] == 1 and ti["execution_date"] == run["logical_date"]
    only = json_of(api.get("/dags/~/dagRuns?state=failed"))
    assert only == {"dag_runs": [], "total_entries": 0}


def test_errors_are_problem_json(api: Api) -> None:
    write_dag(api.env)
    missing = api.get("/dags/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    problem = missing.json()
    assert problem["status"] == 404 and problem["title"] == "Not Found" and "nope" in problem["detail"]
    assert problem["instance"] == "/api/v1/dags/nope"
    bad_order = api.get("/dags?order_by=colour")
    assert bad_order.status_code == 400 and "cannot order by 'colour'" in bad_order.json()["detail"]
    bad_limit = api.get("/dags?limit=0")
    assert bad_limit.status_code == 400 and "limit" in bad_limit.json()["detail"]
    assert api.get("/dags/demo/dagRuns/nope").status_code == 404
    assert api.get("/dags/nope/dagRuns").status_code == 404


def test_an_unknown_state_filter_is_a_400_naming_it_and_the_valid_states(api: Api) -> None:
    write_dag(api.env)
    assert api.env.run_cli("dags", "test", "demo", "2024-03-01").exit_code == 0
    run_id = json_of(api.get("/dags/demo/dagRuns?state=success"))["dag_runs"][0]["dag_run_id"]
    for path, valid in (
        ("/dags/demo/dagRuns", ("queued", "running", "success", "failed")),
        (f"/dags/demo/dagRuns/{run_id}/taskInstances", ("none", "up_for_retry", "upstream_failed")),
    ):
        bad = api.get(path + "?state=success&state=bogus")
        assert bad.status_code == 400, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")
        detail = bad.json()["detail"]
        assert "state" in detail and "'bogus'" in detail, detail
        assert all(f"'{state}'" in detail for state in valid), detail
    assert json_of(api.get(f"/dags/demo/dagRuns/{run_id}/taskInstances?state=none"))["total_entries"] == 0
    spec = json_of(api.get("/openapi.json"))
    params = spec["paths"]["/api/v1/dags/{dag_id}/dagRuns"]["get"]["parameters"]
    (state,) = [p for p in params if p["name"] == "state"]
    assert state["schema"]["anyOf"][0]["items"] == {"$ref": "#/components/schemas/DagRunState"}
    assert spec["components"]["schemas"]["DagRunState"]["enum"] == ["queued", "running", "success", "failed"]


def test_health_version_openapi_need_no_token(api: Api) -> None:
    health = json_of(api.client.get("/api/v1/health"))
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"] == {"status": "unhealthy", "latest_scheduler_heartbeat": None}
    assert json_of(api.client.get("/api/v1/version"))["version"]
    spec = json_of(api.client.get("/api/v1/openapi.json"))
    assert "/api/v1/dags/{dag_id}/dagRuns" in spec["paths"]
    assert "/login" not in spec["paths"]


def test_import_errors_and_event_logs(api: Api) -> None:
    api.env.write_dag("broken.py", "def broken(:\n")
    write_dag(api.env)
    errors = json_of(api.get("/importErrors"))
    assert errors["total_entries"] == 1
    error = errors["import_errors"][0]
    assert error["filename"].endswith("broken.py") and "SyntaxError" in error["stack_trace"]
    assert json_of(api.get(f"/importErrors/{error['import_error_id']}")) == error
    api.client.patch("/api/v1/dags/demo", json={"is_paused": True}, headers=api.headers("op"))
    events = json_of(api.get("/eventLogs?event=api_pause"))
    assert events["total_entries"] == 1
    assert events["event_logs"][0]["owner"] == "op-user" and events["event_logs"][0]["dag_id"] == "demo"


def test_refusals_name_the_api_fields_and_the_cli_its_flags(api: Api) -> None:
    write_dag(api.env)
    body = {"logical_date": "2024-03-01T00:00:00+00:00"}
    assert api.client.post("/api/v1/dags/demo/dagRuns", json=body, headers=api.headers()).status_code == 200
    again = api.client.post("/api/v1/dags/demo/dagRuns", json=body, headers=api.headers())
    assert again.status_code in (400, 409) and "pick another logical_date" in again.json()["detail"]
    dates = {"dry_run": True, "start_date": "2024-02-01T00:00:00Z", "end_date": "2024-01-01T00:00:00Z"}
    backwards = api.client.post("/api/v1/dags/demo/clearTaskInstances", json=dates, headers=api.headers())
    assert backwards.status_code == 400 and "end_date 2024-01-01" in backwards.json()["detail"]
    assert "--" not in again.json()["detail"] + backwards.json()["detail"]
    cli_again = api.env.run_cli("dags", "trigger", "demo", "--logical-date", "2024-03-01")
    assert cli_again.exit_code != 0 and "pick another --logical-date" in cli_again.output
    cli_clear = api.env.run_cli("tasks", "clear", "demo", "-s", "2024-02-01", "-e", "2024-01-01", "-y")
    assert cli_clear.exit_code != 0 and "--end-date 2024-01-01" in cli_clear.output
