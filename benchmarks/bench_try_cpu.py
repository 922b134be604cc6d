"""CPU a warm worker spends per try, against the CPU of a 2-process pool's no-op round trip, in one run.

    .venv/bin/python -m benchmarks.bench_try_cpu [--tries 1000] [--profile 25]

A forked child plays a warm local-executor worker: it imports the DAG file once, then runs tries one
after the other with `run_try`, each into its own log file (runs of 100 tasks, so the log folders are
laid out as in production), and measures the CPU time (all its threads, user + system) of each.
Shapes: a no-op PythonOperator, and one with a templated argument and a success callback.

The baseline is the CPU both processes of a 2-process `multiprocessing` pool spend on one no-op
`apply` (`baselines.py`'s round trip): what handing work to a worker costs with nothing done.
`--profile N` prints the N costliest functions (cProfile, CPU clock) of the no-op shape.

`--compare REV [REV...]` (git revisions, or WORKTREE) runs one warm worker per version instead, each
in its own interpreter with that version first on its path, and hands them batches of tries in turn,
so that a change of the machine's load hits every version alike; it prints each version's median CPU
per try and its ratio to the first's.
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
SERVE = "import sys, benchmarks.bench_try_cpu as b; b.serve(sys.argv[1])"


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


def serve(shape: str) -> None:
    """A warm worker of the version on this interpreter's path: each line on stdin asks for that many
    tries, answered by a JSON line of their CPU seconds; EOF ends it."""
    import json

    from minisched.scheduler.executors.task_runner import DagFileCache, run_try

    out = os.fdopen(os.dup(1), "w")  # a try points fds 1/2 at its log while it runs
    with tempfile.TemporaryDirectory() as tmp:
        dag_file = Path(tmp) / "bench_dag.py"
        dag_file.write_text(DAG_FILE)
        cache = DagFileCache()
        done = 50
        for warm in requests(str(dag_file), Path(tmp) / "logs", done, task_prefix=shape):
            assert run_try(warm, dag_cache=cache).outcome == "success"
        for line in sys.stdin:
            samples = []
            batch = requests(str(dag_file), Path(tmp) / "logs", done + int(line), task_prefix=shape)[done:]
            done += int(line)
            for each in batch:
                started = time.process_time()
                run_try(each, dag_cache=cache)
                samples.append(time.process_time() - started)
            out.write(json.dumps(samples) + "\n")
            out.flush()


def compare(revs: list[str], shape: str, tries: int, batch: int = 50) -> None:
    """Median CPU per try of each version, their batches interleaved (see the module docstring)."""
    import json
    import subprocess

    from benchmarks.ab import export
    from benchmarks.common import REPO

    with tempfile.TemporaryDirectory() as tmp:
        workers = []
        for n, rev in enumerate(revs):
            code = export(rev, Path(tmp) / str(n))
            env = {
                **os.environ,
                "PYTHONPATH": f"{code}{os.pathsep}{REPO}",
                "MINISCHED_HOME": str(code / "home"),
            }
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "import sys, benchmarks.bench_try_cpu as b; b.serve(sys.argv[1])",
                        shape,
                    ],
                    cwd=code,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        samples: list[list[float]] = [[] for _ in revs]
        for _ in range(max(1, tries // batch)):
            for worker, into in zip(workers, samples, strict=True):
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(f"{batch}\n")
                worker.stdin.flush()
                into += json.loads(worker.stdout.readline())
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
            worker.wait()
    first = statistics.median(samples[0])
    for rev, cpu in zip(revs, samples, strict=True):
        median = statistics.median(cpu)
        print(
            f"{shape} {rev}: worker CPU per try, median {median * 1e3:.3f} ms, "
            f"{first / median:.2f}x {revs[0]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and shapes measured in turn")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--compare", nargs="+", metavar="REV")
    args = parser.parse_args()
    if args.compare:
        for shape in SHAPES:
            compare(args.compare, shape, args.tries)
        return
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
