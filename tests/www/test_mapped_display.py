"""Mapped task instances in the UI: a mapped task's grid cell summarises its instances, the run page
lists each, and each instance's page and log are addressed by its map_index."""

from __future__ import annotations

import re
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


LONG = """
with DAG("long_names", schedule=None, start_date=START):
    @task(task_id="double_every_value_of_the_input_list")
    def double(x):
        return 2 * x

    double.expand(x=[1, 2])
"""


def test_gantt_and_graph_labels_of_long_ids_stay_readable(browser: Browser) -> None:
    """A long task id is cut with an ellipsis (its title has it whole), and a mapped instance's label
    keeps its map_index."""
    browser.env.write_dag("long_names.py", dag_source(LONG))
    assert browser.env.run_cli("dags", "test", "long_names", "2024-03-01").exit_code == 0
    browser.login()
    run = browser.client.get(f"/dags/long_names/runs/{RUN_ID}").text
    labels = re.findall(r'class="task-label">([^<]*)</text>', run)
    assert labels == ["double_every_value_of… [0]", "double_every_value_of… [1]"], labels
    assert "<title>double_every_value_of_the_input_list [1]: success" in run
    graph = browser.client.get("/dags/long_names?tab=graph").text
    assert 'class="task-label">double_every_value_o…</text>' in graph
    assert "<title>double_every_value_of_the_input_list (" in graph
