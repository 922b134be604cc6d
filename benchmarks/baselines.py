"""In-run baselines: what this machine, loaded as it is right now, does with no minisched at all.

A shared machine's speed changes by 2-3x from one hour to the next, so a figure alone says little.
Every timing figure is also given as a ratio to one of two baselines measured in the same run:

- start-up: `python -c pass` with this interpreter, as a subprocess (the floor of any CLI command);
- throughput and latency: the round trip of a no-op call through a 2-process `multiprocessing` pool
  (what handing one task to a worker and hearing back costs, with nothing else done).

Each is sampled at the start of the run and again at the end; the median of all samples is used.

A figure whose target is a ratio (the chain hop, `bench_latency`) is compared instead with round
trips sampled right before and after each of its own repeats (`PoolSampler`): a whole run lasts many
minutes, and the machine's load can change several times over in that while, so a baseline taken
minutes away measured another machine.
"""

from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from types import TracebackType

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
    with PoolSampler(calls, batches=batches) as sampler:
        return sampler.sample()


class PoolSampler:
    """A 2-process pool kept open, so that its no-op round trip can be sampled between the steps of a
    benchmark, under the load those steps see: `sample()` before and after each repeat, alternating.

    Each sample is `calls` sequential `apply(noop)` calls in `batches`, after a few untimed calls (the
    workers slept since the last sample), one figure (seconds per round trip) per batch. The pool is
    the same as the run-wide baseline's: nothing in it is slowed down or sped up.
    """

    WARM_UP = 20

    def __init__(self, calls: int = 200, *, batches: int = 4) -> None:
        self.per_batch = max(1, calls // batches)
        self.batches = batches
        self._pool: Pool | None = None

    def __enter__(self) -> PoolSampler:
        self._pool = multiprocessing.get_context("fork").Pool(POOL_PROCESSES)
        for i in range(50):  # both workers up and warm
            self._pool.apply(_noop, (i,))
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def sample(self) -> list[float]:
        pool = self._pool
        if pool is None:
            raise RuntimeError("PoolSampler.sample() outside its `with` block")
        for i in range(self.WARM_UP):
            pool.apply(_noop, (i,))
        samples = []
        for _ in range(self.batches):
            started = time.perf_counter()
            for i in range(self.per_batch):
                pool.apply(_noop, (i,))
            samples.append((time.perf_counter() - started) / self.per_batch)
        return samples
