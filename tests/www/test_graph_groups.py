"""The DAG page's graph draws each task group as a labelled box around exactly its own tasks."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

from tests.www.conftest import Browser

SVG = "{http://www.w3.org/2000/svg}"
GROUPED_DAG = textwrap.dedent(
    """
    from datetime import datetime, timezone
    from minisched import DAG, BashOperator, TaskGroup

    with DAG("grouped", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)) as dag:
        start = BashOperator(task_id="start", bash_command="true")
        with TaskGroup("extract", tooltip="pull the sources") as extract:
            users = BashOperator(task_id="users", bash_command="true")
            with TaskGroup("clean") as clean:
                dedupe = BashOperator(task_id="dedupe", bash_command="true")
                check = BashOperator(task_id="check", bash_command="true")
                dedupe >> check
            orders = BashOperator(task_id="orders", bash_command="true")
            users >> clean
        audit = BashOperator(task_id="audit", bash_command="true")
        with TaskGroup("load") as load:
            BashOperator(task_id="warehouse", bash_command="true")
        # A task outside a group that sits between two of its tasks.
        users >> audit >> orders
        start >> extract >> load
    """
)
Rect = tuple[float, float, float, float]


def _rect(element: ET.Element) -> Rect:
    rect = element.find(f"{SVG}rect")
    assert rect is not None
    x, y = float(rect.attrib["x"]), float(rect.attrib["y"])
    return x, y, x + float(rect.attrib["width"]), y + float(rect.attrib["height"])


def _inside(inner: Rect, outer: Rect) -> bool:
    return outer[0] < inner[0] and outer[1] < inner[1] and inner[2] < outer[2] and inner[3] < outer[3]


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_task_groups_are_boxes_around_their_own_tasks(browser: Browser) -> None:
    browser.env.write_dag("grouped.py", GROUPED_DAG)
    assert browser.env.run_cli("dags", "list").exit_code == 0
    browser.login()
    response = browser.client.get("/dags/grouped?tab=graph")
    assert response.status_code == 200
    svg = ET.fromstring(response.text[response.text.index("<svg") : response.text.index("</svg>") + 6])
    boxes = {g.attrib["data-group-id"]: g for g in svg.iter(f"{SVG}g") if g.attrib.get("class") == "group"}
    nodes = {
        g.attrib["data-task-id"]: _rect(g) for g in svg.iter(f"{SVG}g") if g.attrib.get("class") == "node"
    }
    assert set(boxes) == {"extract", "extract.clean", "load"}
    assert [t.text for t in boxes["extract.clean"].iter(f"{SVG}text")] == ["clean"]
    members = {
        "extract": {"extract.users", "extract.orders", "extract.clean.dedupe", "extract.clean.check"},
        "extract.clean": {"extract.clean.dedupe", "extract.clean.check"},
        "load": {"load.warehouse"},
    }
    for group_id, tasks in members.items():
        box = _rect(boxes[group_id])
        for task_id, node in nodes.items():
            if task_id in tasks:
                assert _inside(node, box), f"{task_id} is drawn outside group {group_id}"
            else:
                assert not _overlap(node, box), f"{task_id} is drawn inside group {group_id}"
    assert _inside(_rect(boxes["extract.clean"]), _rect(boxes["extract"]))
    assert not _overlap(_rect(boxes["extract"]), _rect(boxes["load"]))
    # Left to right: the group's upstream before it, its downstream after it.
    assert nodes["start"][2] < _rect(boxes["extract"])[0]
    assert _rect(boxes["extract"])[2] < _rect(boxes["load"])[0]


def test_a_task_in_a_group_shows_its_own_name_and_keeps_its_id_in_the_title(browser: Browser) -> None:
    browser.env.write_dag("grouped.py", GROUPED_DAG)
    assert browser.env.run_cli("dags", "list").exit_code == 0
    browser.login()
    response = browser.client.get("/dags/grouped?tab=graph")
    svg = ET.fromstring(response.text[response.text.index("<svg") : response.text.index("</svg>") + 6])
    nodes = {g.attrib["data-task-id"]: g for g in svg.iter(f"{SVG}g") if g.attrib.get("class") == "node"}
    labels = {
        task_id: next(t.text for t in g.iter(f"{SVG}text") if t.attrib.get("class") == "task-label")
        for task_id, g in nodes.items()
    }
    assert labels["extract.clean.dedupe"] == "dedupe" and labels["load.warehouse"] == "warehouse"
    assert labels["extract.users"] == "users" and labels["start"] == "start"
    title = nodes["extract.clean.dedupe"].find(f"{SVG}title")
    assert title is not None and (title.text or "").startswith("extract.clean.dedupe ")


def test_a_group_box_is_wide_enough_for_its_label(browser: Browser) -> None:
    long_name = "a_group_whose_name_is_much_wider_than_one_task"
    browser.env.write_dag(
        "wide.py", GROUPED_DAG.replace('"grouped"', '"wide"').replace('"load"', f'"{long_name}"')
    )
    assert browser.env.run_cli("dags", "list").exit_code == 0
    browser.login()
    response = browser.client.get("/dags/wide?tab=graph")
    svg = ET.fromstring(response.text[response.text.index("<svg") : response.text.index("</svg>") + 6])
    (box,) = [g for g in svg.iter(f"{SVG}g") if g.attrib.get("data-group-id") == long_name]
    left, _, right, _ = _rect(box)
    # 7px is a low estimate of one character of the 12px bold label.
    assert right - left >= 7 * len(long_name), (right - left, len(long_name))
