"""Throughput of the local executor: no-op PythonOperator tries of one DAG file, end to end.

    .venv/bin/python benchmarks/bench_executor.py [--tries 2000] [--parallelism 2] [--executor local]

Submits tries as the scheduler does (up to `free_slots`, then `poll` for results) and prints tries/s
and the per-try round trip. Each try writes its own log file, as in production.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from minisched.scheduler.executors import BaseExecutor, TryRequest, TryResult, executor_for
from minisched.scheduler.executors.logs import log_path_for

DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime, timezone
    from minisched.authoring.dag import DAG
    from minisched.authoring.operators import PythonOperator

    def noop():
        return None

    with DAG("bench", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
        for i in range(100):
            PythonOperator(task_id=f"t{i}", python_callable=noop)
    """
)


def requests(fileloc: str, logs: Path, count: int, *, task_prefix: str = "t") -> list[TryRequest]:
    """Tries of runs of 100 tasks each (`<task_prefix>0` .. `<task_prefix>99`)."""
    logical_date = datetime(2024, 1, 1, tzinfo=UTC)
    tries = []
    for n in range(count):
        run_id, task_id = f"manual__{n // 100}", f"{task_prefix}{n % 100}"
        tries.append(
            TryRequest(
                ti_id=n,
                dag_id="bench",
                run_id=run_id,
                task_id=task_id,
                try_number=1,
                fileloc=fileloc,
                log_path=str(log_path_for(logs, "bench", run_id, task_id, 1)),
                logical_date=logical_date,
                data_interval_start=logical_date,
                data_interval_end=logical_date,
            )
        )
    return tries


def run(executor_name: str, parallelism: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dag_file = Path(tmp) / "bench_dag.py"
        dag_file.write_text(DAG_FILE)
        todo = requests(str(dag_file), Path(tmp) / "logs", count + parallelism)
        executor = executor_for(executor_name, parallelism)
        before = os.times()
        executor.start()
        _drain(executor, todo[:parallelism], [])  # warm up: fork the workers, import the file
        todo = todo[parallelism:]
        delays: list[float] = []
        started, cpu_started = time.perf_counter(), time.process_time()
        results = _drain(executor, todo, delays)
        elapsed, scheduler_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        executor.stop(grace=5)
        used_parallelism = executor.parallelism
        after = os.times()  # the workers are reaped now, so their CPU time is in children_*
    failed = [r for r in results if r.outcome != "success"]
    assert not failed, failed[:3]
    print(
        f"{executor_name} executor, parallelism={used_parallelism}: {count} no-op tries in {elapsed:.3f}s = "
        f"{count / elapsed:,.0f} tries/s ({elapsed / count * 1e3:.3f} ms/try wall); "
        f"try end -> scheduler sees it: median {statistics.median(delays) * 1e3:.2f} ms, "
        f"max {max(delays) * 1e3:.2f} ms"
    )
    worker_cpu = after.children_user + after.children_system - before.children_user - before.children_system
    print(
        f"CPU per try: scheduler side {scheduler_cpu / count * 1e3:.3f} ms, "
        f"workers {worker_cpu / count * 1e3:.3f} ms (incl. fork and first import)"
    )


def _drain(executor: BaseExecutor, todo: list[TryRequest], delays: list[float]) -> list[TryResult]:
    """Run `todo` as the scheduler would; `delays` gets, per try, end of try -> poll returned it."""
    results: list[TryResult] = []
    queue = list(reversed(todo))
    while queue or executor.running:
        batch = [queue.pop() for _ in range(min(executor.free_slots, len(queue)))]
        if batch:
            executor.submit(batch)
        finished = executor.poll(timeout=1.0)
        seen = time.time()
        delays += [seen - result.end_date.timestamp() for result in finished]
        results += finished
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--executor", default="local")
    args = parser.parse_args()
    run(args.executor, args.parallelism, args.tries)


if __name__ == "__main__":
    main()
