"""`tasks states-for-dag-run`, `tasks logs`, `tasks clear`, `tasks test` and `tasks render`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from minisched.cli.audit import audit_cli
from minisched.cli.dag_folder import dags_folder_option, refresh_dags
from minisched.cli.output import output_option
from minisched.cli.params import count

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from minisched.scheduler.executors.task_runner import DagFileCache

TASK_COLUMNS = ["task_id", "map_index", "state", "try_number", "start_date", "end_date", "duration"]


@click.group("tasks")
def tasks_group() -> None:
    """Inspect and manage task instances."""


@tasks_group.command("states-for-dag-run")
@click.argument("dag_id")
@click.argument("run_id")
@output_option
def states_for_dag_run(dag_id: str, run_id: str, output: str) -> None:
    """The state of every task instance of one dag run."""
    from sqlalchemy import select

    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.exceptions import MinischedError
    from minisched.models import DagRun
    from minisched.scheduler.manual_runs import task_states

    with create_session() as session:
        exists = session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if exists is None:
            raise MinischedError(
                f"no run {run_id!r} of DAG {dag_id!r}; `minisched dags list-runs {dag_id}` lists its runs"
            )
        rows = task_states(dag_id, run_id, session=session)
    print_rows(rows, TASK_COLUMNS, output)


@tasks_group.command("logs")
@click.argument("dag_id")
@click.argument("run_id")
@click.argument("task_id")
@click.option("--try", "try_number", type=count(1), help="Which try (default: the latest).")
@click.option("--map-index", "map_index", type=count(-1), default=-1, help="Which instance of a mapped task.")
@click.option("--tail", "-n", "tail", type=count(0), help="Only the last N lines.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output while the try runs.")
def logs(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None,
    map_index: int,
    tail: int | None,
    follow: bool,
) -> None:
    """Print the captured output of one try of a task instance (streamed, however large)."""
    from minisched.exceptions import MinischedError
    from minisched.scheduler.executors import log_reader
    from minisched.scheduler.executors.logs import log_path_for
    from minisched.settings import get_settings

    latest = _latest_try(dag_id, run_id, task_id, map_index)
    wanted = try_number or latest
    if wanted < 1 or wanted > latest:
        raise MinischedError(f"{task_id!r} in {run_id!r} has had {latest} tries; there is no try {wanted}")
    path = log_path_for(get_settings().logs_folder, dag_id, run_id, task_id, wanted, map_index=map_index)
    key = (dag_id, run_id, task_id, wanted, map_index)
    if _print_shipped(key, local_file=path, tail=tail, follow=follow):
        return
    if not path.is_file():
        raise MinischedError(f"no log for try {wanted} of {task_id!r}: no worker shipped one, none at {path}")
    import sys

    out = sys.stdout.buffer

    def write(chunk: bytes) -> None:
        out.write(chunk)
        out.flush()

    def running() -> bool:
        return _try_is_running(dag_id, run_id, task_id, wanted, map_index)

    with path.open("rb") as log:
        start = log_reader.tail_offset(log, tail) if tail is not None else 0
        if follow:
            log_reader.follow(log, start, write, running)
        else:
            log_reader.copy_from(log, start, write)


def _print_shipped(
    try_key: tuple[str, str, str, int, int],
    *,
    local_file: Path,
    tail: int | None,
    follow: bool,
) -> bool:
    """Print the log a Celery worker shipped to the database (merged with this machine's copy, which
    may hold lines a scheduler added); False when no worker shipped any (the try ran here)."""
    import time

    from minisched.db.session import create_session
    from minisched.db.task_logs import TryKey, read_try_log

    key = TryKey(*try_key)

    def read() -> str | None:
        with create_session() as session:
            return read_try_log(key, local_file=local_file, session=session, shipped_only=True)

    text = read()
    if text is None:
        return False
    if tail is not None:
        text = "".join(text.splitlines(keepends=True)[-tail:]) if tail else ""
        shown = len(read() or "")
    else:
        shown = len(text)
    click.echo(text, nl=False)
    while follow and _try_is_running(*try_key):
        time.sleep(0.5)  # a worker ships about once a second
        latest = read() or ""
        click.echo(latest[shown:], nl=False)
        shown = len(latest)
    return True


def _latest_try(dag_id: str, run_id: str, task_id: str, map_index: int) -> int:
    from sqlalchemy import select

    from minisched.db.session import create_session
    from minisched.exceptions import MinischedError
    from minisched.models import TaskInstance

    with create_session() as session:
        tries = dict(
            session.execute(
                select(TaskInstance.map_index, TaskInstance.try_number).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id == run_id,
                    TaskInstance.task_id == task_id,
                )
            ).all()
        )
    if not tries:
        raise MinischedError(
            f"no task instance {task_id!r} in run {run_id!r} of DAG {dag_id!r}; "
            f"`minisched tasks states-for-dag-run {dag_id} {run_id}` lists its tasks"
        )
    if map_index not in tries:
        indexes = sorted(i for i in tries if i >= 0)
        hint = f"pass --map-index from {indexes[0]} to {indexes[-1]}" if indexes else "leave out --map-index"
        raise MinischedError(f"{task_id!r} in {run_id!r} has no instance with map_index {map_index}; {hint}")
    return tries[map_index]


def _try_is_running(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int) -> bool:
    from sqlalchemy import select

    from minisched.db.session import create_session
    from minisched.models import TaskInstance, TaskInstanceState

    with create_session() as session:
        row = session.execute(
            select(TaskInstance.state, TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
                TaskInstance.map_index == map_index,
            )
        ).one_or_none()
    return row is not None and row.try_number == try_number and row.state == TaskInstanceState.RUNNING


@tasks_group.command("clear")
@click.argument("dag_id")
@click.option("--run-id", "-r", help="Only this run.")
@click.option("--task-regex", "-t", help="Only tasks whose id matches this regular expression (re.search).")
@click.option("--start-date", "-s", help="Only runs with a logical date at or after this (ISO-8601).")
@click.option("--end-date", "-e", help="Only runs with a logical date at or before this (ISO-8601).")
@click.option("--only-failed", "-f", is_flag=True, help="Only failed and upstream_failed task instances.")
@click.option(
    "--downstream", "-d", is_flag=True, help="Also clear everything downstream of the matched tasks."
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@dags_folder_option
def clear(
    *,
    dag_id: str,
    run_id: str | None,
    task_regex: str | None,
    start_date: str | None,
    end_date: str | None,
    only_failed: bool,
    downstream: bool,
    yes: bool,
    dags_folder: Path | None,
) -> None:
    """Reset task instances of DAG_ID so the scheduler runs them again (their finished runs are queued)."""
    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.inputs import parse_datetime
    from minisched.scheduler.clear import RunFilter, clear_task_instances, plan_clear, select_tasks
    from minisched.scheduler.manual_runs import load_dag

    runs = RunFilter(
        run_ids=[run_id] if run_id else None,
        start=parse_datetime(start_date, "--start-date") if start_date else None,
        end=parse_datetime(end_date, "--end-date") if end_date else None,
    )
    refresh_dags()
    with create_session() as session:
        dag = load_dag(dag_id, session=session)
        if run_id:
            _require_run(dag_id, run_id, session=session)
    task_ids = select_tasks(dag, task_regex=task_regex, downstream=downstream)  # no transaction open
    with create_session() as session:
        plan = plan_clear(dag, task_ids, session=session, runs=runs, only_failed=only_failed)
    for ti in plan.in_flight:
        click.echo(f"not cleared, its try is {ti.state}: {ti.run_id} {ti.task_id}", err=True)
    if not plan.to_clear:
        click.echo("No task instances to clear")
        return
    print_rows([ti._asdict() for ti in plan.to_clear], CLEAR_COLUMNS, "table")
    if not yes:
        click.confirm(f"Clear these {len(plan.to_clear)} task instance(s)?", abort=True)
    with create_session() as session:
        result = clear_task_instances(dag, plan.to_clear, session=session)
        paused = _is_paused(dag_id, session=session)
    arguments = {
        "run_id": run_id,
        "task_regex": task_regex,
        "start_date": start_date,
        "end_date": end_date,
        "only_failed": only_failed,
        "downstream": downstream,
    }
    audit_cli("tasks_clear", arguments, dag_id=dag_id, run_id=run_id)
    click.echo(
        f"Cleared {len(result.cleared)} task instance(s); {len(result.requeued_runs)} run(s) queued again"
    )
    if paused and result.cleared:
        click.echo(
            f"Note: {dag_id} is paused; the scheduler runs the cleared tasks once it is unpaused", err=True
        )


CLEAR_COLUMNS = ["run_id", "task_id", "map_index", "state", "try_number"]


def _require_run(dag_id: str, run_id: str, *, session: Session) -> None:
    from sqlalchemy import select

    from minisched.exceptions import MinischedError
    from minisched.models import DagRun

    if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is None:
        raise MinischedError(
            f"no run {run_id!r} of DAG {dag_id!r}; `minisched dags list-runs {dag_id}` lists its runs"
        )


def _is_paused(dag_id: str, *, session: Session) -> bool:
    from sqlalchemy import select

    from minisched.models import DagModel

    return bool(session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id)))


@tasks_group.command("test")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date", required=False)
@click.option(
    "--map-index", "map_index", type=count(-1), default=-1, help="Which instance of a mapped task to run."
)
@dags_folder_option
def test_task(
    dag_id: str, task_id: str, logical_date: str | None, map_index: int, dags_folder: Path | None
) -> None:
    """Run one try of TASK_ID in this process and print its output; records nothing in the database."""
    import sys
    import tempfile

    from minisched.inputs import parse_datetime
    from minisched.models.types import utcnow
    from minisched.scheduler.executors.base import TryRequest
    from minisched.scheduler.executors.task_runner import DagFileCache, run_try
    from minisched.settings import environ_of_a_try, get_settings

    settings = get_settings()
    when = parse_datetime(logical_date, "LOGICAL_DATE") if logical_date else utcnow()
    files = DagFileCache()
    # The DAG file and the task see the environment a worker's try would: no credentials.
    with environ_of_a_try():
        fileloc = _find_dag_file(dag_id, task_id, settings.dags_folder, files)
    interval = files.load(fileloc).dags[dag_id].timetable.infer_manual_data_interval(when)
    with tempfile.TemporaryDirectory(prefix="minisched-tasks-test-") as folder, environ_of_a_try():
        request = TryRequest(
            ti_id=0,
            dag_id=dag_id,
            run_id=f"test__{when.isoformat()}",
            task_id=task_id,
            try_number=1,
            fileloc=fileloc,
            log_path=str(Path(folder) / "attempt=1.log"),
            logical_date=when,
            data_interval_start=interval.start,
            data_interval_end=interval.end,
            map_index=map_index,
        )
        result = run_try(request, dag_cache=files)
        click.echo(Path(request.log_path).read_text(encoding="utf-8", errors="replace"), nl=False)
    summary = f"Task {task_id} of {dag_id}: {result.outcome}"
    click.echo(f"{summary} ({result.error})" if result.error else summary, err=True)
    if result.outcome == "failed":
        sys.exit(1)


@tasks_group.command("render")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date")
@dags_folder_option
def render(dag_id: str, task_id: str, logical_date: str, dags_folder: Path | None) -> None:
    """Print TASK_ID's template fields rendered for LOGICAL_DATE, as a try would see them.

    Runs nothing and records nothing; uses the recorded run at that date if there is one.
    """
    from minisched.db.session import create_session
    from minisched.inputs import parse_datetime
    from minisched.scheduler.executors.task_runner import DagFileCache
    from minisched.scheduler.task_render import format_rendered, render_task, run_to_render_for
    from minisched.settings import get_settings

    settings = get_settings()
    when = parse_datetime(logical_date, "LOGICAL_DATE")
    files = DagFileCache()
    fileloc = _find_dag_file(dag_id, task_id, settings.dags_folder, files)
    dag = files.load(fileloc).dags[dag_id]
    with create_session() as session:
        run = run_to_render_for(dag, when, session=session)
    fields = render_task(dag.task_dict[task_id], when, run)
    if fields:
        click.echo(format_rendered(fields), nl=False)
    else:
        kind = type(dag.task_dict[task_id]).__name__
        click.echo(f"Task {task_id} ({kind}) has no template fields", err=True)


def _find_dag_file(dag_id: str, task_id: str, dags_folder: Path, files: DagFileCache) -> str:
    """The file defining `dag_id`: where the database last saw it, else the first in the DAG folder."""
    from minisched.dagfiles.plan import list_dag_files
    from minisched.exceptions import MinischedError

    known = _known_fileloc(dag_id)
    candidates = [known] if known else []
    candidates += [path for path in list_dag_files(dags_folder) if path != known]
    for fileloc in candidates:
        try:
            imported = files.load(fileloc)
        except OSError:
            continue
        if imported.error and fileloc == known:
            raise MinischedError(f"DAG file of {dag_id!r} failed to import: {imported.error.splitlines()[0]}")
        dag = imported.dags.get(dag_id)
        if dag is None:
            continue
        if task_id not in dag.task_dict:
            tasks = ", ".join(sorted(dag.task_dict)[:20])
            raise MinischedError(f"DAG {dag_id!r} has no task {task_id!r} (tasks: {tasks})")
        return fileloc
    raise MinischedError(
        f"DAG {dag_id!r} is not defined in any file of {dags_folder}; "
        "`minisched dags list-import-errors` shows files that failed to load"
    )


def _known_fileloc(dag_id: str) -> str | None:
    """Read-only look-up; a database that cannot be read just means scanning the folder."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from minisched.db.session import create_session
    from minisched.models import DagModel

    try:
        with create_session() as session:
            return session.scalar(select(DagModel.fileloc).where(DagModel.dag_id == dag_id))
    except SQLAlchemyError:
        return None
