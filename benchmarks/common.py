"""Shared helpers for the benchmarks: figures, databases per backend, DAG files, a scheduler subprocess.

Nothing here is timed; every benchmark module times its own work with `time.perf_counter()`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, text

from minisched.models.types import utcnow
from minisched.scheduler.executors import base as _executor_base
from minisched.scheduler.executors.base import BaseExecutor, TryRequest, TryResult

_TryStarted: Any = getattr(_executor_base, "TryStarted", None)

REPO = Path(__file__).resolve().parents[1]
Backend = Literal["sqlite", "postgresql"]
Shape = Literal["parallel", "chain"]


# -- figures ------------------------------------------------------------------------------------------
@dataclass
class Figure:
    """One measured number. `name` is stable across --quick and full runs (the smoke test greps it)."""

    name: str
    value: float | None
    unit: str = ""
    target: str = ""  # e.g. ">= 1000"; empty: informational
    ok: bool | None = None  # None: no target
    params: str = ""  # what was measured, e.g. "N=1000, parallelism=2"
    backend: str = ""
    note: str = ""
    ratio: str = ""  # the same figure as a ratio to an in-run baseline (benchmarks.ratios)

    def formatted_value(self) -> str:
        if self.value is None:
            return "n/a"
        value = self.value
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) < 0.01:
            return f"{value:.4f}"
        if abs(value) < 10:
            return f"{value:.2f}"
        if abs(value) < 1000:
            return f"{value:.1f}"
        return f"{value:,.0f}"

    def verdict(self) -> str:
        if self.ok is None:
            return ""
        return "ok" if self.ok else "FAIL"


def at_least(value: float | None, threshold: float) -> bool | None:
    return None if value is None else value >= threshold


def at_most(value: float | None, threshold: float) -> bool | None:
    return None if value is None else value <= threshold


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class BenchContext:
    backend: Backend
    quick: bool
    workdir: Path
    pg_admin_url: str | None = None
    first_backend: bool = True  # backend-independent figures (CLI start-up) are measured once
    log: Callable[[str], None] = field(default=lambda message: print(message, file=sys.stderr, flush=True))

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def tempdir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.workdir))

    @contextlib.contextmanager
    def database(self, name: str, home: Path) -> Iterator[str]:
        """The URL of an empty database for one benchmark (a PostgreSQL one is dropped afterwards)."""
        if self.backend == "sqlite":
            yield f"sqlite:///{home / 'minisched.db'}"
            return
        assert self.pg_admin_url is not None, "PostgreSQL backend without an admin URL"
        database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        pg_execute(self.pg_admin_url, f'CREATE DATABASE "{database}"')
        try:
            yield with_database(self.pg_admin_url, database)
        finally:
            pg_execute(self.pg_admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- PostgreSQL ---------------------------------------------------------------------------------------
def with_database(admin_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def pg_execute(admin_url: str, *statements: str) -> list[Any]:
    from minisched.db.engine import parse_db_url

    engine = create_engine(parse_db_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            results = [connection.execute(text(statement)) for statement in statements]
            return [result.scalar() if result.returns_rows else None for result in results]
    finally:
        engine.dispose()


def start_postgres() -> str:
    """The admin URL of the throwaway server `.ci/start-postgres` starts (or finds already running)."""
    done = subprocess.run(
        ["bash", str(REPO / ".ci" / "start-postgres")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f".ci/start-postgres failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


# -- a minisched home ---------------------------------------------------------------------------------
@dataclass
class Home:
    """A MINISCHED_HOME with its own DAG folder, logs folder and database URL."""

    root: Path
    db_url: str

    @property
    def dags(self) -> Path:
        return self.root / "dags"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def environ(self, parallelism: int = 2, executor: str = "local") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINISCHED_")}
        env.update(
            MINISCHED_HOME=str(self.root),
            MINISCHED_DB_URL=self.db_url,
            MINISCHED_DAGS_FOLDER=str(self.dags),
            MINISCHED_LOGS_FOLDER=str(self.logs),
            MINISCHED_PARALLELISM=str(parallelism),
            MINISCHED_EXECUTOR=executor,
        )
        return env


@contextlib.contextmanager
def new_home(ctx: BenchContext, name: str, *, initdb: bool = True) -> Iterator[Home]:
    root = ctx.tempdir(name)
    (root / "dags").mkdir()
    (root / "logs").mkdir()
    with ctx.database(name, root) as url:
        home = Home(root, url)
        if initdb:
            from minisched.db.migrate import initdb as do_initdb

            do_initdb(url)
        yield home


@contextlib.contextmanager
def in_process(home: Home) -> Iterator[Engine]:
    """Point this process's settings and ORM at `home` (as the CLI would); restore afterwards."""
    from minisched import settings
    from minisched.db import session as orm

    saved = {k: v for k, v in os.environ.items() if k.startswith("MINISCHED_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({k: v for k, v in home.environ().items() if k.startswith("MINISCHED_")})
    settings.configure()
    engine = orm.configure_orm(home.db_url)
    try:
        yield engine
    finally:
        orm.dispose_orm()
        for key in [k for k in os.environ if k.startswith("MINISCHED_")]:
            del os.environ[key]
        os.environ.update(saved)
        settings.configure()


def read_engine(url: str) -> Engine:
    """A plain engine for polling: on SQLite it never takes the write lock (the app engine's BEGIN does)."""
    from minisched.db.engine import parse_db_url

    parsed = parse_db_url(url)
    if parsed.get_backend_name() == "sqlite":
        return create_engine(parsed, connect_args={"timeout": 60})
    return create_engine(parsed, isolation_level="AUTOCOMMIT")


# -- counting statements ------------------------------------------------------------------------------
WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@dataclass
class StatementCounter:
    """Counts statements (an executemany counts once) and commits on an engine while attached."""

    statements: int = 0
    writes: int = 0
    commits: int = 0
    texts: list[str] = field(default_factory=list)
    keep_texts: bool = False

    def on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements += 1
        if statement.lstrip().upper().startswith(WRITE_PREFIXES):
            self.writes += 1
        if self.keep_texts:
            self.texts.append(" ".join(statement.split())[:160])

    def on_commit(self, _conn: Any) -> None:
        self.commits += 1

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.writes, self.commits


@contextlib.contextmanager
def counting(engine: Engine, keep_texts: bool = False) -> Iterator[StatementCounter]:
    counter = StatementCounter(keep_texts=keep_texts)
    event.listen(engine, "before_cursor_execute", counter.on_execute)
    event.listen(engine, "commit", counter.on_commit)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter.on_execute)
        event.remove(engine, "commit", counter.on_commit)


# -- DAG files ----------------------------------------------------------------------------------------
DAG_HEADER = """\
from datetime import datetime, timezone

from minisched.authoring.dag import DAG
from minisched.authoring.operators import PythonOperator


def noop():
    return None


def small_value():
    return {"rows": 1, "status": "ok"}

"""


def dag_source(
    dag_id: str,
    tasks: int,
    shape: Shape = "parallel",
    *,
    chains: int = 1,
    max_active_tasks: int | None = None,
    max_active_runs: int = 16,
    counter_file: Path | None = None,
    returns_value: bool = False,
) -> str:
    """A DAG of no-op PythonOperators, `schedule=None`: `chains` independent chains (or all parallel).

    With `counter_file`, importing the file appends one byte to it (to count imports from outside).
    With `returns_value`, every task returns a small dict (stored as XCom) instead of None.
    """
    side_effect = ""
    if counter_file is not None:
        side_effect = f"with open({str(counter_file)!r}, 'a') as _counter:\n    _counter.write('.')\n\n"
    limit = max_active_tasks or tasks
    body = f"""\
with DAG(
    {dag_id!r},
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    max_active_tasks={limit},
    max_active_runs={max_active_runs},
):
"""
    if shape == "parallel":
        body += f"""\
    for i in range({tasks}):
        PythonOperator(task_id=f"t{{i}}", python_callable={"small_value" if returns_value else "noop"})
"""
    else:
        per_chain = tasks // chains
        body += f"""\
    for c in range({chains}):
        previous = None
        for i in range({per_chain}):
            current = PythonOperator(task_id=f"c{{c}}_t{{i}}", python_callable=noop)
            if previous is not None:
                previous >> current
            previous = current
"""
    return DAG_HEADER + side_effect + body


def write_dag(folder: Path, dag_id: str, source: str) -> Path:
    path = folder / f"{dag_id}.py"
    path.write_text(source)
    return path


def chain_edges(chains: int, per_chain: int) -> list[tuple[str, str]]:
    return [(f"c{c}_t{i}", f"c{c}_t{i + 1}") for c in range(chains) for i in range(per_chain - 1)]


# -- the scheduler in its own process ------------------------------------------------------------------
class SchedulerProcess:
    """`python -m minisched scheduler` for one home; its output goes to a file shown when it fails."""

    def __init__(self, home: Home, parallelism: int = 2, executor: str = "local") -> None:
        self.home = home
        self.env = home.environ(parallelism=parallelism, executor=executor)
        self.log_path = home.root / "scheduler.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss_kib = 0
        self.peak_tree_pss_kib = 0

    def __enter__(self) -> SchedulerProcess:
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "minisched", "scheduler"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home.root,
            )
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the scheduler exited with {self.proc.returncode}:\n{self.output_tail()}")

    def output_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def sample_rss(self) -> int:
        """Peak RSS (VmHWM, KiB) of the scheduler process so far; remembered after it exits.

        Also keeps `peak_tree_pss_kib`: the largest sum of current PSS (shared pages divided among
        their sharers) over the scheduler and its direct children (the workers) seen by any call.
        """
        hwm = _proc_status_kib(self.pid, "VmHWM")
        if hwm is not None:
            self.peak_rss_kib = max(self.peak_rss_kib, hwm)
        tree = [self.pid, *_children(self.pid)]
        total = sum(_proc_status_kib(pid, "Pss", "smaps_rollup") or 0 for pid in tree)
        self.peak_tree_pss_kib = max(self.peak_tree_pss_kib, total)
        return self.peak_rss_kib

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.sample_rss()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def wait_for_dags(self, engine: Engine, dag_ids: set[str], timeout: float = 120.0) -> float:
        """Seconds until every dag id is active in the DB (the scheduler loaded the folder)."""
        started = time.perf_counter()
        while True:
            self.check_alive()
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT dag_id FROM dag WHERE is_active")).scalars().all()
            if dag_ids <= set(rows):
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"DAGs not loaded after {timeout}s:\n{self.output_tail()}")
            time.sleep(0.02)


