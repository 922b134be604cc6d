"""8. The web server: server time of the DAG list (1,000 DAGs) and of a grid page (one DAG of 1,000
runs x 100 tasks), the SQL statements each costs, and `GET /api/v1/dags` requests per second against
`minisched webserver` (one uvicorn worker, a real process) from 4 client threads.

Page times are measured in this process through the ASGI app (what the server spends, no network),
the median of 7 requests after one warm-up.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import BenchContext, Figure, Home, at_least, at_most, counting, in_process, new_home

PAGE_TARGET_MS = 200.0
RPS_TARGET = 500.0

ONE_TASK_DAG = """\
from datetime import datetime, timezone
from minisched.authoring.dag import DAG
from minisched.authoring.operators import BashOperator

with DAG({dag_id!r}, schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False):
    BashOperator(task_id="only", bash_command="true")
"""
WIDE_DAG = """\
from datetime import datetime, timezone
from minisched.authoring.dag import DAG
from minisched.authoring.operators import BashOperator

with DAG("wide", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    previous = None
    for index in range({tasks}):
        task = BashOperator(task_id=f"task_{{index:03d}}", bash_command="true")
        if previous is not None and index % 10:
            previous >> task
        previous = task
"""


def run(ctx: BenchContext) -> list[Figure]:
    dags = ctx.size(1000, 20)
    runs = ctx.size(1000, 20)
    tasks = ctx.size(100, 10)
    seconds = 5.0 if not ctx.quick else 1.0
    with new_home(ctx, "webserver") as home:
        for index in range(dags - 1):
            (home.dags / f"dag_{index:04d}.py").write_text(ONE_TASK_DAG.format(dag_id=f"dag_{index:04d}"))
        (home.dags / "wide.py").write_text(WIDE_DAG.format(tasks=tasks))
        with in_process(home) as engine:
            token = _prepare(home, runs)
            pages = _page_times(engine, token)
        rps = _requests_per_second(home, token, seconds)
    params = f"{dags} DAGs; grid of {runs} runs x {tasks} tasks (25 runs shown)"
    ctx.log(f"  DAG list {pages['list'][0]:.1f} ms, grid {pages['grid'][0]:.1f} ms, API {rps:.0f} req/s")
    return [
        Figure(
            "webserver.dag_list.ms",
            pages["list"][0],
            "ms",
            f"<= {PAGE_TARGET_MS:.0f}",
            at_most(pages["list"][0], PAGE_TARGET_MS),
            params,
        ),
        Figure("webserver.dag_list.statements", pages["list"][1], "statements", params=params),
        Figure(
            "webserver.grid.ms",
            pages["grid"][0],
            "ms",
            f"<= {PAGE_TARGET_MS:.0f}",
            at_most(pages["grid"][0], PAGE_TARGET_MS),
            params,
        ),
        Figure("webserver.grid.statements", pages["grid"][1], "statements", params=params),
        Figure(
            "webserver.api_dags.rps",
            rps,
            "req/s",
            f">= {RPS_TARGET:.0f}",
            at_least(rps, RPS_TARGET),
            f"{dags} DAGs, limit=100, 4 client threads, {seconds:g}s",
        ),
    ]


def _prepare(home: Home, runs: int) -> str:
    """Load the DAG folder, create the wide DAG's runs (with their task instances) and a token."""
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import create_session
    from minisched.models import DagRunType
    from minisched.scheduler.dag_cache import DagStructureCache
    from minisched.scheduler.dagruns import NewRun, create_dag_runs
    from minisched.service.tokens import create_token

    refresh_dag_folder(home.dags)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for first in range(0, runs, 100):
        with create_session() as session:
            wide = DagStructureCache().get("wide", session=session)
            assert wide is not None
            batch = [
                NewRun("wide", DagRunType.MANUAL, start + timedelta(hours=i), None)
                for i in range(first, min(first + 100, runs))
            ]
            create_dag_runs(batch, {"wide": wide}, session=session, now=start)
    with create_session() as session:
        return create_token("bench", "admin", session=session)[1]


def _page_times(engine: Any, token: str) -> dict[str, tuple[float, int]]:
    from fastapi.testclient import TestClient

    from minisched.api.app import create_app

    results: dict[str, tuple[float, int]] = {}
    with TestClient(create_app(), follow_redirects=False) as client:
        login = client.post("/login", data={"token": token}, headers={"Origin": "http://testserver"})
        assert login.status_code == 303, login.text
        for name, path in (("list", "/"), ("grid", "/dags/wide")):
            assert client.get(path).status_code == 200
            timings = []
            for _ in range(7):
                began = time.perf_counter()
                assert client.get(path).status_code == 200
                timings.append((time.perf_counter() - began) * 1000)
            with counting(engine) as counter:
                client.get(path)
            results[name] = (statistics.median(timings), counter.statements)
    return results


def _requests_per_second(home: Home, token: str, seconds: float) -> float:
    import subprocess
    import sys

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "minisched", "webserver", "--port", str(port)],
        env=home.environ(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/dags"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, headers=headers, timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("minisched webserver did not start") from None
                time.sleep(0.1)
        done = [0] * 4
        stop_at = time.monotonic() + seconds

        def hammer(slot: int) -> None:
            with httpx.Client(headers=headers, timeout=10) as client:
                while time.monotonic() < stop_at:
                    client.get(url).raise_for_status()
                    done[slot] += 1

        threads = [threading.Thread(target=hammer, args=(slot,)) for slot in range(4)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(done) / (time.monotonic() - began)
    finally:
        server.terminate()
        server.wait(30)
