"""9. The Celery executor: one scheduler and two workers against the local executor, in the same run.

PostgreSQL only (the celery executor refuses SQLite). Redis comes from MINISCHED_BENCH_REDIS_URL, else
MINISCHED_TEST_REDIS_URL, else a redis-server this benchmark starts on a free loopback port.

For each executor, one `python -m minisched scheduler` (parallelism 2) runs, already loaded:
- a run of N parallel no-op tasks: tasks/s from the first task's start to the last one's end (the
  timestamps the workers recorded), and from trigger to the run's end;
- one chain of M no-op tasks, where a worker is always free: the median delay from an upstream's end
  to its downstream's start (the whole hop: report, scheduling, publish, claim, fork).
Celery: two `minisched celery worker --concurrency 1` processes, each with its own logs folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from benchmarks.common import (
    BenchContext,
    Figure,
    Home,
    SchedulerProcess,
    at_least,
    at_most,
    chain_edges,
    dag_source,
    edge_latencies,
    in_process,
    median,
    new_home,
    read_engine,
    trigger,
    wait_for_run,
    write_dag,
)

TASKS_PER_S_TARGET = 300.0
HOP_TARGET_MS = 50.0
PARALLELISM = 2


def run(ctx: BenchContext) -> list[Figure]:
    if ctx.backend != "postgresql":
        ctx.log(
            "  celery: skipped on SQLite (the celery executor needs PostgreSQL); use --backend postgresql"
        )
        return []
    n, m = ctx.size(1000, 40), ctx.size(100, 10)
    figures: list[Figure] = []
    with _redis() as redis_url:
        for executor in ("local", "celery"):
            figures += _measure(ctx, executor, redis_url, n, m)
    return figures


def _measure(ctx: BenchContext, executor: str, redis_url: str, n: int, m: int) -> list[Figure]:
    with new_home(ctx, f"celery_{executor}") as home:
        write_dag(home.dags, "wide", dag_source("wide", n, "parallel"))
        write_dag(home.dags, "chain", dag_source("chain", m, "chain"))
        extra = {
            "MINISCHED_CELERY_BROKER_URL": redis_url,
            "MINISCHED_DEFAULT_QUEUE": f"bench-{os.getpid()}-{time.monotonic_ns()}",
        }
        engine = read_engine(home.db_url)
        scheduler = SchedulerProcess(home, parallelism=PARALLELISM, executor=executor)
        scheduler.env.update(extra)
        with in_process(home), _workers(home, extra, executor == "celery"), scheduler:
            scheduler.wait_for_dags(engine, {"wide", "chain"})
            started = time.perf_counter()
            run_id = trigger("wide", logical_date=datetime(2030, 1, 1, tzinfo=UTC))
            wide = wait_for_run(engine, "wide", run_id, timeout=900, alive=scheduler.check_alive)
            wall = time.perf_counter() - started
            run_id = trigger("chain", logical_date=datetime(2030, 1, 2, tzinfo=UTC))
            chain = wait_for_run(engine, "chain", run_id, timeout=900, alive=scheduler.check_alive)
        engine.dispose()
    for name, times in (("wide", wide), ("chain", chain)):
        if times.state != "success":
            raise RuntimeError(f"{executor}: the {name} run ended {times.state}:\n{scheduler.output_tail()}")
    starts = [s for s, _ in wide.tasks.values() if s is not None]
    ends = [e for _, e in wide.tasks.values() if e is not None]
    running = (max(ends) - min(starts)).total_seconds()
    hops = [g * 1e3 for g in edge_latencies(chain.tasks, chain_edges(1, m))]
    hop = median(hops)
    workers = "2 celery workers, concurrency 1 each" if executor == "celery" else "local executor"
    params = f"N={n}, scheduler parallelism={PARALLELISM}, {workers}"
    ctx.log(f"  {executor}: {n / running:.0f} tasks/s running, hop median {hop or 0:.1f} ms")
    target = executor == "celery"
    return [
        Figure(
            f"celery.{executor}.tasks_per_s",
            n / running,
            "tasks/s",
            f">= {TASKS_PER_S_TARGET:g}" if target else "",
            at_least(n / running, TASKS_PER_S_TARGET) if target else None,
            params,
            note="first task start -> last task end",
        ),
        Figure(f"celery.{executor}.trigger_to_end_tasks_per_s", n / wall, "tasks/s", params=params),
        Figure(
            f"celery.{executor}.hop_median",
            hop,
            "ms",
            f"<= {HOP_TARGET_MS:g}" if target else "",
            at_most(hop, HOP_TARGET_MS) if target else None,
            f"1 chain x {m} tasks, {workers}",
            note="upstream end -> downstream start",
        ),
    ]


@contextlib.contextmanager
def _workers(home: Home, extra: dict[str, str], wanted: bool) -> Iterator[None]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(2 if wanted else 0):
            env = {
                **home.environ(executor="celery"),
                **extra,
                "MINISCHED_LOGS_FOLDER": str(home.root / f"w{index}"),
            }
            with (home.root / f"worker{index}.out").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "minisched",
                            "celery",
                            "worker",
                            "--hostname",
                            f"bench{index}",
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    url = os.environ.get("MINISCHED_BENCH_REDIS_URL") or os.environ.get("MINISCHED_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis: set MINISCHED_BENCH_REDIS_URL or install redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
