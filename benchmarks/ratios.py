"""Every timing figure as a ratio to an in-run baseline (`benchmarks.baselines`), and the targets of
issue 15 that are stated as such ratios.

- subprocess wall times (start-up, `dags test`, `dags list`, Airflow's commands): x `python -c pass`;
- rates (tasks/s, requests/s): % of the pool's no-op round-trip rate;
- other durations (latencies, per-task costs, in-process seconds): in pool round trips.

Counts, sizes and ratios already (statements, commits, MiB, x, %) need no baseline: load does not
change them.

The chain hop (`latency.chain.*`) is the exception to the run-wide baseline: `bench_latency` samples
the pool's round trip right before and after each of the chain's runs (`INTERLEAVED`), and its
durations and target are stated in those round trips, taken under the same load. The run-wide
baseline, sampled at the run's start and end, can be minutes and a different load away.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatch

from benchmarks.baselines import Baselines
from benchmarks.common import Figure, at_least, at_most

#: Figures timed as a whole command in a subprocess: compared with the interpreter's own start-up.
SUBPROCESS_FIGURES = ("startup.*", "*wall_s", "parsing.dags_list.seconds", "airflow.*")
SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
RATES = ("tasks/s", "rps")

SCHEDULER_SHARE_TARGET = 5.0  # %, 1,000 parallel tasks through the warm scheduler vs the pool's rate
HOP_TARGET = 10.0  # pool round trips, a chain's upstream end -> downstream start (median)
SCHEDULER_FIGURE = "scheduler.parallel.large.tasks_per_s"
HOP_FIGURE = "latency.chain.edge_median"
#: Figures (by name prefix) compared with a round trip sampled beside them, not the run-wide one.
INTERLEAVED = {"latency.chain.": "latency.chain.pool_round_trip"}


def describe(figure: Figure, base: Baselines, round_trip: float | None = None) -> str:
    """The figure as a ratio to its baseline, or "" when it has none; `round_trip` (seconds), when
    given, is the pool's round trip sampled beside the figure, used instead of the run-wide one."""
    if figure.value is None or figure.name.startswith("baseline."):
        return ""
    if figure.unit in RATES:
        return f"{figure.value / base.pool_rate * 100:.3g}% of pool rate"
    if figure.unit not in SECONDS or figure.name in INTERLEAVED.values():
        return ""
    seconds = figure.value * SECONDS[figure.unit]
    if any(fnmatch(figure.name, pattern) for pattern in SUBPROCESS_FIGURES):
        return f"{seconds / base.python_floor:.3g}x python -c pass"
    if round_trip is not None:
        return f"{seconds / round_trip:.3g} round trips (interleaved)"
    return f"{seconds / base.round_trip:.3g} round trips"


def interleaved_round_trip(figure: Figure, figures: Sequence[Figure]) -> float | None:
    """Seconds of the pool round trip sampled beside `figure` (same backend), if it has one."""
    for prefix, name in INTERLEAVED.items():
        if figure.name.startswith(prefix):
            for other in figures:
                if other.name == name and other.backend == figure.backend and other.value:
                    return other.value * SECONDS[other.unit]
    return None


def annotate(figures: Sequence[Figure], base: Baselines) -> None:
    for figure in figures:
        figure.ratio = figure.ratio or describe(figure, base, interleaved_round_trip(figure, figures))


def baseline_figures(base: Baselines) -> list[Figure]:
    samples = f"median of {len(base.python_floor_s)} / {len(base.pool_round_trip_s)} samples"
    return [
        Figure("baseline.python_floor", base.python_floor * 1e3, "ms", params=samples, note="python -c pass"),
        Figure(
            "baseline.pool_round_trip",
            base.round_trip * 1e6,
            "us",
            params=samples,
            note="no-op apply() through a 2-process multiprocessing pool",
        ),
        Figure("baseline.pool_rate", base.pool_rate, "round trips/s", params=samples),
    ]


def target_figures(figures: Sequence[Figure], base: Baselines) -> list[Figure]:
    """Issue 15's baseline targets, per backend that measured the figure they are about."""
    made: list[Figure] = []
    for figure in figures:
        if figure.value is None:
            continue
        if figure.name == SCHEDULER_FIGURE:
            share = figure.value / base.pool_rate * 100
            made.append(
                Figure(
                    "vs_baseline.scheduler.parallel.large.pool_share",
                    share,
                    "%",
                    f">= {SCHEDULER_SHARE_TARGET:g}",
                    at_least(share, SCHEDULER_SHARE_TARGET),
                    f"{figure.value:,.0f} tasks/s / {base.pool_rate:,.0f} round trips/s",
                    backend=figure.backend,
                    note="1,000 parallel tasks, scheduler warm, vs the pool's no-op round trips",
                )
            )
        elif figure.name == HOP_FIGURE:
            beside = interleaved_round_trip(figure, figures)
            round_trip = beside or base.round_trip
            trips = figure.value * 1e-3 / round_trip
            sampled = "sampled around the chain's runs" if beside else "run-wide baseline"
            made.append(
                Figure(
                    "vs_baseline.latency.chain.hop_round_trips",
                    trips,
                    "round trips",
                    f"<= {HOP_TARGET:g}",
                    at_most(trips, HOP_TARGET),
                    f"{figure.value:.2f} ms / {round_trip * 1e6:.0f} us ({sampled})",
                    backend=figure.backend,
                    note="chain hop (upstream end -> downstream start, median) in pool round trips",
                )
            )
        elif figure.name == "startup.help":
            times = figure.value * 1e-3 / base.python_floor
            made.append(
                Figure(
                    "vs_baseline.startup.help",
                    times,
                    "x",
                    params=f"{figure.value:.0f} ms / {base.python_floor * 1e3:.0f} ms",
                    backend=figure.backend,
                    note="`minisched --help` in multiples of `python -c pass`",
                )
            )
    return made
