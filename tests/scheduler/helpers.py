"""Helpers for the scheduler tests: real scheduler processes, polling, and reading the metadata tables.

Nothing here sleeps to synchronize: tests poll the tables (or files) with generous timeouts.
Every process started through `Procs` is killed (its whole session) when the test ends (see conftest).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from tests.conftest import Env

T = TypeVar("T")

#: Generous: a loaded 2-core CI machine can be slow; a passing test never waits this long.
TIMEOUT = 90.0


def wait_until(
    predicate: Callable[[], T | None], *, timeout: float = TIMEOUT, interval: float = 0.05, message: str = ""
) -> T:
    """Call `predicate` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message or predicate}")
        time.sleep(interval)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    output_path: Path
    args: tuple[str, ...]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        try:
            return self.output_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"`minisched {' '.join(self.args)}` still running after {timeout:g}s; "
                f"output:\n{self.output()}"
            ) from None

    def stop(self, timeout: float = TIMEOUT) -> int:
        """SIGTERM (graceful stop) and wait for the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def assert_clean_exit(self) -> None:
        """Exited 0 and printed no traceback."""
        output = self.output()
        assert self.popen.returncode == 0, f"exit code {self.popen.returncode}; output:\n{output}"
        assert "Traceback" not in output, output


@dataclass
class Procs:
    """Starts `python -m minisched ...` processes (own session, output to a file) and kills leftovers."""

    env: Env
    folder: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        index = len(self.started)
        output_path = self.folder / f"proc-{index}-{args[0] if args else 'minisched'}.out"
        out = output_path.open("wb")
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", "minisched", *args],
                env={**os.environ, **self.env.vars, **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()
        proc = Proc(popen, output_path, args)
        self.started.append(proc)
        return proc

    def scheduler(self, *args: str, extra_env: dict[str, str] | None = None) -> Proc:
        return self.start("scheduler", *args, extra_env={**SCHEDULER_ENV, **(extra_env or {})})

    def run(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = TIMEOUT) -> Proc:
        proc = self.start(*args, extra_env=extra_env)
        proc.wait(timeout)
        return proc

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(10)
            # The worker processes of a SIGKILLed scheduler (same session) die with it; sweep anyway.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


#: Small and fast: 4 tries at once, a quick heartbeat so job rows stay fresh.
SCHEDULER_ENV = {"MINISCHED_PARALLELISM": "4", "MINISCHED_SCHEDULER_HEARTBEAT": "0.5"}


def run_scheduler_until(
    procs: Procs, predicate: Callable[[], Any], *, num_runs: int = 40, timeout: float = TIMEOUT
) -> list[Proc]:
    """Run `minisched scheduler --num-runs N` (each must exit 0) again and again until `predicate()`."""
    deadline = time.monotonic() + timeout
    runs: list[Proc] = []
    while True:
        proc = procs.scheduler("--num-runs", str(num_runs))
        proc.wait(max(1.0, deadline - time.monotonic()))
        proc.assert_clean_exit()
        runs.append(proc)
        if predicate():
            return runs
        assert time.monotonic() < deadline, (
            f"not done after {len(runs)} scheduler runs; last output:\n{proc.output()}"
        )


# -- reading the metadata tables ----------------------------------------------------------------


def dag_runs(dag_id: str) -> list[Any]:
    from minisched.db.session import create_session
    from minisched.models import DagRun

    with create_session() as session:
        return list(
            session.execute(
                select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.logical_date)
            ).scalars()
        )


def task_instances(dag_id: str, run_id: str | None = None) -> list[Any]:
    from minisched.db.session import create_session
    from minisched.models import TaskInstance

    with create_session() as session:
        query = select(TaskInstance).where(TaskInstance.dag_id == dag_id)
        if run_id is not None:
            query = query.where(TaskInstance.run_id == run_id)
        return list(session.execute(query.order_by(TaskInstance.run_id, TaskInstance.task_id)).scalars())


def ti_states(dag_id: str, run_id: str | None = None) -> dict[str, str | None]:
    return {ti.task_id: ti.state for ti in task_instances(dag_id, run_id)}


def log_rows(dag_id: str, **filters: Any) -> list[Any]:
    from minisched.db.session import create_session
    from minisched.models import Log

    with create_session() as session:
        query = select(Log).where(Log.dag_id == dag_id)
        for name, value in filters.items():
            query = query.where(getattr(Log, name) == value)
        return list(session.execute(query.order_by(Log.id)).scalars())


def jobs(job_type: str = "scheduler") -> list[Any]:
    from minisched.db.session import create_session
    from minisched.models import Job

    with create_session() as session:
        return list(session.execute(select(Job).where(Job.job_type == job_type).order_by(Job.id)).scalars())


def all_runs_finished(dag_id: str, count: int) -> bool:
    runs = dag_runs(dag_id)
    return len(runs) == count and all(run.state in ("success", "failed") for run in runs)


def finished_runs(dag_id: str, count: int = 1) -> list[Any] | None:
    """The DAG's runs once there are `count` and all of them ended (else None)."""
    runs = dag_runs(dag_id)
    if len(runs) >= count and all(run.state in ("success", "failed") for run in runs):
        return runs
    return None


