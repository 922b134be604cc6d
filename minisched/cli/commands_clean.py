"""`db clean`: delete old history (finished runs, log, import errors, finished jobs) in batches."""

from __future__ import annotations

import click

from minisched.cli.audit import audit_cli
from minisched.cli.output import output_option
from minisched.cli.params import count

TABLES = ("dag_run", "log", "import_error", "job")
COUNT_COLUMNS = ["table", "rows"]


def _parse_tables(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str]:
    if value is None:
        return list(TABLES)
    tables = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in tables if name not in TABLES]
    if unknown or not tables:
        hint = " (task instances go with their dag_run)" if "task_instance" in unknown else ""
        raise click.BadParameter(f"{', '.join(unknown) or value!r}: choose from {','.join(TABLES)}{hint}")
    return list(dict.fromkeys(tables))


@click.command("clean")
@click.option(
    "--before", "-b", required=True, help="Delete what is older than this (ISO-8601; no offset: UTC)."
)
@click.option("--dry-run", is_flag=True, help="Only print how many rows would be deleted, per table.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--tables",
    callback=_parse_tables,
    help=f"Comma-separated tables to clean (default: all of {','.join(TABLES)}).",
)
@click.option("--batch-size", type=count(1), default=1000, show_default=True, hidden=True)
@output_option
def clean(*, before: str, dry_run: bool, yes: bool, tables: list[str], batch_size: int, output: str) -> None:
    """Delete finished dag runs (with their task instances), log rows, import errors and finished jobs
    older than --before. Queued and running runs are never deleted, nor each DAG's latest scheduled run.
    """
    from minisched.cli.output import print_rows, render_table
    from minisched.db.clean import clean_tables, count_rows
    from minisched.db.session import create_session
    from minisched.inputs import parse_datetime

    cutoff = parse_datetime(before, "--before")
    with create_session() as session:
        counts = count_rows(tables, cutoff, session=session)
    if dry_run or not any(counts.values()):
        print_rows(_rows(counts), COUNT_COLUMNS, output)
        if not dry_run:
            click.echo(f"Nothing older than {cutoff.isoformat()} to delete", err=True)
        return
    if not yes:  # on stderr, so that stdout stays one JSON document with --output json
        click.echo(render_table(_rows(counts), COUNT_COLUMNS), err=True)
        click.confirm(f"Delete these rows (older than {cutoff.isoformat()})?", abort=True, err=True)
    deleted = clean_tables(tables, cutoff, batch_size=batch_size)
    audit_cli("db_clean", {"before": cutoff.isoformat(), "tables": tables, "deleted": deleted})
    print_rows(_rows(deleted), COUNT_COLUMNS, output)


def _rows(counts: dict[str, int]) -> list[dict[str, object]]:
    return [{"table": table, "rows": rows} for table, rows in counts.items()]
