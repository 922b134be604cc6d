"""10. The scheduler under API load: a 1,000-task parallel run through `minisched scheduler`, alone and
while `GET /api/v1/dags` is asked 500 times a second on the same database, in the same run; target:
at most 25% slower (issue 13: "while that load runs", the load being the 500 requests/s the API must
sustain).

The load is offered at a fixed rate, open loop (`http_pace`): a load that sends as fast as the server
answers takes both cores of the machine whatever the server's speed, and measures the machine, not
the scheduler. Alone and loaded alternate (alone, loaded, alone, loaded, ...), and each side takes its
median, so a change in what else the machine runs meanwhile hits both sides alike. The load is
`minisched webserver` (one uvicorn worker) with 1,000 DAGs (paused, so the scheduler leaves them
alone), warmed up by 2 s of the same load; it starts before the run is triggered and lasts past its
end (checked). The answered rate and the latency percentiles say whether the server kept up with the
offered rate meanwhile; the rate answered while the scheduler ran is given too (the load lasts past
the run's end).

Where the 2 cores went is read from /proc over each run (trigger to end): the scheduler process, its
workers (its descendants), the web server, the load client, this driver process (it triggers the runs
and polls for their end), and the rest of the machine (on PostgreSQL, the database server's
backends are part of that rest); each side gives the median of its runs. The
load client's CPU per request is reported as well: in a real deployment the clients run elsewhere, so
what the generator costs here is taken from the system under test.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

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
from benchmarks.proc_cpu import (
    CoreSplit,
    children,
    machine_busy_seconds,
    measure,
    median_split,
    own_seconds,
    runs_module,
    tree_seconds,
)

if TYPE_CHECKING:
    from benchmarks.http_load import Server
    from benchmarks.http_pace import Paced

_T = TypeVar("_T")
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
                runs = _alternate(home, token, engine, scheduler, repeats, ctx.size(10, 3), ctx.size(2, 0))
        engine.dispose()
    alone, loaded, load = runs.alone, runs.loaded, runs.load
    alone_rate, loaded_rate = tasks / statistics.median(alone), tasks / statistics.median(loaded)
    slowdown = 1 - loaded_rate / alone_rate
    params = f"N={tasks}, parallelism={PARALLELISM}, median of {repeats}, /dags offered at {RATE:.0f} req/s"
    cores_alone, cores_loaded = median_split(runs.cores_alone), median_split(runs.cores_loaded)
    during = statistics.median(runs.answered_during)
    ctx.log(
        f"  alone {alone_rate:,.0f} tasks/s, under API load {loaded_rate:,.0f} tasks/s; API {load.summary()}"
    )
    ctx.log(
        f"  runs (s): alone {_seconds(alone)}, loaded {_seconds(loaded)}; "
        f"answered during the loaded runs {_rates(runs.answered_during)} req/s"
    )
    ctx.log(f"  cores alone: {cores_alone.describe()}")
    ctx.log(f"  cores loaded: {cores_loaded.describe()}")
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
            note=(
                "1 - loaded / alone throughput, same run; other processes on the machine took "
                f"{cores_alone.others:.2f} (alone) / {cores_loaded.others:.2f} (loaded) cores"
            ),
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
        Figure(
            "api_load.api_dags.rps_during_run",
            during,
            "req/s",
            params=params,
            note="answered between each loaded run's trigger and its end (median of the runs)",
        ),
        Figure(
            "api_load.load_client.cpu_ms_per_request",
            load.client_ms_per_request,
            "CPU ms",
            params=params,
            note=f"the paced client's CPU per request sent; server {load.server_ms_per_request:.2f} ms",
        ),
        Figure(
            "api_load.cores.alone",
            cores_alone.ours,
            "cores",
            params=params,
            note=cores_alone.describe(),
        ),
        Figure(
            "api_load.cores.loaded",
            cores_loaded.ours,
            "cores",
            params=params,
            note=cores_loaded.describe(),
        ),
    ]


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def _rates(values: list[float]) -> str:
    return ", ".join(f"{value:.0f}" for value in values)


def _seed(dags: int) -> str:
    from benchmarks.web_seed import seed_dags
    from minisched.db.session import create_session
    from minisched.service.tokens import create_token

    with create_session() as session:
        seed_dags(dags, session=session, paused=True)
        return create_token("bench", "viewer", session=session)[1]


@dataclass
class _Runs:
    alone: list[float]
    loaded: list[float]
    load: Paced
    """The API's load of the median loaded run (by answered rate)."""
    answered_during: list[float]
    cores_alone: list[CoreSplit]
    cores_loaded: list[CoreSplit]


