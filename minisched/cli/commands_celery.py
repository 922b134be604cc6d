"""`minisched celery worker|status|stop`: remote workers for the Celery executor."""

from __future__ import annotations

import click

from minisched.cli.audit import audit_cli
from minisched.cli.output import output_option

STATUS_COLUMNS = ["worker", "pid", "queues", "latest_heartbeat", "running_tries"]


@click.group("celery")
def celery_group() -> None:
    """Workers that run tries on other machines (MINISCHED_EXECUTOR=celery)."""


@celery_group.command("worker")
@click.option("--queues", "-q", help="Comma-separated queues to consume (default: MINISCHED_DEFAULT_QUEUE).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Tries this worker runs at once.",
)
@click.option(
    "--hostname",
    "name",
    help="This worker's name, recorded as the host of its tries (default: the machine's name).",
)
def worker(queues: str | None, concurrency: int, name: str | None) -> None:
    """Run tries published by a scheduler with the celery executor, until SIGTERM or `celery stop`.

    Needs the same DAG files (at the same path) and the same metadata database as the scheduler.
    """
    from minisched.scheduler.executors.celery_messages import require_celery_setup
    from minisched.settings import get_settings, mask_secrets

    settings = get_settings()
    # Refuse a wrong setup (SQLite, no broker) before importing the database and Celery modules.
    require_celery_setup(db_url=settings.db_url, broker_url=settings.celery_broker_url)
    import socket

    from minisched.cli.logging_setup import configure_logging
    from minisched.db.migrate import is_at_head
    from minisched.exceptions import MinischedError
    from minisched.workers.celery_worker import run_worker

    if not is_at_head(settings.db_url):
        raise MinischedError(
            f"the metadata database {mask_secrets(settings.db_url)} is not at the current schema; "
            "run `minisched upgradedb`"
        )
    wanted = [q.strip() for q in (queues or settings.default_queue).split(",") if q.strip()]
    if not wanted:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    worker_name = name or socket.gethostname()
    configure_logging()
    audit_cli("celery_worker", {"queues": wanted, "concurrency": concurrency, "hostname": worker_name})
    click.echo(
        f"Celery worker {worker_name} starting: queues {','.join(wanted)}, concurrency {concurrency}, "
        f"broker {mask_secrets(settings.celery_broker_url)}, database {mask_secrets(settings.db_url)}",
        err=True,
    )
    code = run_worker(
        name=worker_name,
        queues=wanted,
        concurrency=concurrency,
        broker_url=settings.celery_broker_url,
        default_queue=settings.default_queue,
        logs_folder=settings.logs_folder,
        heartbeat_interval=settings.scheduler_heartbeat,
    )
    click.echo(f"Celery worker {worker_name} stopped", err=True)
    raise SystemExit(code)


@celery_group.command("status")
@output_option
def status(output: str) -> None:
    """Live workers: their queues and the tries each runs."""
    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.scheduler.executors.celery_messages import require_celery_setup
    from minisched.settings import get_settings
    from minisched.workers.celery_status import worker_rows

    settings = get_settings()
    require_celery_setup(db_url=settings.db_url, broker_url=settings.celery_broker_url)
    with create_session() as session:
        rows = worker_rows(settings.celery_broker_url, default_queue=settings.default_queue, session=session)
    print_rows(rows, STATUS_COLUMNS, output)


@celery_group.command("stop")
@click.option("--hostname", "name", help="Only this worker (default: every worker).")
def stop(name: str | None) -> None:
    """Warm shutdown: workers take no new tries, finish the running ones, then exit."""
    from minisched.db.session import create_session
    from minisched.exceptions import MinischedError
    from minisched.scheduler.executors.celery_messages import require_celery_setup
    from minisched.settings import get_settings
    from minisched.workers.celery_status import live_worker_count, stop_workers

    settings = get_settings()
    require_celery_setup(db_url=settings.db_url, broker_url=settings.celery_broker_url)
    with create_session() as session:
        expected = live_worker_count(session)
    stopped = stop_workers(
        settings.celery_broker_url, default_queue=settings.default_queue, name=name, expected=expected
    )
    if not stopped:
        who = f"worker {name!r}" if name else "worker"
        raise MinischedError(f"no {who} answered; `minisched celery status` lists the live workers")
    audit_cli("celery_stop", {"hostname": name})
    for worker_name in stopped:
        click.echo(f"warm shutdown requested: {worker_name}")
