"""Mapped task instances in the UI: a mapped task's grid cell summarises its instances, the run page
lists each, and each instance's page and log are addressed by its map_index."""

from __future__ import annotations

from typing import Any

from tests.scheduler.helpers import dag_source
from tests.www.conftest import Browser

RUN_ID = "manual__2024-03-01T00:00:00+00:00"
MAPPED = """
with DAG("fanned", schedule=None, start_date=START):
    @task
    def double(x):
        if x == 3:
            raise ValueError("three")
        print(f"doubling {x}")
        return 2 * x

    double.expand(x=[1, 2, 3])
"""


def run_mapped(env: Any) -> None:
    env.write_dag("fanned.py", dag_source(MAPPED))
    assert env.run_cli("dags", "test", "fanned", "2024-03-01").exit_code == 1  # instance 2 fails


def test_grid_summarises_a_mapped_task_and_the_run_page_lists_its_instances(browser: Browser) -> None:
    run_mapped(browser.env)
    browser.login()
    grid = browser.client.get("/dags/fanned?tab=grid").text
    assert 'data-instances="3" data-task-id="double"' in grid
    assert f"double in {RUN_ID}: failed (3 mapped instances)" in grid
    run = browser.client.get(f"/dags/fanned/runs/{RUN_ID}").text
    assert run.count('data-task-id="double"') >= 3 and "double [2]" in run
    page = browser.client.get(f"/dags/fanned/runs/{RUN_ID}/tasks/double", params={"map_index": 2})
    assert page.status_code == 200 and "map_index=2" in page.text
    chunk = browser.client.get(
        f"/dags/fanned/runs/{RUN_ID}/tasks/double/logs/1/chunk", params={"map_index": 2}
    )
    assert "three" in chunk.json()["content"]
