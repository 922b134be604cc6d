"""`dags trigger`, `dags list-runs`, `dags test`, `dags backfill`: making and watching dag runs."""

from __future__ import annotations

from pathlib import Path

import click

from minisched.cli.audit import audit_cli
from minisched.cli.dag_folder import dags_folder_option, refresh_dags
from minisched.cli.output import output_option
from minisched.cli.params import count

RUN_COLUMNS = ["dag_id", "run_id", "run_type", "state", "logical_date", "start_date", "end_date"]
TASK_COLUMNS = ["task_id", "map_index", "state", "try_number", "start_date", "end_date", "duration"]


@click.command("trigger")
@click.argument("dag_id")
@click.option("--logical-date", "-e", help="ISO-8601 logical date (default: now; no offset means UTC).")
@click.option("--conf", "-c", help="JSON object passed to the run's tasks as `conf`.")
@dags_folder_option
def trigger(dag_id: str, logical_date: str | None, conf: str | None, dags_folder: Path | None) -> None:
    """Create a manual run of DAG_ID; prints its run_id.

    The DAG is looked up in the database (as the scheduler last saw it); with --dags-folder that
    folder is read first, so a DAG file just dropped there can be triggered at once.
    """
    from minisched.inputs import parse_conf, parse_datetime
    from minisched.scheduler.manual_runs import trigger_dag

    when = parse_datetime(logical_date, "--logical-date") if logical_date else None
    parsed_conf = parse_conf(conf)
    if dags_folder is not None:
        refresh_dags()
    new_run_id = trigger_dag(dag_id, logical_date=when, conf=parsed_conf)
    audit_cli(
        "dags_trigger", {"logical_date": logical_date, "conf": parsed_conf}, dag_id=dag_id, run_id=new_run_id
    )
    click.echo(new_run_id)


@click.command("list-runs")
@click.argument("dag_id")
@click.option("--state", help="Only runs in this state (queued, running, success, failed).")
@click.option("--limit", type=count(1), default=100, show_default=True)
@output_option
def list_runs(dag_id: str, state: str | None, limit: int, output: str) -> None:
    """List DAG_ID's runs, newest first."""
    from sqlalchemy import select

    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.models import DagModel, DagRun
    from minisched.scheduler.manual_runs import dag_not_found

    with create_session() as session:
        if session.get(DagModel, dag_id) is None:
            raise dag_not_found(dag_id)
        query = select(*(getattr(DagRun, c) for c in RUN_COLUMNS)).where(DagRun.dag_id == dag_id)
        if state:
            query = query.where(DagRun.state == state)
        rows = [r._asdict() for r in session.execute(query.order_by(DagRun.logical_date.desc()).limit(limit))]
    print_rows(rows, RUN_COLUMNS, output)


@click.command("test")
@click.argument("dag_id")
@click.argument("logical_date", required=False)
@dags_folder_option
@output_option
def test(dag_id: str, logical_date: str | None, dags_folder: Path | None, output: str) -> None:
    """Run one run of DAG_ID in this process to the end and record it; exit 0 only if it succeeded."""
    import importlib
    import sys

    from minisched.cli.startup import imports_without_gc

    with imports_without_gc():
        from minisched.cli.output import print_rows
        from minisched.inputs import parse_datetime
        from minisched.models import DagRunState
        from minisched.scheduler.manual_runs import run_dag_test
        from minisched.settings import get_settings

        # Imported later by run_dag_test anyway: here, without the collector.
        for module in ("minisched.scheduler.loop", "minisched.scheduler.executors.task_runner"):
            importlib.import_module(module)

    settings = get_settings()
    when = parse_datetime(logical_date, "LOGICAL_DATE") if logical_date else None
    outcome = run_dag_test(dag_id, when, dags_folder=settings.dags_folder, logs_folder=settings.logs_folder)
    audit_cli("dags_test", {"logical_date": logical_date}, dag_id=dag_id, run_id=outcome.run_id)
    print_rows(outcome.tasks, TASK_COLUMNS, output)
    click.echo(f"Dag run {outcome.run_id} of {dag_id}: {outcome.state}", err=True)
    if outcome.state != DagRunState.SUCCESS:
        sys.exit(1)


@click.command("backfill")
@click.argument("dag_id")
@click.option("--start-date", "-s", required=True, help="First logical date (inclusive, ISO-8601).")
@click.option("--end-date", "-e", required=True, help="Last logical date (inclusive, ISO-8601).")
@click.option("--dry-run", is_flag=True, help="Print the runs that would be created, run nothing.")
@click.option("--reset-dagruns", is_flag=True, help="Clear finished runs in the range and run them again.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before resetting runs (--reset-dagruns).")
@dags_folder_option
def backfill(
    *,
    dag_id: str,
    start_date: str,
    end_date: str,
    dry_run: bool,
    reset_dagruns: bool,
    yes: bool,
    dags_folder: Path | None,
) -> None:
    """Create and run DAG_ID's scheduled intervals whose logical date lies in [START, END]."""
    import sys

    from minisched.inputs import parse_datetime
    from minisched.models import DagRunState
    from minisched.scheduler.backfill import BackfillPlan, BackfillProgress, run_backfill, runs_to_reset
    from minisched.settings import get_settings

    settings = get_settings()
    start, end = parse_datetime(start_date, "--start-date"), parse_datetime(end_date, "--end-date")
    refresh_dags()
    if reset_dagruns and not dry_run and not yes and (to_reset := runs_to_reset(dag_id, start, end)):
        click.echo("\n".join(to_reset), err=True)
        click.confirm(f"Clear and run again these {len(to_reset)} run(s)?", abort=True, err=True)

    def on_plan(plan: BackfillPlan) -> None:
        for run_id in plan.skipped_existing:
            click.echo(f"already finished, not run again: {run_id}", err=True)
        for run_id in plan.reset_existing:
            click.echo(f"{'would be reset' if dry_run else 'reset'}, runs again: {run_id}", err=True)
        if dry_run:
            for _, run_id in plan.to_run:
                click.echo(run_id)
            return
        arguments = {"start_date": start_date, "end_date": end_date, "reset_dagruns": reset_dagruns}
        audit_cli("dags_backfill", arguments, dag_id=dag_id)

    def on_progress(p: BackfillProgress) -> None:
        click.echo(f"backfill {dag_id}: {p.done}/{p.total} runs done, {p.failed} failed", err=True)

    states = run_backfill(
        dag_id,
        start,
        end,
        executor_name=settings.executor,
        parallelism=settings.parallelism,
        logs_folder=settings.logs_folder,
        dry_run=dry_run,
        reset_dagruns=reset_dagruns,
        on_plan=on_plan,
        on_progress=on_progress,
    )
    for (_, run_id), state in sorted(states.items()):
        click.echo(f"{run_id}\t{state}")
    if any(state != DagRunState.SUCCESS for state in states.values()):
        sys.exit(1)
