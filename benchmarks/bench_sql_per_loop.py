"""2. SQL statements per scheduler loop: the same count with 10 or 1,000 ready tasks, 1 or 100 runs.

`SchedulerLoop` runs in this process with a fake executor that takes exactly SLOTS tries at a time and
reports them successful at the next poll, so every steady-state loop records SLOTS results and queues
SLOTS tries. A `before_cursor_execute` listener on `get_engine()` counts statements per loop (an
executemany counts once); a loop is steady when it recorded and queued SLOTS tries, and neither it
nor the loop before ended a run (finishing a run, then looking for queued runs to start, are events of
their own: a few statements each). The figure is the fewest statements of a steady loop (the median and
max in the note): a loop of a loaded machine may also meet a time-based check (a retry falling due), an
event of its own that says nothing about how the count grows with the number of tasks or runs.

Two passes: "steady" with the periodic steps (DAG folder refresh, full sweep, orphan recovery,
heartbeat) pushed out of the way after the first loop, and "periodic" with every one of them due in
every loop (the worst loop).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from benchmarks.common import (
    BenchContext,
    FakeExecutor,
    Figure,
    Home,
    counting,
    dag_source,
    in_process,
    new_home,
    trigger,
    write_dag,
)

SLOTS = 4


@dataclass(frozen=True)
class Scenario:
    key: str
    tasks: int  # per run
    runs: int

    def describe(self) -> str:
        return f"{self.tasks * self.runs} ready TIs in {self.runs} run(s)"


def scenarios(ctx: BenchContext) -> list[Scenario]:
    many, runs = ctx.size(1000, 100), ctx.size(100, 10)
    return [
        Scenario("few_ready_one_run", 6 * SLOTS, 1),
        Scenario("many_ready_one_run", many, 1),
        Scenario("many_ready_many_runs", many // runs, runs),
    ]


def run(ctx: BenchContext) -> list[Figure]:
    figures: list[Figure] = []
    for mode in ("steady", "periodic"):
        counts: dict[str, float] = {}
        for scenario in scenarios(ctx):
            with new_home(ctx, f"sql_{scenario.key}") as home:
                per_loop = _count_loops(home, scenario, periodic=mode == "periodic")
            if not per_loop:
                raise RuntimeError(f"{scenario.key}: no steady-state loop (SLOTS={SLOTS})")
            value = min(per_loop)
            counts[scenario.key] = value
            ctx.log(f"  {mode} {scenario.key}: {per_loop[:12]}... min {value}")
            figures.append(
                Figure(
                    f"sql_per_loop.{mode}.{scenario.key}",
                    value,
                    "statements",
                    params=f"{scenario.describe()}, {SLOTS} results + {SLOTS} queued per loop",
                    note=(
                        f"median {statistics.median(per_loop)}, max {max(per_loop)}"
                        f" over {len(per_loop)} loops"
                    ),
                )
            )
        spread = max(counts.values()) - min(counts.values())
        figures.append(
            Figure(
                f"sql_per_loop.{mode}.spread",
                spread,
                "statements",
                "== 0 (O(1))",
                spread == 0,
                params="max - min of the figures above",
            )
        )
    return figures


def _count_loops(home: Home, scenario: Scenario, *, periodic: bool) -> list[int]:
    """Statements of each steady-state loop of one scheduler run of the scenario."""
    from minisched.dagfiles.loader import refresh_dag_folder
    from minisched.db.session import create_session, get_engine
    from minisched.scheduler.loop import SchedulerLoop, SchedulerOptions

    dag_id = "sql_bench"
    write_dag(
        home.dags,
        dag_id,
        dag_source(
            dag_id, scenario.tasks, max_active_tasks=scenario.tasks * scenario.runs, max_active_runs=1000
        ),
    )
    with in_process(home):
        with create_session() as session:
            refresh_dag_folder(home.dags, session=session)
        base = datetime(2030, 1, 1, tzinfo=UTC)
        keys = {
            (dag_id, trigger(dag_id, logical_date=base + timedelta(hours=i))) for i in range(scenario.runs)
        }
        never = 1e9
        options = SchedulerOptions(
            logs_folder=home.logs,
            dags_folder=home.dags if periodic else None,
            handle_signals=False,
            refresh_interval=0.0 if periodic else never,
            full_sweep_interval=0.0 if periodic else never,
            recovery_interval=0.0 if periodic else never,
            heartbeat_interval=0.0 if periodic else never,
            # The look for queued runs is timed by the idle sleep: due in every periodic loop.
            idle_sleep=0.0 if periodic else SchedulerOptions.idle_sleep,
        )
        executor = FakeExecutor(SLOTS)
        # per loop: (statements, results polled, tries submitted, runs ended)
        samples: list[tuple[int, int, int, int]] = []
        with counting(get_engine()) as counter:
            last = [0, 0, 0, 0]

            def on_loop() -> None:
                now = (
                    counter.statements,
                    executor.polled_total,
                    executor.submitted_total,
                    len(loop.ended_runs),
                )
                samples.append((now[0] - last[0], now[1] - last[1], now[2] - last[2], now[3] - last[3]))
                last[:] = now
                if keys <= loop.ended_runs.keys() or len(samples) > 100_000:
                    loop.request_stop()

            loop = SchedulerLoop(executor, options, on_loop=on_loop)
            last[0] = counter.statements  # registration happens in run(); counted into loop 1
            loop.run()
    if not keys <= loop.ended_runs.keys():
        raise RuntimeError(f"{scenario.key}: runs did not finish")
    return [
        statements
        for (statements, polled, submitted, ended), previous in zip(samples[1:], samples, strict=False)
        if polled == SLOTS == submitted and not ended and not previous[3]
    ]