def run_to_end(
    procs: Procs, dag_id: str, *, count: int = 1, timeout: float = TIMEOUT, **kwargs: Any
) -> list[Any]:
    """Start a scheduler, wait until `dag_id` has `count` ended runs, stop it (SIGTERM: must exit 0)."""
    proc = procs.scheduler(**kwargs)
    try:
        runs = wait_until(
            lambda: finished_runs(dag_id, count), timeout=timeout, message=f"{count} ended runs of {dag_id}"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; scheduler output:\n{proc.output()}") from None
    proc.stop()
    proc.assert_clean_exit()
    return runs


def dag_source(body: str, *, imports: str = "") -> str:
    """A DAG file: common imports, then `body` (already dedented)."""
    return (
        "import os, sys, time\n"
        "from datetime import datetime, timedelta, timezone\n"
        "from pathlib import Path\n"
        "from minisched import DAG, BashOperator, PythonOperator, SkipTask, task\n"
        f"{imports}\n"
        "START = datetime(2024, 1, 1, tzinfo=timezone.utc)\n"
        f"{body}"
    )


# -- counting executions --------------------------------------------------------------------------


def probe_dag(dag_id: str, probe: Path, *, tasks: int, seconds: float, retries: int) -> str:
    """A DAG of `tasks` tasks that each append `start <task> <try>` to `probe`, sleep, then `end ...`."""
    return dag_source(
        textwrap.dedent(
            f"""
            def mark(what, task_id, try_number):
                fd = os.open({str(probe)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                try:
                    os.write(fd, f"{{what}} {{task_id}} {{try_number}}\\n".encode())
                finally:
                    os.close(fd)

            def work(task_id, try_number):
                mark("start", task_id, try_number)
                time.sleep({seconds})
                mark("end", task_id, try_number)

            with DAG({dag_id!r}, schedule="@once", start_date=START, max_active_tasks=64,
                     default_args={{"retries": {retries}, "retry_delay": timedelta(0)}}):
                for number in range({tasks}):
                    PythonOperator(task_id=f"t{{number:02d}}", python_callable=work)
            """
        )
    )


def tokens(probe: Path, what: str) -> Counter[str]:
    """How many `what` (start or end) tokens each task wrote to the probe file."""
    lines = probe.read_text().splitlines() if probe.exists() else []
    return Counter(line.split()[1] for line in lines if line.startswith(f"{what} "))


# -- a try that must not outlive its lease -------------------------------------------------------------


def probed_work(probe: Path) -> str:
    """DAG-file functions: `work(ti)` appends `alive N` (N: its try number) to `probe` every 20 ms,
    for ten minutes in try 1 (it must be killed) and for one second in a retry."""
    return textwrap.dedent(
        f"""
        def alive(try_number):
            fd = os.open({str(probe)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, f"alive {{try_number}}\\n".encode())
            finally:
                os.close(fd)

        def work(ti):
            # The first try would outlive the test unless it is killed; the retry is short.
            end = time.monotonic() + (600 if ti.try_number == 1 else 1)
            while time.monotonic() < end:
                alive(ti.try_number)
                time.sleep(0.02)
        """
    )


def probe_lines(probe: Path) -> list[str]:
    return probe.read_text().splitlines() if probe.exists() else []


def assert_try_1_ended_before_its_retry(probe: Path) -> None:
    """No `alive 1` line after the first `alive 2`: the two tries never overlapped."""
    lines = probe_lines(probe)
    retry_began = lines.index("alive 2")
    late = [index for index, line in enumerate(lines) if line == "alive 1" and index > retry_began]
    assert not late, f"try 1 was still running after its retry began ({len(late)} lines)"
