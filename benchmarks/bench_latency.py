"""7. Scheduling latency: from an upstream task's end to its downstream's start, under the scheduler.

A `python -m minisched scheduler` subprocess (local executor, parallelism 2) runs:

- chains: 100 independent chains of 10 no-op tasks (1,000 tasks, max_active_tasks=1000). For every
  edge, downstream.start_date - upstream.end_date (timestamps the workers recorded). With 2 slots
  and ~100 ready tasks at any time, this includes the wait for a free slot, so it is also reported
  "slot-adjusted": the j-th start cannot precede the (j-2)-th end, so the task became startable at
  max(upstream end, that end), and only the rest is counted. Also the median gap between consecutive
  task starts (Airflow's anchor figure: 1.65 s).
- chain: one chain of 60 tasks, where a slot is always free: the scheduler's pure reaction time,
  triggered 5 times one run after the other (295 edges). Its target is stated in round trips of a
  2-process pool's no-op call (issue 15), so that baseline is sampled here, interleaved with the
  runs: 4 batches of 50 round trips right before and right after each run (the scheduler idle in
  between), so that hop and baseline see the same load. `latency.chain.pool_round_trip` is the
  median of those batches; the hop in round trips is the edge median over it (and, per run, that
  run's median over the 8 batches around it: their range shows how steady the figure is).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks.baselines import PoolSampler
from benchmarks.common import (
    BenchContext,
    Figure,
    RunTimes,
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
#: The pool's round trip sampled around the chain's runs: what `ratios` compares the chain hop with.
POOL_FIGURE = "latency.chain.pool_round_trip"
PARALLELISM = 2


def run(ctx: BenchContext) -> list[Figure]:
    chains, per_chain = ctx.size(100, 10), ctx.size(10, 5)
    single, repeats = ctx.size(60, 20), ctx.size(5, 2)
    figures: list[Figure] = []
    with new_home(ctx, "latency") as home, PoolSampler(200, batches=4) as pool:
        write_dag(home.dags, "chains", dag_source("chains", chains * per_chain, "chain", chains=chains))
        write_dag(home.dags, "chain", dag_source("chain", single, "chain"))
        engine = read_engine(home.db_url)
        with in_process(home), SchedulerProcess(home, parallelism=PARALLELISM) as scheduler:
            scheduler.wait_for_dags(engine, {"chains", "chain"})

            def run_once(name: str, day: int) -> RunTimes:
                run_id = trigger(name, logical_date=datetime(2030, 1, day, tzinfo=UTC))
                times = wait_for_run(engine, name, run_id, timeout=600, alive=scheduler.check_alive)
                if times.state != "success":
                    raise RuntimeError(f"{name} run ended {times.state}:\n{scheduler.output_tail()}")
                return times

            figures += _chains(ctx, run_once("chains", 1), chains, per_chain)
            figures += _chain(ctx, run_once, pool, single, repeats)
        engine.dispose()
    return figures


def _edge_figures(name: str, raw: list[float], params: str, note: str) -> list[Figure]:
    med = median(raw)
    return [
        Figure(
            f"latency.{name}.edge_median",
            med,
            "ms",
            f"<= {TARGET_MS:g}",
            at_most(med, TARGET_MS),
            params,
            note=note,
        ),
        Figure(f"latency.{name}.edge_p99", percentile(raw, 99), "ms", params=params),
    ]


def _chains(ctx: BenchContext, times: RunTimes, chains: int, per_chain: int) -> list[Figure]:
    edges = chain_edges(chains, per_chain)
    raw = [g * 1e3 for g in edge_latencies(times.tasks, edges)]
    params = f"{chains} chain(s) x {per_chain} tasks, parallelism={PARALLELISM}, {len(raw)} edges"
    ctx.log(f"  chains: edge median {median(raw) or 0:.1f} ms, p99 {percentile(raw, 99) or 0:.1f} ms")
    adjusted = [g * 1e3 for g in slot_adjusted_latencies(times.tasks, edges, PARALLELISM)]
    gaps = [g * 1e3 for g in start_gaps(times.tasks)]
    return [
        *_edge_figures("chains", raw, params, "includes waiting for a free slot"),
        Figure(
            "latency.chains.slot_adjusted_median",
            median(adjusted),
            "ms",
            params=params,
            note="not counting the wait for a free slot",
        ),
        Figure("latency.chains.slot_adjusted_p99", percentile(adjusted, 99), "ms", params=params),
        Figure(
            "latency.chains.start_gap_median",
            median(gaps),
            "ms",
            params=params,
            note="consecutive task starts (Airflow: 1,650 ms)",
        ),
    ]


def _chain(
    ctx: BenchContext, run_once: Callable[[str, int], RunTimes], pool: PoolSampler, tasks: int, repeats: int
) -> list[Figure]:
    """One chain, run `repeats` times, the pool's round trip sampled before and after each run."""
    edges = chain_edges(1, tasks)
    raw: list[float] = []
    trips: list[float] = []
    per_run: list[float] = []
    for i in range(repeats):
        before = pool.sample()
        hops = [g * 1e3 for g in edge_latencies(run_once("chain", 2 + i).tasks, edges)]
        after = pool.sample()
        raw += hops
        trips += before + after
        per_run.append((median(hops) or 0.0) / (median(before + after) or 1.0) / 1e3)
    trip_us = (median(trips) or 0.0) * 1e6
    params = f"1 chain x {tasks} tasks, {repeats} runs, parallelism={PARALLELISM}, {len(raw)} edges"
    ctx.log(
        f"  chain: edge median {median(raw) or 0:.2f} ms, pool round trip {trip_us:.0f} us (interleaved); "
        f"per run {', '.join(f'{r:.1f}' for r in per_run)} round trips"
    )
    sampled = f"median of {len(trips)} batches of {pool.per_batch}, before and after each of {repeats} runs"
    return [
        *_edge_figures("chain", raw, params, "a slot is always free"),
        Figure(
            POOL_FIGURE,
            trip_us,
            "us",
            params=sampled,
            note="no-op apply() through a 2-process pool, interleaved with the chain's runs",
        ),
        Figure(
            "latency.chain.hop_round_trips_per_run",
            median(per_run),
            "round trips",
            params=f"{repeats} runs: {min(per_run):.2f}-{max(per_run):.2f}",
            note="each run's hop median / the round trips sampled around it",
        ),
    ]
