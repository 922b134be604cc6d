"""CPU a warm worker spends per try, against the CPU of a 2-process pool's no-op round trip, in one run.

    .venv/bin/python -m benchmarks.bench_try_cpu [--tries 1000] [--profile 25]

A forked child plays a warm local-executor worker: it imports the DAG file once, then runs tries one
after the other with `run_try`, each into its own log file (runs of 100 tasks, so the log folders are
laid out as in production), and measures the CPU time (all its threads, user + system) of each.
Shapes: a no-op PythonOperator, and one with a templated argument and a success callback.

The baseline is the CPU both processes of a 2-process `multiprocessing` pool spend on one no-op
`apply` (`baselines.py`'s round trip): what handing work to a worker costs with nothing done.
`--profile N` prints the N costliest functions (cProfile, CPU clock) of the no-op shape.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import textwrap
import time
from multiprocessing.connection import Connection
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.baselines import POOL_PROCESSES, _noop
from benchmarks.bench_executor import requests

DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime, timezone
    from minisched.authoring.dag import DAG
    from minisched.authoring.operators import PythonOperator

    def noop():
        return None

    def echo(day):
        return None

    def on_success(context):
        pass

    with DAG("bench", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
        for i in range(100):
            PythonOperator(task_id=f"noop{i}", python_callable=noop)
            PythonOperator(
                task_id=f"templated{i}",
                python_callable=echo,
                op_kwargs={"day": "{{ ds }} {{ ti.try_number }}"},
                on_success_callback=on_success,
            )
    """
)
SHAPES = ("noop", "templated")


def pool_cpu_per_round_trip(calls: int) -> float:
    """CPU seconds (parent and pool workers) of one sequential no-op `apply` through the pool."""
    context = multiprocessing.get_context("fork")
    before = os.times()
    with context.Pool(POOL_PROCESSES) as pool:
        for i in range(50):
            pool.apply(_noop, (i,))
        warm = os.times()
        for i in range(calls):
            pool.apply(_noop, (i,))
        self_after = os.times()
    after = os.times()  # the pool's workers are reaped: their CPU is in children_*
    own = self_after.user + self_after.system - warm.user - warm.system
    workers = after.children_user + after.children_system - before.children_user - before.children_system
    # The workers' warm-up calls are a small, fixed part of their total; count them out pro rata.
    return (own + workers * calls / (calls + 50)) / calls


def _worker(conn: Connection, fileloc: str, logs: str, shape: str, *, tries: int, profile: int) -> None:
    from minisched.scheduler.executors.task_runner import DagFileCache, run_try

    cache = DagFileCache()
    todo = requests(fileloc, Path(logs), 50 + tries, task_prefix=shape)
    for warm in todo[:50]:  # the file imported, jinja2 loaded, caches filled
        result = run_try(warm, dag_cache=cache)
        assert result.outcome == "success", result
    todo = todo[50:]
    samples = []
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    for each in todo:
        started = time.process_time()
        run_try(each, dag_cache=cache)
        samples.append(time.process_time() - started)
    if profile:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(profile)
    conn.send(samples)


def worker_cpu_per_try(shape: str, tries: int, profile: int = 0) -> list[float]:
    """CPU seconds of each of `tries` tries of `shape`, in a warm forked worker."""
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp:
        dag_file = Path(tmp) / "bench_dag.py"
        dag_file.write_text(DAG_FILE)
        parent, child = context.Pipe()
        process = context.Process(
            target=_worker,
            args=(child, str(dag_file), str(Path(tmp) / "logs"), shape),
            kwargs={"tries": tries, "profile": profile},
        )
        process.start()
        child.close()
        samples: list[float] = parent.recv()
        process.join()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and shapes measured in turn")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.profile:
        worker_cpu_per_try("noop", args.tries, args.profile)
        return
    baseline: list[float] = []
    per_shape: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    for _ in range(args.rounds):  # interleaved, so a change of the machine's load hits all of them
        baseline.append(pool_cpu_per_round_trip(args.tries))
        for shape in SHAPES:
            per_shape[shape].append(statistics.median(worker_cpu_per_try(shape, args.tries)))
    base = statistics.median(baseline)
    print(f"baseline: CPU per no-op round trip of a {POOL_PROCESSES}-process pool: {base * 1e3:.3f} ms")
    for shape, medians in per_shape.items():
        median = statistics.median(medians)
        print(
            f"{shape}: worker CPU per try, median {median * 1e3:.3f} ms "
            f"(rounds: {', '.join(f'{m * 1e3:.3f}' for m in medians)}) = {median / base:.1f} round trips"
        )


if __name__ == "__main__":
    main()
