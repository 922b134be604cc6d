"""A person's session in Debian's Chromium (Playwright), against a real webserver and a real scheduler:
log in, unpause, trigger with a conf, watch the run turn green in the grid, read a task's log, clear
the task and see it run again. Screenshots of every step are kept as test artifacts.

Without /usr/bin/chromium the test skips and says why; with CI=true it fails instead.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import DAG_SOURCE
from tests.conftest import Env
from tests.scheduler.helpers import Procs

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("MINISCHED_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
#: Generous: the page reloads itself every few seconds while work runs, on a loaded 2-core machine.
WAIT_MS = 120_000


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: `apt-get install chromium` (then `pip install playwright`)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def browser_page(env: Env) -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


def _start_webserver(procs: Procs) -> str:
    port = _free_port()
    server = procs.start("webserver", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            httpx.get(f"{base}/api/v1/health", timeout=5)
            return base
        except httpx.TransportError:
            assert server.popen.poll() is None, server.output()
            assert time.monotonic() < deadline, f"webserver did not start:\n{server.output()}"
            time.sleep(0.2)


def test_operate_a_dag_from_the_browser(env: Env, procs: Procs, browser_page: Any) -> None:
    page = browser_page
    shots = ARTIFACTS / f"browser-{env.db.backend}"
    shots.mkdir(parents=True, exist_ok=True)
    env.write_dag("demo.py", DAG_SOURCE.format(dag_id="demo", load_command="echo loading"))
    assert env.run_cli("dags", "pause", "demo").exit_code == 0
    token = env.run_cli("tokens", "create", "--name", "alice", "--role", "op").stdout.split()[0]
    base = _start_webserver(procs)
    procs.scheduler()

    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login")
    page.fill("#token", token)
    page.screenshot(path=str(shots / "01-login.png"))
    page.click("button[type=submit]")
    page.wait_for_selector('tr[data-dag-id="demo"]')
    assert page.get_attribute('button[aria-label="unpause demo"]', "class") == "toggle"
    page.click('button[aria-label="unpause demo"]')
    page.wait_for_selector('button[aria-label="pause demo"]')
    page.screenshot(path=str(shots / "02-dags-unpaused.png"))

    page.click('tr[data-dag-id="demo"] >> text=Trigger')
    page.fill("#conf", "{not json")
    page.click("text=Trigger >> nth=-1")
    assert "conf is not valid JSON" in page.inner_text("#errors")
    page.screenshot(path=str(shots / "03-trigger-error.png"))
    page.fill("#conf", '{"table": "users"}')
    page.click("button.primary")
    page.wait_for_url("**/dags/demo/runs/manual__*")
    run_url = page.url

    page.goto(f"{base}/dags/demo")
    page.wait_for_selector('a.run[data-state="success"]')
    assert page.locator('a.cell[data-state="success"]').count() == 3
    page.screenshot(path=str(shots / "04-grid-green.png"), full_page=True)

    page.goto(f"{base}/dags/demo?tab=graph")
    page.wait_for_selector('g.node[data-task-id="load"][data-state="success"]')
    page.screenshot(path=str(shots / "05-graph.png"))

    page.goto(run_url)
    page.wait_for_selector("svg.gantt")
    page.screenshot(path=str(shots / "06-run-gantt.png"), full_page=True)
    page.click('tr[data-task-id="extract"] a')
    page.wait_for_function("document.getElementById('log').textContent.includes('extracting')")
    assert "users" in page.inner_text("#log")
    page.screenshot(path=str(shots / "07-task-log.png"))

    page.click("text=Clear…")
    page.wait_for_selector("text=Clear 1 task instance")
    page.screenshot(path=str(shots / "08-clear-preview.png"))
    page.click("text=Clear 1 task instance")
    page.wait_for_selector(".ok-box")
    page.click('tr[data-task-id="extract"] a')
    page.wait_for_selector('a.button:has-text("try 2")')
    page.goto(page.url.split("?")[0] + "?try=2")
    page.wait_for_selector('h1 .badge:has-text("success")')
    page.wait_for_function("document.getElementById('log').textContent.includes('extracting')")
    page.screenshot(path=str(shots / "09-second-try.png"))
    page.goto(f"{base}/dags/demo")
    page.wait_for_selector('a.run[data-state="success"]')
    page.screenshot(path=str(shots / "10-grid-after-clear.png"), full_page=True)
    page.goto(f"{base}/audit")
    assert "ui_clear" in page.inner_text("table") and "alice" in page.inner_text("table")
    page.screenshot(path=str(shots / "11-audit.png"), full_page=True)


FOLLOWED_DAG = """
from datetime import datetime, timezone
from minisched import DAG, BashOperator

with DAG("follow", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    BashOperator(
        task_id="talk",
        bash_command=(
            "echo first-line; until [ -f {go1} ]; do sleep 0.1; done; "
            "echo second-line; until [ -f {go2} ]; do sleep 0.1; done; echo last-line"
        ),
    )
"""


def test_the_log_view_follows_a_running_try(env: Env, procs: Procs, browser_page: Any) -> None:
    """Lines a try writes after the page opened appear in it while the try still runs (no reload:
    a page that follows a log does not refresh itself), and the page settles once the try ends."""
    from urllib.parse import quote

    page = browser_page
    go1, go2 = env.home / "go1", env.home / "go2"
    env.write_dag("follow.py", FOLLOWED_DAG.format(go1=go1, go2=go2))
    token = env.run_cli("tokens", "create", "--name", "bob", "--role", "op").stdout.split()[0]
    base = _start_webserver(procs)
    procs.scheduler()
    api = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    deadline = time.monotonic() + WAIT_MS / 1000
    while api.get("/dags/follow").status_code != 200:
        assert time.monotonic() < deadline, "the DAG was never parsed"
        time.sleep(0.2)
    run_id = api.post("/dags/follow/dagRuns", json={}).json()["dag_run_id"]
    instance = f"/dags/follow/dagRuns/{quote(run_id, safe='')}/taskInstances/talk"
    while api.get(instance).json()["state"] != "running":
        assert time.monotonic() < deadline, api.get(instance).text
        time.sleep(0.2)

    page.goto(f"{base}/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.goto(f"{base}/dags/follow/runs/{quote(run_id, safe='')}/tasks/talk")
    page.wait_for_function("document.getElementById('log').textContent.includes('first-line')")
    assert "second-line" not in page.inner_text("#log")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    go1.touch()
    page.wait_for_function("document.getElementById('log').textContent.includes('second-line')")
    assert api.get(instance).json()["state"] == "running"  # shown while the try still runs
    assert page.evaluate("window.sameDocument === true"), "the page reloaded instead of following"
    shots = ARTIFACTS / f"browser-{env.db.backend}"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "12-log-following.png"))
    go2.touch()
    page.wait_for_selector('h1 .badge:has-text("success")')
    page.wait_for_function("document.getElementById('log').textContent.includes('last-line')")