def _alternate(  # noqa: PLR0917 -- the run's parts
    home: Home,
    token: str,
    engine: Any,
    scheduler: SchedulerProcess,
    repeats: int,
    min_seconds: float,
    warm_up: float,
) -> _Runs:
    """Seconds per run alone and under load, the cores each part used, and the API's load. The
    server first takes `warm_up` seconds of the load, so the first loaded run does not pay for its
    first pages and connections (the readiness check asked it only once)."""
    from benchmarks.http_load import webserver
    from benchmarks.http_pace import pace

    headers = {"Authorization": f"Bearer {token}"}
    alone_seconds: list[float] = []
    loaded_seconds: list[float] = []
    answered_during: list[float] = []
    cores_alone: list[CoreSplit] = []
    cores_loaded: list[CoreSplit] = []
    loads: list[Paced] = []
    dates = iter(datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=k) for k in range(2 * repeats))
    with webserver(home.environ(), "/api/v1/dags", headers) as server:
        if warm_up:
            pace(server, "/api/v1/dags", headers, rate=RATE, seconds=warm_up)
        parts = _parts(scheduler.pid, server)
        for _ in range(repeats):
            alone, split = measure(parts, lambda: _one_run(engine, scheduler, next(dates)))
            alone_seconds.append(alone)
            cores_alone.append(split)
            seconds = max(min_seconds, 4 * alone)
            (under_load, split, start, end), load = _loaded_run(
                server,
                headers,
                seconds,
                lambda: _timed(parts, lambda: _one_run(engine, scheduler, next(dates))),
            )
            loaded_seconds.append(under_load)
            cores_loaded.append(split)
            answered_during.append(load.answered_between(start, end))
            loads.append(load)
    median_load = sorted(loads, key=lambda load: load.per_second)[len(loads) // 2]
    return _Runs(alone_seconds, loaded_seconds, median_load, answered_during, cores_alone, cores_loaded)


def _timed(
    parts: Callable[[], dict[str, float]], one_run: Callable[[], float]
) -> tuple[float, CoreSplit, float, float]:
    """`one_run()`'s seconds, the cores meanwhile, and the wall times (`time.time()`) around it."""
    start = time.time()
    seconds, split = measure(parts, one_run)
    return seconds, split, start, time.time()


def _parts(scheduler: int, server: Server) -> Callable[[], dict[str, float]]:
    """CPU seconds so far of each part of the machine: what `measure` splits the cores by."""
    driver = os.getpid()

    def parts() -> dict[str, float]:
        scheduler_own = own_seconds(scheduler)
        # Only the pacer: with --with-airflow, Airflow's side process is a child of the driver too.
        clients = [pid for pid in children(driver) if runs_module(pid, "benchmarks.http_pace")]
        return {
            "scheduler": scheduler_own,
            "workers": tree_seconds(scheduler) - scheduler_own,
            "server": tree_seconds(server.pid),
            "load client": sum(tree_seconds(pid) for pid in clients),
            "driver": own_seconds(driver),
            "machine": machine_busy_seconds(),
        }

    return parts


def _loaded_run(
    server: Server, headers: dict[str, str], seconds: float, one_run: Callable[[], _T]
) -> tuple[_T, Paced]:
    """`one_run()` started once the API load is on, checked to end before the load does; its result,
    and the API's load."""
    from benchmarks.http_pace import pace

    started = threading.Event()
    result: list[Any] = []
    load_end = 0.0

    def load() -> None:
        result.append(pace(server, "/api/v1/dags", headers, rate=RATE, seconds=seconds, on_start=started.set))

    thread = threading.Thread(target=load)
    thread.start()
    if not started.wait(120):
        raise RuntimeError("the API load did not start")
    load_end = time.monotonic() + seconds
    outcome = one_run()
    run_ended = time.monotonic()
    thread.join()
    if not result or run_ended > load_end:
        raise RuntimeError(f"the loaded run outlasted the load ({seconds:.0f}s)")
    return outcome, result[0]


def _one_run(engine: Any, scheduler: SchedulerProcess, logical_date: datetime) -> float:
    """Seconds from trigger to the run's end as the scheduler recorded it."""
    started = datetime.now(UTC)
    run_id = trigger("parallel", logical_date=logical_date)
    times = wait_for_run(engine, "parallel", run_id, timeout=600, alive=scheduler.check_alive)
    if times.state != "success" or times.end_date is None:
        raise RuntimeError(f"the run ended {times.state}:\n{scheduler.output_tail()}")
    return (times.end_date - started).total_seconds()
