"""7. Scheduling latency: from an upstream task's end to its downstream's start, under the scheduler.

A `python -m minisched scheduler` subprocess (local executor, parallelism 2) runs:

- chains: 100 independent chains of 10 no-op tasks (1,000 tasks, max_active_tasks=1000). For every
  edge, downstream.start_date - upstream.end_date (timestamps the workers recorded). With 2 slots
  and ~100 ready tasks at any time, this includes the wait for a free slot, so it is also reported
  "slot-adjusted": the j-th start cannot precede the (j-2)-th end, so the task became startable at
  max(upstream end, that end), and only the rest is counted. Also the median gap between consecutive
  task starts (Airflow's anchor figure: 1.65 s).
- chain: one chain of 200 tasks, where a slot is always free: the scheduler's pure reaction time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from benchmarks.common import (
    BenchContext,
    Figure,
    SchedulerProcess,
    at_most,
    chain_edges,
    dag_source,
    edge_latencies,
    in_process,
    median,
    new_home,
    percentile,
    read_engine,
    slot_adjusted_latencies,
    start_gaps,
    trigger,
    wait_for_run,
    write_dag,
)

TARGET_MS = 20.0
PARALLELISM = 2


def run(ctx: BenchContext) -> list[Figure]:
    chains, per_chain = ctx.size(100, 10), ctx.size(10, 5)
    single = ctx.size(200, 20)
    shapes = {"chains": (chains, per_chain), "chain": (1, single)}
    figures: list[Figure] = []
    with new_home(ctx, "latency") as home:
        for name, (c, k) in shapes.items():
            write_dag(home.dags, name, dag_source(name, c * k, "chain", chains=c))
        engine = read_engine(home.db_url)
        with in_process(home), SchedulerProcess(home, parallelism=PARALLELISM) as scheduler:
            scheduler.wait_for_dags(engine, set(shapes))
            for i, (name, (c, k)) in enumerate(shapes.items()):
                run_id = trigger(name, logical_date=datetime(2030, 1, 1 + i, tzinfo=UTC))
                times = wait_for_run(engine, name, run_id, timeout=600, alive=scheduler.check_alive)
                if times.state != "success":
                    raise RuntimeError(f"{name} run ended {times.state}:\n{scheduler.output_tail()}")
                edges = chain_edges(c, k)
                raw = [g * 1e3 for g in edge_latencies(times.tasks, edges)]
                params = f"{c} chain(s) x {k} tasks, parallelism={PARALLELISM}, {len(raw)} edges"
                med = median(raw)
                ctx.log(f"  {name}: edge median {med or 0:.1f} ms, p99 {percentile(raw, 99) or 0:.1f} ms")
                figures += [
                    Figure(
                        f"latency.{name}.edge_median",
                        med,
                        "ms",
                        f"<= {TARGET_MS:g}",
                        at_most(med, TARGET_MS),
                        params,
                        note="includes waiting for a free slot"
                        if name == "chains"
                        else "a slot is always free",
                    ),
                    Figure(f"latency.{name}.edge_p99", percentile(raw, 99), "ms", params=params),
                ]
                if name == "chains":
                    adjusted = [g * 1e3 for g in slot_adjusted_latencies(times.tasks, edges, PARALLELISM)]
                    gaps = [g * 1e3 for g in start_gaps(times.tasks)]
                    figures += [
                        Figure(
                            f"latency.{name}.slot_adjusted_median",
                            median(adjusted),
                            "ms",
                            params=params,
                            note="not counting the wait for a free slot",
                        ),
                        Figure(
                            f"latency.{name}.slot_adjusted_p99", percentile(adjusted, 99), "ms", params=params
                        ),
                        Figure(
                            f"latency.{name}.start_gap_median",
                            median(gaps),
                            "ms",
                            params=params,
                            note="consecutive task starts (Airflow: 1,650 ms)",
                        ),
                    ]
        engine.dispose()
    return figures
