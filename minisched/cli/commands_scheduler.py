"""`minisched scheduler`: the main job."""

from __future__ import annotations

from pathlib import Path

import click

from minisched.cli.audit import audit_cli
from minisched.cli.dag_folder import dags_folder_option
from minisched.cli.params import count


@click.command()
@dags_folder_option
@click.option("--num-runs", "-n", type=count(1), help="Stop after this many loops.")
@click.option("--executor", type=click.Choice(["local", "sequential", "celery"]), help="Where tries run.")
@click.option("--parallelism", type=count(1), help="How many tries run at once.")
def scheduler(
    dags_folder: Path | None, num_runs: int | None, executor: str | None, parallelism: int | None
) -> None:
    """Run the scheduler loop: create due runs, run their tasks, record every result.

    SIGTERM or Ctrl-C stops it gracefully: no new tries, running ones get a grace period.
    """
    from minisched.cli.logging_setup import configure_logging
    from minisched.db.migrate import is_at_head
    from minisched.exceptions import MinischedError
    from minisched.scheduler.executors import executor_for
    from minisched.scheduler.loop import SchedulerLoop, SchedulerOptions
    from minisched.settings import configure, mask_secrets

    settings = configure({"dags_folder": dags_folder, "executor": executor, "parallelism": parallelism})
    configure_logging()
    if not is_at_head(settings.db_url):
        raise MinischedError(
            f"the metadata database {mask_secrets(settings.db_url)} is not at the current schema; "
            "run `minisched initdb` (new database) or `minisched upgradedb`"
        )
    if not settings.dags_folder.is_dir():
        raise MinischedError(
            f"DAG folder {settings.dags_folder} does not exist; create it or pass --dags-folder"
        )
    options = SchedulerOptions(
        logs_folder=settings.logs_folder,
        dags_folder=settings.dags_folder,
        num_runs=num_runs,
        idle_sleep=settings.scheduler_idle_sleep,
        heartbeat_interval=settings.scheduler_heartbeat,
        zombie_threshold=settings.zombie_threshold,
        # A local executor's queue cannot lose a try; a broker can.
        queued_timeout=settings.task_queued_timeout if settings.executor == "celery" else None,
        db_outage_grace=settings.db_outage_grace,
    )
    loop = SchedulerLoop(executor_for(settings.executor, settings.parallelism), options)
    audit_cli(
        "scheduler",
        {
            "dags_folder": str(settings.dags_folder),
            "num_runs": num_runs,
            "executor": settings.executor,
            "parallelism": settings.parallelism,
        },
    )
    click.echo(
        f"Scheduler starting: DAGs from {settings.dags_folder}, executor {settings.executor}, "
        f"parallelism {settings.parallelism}, database {mask_secrets(settings.db_url)}",
        err=True,
    )
    loops = loop.run()
    click.echo(f"Scheduler stopped after {loops} loops; {len(loop.ended_runs)} dag runs finished", err=True)
