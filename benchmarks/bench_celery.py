"""9. The Celery executor: one scheduler and two workers against the local executor, in the same run.

PostgreSQL only (the celery executor refuses SQLite). Redis comes from MINISCHED_BENCH_REDIS_URL, else
MINISCHED_TEST_REDIS_URL, else a redis-server this benchmark starts on a free loopback port.

For each executor, one `python -m minisched scheduler` (parallelism 2) runs, already loaded:
- a run of N parallel no-op tasks: tasks/s from the first task's start to the last one's end (the
  timestamps the workers recorded), and from trigger to the run's end;
- one chain of M no-op tasks, where a worker is always free: the median delay from an upstream's end
  to its downstream's start (the whole hop: report, scheduling, publish, claim, hand-over);
- the CPU time the wide run cost per task: the scheduler, the workers and every process they started,
  the PostgreSQL backends serving the run's database, and (celery) the Redis server. On a machine shared
  with other work, tasks/s measures our share of the CPU as much as our code; CPU per task does not,
  and 2 cores divided by it is the ceiling on an otherwise idle 2-core machine.
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
from pathlib import Path

from sqlalchemy import Engine, text

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
    # Sizes of one investigation (e.g. MINISCHED_BENCH_CELERY_SIZES=300,40 under py-spy).
    if sizes := os.environ.get("MINISCHED_BENCH_CELERY_SIZES"):
        n, m = (int(part) for part in sizes.split(","))
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
        with in_process(home), _workers(home, extra, executor == "celery") as workers, scheduler:
            scheduler.wait_for_dags(engine, {"wide", "chain"})
            meter = _CpuMeter([scheduler.pid, *workers], engine, redis_url if executor == "celery" else None)
            started = time.perf_counter()
            run_id = trigger("wide", logical_date=datetime(2030, 1, 1, tzinfo=UTC))
            wide = wait_for_run(engine, "wide", run_id, timeout=900, alive=scheduler.check_alive)
            wall = time.perf_counter() - started
            cpu = meter.seconds()
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
    cpu_ms = {part: seconds * 1e3 / n for part, seconds in cpu.items()}
    cpu_total = sum(cpu_ms.values())
    parts = ", ".join(f"{part} {ms:.1f}" for part, ms in cpu_ms.items())
    ctx.log(
        f"  {executor}: {n / running:.0f} tasks/s running, hop median {hop or 0:.1f} ms, "
        f"CPU {cpu_total:.1f} ms/task ({parts})"
    )
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
        Figure(
            f"celery.{executor}.cpu_ms_per_task",
            cpu_total,
            "ms",
            params=params,
            note=f"wide run; {parts}; 2 cores / this = {2000 / cpu_total:.0f} tasks/s ceiling",
        ),
    ]


class _CpuMeter:
    """CPU seconds since creation, per part: the process trees of `pids` (the scheduler and the workers:
    what their descendants used, reaped or still running), the database's PostgreSQL backends, Redis."""

    def __init__(self, pids: list[int], engine: Engine, redis_url: str | None) -> None:
        self.pids, self.engine, self.redis_url = pids, engine, redis_url
        self._start = self._read()

    def seconds(self) -> dict[str, float]:
        end = self._read()
        return {part: end[part] - self._start.get(part, 0.0) for part in end}

    def _read(self) -> dict[str, float]:
        with self.engine.connect() as conn:
            backends = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
            parts = {
                "scheduler": _tree_cpu(self.pids[0]),
                "workers": sum(_tree_cpu(pid) for pid in self.pids[1:]),
                "postgresql": sum(_process_cpu(pid, children=False) for pid in backends),
            }
        if self.redis_url:
            import redis

            info = redis.Redis.from_url(self.redis_url).info("cpu")
            parts["redis"] = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        return parts


def _process_cpu(pid: int, *, children: bool = True) -> float:
    """utime + stime (and, with `children`, that of its reaped children), in seconds; 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11 : 15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int) -> float:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += _process_cpu(pid)
        todo.extend(parents.get(pid, []))
    return total


@contextlib.contextmanager
def _workers(home: Home, extra: dict[str, str], wanted: bool) -> Iterator[list[int]]:
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
        yield [proc.pid for proc in procs]
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
