"""10. The scheduler under API load: a 1,000-task parallel run through `minisched scheduler`, alone and
while `GET /api/v1/dags` is asked 500 times a second on the same database, in the same run; target:
at most 25% slower (issue 13: "while that load runs", the load being the 500 requests/s the API must
sustain).

The load is offered at a fixed rate, open loop (`http_pace`): a load that sends as fast as the server
answers takes both cores of the machine whatever the server's speed, and measures the machine, not
the scheduler. Alone and loaded alternate (alone, loaded, alone, loaded, ...), and each side takes its
median, so a change in what else the machine runs meanwhile hits both sides alike. The load is
`minisched webserver` (one uvicorn worker) with 1,000 DAGs (paused, so the scheduler leaves them
alone); it starts before the run is triggered and lasts past its end. The answered rate and the
latency percentiles say whether the server kept up with the offered rate meanwhile.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    BenchContext,
    Figure,
    Home,
    SchedulerProcess,
    at_least,
    at_most,
    dag_source,
    in_process,
    new_home,
    read_engine,
    trigger,
    wait_for_run,
    write_dag,
)

if TYPE_CHECKING:
    from benchmarks.http_pace import Paced

MAX_SLOWDOWN = 0.25
PARALLELISM = 2
RATE = 500.0


def run(ctx: BenchContext) -> list[Figure]:
    tasks = ctx.size(1000, 40)
    repeats = ctx.size(3, 1)
    with new_home(ctx, "api_load") as home:
        write_dag(home.dags, "parallel", dag_source("parallel", tasks))
        engine = read_engine(home.db_url)
        with in_process(home):
            token = _seed(ctx.size(1000, 20))
            with SchedulerProcess(home, parallelism=PARALLELISM) as scheduler:
                scheduler.wait_for_dags(engine, {"parallel"})
                alone, loaded, load = _alternate(home, token, engine, scheduler, repeats, ctx.size(10, 3))
        engine.dispose()
    alone_rate, loaded_rate = tasks / statistics.median(alone), tasks / statistics.median(loaded)
    slowdown = 1 - loaded_rate / alone_rate
    params = f"N={tasks}, parallelism={PARALLELISM}, median of {repeats}, /dags offered at {RATE:.0f} req/s"
    ctx.log(
        f"  alone {alone_rate:,.0f} tasks/s, under API load {loaded_rate:,.0f} tasks/s; API {load.summary()}"
    )
    return [
        Figure("api_load.scheduler_alone.tasks_per_s", alone_rate, "tasks/s", params=params),
        Figure("api_load.scheduler_loaded.tasks_per_s", loaded_rate, "tasks/s", params=params),
        Figure(
            "api_load.slowdown",
            slowdown,
            "x",
            f"<= {MAX_SLOWDOWN:g}",
            at_most(slowdown, MAX_SLOWDOWN),
            params,
            note="1 - loaded / alone throughput, same run",
        ),
        Figure(
            "api_load.api_dags.rps",
            load.per_second,
            "req/s",
            f">= {RATE:.0f} (offered)",
            at_least(load.per_second, RATE * 0.98),
            params,
            note="GET /api/v1/dags answered during the loaded runs (the median run's load)",
        ),
        Figure(
            "api_load.api_dags.p50_ms", load.median_ms, "ms", params=params, note="from when each was due"
        ),
        Figure("api_load.api_dags.p99_ms", load.percentile_ms(0.99), "ms", params=params),
        Figure(
            "api_load.api_server.cores",
            load.server_cpu_share,
            "cores",
            params=params,
            note=f"webserver CPU s per s; {load.missed} requests missed (all connections busy)",
        ),
    ]


def _seed(dags: int) -> str:
    from benchmarks.web_seed import seed_dags
    from minisched.db.session import create_session
    from minisched.service.tokens import create_token

    with create_session() as session:
        seed_dags(dags, session=session, paused=True)
        return create_token("bench", "viewer", session=session)[1]


def _alternate(  # noqa: PLR0917 -- the run's parts
    home: Home, token: str, engine: Any, scheduler: SchedulerProcess, repeats: int, min_seconds: float
) -> tuple[list[float], list[float], Paced]:
    """Seconds per run alone and under load, and the API's load of the median loaded run."""
    from benchmarks.http_load import webserver

    headers = {"Authorization": f"Bearer {token}"}
    alone: list[float] = []
    loaded: list[float] = []
    loads: list[Paced] = []
    dates = iter(datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=k) for k in range(2 * repeats))
    with webserver(home.environ(), "/api/v1/dags", headers) as server:
        for _ in range(repeats):
            alone.append(_one_run(engine, scheduler, next(dates)))
            seconds = max(min_seconds, 4 * alone[-1])
            under_load, load = _loaded_run(
                server, headers, seconds, lambda: _one_run(engine, scheduler, next(dates))
            )
            loaded.append(under_load)
            loads.append(load)
    return alone, loaded, sorted(loads, key=lambda load: load.per_second)[len(loads) // 2]


def _loaded_run(
    server: Any, headers: dict[str, str], seconds: float, one_run: Callable[[], float]
) -> tuple[float, Paced]:
    """`one_run()` started once the API load is on; its seconds, and the API's load meanwhile."""
    from benchmarks.http_pace import pace

    started = threading.Event()
    result: list[Any] = []

    def load() -> None:
        result.append(pace(server, "/api/v1/dags", headers, rate=RATE, seconds=seconds, on_start=started.set))

    thread = threading.Thread(target=load)
    thread.start()
    if not started.wait(120):
        raise RuntimeError("the API load did not start")
    run_seconds = one_run()
    thread.join()
    if not result or run_seconds > seconds:
        raise RuntimeError(f"the loaded run took {run_seconds:.1f}s, longer than the load ({seconds:.0f}s)")
    return run_seconds, result[0]


def _one_run(engine: Any, scheduler: SchedulerProcess, logical_date: datetime) -> float:
    """Seconds from trigger to the run's end as the scheduler recorded it."""
    started = datetime.now(UTC)
    run_id = trigger("parallel", logical_date=logical_date)
    times = wait_for_run(engine, "parallel", run_id, timeout=600, alive=scheduler.check_alive)
    if times.state != "success" or times.end_date is None:
        raise RuntimeError(f"the run ended {times.state}:\n{scheduler.output_tail()}")
    return (times.end_date - started).total_seconds()
