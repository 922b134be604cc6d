"""In-run baselines: what this machine, loaded as it is right now, does with no minisched at all.

A shared machine's speed changes by 2-3x from one hour to the next, so a figure alone says little.
Every timing figure is also given as a ratio to one of two baselines measured in the same run:

- start-up: `python -c pass` with this interpreter, as a subprocess (the floor of any CLI command);
- throughput and latency: the round trip of a no-op call through a 2-process `multiprocessing` pool
  (what handing one task to a worker and hearing back costs, with nothing else done).

Each is sampled at the start of the run and again at the end; the median of all samples is used.
"""

from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

POOL_PROCESSES = 2


@dataclass
class Baselines:
    python_floor_s: list[float] = field(default_factory=list)
    pool_round_trip_s: list[float] = field(default_factory=list)

    @property
    def python_floor(self) -> float:
        """Seconds of `python -c pass`."""
        return statistics.median(self.python_floor_s)

    @property
    def round_trip(self) -> float:
        """Seconds of one no-op round trip through the pool."""
        return statistics.median(self.pool_round_trip_s)

    @property
    def pool_rate(self) -> float:
        """No-op round trips per second through the pool, one after the other."""
        return 1.0 / self.round_trip

    def sample(self, *, quick: bool) -> None:
        repeats = 3 if quick else 7
        self.python_floor_s += [python_floor() for _ in range(repeats)]
        self.pool_round_trip_s += pool_round_trips(300 if quick else 2000, batches=repeats)


def python_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def _noop(value: int) -> int:
    return value


def pool_round_trips(calls: int, *, batches: int) -> list[float]:
    """Seconds per round trip of `calls` sequential `apply(noop)` calls, one figure per batch."""
    per_batch = max(1, calls // batches)
    context = multiprocessing.get_context("fork")
    with context.Pool(POOL_PROCESSES) as pool:
        for i in range(50):  # both workers up and warm
            pool.apply(_noop, (i,))
        samples = []
        for _ in range(batches):
            started = time.perf_counter()
            for i in range(per_batch):
                pool.apply(_noop, (i,))
            samples.append((time.perf_counter() - started) / per_batch)
    return samples
