"""8. The web server: server time of the DAG list (1,000 DAGs) and of a grid page (one DAG of 1,000
runs x 100 tasks), the SQL statements each costs at that size and at a small one, and `GET
/api/v1/dags` requests per second against `minisched webserver` (one uvicorn worker, a real process).

The data is inserted in bulk (`web_seed`), not made by a scheduler. Page times are measured inside
this process around the ASGI app (from the request's arrival to the last byte of the answer: what the
server spends, no network), the median of 7 requests after one warm-up.

Requests per second come from `http_load` (client processes with keep-alive connections, as fast as
the server answers). The machine is shared, so the same server also answers `GET /api/v1/version` in
the same run: the ratio between the two, and the requests per second of server CPU (what one worker
does with a core of its own), are what can be compared across runs. Then `http_pace` offers `/dags`
at the target rate, open loop: "sustains 500 requests/s" is that rate answered, with its latency.
The clients run on the server's 2 cores, so their CPU per request is reported too: what they take
is not the server's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from benchmarks.common import BenchContext, Figure, Home, at_least, at_most, counting, in_process, new_home

PAGE_TARGET_MS = 200.0
RPS_TARGET = 500.0
PAGES = {"list": "/", "grid": "/dags/wide"}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Asgi = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def run(ctx: BenchContext) -> list[Figure]:
    sizes = {"dags": ctx.size(1000, 20), "runs": ctx.size(1000, 20), "tasks": ctx.size(100, 10)}
    seconds = 5.0 if not ctx.quick else 1.0
    with new_home(ctx, "webserver_small") as home, in_process(home) as engine:
        token = seed(home, dags=2, runs=1, tasks=2)
        small = page_figures(engine, token, repeats=1)
    with new_home(ctx, "webserver") as home:
        with in_process(home) as engine:
            token = seed(home, **sizes)
            pages = page_figures(engine, token, repeats=7)
        loads = api_load(home, token, seconds)
    params = (
        f"{sizes['dags']:,} DAGs; grid of {sizes['runs']:,} runs x {sizes['tasks']} tasks (25 runs shown)"
    )
    ctx.log(
        f"  DAG list {pages['list'][0]:.1f} ms, grid {pages['grid'][0]:.1f} ms; "
        f"API /dags {loads['dags'].per_second:.0f} req/s, /version {loads['version'].per_second:.0f} req/s"
    )
    figures = []
    for name in PAGES:
        ms, statements = pages[name]
        figures += [
            Figure(
                f"webserver.{name_of(name)}.ms",
                ms,
                "ms",
                f"<= {PAGE_TARGET_MS:.0f}",
                at_most(ms, PAGE_TARGET_MS),
                params,
            ),
            Figure(
                f"webserver.{name_of(name)}.statements",
                statements,
                "statements",
                f"== {small[name][1]} (2 DAGs, 1 run x 2 tasks)",
                statements == small[name][1],
                params,
            ),
        ]
    return figures + load_figures(loads, sizes["dags"], seconds)


def name_of(page: str) -> str:
    return "dag_list" if page == "list" else page


def seed(home: Home, *, dags: int, runs: int, tasks: int) -> str:
    """`dags - 1` one-task DAGs and the `wide` DAG with `runs` runs x `tasks` tasks; an admin token."""
    from benchmarks.web_seed import seed_dags, seed_runs, seed_wide_dag
    from minisched.db.session import create_session
    from minisched.service.tokens import create_token

    with create_session() as session:
        seed_dags(dags - 1, session=session)
        task_ids = seed_wide_dag("wide", tasks, session=session)
        seed_runs("wide", task_ids, runs, session=session)
        return create_token("bench", "admin", session=session)[1]


class ServerClock:
    """Wraps an ASGI app and records how long it took to answer each request, last byte included."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - began) * 1000

        await self.app(scope, receive, timed_send)


