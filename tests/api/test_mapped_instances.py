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
