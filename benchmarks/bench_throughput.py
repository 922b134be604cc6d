"""1. End-to-end throughput: no-op PythonOperator DAGs through `minisched scheduler` and `dags test`.

Scheduler: a real `python -m minisched scheduler` subprocess (local executor, parallelism 2) already
running with the DAGs loaded; each run is created with `trigger_dag` and timed from just before the
trigger to the run's `end_date` as the scheduler recorded it (dag_run.state is polled every 50 ms,
which only decides when the next run is triggered). Also the time from trigger to the first task's
start (pick-up latency, part of the elapsed time), and the rate from the first task's start to the end.

dags test: `python -m minisched dags test DAG` as a subprocess (wall time, with a folder holding only
that DAG's file, parsed by the first of the repeats), and `run_dag_test` called in this process after
the folder was loaded (per-task bookkeeping cost; the scheduler loop with the in-process executor).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from benchmarks.common import (
    BenchContext,
    Figure,
    Home,
    SchedulerProcess,
    Shape,
    at_least,
    dag_source,
    in_process,
    new_home,
    read_engine,
    run_cli,
    trigger,
    wait_for_run,
    write_dag,
)

SCHEDULER_TARGET = 1000.0  # tasks/s, parallel DAG through the scheduler
#: Every task returning a small value (stored as XCom) may cost at most 20% of the no-value throughput.
XCOM_THROUGHPUT_RATIO = 0.8
DAGS_TEST_TARGET = 2000.0  # tasks/s, dags test (in-process bookkeeping)
PARALLELISM = 2
SHAPES: tuple[Shape, ...] = ("parallel", "chain")
VALUES_DAG = "values_large"


def sizes(ctx: BenchContext) -> dict[str, int]:
    return {"small": ctx.size(100, 10), "large": ctx.size(1000, 40)}


def run(ctx: BenchContext) -> list[Figure]:
    return scheduler_figures(ctx) + dags_test_figures(ctx)


# -- through the scheduler ----------------------------------------------------------------------------
def scheduler_figures(ctx: BenchContext) -> list[Figure]:
    repeats = ctx.size(3, 1)
    figures: list[Figure] = []
    with new_home(ctx, "e2e_sched") as home:
        dag_ids = {}
        for shape in SHAPES:
            for label, n in sizes(ctx).items():
                dag_id = f"{shape}_{label}"
                write_dag(home.dags, dag_id, dag_source(dag_id, n, shape))
                dag_ids[(shape, label)] = dag_id
        # The same large parallel DAG, every task returning a small value, measured in the same run.
        write_dag(home.dags, VALUES_DAG, dag_source(VALUES_DAG, sizes(ctx)["large"], returns_value=True))
        engine = read_engine(home.db_url)
        with in_process(home), SchedulerProcess(home, parallelism=PARALLELISM) as scheduler:
            scheduler.wait_for_dags(engine, {*dag_ids.values(), VALUES_DAG})
            dates = (datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=k) for k in itertools.count())
            for (shape, label), dag_id in dag_ids.items():
                n = sizes(ctx)[label]
                timed = [_timed_run(engine, scheduler, dag_id, next(dates)) for _ in range(repeats)]
                seconds = statistics.median(t.elapsed for t in timed)
                rate = n / seconds
                params = f"N={n}, parallelism={PARALLELISM}, median of {repeats}"
                target = shape == "parallel"
                ctx.log(f"  scheduler {dag_id}: {seconds:.3f}s = {rate:,.0f} tasks/s")
                figures += [
                    Figure(
                        f"scheduler.{shape}.{label}.tasks_per_s",
                        rate,
                        "tasks/s",
                        f">= {SCHEDULER_TARGET:,.0f}" if target else "",
                        at_least(rate, SCHEDULER_TARGET) if target else None,
                        params,
                        note="trigger -> dag_run.end_date",
                    ),
                    Figure(f"scheduler.{shape}.{label}.ms_per_task", seconds / n * 1e3, "ms", params=params),
                    Figure(
                        f"scheduler.{shape}.{label}.trigger_to_first_start",
                        statistics.median(t.first_start for t in timed) * 1e3,
                        "ms",
                        params=params,
                        note="trigger -> first task's start_date",
                    ),
                    Figure(
                        f"scheduler.{shape}.{label}.run_tasks_per_s",
                        n / statistics.median(t.running for t in timed),
                        "tasks/s",
                        params=params,
                        note="first task's start -> dag_run.end_date (pick-up left out)",
                    ),
                ]
            figures.append(_values_ratio(ctx, engine, scheduler, dag_ids[("parallel", "large")], dates))
        engine.dispose()
    return figures


@dataclass(frozen=True)
class _Timed:
    elapsed: float  # trigger -> dag_run.end_date
    first_start: float  # trigger -> the first task's start
    running: float  # the first task's start -> dag_run.end_date


def _timed_run(engine: Engine, scheduler: SchedulerProcess, dag_id: str, logical_date: datetime) -> _Timed:
    started = datetime.now(UTC)
    run_id = trigger(dag_id, logical_date=logical_date)
    times = wait_for_run(engine, dag_id, run_id, timeout=600, alive=scheduler.check_alive)
    if times.state != "success" or times.end_date is None:
        raise RuntimeError(f"{dag_id} run ended {times.state}:\n{scheduler.output_tail()}")
    first = min(s for s, _ in times.tasks.values() if s is not None)
    return _Timed(
        (times.end_date - started).total_seconds(),
        (first - started).total_seconds(),
        (times.end_date - first).total_seconds(),
    )


def _values_ratio(
    ctx: BenchContext,
    engine: Engine,
    scheduler: SchedulerProcess,
    no_value_dag: str,
    dates: Iterator[datetime],
) -> Figure:
    """Throughput with a value per task over throughput without, from back-to-back pairs of runs.

    On a shared machine the load drifts over minutes; a pair of runs seconds apart sees nearly the same
    load, and the order alternates between pairs, so the median ratio of the pairs is what the values
    cost, not what the neighbours did meanwhile.
    """
    pairs = ctx.size(5, 1)
    ratios: list[float] = []
    for index in range(pairs):
        order = (no_value_dag, VALUES_DAG) if index % 2 == 0 else (VALUES_DAG, no_value_dag)
        elapsed = {dag_id: _timed_run(engine, scheduler, dag_id, next(dates)).elapsed for dag_id in order}
        ratios.append(elapsed[no_value_dag] / elapsed[VALUES_DAG])  # same N: the ratio of the rates
    ratio = statistics.median(ratios)
    ctx.log(f"  scheduler values / no values: {', '.join(f'{r:.2f}' for r in ratios)} -> median {ratio:.2f}")
    n = sizes(ctx)["large"]
    return Figure(
        "scheduler.values.large.throughput_ratio",
        ratio,
        "x",
        f">= {XCOM_THROUGHPUT_RATIO:g}",
        at_least(ratio, XCOM_THROUGHPUT_RATIO),
        f"N={n}, parallelism={PARALLELISM}, median of {pairs} back-to-back pairs",
        note="parallel, every task returning a small value (XCom) / no value, same run",
    )


# -- dags test ----------------------------------------------------------------------------------------
def dags_test_figures(ctx: BenchContext) -> list[Figure]:
    repeats = ctx.size(3, 1)
    figures: list[Figure] = []
    for shape in SHAPES:
        walls: dict[str, float] = {}
        for label, n in sizes(ctx).items():
            dag_id = f"{shape}_{label}"
            with new_home(ctx, f"e2e_test_{shape}_{label}") as home:
                write_dag(home.dags, dag_id, dag_source(dag_id, n, shape))
                wall = statistics.median(_dags_test_wall(home, dag_id) for _ in range(repeats))
                walls[label] = wall
                inproc = statistics.median(_dags_test_in_process(home, dag_id) for _ in range(repeats))
            params = f"N={n}, median of {repeats}"
            rate = n / inproc
            target = label == "large"
            ctx.log(f"  dags test {dag_id}: wall {wall:.3f}s, in-process {inproc:.3f}s = {rate:,.0f} tasks/s")
            figures += [
                Figure(
                    f"dags_test.{shape}.{label}.wall_s",
                    wall,
                    "s",
                    params=params,
                    note="subprocess incl. start-up; parse on the 1st repeat",
                ),
                Figure(f"dags_test.{shape}.{label}.wall_tasks_per_s", n / wall, "tasks/s", params=params),
                Figure(
                    f"dags_test.{shape}.{label}.inproc_tasks_per_s",
                    rate,
                    "tasks/s",
                    f">= {DAGS_TEST_TARGET:,.0f}" if target else "",
                    at_least(rate, DAGS_TEST_TARGET) if target else None,
                    params,
                    note="run_dag_test() in-process, folder already loaded",
                ),
                Figure(
                    f"dags_test.{shape}.{label}.inproc_ms_per_task", inproc / n * 1e3, "ms", params=params
                ),
            ]
        n_small, n_large = sizes(ctx)["small"], sizes(ctx)["large"]
        marginal = (walls["large"] - walls["small"]) / (n_large - n_small) * 1e3
        figures.append(
            Figure(
                f"dags_test.{shape}.marginal_wall_ms_per_task",
                marginal,
                "ms",
                params=f"(wall N={n_large} - wall N={n_small}) / {n_large - n_small}",
            )
        )
    return figures


def _dags_test_wall(home: Home, dag_id: str) -> float:
    seconds, _ = run_cli(["dags", "test", dag_id], home.environ(parallelism=PARALLELISM))
    return seconds


def _dags_test_in_process(home: Home, dag_id: str) -> float:
    from minisched.dagfiles.refresh import refresh_dag_folder
    from minisched.scheduler.manual_runs import run_dag_test

    with in_process(home):
        refresh_dag_folder(home.dags)
        started = time.perf_counter()
        outcome = run_dag_test(dag_id, None, dags_folder=home.dags, logs_folder=home.logs)
        seconds = time.perf_counter() - started
    if outcome.state != "success":
        raise RuntimeError(f"dags test {dag_id} ended {outcome.state}")
    return seconds
