"""A DAG file whose tasks report what they did through files, and helpers to run its tries."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from minisched.scheduler.executors.base import BaseExecutor, TryRequest, TryResult
from minisched.scheduler.executors.logs import log_path_for

DAG_ID = "exec_test"
RUN_ID = "manual__2024-01-02T00:00:00+00:00"
LOGICAL_DATE = datetime(2024, 1, 2, tzinfo=UTC)

DAG_SOURCE = """
import logging, os, signal, sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from minisched import DAG, BashOperator, PythonOperator, SkipTask

OUT = Path(__file__).parent / "out"
OUT.mkdir(exist_ok=True)
with open(OUT / "imports.txt", "a") as imports:
    imports.write(f"{os.getpid()}\\n")


def started(name):
    (OUT / f"{name}.pid").write_text(str(os.getpid()))


def hello(ds, try_number, conf):
    print(f"hello ds={ds} try_number={try_number} conf={conf}")
    print("to stderr", file=sys.stderr)
    logging.getLogger("my.task").info("info through logging")
    os.system("echo from a child process")


def boom():
    raise ValueError("boom")


def skip():
    raise SkipTask("not today")


def hard_exit():
    os._exit(3)


def sleepy():
    started("sleepy")
    time.sleep(60)


def swallow_timeout():
    try:
        time.sleep(60)
    except Exception:
        pass


def stuck():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM})
    started("stuck")
    time.sleep(60)


def span(try_number, run_id):
    name = f"{run_id}-{try_number}"
    (OUT / f"start-{name}").write_text(repr(time.time()))
    deadline = time.time() + 10
    while len(list(OUT.glob("start-*"))) < 2 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    (OUT / f"end-{name}").write_text(repr(time.time()))


def noop():
    return None


def wait_for_go():
    started("wait_for_go")
    while not (OUT / "go").exists():
        time.sleep(0.01)
    print("went on after the worker died")


def kill_parent():
    (OUT / "parent.pid").write_text(str(os.getppid()))
    os.kill(os.getppid(), signal.SIGKILL)
    print("the task goes on")


def whose_parent():
    (OUT / "parent.pid").write_text(str(os.getppid()))


def secret_error():
    raise ValueError("cannot reach postgresql://admin:hunter2@db.internal/prod")


def chatty():
    print("early: postgresql://admin:hunter2@db.internal/prod")
    line = "x" * 99 + "\\n"
    for _ in range(30_000):
        sys.stdout.write(line)
    os.system("yes direct-fd-write | head -c 3000000")
    print("the end")


def exits():
    sys.exit(2)


with DAG("exec_test", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)):
    PythonOperator(task_id="hello", python_callable=hello)
    PythonOperator(task_id="boom", python_callable=boom)
    PythonOperator(task_id="skip", python_callable=skip)
    PythonOperator(task_id="hard_exit", python_callable=hard_exit)
    PythonOperator(task_id="sleepy", python_callable=sleepy)
    PythonOperator(task_id="sleepy_1s", python_callable=sleepy, execution_timeout=timedelta(seconds=1))
    PythonOperator(task_id="swallow", python_callable=swallow_timeout, execution_timeout=timedelta(seconds=1))
    PythonOperator(task_id="stuck", python_callable=stuck, execution_timeout=timedelta(seconds=1))
    PythonOperator(task_id="span", python_callable=span)
    PythonOperator(task_id="noop", python_callable=noop)
    PythonOperator(task_id="exits", python_callable=exits)
    PythonOperator(task_id="wait_for_go", python_callable=wait_for_go)
    PythonOperator(task_id="kill_parent", python_callable=kill_parent)
    PythonOperator(task_id="secret_error", python_callable=secret_error)
    PythonOperator(task_id="whose_parent", python_callable=whose_parent)
    PythonOperator(task_id="chatty", python_callable=chatty)
    BashOperator(task_id="bash_env", bash_command="env; echo ppid=$PPID")
    BashOperator(
        task_id="bash_daemon", bash_command=f"setsid sleep 1000 > /dev/null 2>&1 & echo $! > {OUT}/daemon.pid"
    )
    BashOperator(
        task_id="bash_double_fork",
        bash_command=(
            f"(setsid sh -c 'sleep 1000 > /dev/null 2>&1 & echo $! > {OUT}/orphan.pid' > /dev/null 2>&1 &);"
            " sleep 0.2"
        ),
    )
    BashOperator(task_id="bash_ok", bash_command="echo bash says $MINISCHED_DS try $MINISCHED_TRY_NUMBER")
    BashOperator(task_id="bash_skip", bash_command="exit 99")
    BashOperator(task_id="bash_fail", bash_command="echo failing; exit 3")
    BashOperator(
        task_id="bash_sleep",
        bash_command=f"sleep 30 & echo $$ $! > {OUT}/bash.pids; wait",
        execution_timeout=timedelta(seconds=1),
    )
    BashOperator(task_id="bash_sleep_long", bash_command=f"sleep 30 & echo $$ $! > {OUT}/bash.pids; wait")
"""

_ti_ids = itertools.count(1)


def write_dag(folder: Path, source: str = DAG_SOURCE, name: str = "exec_dag.py") -> Path:
    path = folder / name
    path.write_text(source)
    return path


def request(
    dag_file: Path,
    task_id: str,
    *,
    dag_id: str = DAG_ID,
    run_id: str = RUN_ID,
    try_number: int = 1,
    timeout: float | None = None,
    conf: dict[str, object] | None = None,
) -> TryRequest:
    logs = dag_file.parent / "logs"
    return TryRequest(
        ti_id=next(_ti_ids),
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        try_number=try_number,
        fileloc=str(dag_file),
        log_path=str(log_path_for(logs, dag_id, run_id, task_id, try_number)),
        logical_date=LOGICAL_DATE,
        data_interval_start=LOGICAL_DATE,
        data_interval_end=LOGICAL_DATE,
        conf=conf,
        timeout=timeout,
    )


def out_dir(dag_file: Path) -> Path:
    return dag_file.parent / "out"


def log_text(req: TryRequest) -> str:
    return Path(req.log_path).read_text()


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def read_pid(path: Path, timeout: float = 30.0) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip(), timeout, f"{path.name} to be written")
    return int(path.read_text())


def run_all(
    executor: BaseExecutor, requests: Iterable[TryRequest], timeout: float = 60.0
) -> dict[int, TryResult]:
    """Submit as the scheduler does (never more than free_slots) and collect every result."""
    todo = list(requests)
    expected = {req.ti_id for req in todo}
    results: dict[int, TryResult] = {}
    deadline = time.monotonic() + timeout
    while set(results) != expected:
        assert time.monotonic() < deadline, f"only {len(results)} of {len(expected)} tries finished"
        batch, todo = todo[: executor.free_slots], todo[executor.free_slots :]
        if batch:
            executor.submit(batch)
        for result in executor.poll(timeout=1.0):
            results[result.ti_id] = result
    return results


def collect(executor: BaseExecutor, count: int = 1, timeout: float = 60.0) -> list[TryResult]:
    results: list[TryResult] = []
    deadline = time.monotonic() + timeout
    while len(results) < count:
        assert time.monotonic() < deadline, f"only {len(results)} of {count} results"
        results += executor.poll(timeout=1.0)
    return results