def _proc_status_kib(pid: int, field_name: str, file: str = "status") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _children(pid: int) -> list[int]:
    try:
        found: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
        return found
    except (OSError, ValueError):
        return []


def trigger(dag_id: str, logical_date: datetime | None = None) -> str:
    """Create a queued manual run in-process (the ORM must point at the scheduler's database)."""
    from minisched.db.session import create_session
    from minisched.scheduler.manual_runs import trigger_dag

    with create_session() as session:
        return trigger_dag(dag_id, session=session, logical_date=logical_date)


@dataclass
class RunTimes:
    state: str
    start_date: datetime | None
    end_date: datetime | None
    tasks: dict[str, tuple[datetime | None, datetime | None]]  # task_id -> (start, end)


def wait_for_run(
    engine: Engine,
    dag_id: str,
    run_id: str,
    *,
    timeout: float,
    interval: float = 0.05,
    alive: Callable[[], None] | None = None,
) -> RunTimes:
    """Poll dag_run.state until success/failed; then read the run's and its tasks' timestamps.

    Figures come from the timestamps the scheduler and workers recorded, not from when the poll saw the
    end, so a slow poll (which keeps the poller off the CPUs) costs no accuracy.
    """
    from minisched.models import DagRun, TaskInstance

    deadline = time.perf_counter() + timeout
    query = text("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r")
    while True:
        with engine.connect() as connection:
            state = connection.execute(query, {"d": dag_id, "r": run_id}).scalar()
        if state in ("success", "failed"):
            break
        if alive is not None:
            alive()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout}s")
        time.sleep(interval)
    from sqlalchemy import select

    with engine.connect() as connection:
        run = connection.execute(
            select(DagRun.state, DagRun.start_date, DagRun.end_date).where(
                DagRun.dag_id == dag_id, DagRun.run_id == run_id
            )
        ).one()
        rows = connection.execute(
            select(TaskInstance.task_id, TaskInstance.start_date, TaskInstance.end_date).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return RunTimes(
        run.state, run.start_date, run.end_date, {r.task_id: (r.start_date, r.end_date) for r in rows}
    )


def edge_latencies(
    tasks: Mapping[str, tuple[datetime | None, datetime | None]], edges: Sequence[tuple[str, str]]
) -> list[float]:
    """Seconds from each upstream's end to its downstream's start."""
    gaps: list[float] = []
    for up, down in edges:
        up_end, down_start = tasks[up][1], tasks[down][0]
        if up_end is not None and down_start is not None:
            gaps.append((down_start - up_end).total_seconds())
    return gaps


def slot_adjusted_latencies(
    tasks: Mapping[str, tuple[datetime | None, datetime | None]],
    edges: Sequence[tuple[str, str]],
    parallelism: int,
) -> list[float]:
    """Edge latency not counting the wait for a free executor slot.

    The j-th start (in time order) cannot happen before the (j - parallelism)-th end, so a task became
    startable at max(upstream end, that end); the rest of its wait is the scheduler's reaction time.
    """
    starts = sorted((s, task_id) for task_id, (s, _) in tasks.items() if s is not None)
    ends = sorted(e for _, e in tasks.values() if e is not None)
    upstream = dict((down, up) for up, down in edges)
    gaps: list[float] = []
    for j, (start, task_id) in enumerate(starts):
        up = upstream.get(task_id)
        if up is None or tasks[up][1] is None:
            continue
        ready = tasks[up][1]
        assert ready is not None
        if j >= parallelism:
            ready = max(ready, ends[j - parallelism])
        gaps.append(max(0.0, (start - ready).total_seconds()))
    return gaps


def start_gaps(tasks: Mapping[str, tuple[datetime | None, datetime | None]]) -> list[float]:
    """Seconds between consecutive task starts (Airflow's anchor figure)."""
    starts = sorted(s for s, _ in tasks.values() if s is not None)
    return [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]


def run_cli(args: Sequence[str], env: Mapping[str, str], timeout: float = 600.0) -> tuple[float, str]:
    """Run `python -m minisched ARGS`; returns (wall seconds, stderr). Raises on a non-zero exit."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "minisched", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"minisched {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}{done.stdout[-500:]}"
        )
    return elapsed, done.stderr


# -- an executor that runs nothing --------------------------------------------------------------------
class FakeExecutor(BaseExecutor):
    """An executor whose tries succeed instantly: results come back at the next `poll`.

    It takes exactly `slots` tries at a time, so every steady-state loop records `slots` results and
    queues `slots` tries, whatever the number of ready task instances or active runs.
    """

    name = "fake"

    def __init__(self, slots: int, xcom: tuple[tuple[str, Any], ...] = ()) -> None:
        super().__init__(slots)
        self.slots = slots
        #: What every try reports it pushed (tries of an older contract report nothing).
        self.xcom = xcom
        self._pending: list[TryResult] = []
        self.submitted_total = 0
        self.polled_total = 0

    def start(self) -> None:
        pass

    def submit(self, tries: Sequence[TryRequest]) -> None:
        now = utcnow()
        events = getattr(self, "_started_events", None)  # executors report starts (newer contract)
        for request in tries:
            if _TryStarted is not None and isinstance(events, list):
                of = getattr(_TryStarted, "of", None)  # newer contract: the event names its task instance
                if of is not None:
                    started = of(request, now, os.getpid())
                else:
                    started = _TryStarted(request.ti_id, request.try_number, now, os.getpid())
                events.append(started)
            extra = {"xcom": self.xcom} if self.xcom else {}
            self._pending.append(
                TryResult(
                    request.ti_id, request.try_number, "success", now, now, "bench", os.getpid(), **extra
                )
            )
        self.submitted_total += len(tries)

    def poll(self, timeout: float = 0.0) -> list[TryResult]:
        finished, self._pending = self._pending, []
        self.polled_total += len(finished)
        return finished

    @property
    def running(self) -> int:
        return len(self._pending)

    @property
    def free_slots(self) -> int:
        return max(0, self.slots - len(self._pending))

    def stop(self, grace: float) -> list[TryResult]:
        return self.poll()
