"""The `minisched` command line. Modules here import only click at the top; heavy imports live in commands."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from minisched.cli.commands_celery import celery_group
from minisched.cli.commands_clean import clean
from minisched.cli.commands_config import config_command, version_command
from minisched.cli.commands_connections import connections_group
from minisched.cli.commands_dag_runs import backfill, list_runs, test, trigger
from minisched.cli.commands_dags import dags_group
from minisched.cli.commands_db import db_group, downgradedb, initdb, resetdb, rotate_fernet_key, upgradedb
from minisched.cli.commands_grid import runs
from minisched.cli.commands_pools import pools_group
from minisched.cli.commands_scheduler import scheduler
from minisched.cli.commands_tasks import tasks_group
from minisched.cli.commands_tokens import tokens_group
from minisched.cli.commands_variables import variables_group
from minisched.cli.commands_webserver import webserver
from minisched.cli.commands_xcom import xcom


class MinischedGroup(click.Group):
    """Turns every failure into one line on stderr and exit code 1 (click's usage errors keep exit 2)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Refuse an argument that is not UTF-8 (Python hands it over as lone surrogates) up front:
        no driver can store it, and a command would otherwise fail halfway with an encoding error."""
        from minisched.inputs import InvalidInput, check_text

        for position, arg in enumerate(args, start=1):
            try:
                check_text(arg, f"argument {position}")
            except InvalidInput as exc:
                raise click.UsageError(str(exc), ctx) from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from minisched.exceptions import InputError, MinischedError
        from minisched.settings import ConfigError, mask_secrets

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except InputError as exc:
            _fail(mask_secrets(exc.for_cli()))
        except (MinischedError, ConfigError) as exc:
            _fail(mask_secrets(str(exc)))
        except KeyboardInterrupt:
            _fail("interrupted")
        except Exception as exc:
            if os.environ.get("MINISCHED_DEBUG"):
                raise
            _fail(mask_secrets(_describe(exc)))


def _describe(exc: Exception) -> str:
    """One line for an error nobody raised on purpose; database errors say what to do."""
    from sqlalchemy.exc import DBAPIError

    from minisched.settings import get_settings

    first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = first_line[0] if first_line else type(exc).__name__
    if isinstance(exc, DBAPIError):
        url = get_settings().db_url
        missing_table = "no such table" in reason or ("does not exist" in reason and "relation" in reason)
        if missing_table:
            return (
                f"the metadata database {url} has no minisched schema ({reason}); "
                "run `minisched initdb` (or `minisched upgradedb`)"
            )
        if exc.connection_invalidated or "connect" in reason.lower():
            return f"cannot connect to the metadata database {url}: {reason}"
        return f"database error on {url}: {reason}"
    return f"unexpected {type(exc).__name__}: {reason} (set MINISCHED_DEBUG=1 to see the traceback)"


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.group(cls=MinischedGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """minisched: a small, fast workflow scheduler with an Airflow-style metadata database."""


for command in (
    initdb,
    upgradedb,
    downgradedb,
    resetdb,
    db_group,
    dags_group,
    tasks_group,
    pools_group,
    connections_group,
    variables_group,
    rotate_fernet_key,
    runs,
    scheduler,
    webserver,
    tokens_group,
    celery_group,
    config_command,
    version_command,
):
    cli.add_command(command)
for command in (trigger, list_runs, test, backfill):
    dags_group.add_command(command)
db_group.add_command(clean)
tasks_group.add_command(xcom)


def main() -> None:
    cli(prog_name="minisched")