def page_figures(engine: Any, token: str, *, repeats: int) -> dict[str, tuple[float, int]]:
    """Per page: the median server time (ms) and the statements of one request."""
    from fastapi.testclient import TestClient

    from minisched.api.app import create_app

    clock = ServerClock(create_app())
    results: dict[str, tuple[float, int]] = {}
    with TestClient(clock, follow_redirects=False) as client:
        login = client.post("/login", data={"token": token}, headers={"Origin": "http://testserver"})
        assert login.status_code == 303, login.text
        for name, path in PAGES.items():
            assert client.get(path).status_code == 200
            timings = []
            for _ in range(repeats):
                assert client.get(path).status_code == 200
                timings.append(clock.last_ms)
            with counting(engine) as counter:
                assert client.get(path).status_code == 200
            results[name] = (statistics.median(timings), counter.statements)
    return results


def api_load(home: Home, token: str, seconds: float) -> dict[str, Any]:
    """/version, /dags, /version again against one server: the baseline brackets the figure."""
    from benchmarks.http_load import hammer, webserver
    from benchmarks.http_pace import pace

    headers = {"Authorization": f"Bearer {token}"}
    with webserver(home.environ(), "/api/v1/dags", headers) as server:
        before = hammer(server, "/api/v1/version", headers, seconds=seconds)
        dags = hammer(server, "/api/v1/dags", headers, seconds=seconds)
        after = hammer(server, "/api/v1/version", headers, seconds=seconds)
        paced = pace(server, "/api/v1/dags", headers, rate=RPS_TARGET, seconds=seconds)
    best = before if before.per_second >= after.per_second else after
    return {"dags": dags, "version": best, "paced": paced}


def load_figures(loads: dict[str, Any], dags: int, seconds: float) -> list[Figure]:
    dags_load, version, paced = loads["dags"], loads["version"], loads["paced"]
    params = f"{dags:,} DAGs, limit=100, 4 client processes (keep-alive, http_wire), {seconds:g}s"
    return [
        Figure(
            "webserver.api_dags.rps",
            dags_load.per_second,
            "req/s",
            f">= {RPS_TARGET:.0f}",
            at_least(dags_load.per_second, RPS_TARGET),
            params,
            note=f"{dags_load.errors} errors",
        ),
        Figure(
            "webserver.api_dags.rps_per_cpu_s",
            dags_load.per_cpu_second,
            "req/CPU-s",
            params=params,
            note="requests / server process CPU time: one worker with a core of its own",
        ),
        Figure("webserver.api_version.rps", version.per_second, "req/s", params=params, note="baseline"),
        Figure(
            "webserver.api_version.rps_per_cpu_s",
            version.per_cpu_second,
            "req/CPU-s",
            params=params,
            note="baseline",
        ),
        Figure(
            "webserver.api_dags.vs_version",
            dags_load.per_second / version.per_second if version.per_second else None,
            "x",
            params=params,
            note="/dags req/s over /version req/s, same server, same run",
        ),
        Figure(
            "webserver.api_dags.paced_rps",
            paced.per_second,
            "req/s",
            f">= {RPS_TARGET:.0f} (offered)",
            at_least(paced.per_second, RPS_TARGET * 0.98),
            f"{dags:,} DAGs, limit=100, offered at {RPS_TARGET:.0f} req/s open loop, {seconds:g}s",
            note=f"{paced.errors} errors, {paced.missed} missed; server {paced.server_cpu_share:.2f} cores",
        ),
        Figure(
            "webserver.api_dags.paced_p99_ms",
            paced.percentile_ms(0.99),
            "ms",
            params=f"p50 {paced.median_ms:.1f} ms, p95 {paced.percentile_ms(0.95):.1f} ms",
            note="latency from when each request was due",
        ),
        Figure(
            "webserver.load_client.cpu_ms_per_request",
            dags_load.client_ms_per_request,
            "CPU ms",
            params=params,
            note=(
                f"closed-loop clients' CPU per /dags request (server {dags_load.server_ms_per_request:.2f} "
                f"ms); paced client {paced.client_ms_per_request:.3f} ms (server "
                f"{paced.server_ms_per_request:.2f} ms): taken from the server's 2 cores"
            ),
        ),
    ]
