"""6. Scheduler memory: peak RSS with 1,000 DAG files loaded and a 1,000-task run executed.

A `python -m minisched scheduler` subprocess (local executor, parallelism 2) loads a folder of 1,000
small one-DAG files plus one DAG of 1,000 parallel no-op tasks; once all are active, one run of the big
DAG is triggered and waited for. The figure is the scheduler process's VmHWM (peak RSS, from
/proc/PID/status, read every poll and just before SIGTERM). The largest sum of PSS over the scheduler
and its workers seen while polling (every 20 ms) is reported too: the whole footprint, with the pages
forked workers share with the scheduler counted once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from benchmarks.bench_parsing import write_small_dags
from benchmarks.common import (
    BenchContext,
    Figure,
    SchedulerProcess,
    at_most,
    dag_source,
    in_process,
    new_home,
    read_engine,
    trigger,
    wait_for_run,
    write_dag,
)

TARGET_MIB = 300.0
PARALLELISM = 2


def run(ctx: BenchContext) -> list[Figure]:
    files, tasks = ctx.size(1000, 50), ctx.size(1000, 50)
    with new_home(ctx, "memory") as home:
        write_small_dags(home.dags, files, home.root / "imports.count")
        write_dag(home.dags, "big", dag_source("big", tasks))
        dag_ids = {f"small_{i:04d}" for i in range(files)} | {"big"}
        engine = read_engine(home.db_url)
        with in_process(home), SchedulerProcess(home, parallelism=PARALLELISM) as scheduler:
            started = time.perf_counter()
            scheduler.wait_for_dags(engine, dag_ids, timeout=600)
            load_seconds = time.perf_counter() - started
            loaded_kib = scheduler.sample_rss()
            run_id = trigger("big", logical_date=datetime(2030, 1, 1, tzinfo=UTC))

            def alive() -> None:
                scheduler.check_alive()
                scheduler.sample_rss()

            times = wait_for_run(engine, "big", run_id, timeout=600, interval=0.02, alive=alive)
            if times.state != "success":
                raise RuntimeError(f"big run ended {times.state}:\n{scheduler.output_tail()}")
            scheduler.stop()
        engine.dispose()
    peak_mib = scheduler.peak_rss_kib / 1024
    params = f"{files} DAG files + 1 run of {tasks} tasks, parallelism={PARALLELISM}"
    ctx.log(f"  peak {peak_mib:.1f} MiB (after load {loaded_kib / 1024:.1f}), load {load_seconds:.2f}s")
    return [
        Figure(
            "memory.scheduler_peak_rss",
            peak_mib,
            "MiB",
            f"<= {TARGET_MIB:.0f}",
            at_most(peak_mib, TARGET_MIB),
            params,
            note="VmHWM of the scheduler process",
        ),
        Figure(
            "memory.scheduler_rss_after_load",
            loaded_kib / 1024,
            "MiB",
            params=params,
            note="VmHWM once loaded",
        ),
        Figure(
            "memory.tree_peak_pss",
            scheduler.peak_tree_pss_kib / 1024,
            "MiB",
            params=params,
            note="scheduler + workers, sum of PSS (proportional set size)",
        ),
        Figure(
            "memory.folder_load_seconds",
            load_seconds,
            "s",
            params=params,
            note="scheduler start -> all DAGs active",
        ),
    ]
