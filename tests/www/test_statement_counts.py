"""Each page issues a fixed number of SQL statements, whatever the numbers of DAGs, runs and tasks."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

from tests.sql_statements import recorded_statements
from tests.www.conftest import Browser

BIG_TASKS = 40
BIG_RUNS = 30


def _dag_source(dag_id: str, tasks: int) -> str:
    return textwrap.dedent(
        f"""
        from datetime import datetime, timezone
        from minisched import DAG, BashOperator

        with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)) as dag:
            previous = None
            for index in range({tasks}):
                task = BashOperator(task_id=f"t{{index:03d}}", bash_command="true")
                if previous is not None and index % 3:
                    previous >> task
                previous = task
        """
    )


def _trigger(dag_id: str, count: int) -> list[str]:
    from minisched.db.session import create_session
    from minisched.service import runs
    from minisched.service.actor import Actor

    actor = Actor("setup", "admin")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with create_session() as session:
        return [
            runs.trigger(dag_id, actor=actor, session=session, logical_date=start + timedelta(days=i)).run_id
            for i in range(count)
        ]


def _statements(browser: Browser, path: str) -> int:
    browser.client.get(path)
    with recorded_statements() as statements:
        response = browser.client.get(path)
    assert response.status_code == 200, response.text
    return len(statements)


def test_every_page_costs_the_same_statements_for_small_and_big_dags(browser: Browser) -> None:
    browser.env.write_dag("small.py", _dag_source("small", 2))
    browser.env.write_dag("big.py", _dag_source("big", BIG_TASKS))
    assert browser.env.run_cli("dags", "list").exit_code == 0
    (small_run,) = _trigger("small", 1)
    big_runs = _trigger("big", BIG_RUNS)
    browser.login()
    for tab in ("grid", "graph", "details", "code"):
        assert _statements(browser, f"/dags/small?tab={tab}") == _statements(
            browser, f"/dags/big?tab={tab}"
        ), tab
    for suffix in ("", "/tasks/t000"):
        small = _statements(browser, f"/dags/small/runs/{small_run}{suffix}".replace("+", "%2B"))
        big = _statements(browser, f"/dags/big/runs/{big_runs[-1]}{suffix}".replace("+", "%2B"))
        assert small == big, suffix


def test_list_pages_cost_the_same_statements_for_one_or_many_rows(browser: Browser) -> None:
    browser.env.write_dag("only.py", _dag_source("only", 2))
    assert browser.env.run_cli("dags", "list").exit_code == 0
    _trigger("only", 1)
    browser.login()
    pages = ("/", "/pools", "/import-errors", "/audit")
    few = {path: _statements(browser, path) for path in pages}
    for index in range(25):
        browser.env.write_dag(f"many_{index}.py", _dag_source(f"many_{index}", 3))
    browser.env.write_dag("broken_a.py", "def broken(:\n")
    browser.env.write_dag("broken_b.py", "import missing_module\n")
    assert browser.env.run_cli("dags", "list").exit_code == 0
    for index in range(25):
        _trigger(f"many_{index}", 2)
    browser.post("/pools", {"name": "extra", "slots": "3"})
    many = {path: _statements(browser, path) for path in pages}
    assert few == many


def test_pages_cost_the_same_statements_at_the_benchmark_sizes(browser: Browser) -> None:
    """The benchmark's shapes, inserted in bulk: 1,000 DAGs, and one DAG of 100 tasks with four pages
    of runs (benchmark 8 checks the same at 1,000 runs, which takes a minute to insert on PostgreSQL)."""
    from benchmarks.web_seed import seed_dags, seed_runs, seed_wide_dag
    from minisched.db.session import create_session

    with create_session() as session:
        seed_dags(1, session=session, prefix="few_")
        tiny_tasks = seed_wide_dag("tiny", 2, session=session)
        seed_runs("tiny", tiny_tasks, 1, session=session)
    browser.login()
    few = {path: _statements(browser, path) for path in ("/", "/dags/tiny", "/dags/tiny?tab=graph")}
    with create_session() as session:
        seed_dags(998, session=session)
        wide_tasks = seed_wide_dag("wide", 100, session=session)
        seed_runs("wide", wide_tasks, 100, session=session)
    many = {path: _statements(browser, path.replace("tiny", "wide")) for path in few}
    assert few == many
