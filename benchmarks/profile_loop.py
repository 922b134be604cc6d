"""Where the scheduler's time goes: one run driven by `SchedulerLoop` in this process, split by step.

    .venv/bin/python -m benchmarks.profile_loop [--shape parallel|chain] [--tasks 1000]
        [--executor local|inprocess|instant] [--parallelism 2] [--cprofile 30]

Prints wall time and tasks/s, the scheduler process's CPU per task and per loop, statements per loop,
how much of the CPU went to the database driver itself (between before/after_cursor_execute), to the
loop's transaction and to the executor calls; with --cprofile N, the N most expensive minisched
functions (cumulative) too. `--executor instant`: tries succeed at hand-over without running, so
only the scheduler's work is left (e.g. a chain's hop transaction; for callgrind, the difference of two
sizes). Not part of `python -m benchmarks` (no targets, just a diagnosis tool).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks.common import BenchContext, Shape, dag_source, in_process, new_home, trigger, write_dag


def _timed(obj: object, name: str, label: str, totals: dict[str, float]) -> None:
    original: Callable[..., Any] = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.process_time() - started

    setattr(obj, name, wrapper)


class _InstantExecutor:
    """Tries that succeed the moment they are handed over, without running anything: what is left is
    the scheduler's own work (for a chain: one hop's transaction per loop)."""

    @staticmethod
    def make(parallelism: int) -> Any:
        from minisched.scheduler.executors.base import BaseExecutor, TryResult, TryStarted

        class Instant(BaseExecutor):
            name = "instant"

            def __init__(self) -> None:
                super().__init__(parallelism, queue_depth=0)
                self._finished: list[TryResult] = []

            def start(self) -> None:
                pass

            def submit(self, tries: Any) -> None:
                for request in tries:
                    now = datetime.now(UTC)
                    self._started_events.append(TryStarted.of(request, now, os.getpid()))
                    self._finished.append(
                        TryResult(request.ti_id, request.try_number, "success", now, now, "", 0)
                    )

            def poll(self, timeout: float = 0.0) -> list[TryResult]:
                finished, self._finished = self._finished, []
                return finished

            @property
            def running(self) -> int:
                return 0

            def stop(self, grace: float) -> list[TryResult]:
                return self.poll()

        return Instant()


def profile(shape: Shape, tasks: int, executor_name: str, parallelism: int, cprofile: int) -> None:
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.db.session import get_engine
    from minisched.scheduler.executors import executor_for
    from minisched.scheduler.executors.base import BaseExecutor
    from minisched.scheduler.executors.inprocess import InProcessExecutor
    from minisched.scheduler.loop import SchedulerLoop, SchedulerOptions

    workdir = Path(tempfile.mkdtemp(prefix="minisched-profile-"))
    # MINISCHED_BENCH_BACKEND=postgresql with MINISCHED_BENCH_PG_URL (an admin URL) profiles PostgreSQL.
    backend = "postgresql" if os.environ.get("MINISCHED_BENCH_BACKEND") == "postgresql" else "sqlite"
    ctx = BenchContext(
        backend, quick=False, workdir=workdir, pg_admin_url=os.environ.get("MINISCHED_BENCH_PG_URL")
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        home = cleanup.enter_context(new_home(ctx, "profile"))
        write_dag(home.dags, "profiled", dag_source("profiled", tasks, shape))
        with in_process(home):
            refresh_dag_folder(home.dags)
            key = ("profiled", trigger("profiled", logical_date=datetime(2030, 1, 1, tzinfo=UTC)))
            totals: dict[str, float] = collections.defaultdict(float)
            driver = [0.0, 0.0]  # total driver CPU, start of the current statement
            statements = [0]

            def before(*_args: object) -> None:
                driver[1] = time.process_time()
                statements[0] += 1

            def after(*_args: object) -> None:
                driver[0] += time.process_time() - driver[1]

            engine = get_engine()
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
            executor: BaseExecutor = (
                InProcessExecutor()
                if executor_name == "inprocess"
                else _InstantExecutor.make(parallelism)
                if executor_name == "instant"
                else executor_for(executor_name, parallelism)
            )
            for method in ("poll", "submit", "pump"):
                if hasattr(executor, method):
                    _timed(executor, method, f"executor.{method}", totals)

            def on_loop() -> None:
                if key in loop.ended_runs:
                    loop.request_stop()

            options = SchedulerOptions(logs_folder=home.logs, dags_folder=home.dags, handle_signals=False)
            loop = SchedulerLoop(executor, options, on_loop=on_loop)
            _timed(loop, "_transaction", "loop transaction (incl. executor.pump)", totals)
            profiler = cProfile.Profile()
            wall, cpu = time.perf_counter(), time.process_time()
            if cprofile:
                profiler.enable()
            loop.run()
            profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    loops = max(loop.loops, 1)
    print(
        f"{shape} x {tasks}, {executor_name} executor: wall {wall:.3f}s = {tasks / wall:,.0f} tasks/s; "
        f"{loops} loops ({tasks / loops:.1f} tasks/loop), {statements[0] / loops:.1f} statements/loop"
    )
    print(f"  scheduler CPU {cpu:.3f}s = {cpu / tasks * 1e3:.2f} ms/task, {cpu / loops * 1e3:.2f} ms/loop")
    for label, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {label}: {seconds:.3f}s CPU = {seconds / loops * 1e3:.2f} ms/loop")
    print(f"  database driver (cursor.execute): {driver[0]:.3f}s CPU = {driver[0] / cpu * 100:.0f}% of it")
    if cprofile:
        stats = pstats.Stats(profiler)
        # PROFILE_SORT=tottime PROFILE_FILTER= : where the time goes inside SQLAlchemy and the OS too
        sort, only = (
            os.environ.get("PROFILE_SORT", "cumulative"),
            os.environ.get("PROFILE_FILTER", "minisched/"),
        )
        stats.sort_stats(sort).print_stats(only, cprofile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["parallel", "chain"], default="parallel")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument(
        "--executor", choices=["local", "sequential", "inprocess", "instant"], default="local"
    )
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="show N functions (0: off)")
    args = parser.parse_args()
    profile(args.shape, args.tasks, args.executor, args.parallelism, args.cprofile)


if __name__ == "__main__":
    main()
