"""Mapped task instances through the API: listed with their map_index, each addressed by it."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.www.test_mapped_display import RUN_ID, run_mapped


def test_api_lists_and_addresses_mapped_instances(api: Api) -> None:
    run_mapped(api.env)
    base = f"/dags/fanned/dagRuns/{RUN_ID}/taskInstances"
    listed = api.get(base).json()  # type: ignore[attr-defined]
    assert [(t["task_id"], t["map_index"], t["state"]) for t in listed["task_instances"]] == [
        ("double", 0, "success"),
        ("double", 1, "success"),
        ("double", 2, "failed"),
    ]
    one = api.get(f"{base}/double/1")
    assert one.status_code == 200 and one.json()["map_index"] == 1  # type: ignore[attr-defined]
    unmapped = api.get(f"{base}/double")
    assert unmapped.status_code == 404  # type: ignore[attr-defined]
    assert "ask for one instance by its map_index (0 to 2)" in unmapped.text  # type: ignore[attr-defined]
    assert api.get(f"{base}/double/7").status_code == 404  # type: ignore[attr-defined]
    log = api.get(f"{base}/double/logs/1", params={"map_index": 1})
    assert "doubling 2" in log.json()["content"]  # type: ignore[attr-defined]


def test_one_mapped_instance_is_marked_and_its_xcom_read_by_map_index(api: Api) -> None:
    from sqlalchemy import select

    from minisched.db.session import create_session
    from minisched.models import Log

    run_mapped(api.env)
    base = f"/api/v1/dags/fanned/dagRuns/{RUN_ID}/taskInstances/double"
    op = api.headers("op")
    marked = api.client.patch(f"{base}/2", json={"new_state": "success"}, headers=op)
    assert marked.status_code == 200, marked.text
    assert marked.json()["task_id"] == "double"
    states = [
        t["state"] for t in api.get(f"/dags/fanned/dagRuns/{RUN_ID}/taskInstances").json()["task_instances"]
    ]  # type: ignore[attr-defined]
    assert states == ["success", "success", "success"]
    assert api.client.patch(f"{base}/9", json={"new_state": "failed"}, headers=op).status_code == 404
    dry = api.client.patch(f"{base}/0", json={"new_state": "failed", "dry_run": True}, headers=op)
    assert dry.status_code == 200
    assert api.get(f"{base.removeprefix('/api/v1')}/0").json()["state"] == "success"  # type: ignore[attr-defined]
    with create_session() as session:
        (extra,) = session.scalars(select(Log.extra).where(Log.event == "api_mark_success"))
    assert '"map_index": 2' in extra

    xcom = f"{base.removeprefix('/api/v1')}/xcomEntries"
    every = api.get(xcom).json()  # type: ignore[attr-defined]
    assert [(e["map_index"], e["key"]) for e in every["xcom_entries"]] == [
        (0, "return_value"),
        (1, "return_value"),
    ]
    one = api.get(xcom, params={"map_index": 1}).json()  # type: ignore[attr-defined]
    assert [e["map_index"] for e in one["xcom_entries"]] == [1] and one["total_entries"] == 1
    value = api.get(f"{xcom}/return_value", params={"map_index": 1})
    assert value.json()["value"] == "4"  # type: ignore[attr-defined]
    unmapped = api.get(f"{xcom}/return_value")
    assert unmapped.status_code == 404 and "map_index" in unmapped.text  # type: ignore[attr-defined]
    assert api.get(xcom, params={"map_index": 7}).status_code == 404  # type: ignore[attr-defined]
