"""Schema commands: initdb, upgradedb, downgradedb, resetdb, and the `db` group."""

from __future__ import annotations

import sys

import click

from minisched.cli.audit import audit_cli


def _db_url() -> str:
    from minisched.settings import get_settings

    return get_settings().db_url


@click.command()
def initdb() -> None:
    """Create the schema (to head) and default_pool; safe to run again."""
    from minisched.db import migrate
    from minisched.db.fernet import ensure_key_configured
    from minisched.settings import CONFIG_FILE_NAME, get_settings, mask_secrets

    home = get_settings().home
    if ensure_key_configured(home):
        click.echo(f"Wrote a new Fernet key for secrets at rest to {home / CONFIG_FILE_NAME} (mode 0600)")
    migrate.initdb(_db_url())
    audit_cli("initdb", {})
    click.echo(f"Initialized the metadata database at {mask_secrets(_db_url())}")


@click.command()
@click.option("--to-revision", default="heads", show_default=True, help="Alembic revision to upgrade to.")
@click.option("--show-sql-only", is_flag=True, help="Print the SQL instead of running it.")
def upgradedb(to_revision: str, show_sql_only: bool) -> None:
    """Upgrade the schema under a global lock (concurrent runs are safe)."""
    from minisched.db import migrate

    if show_sql_only:
        click.echo(migrate.upgrade_sql(_db_url(), to_revision))
        return
    migrate.upgrade(_db_url(), to_revision)
    audit_cli("upgradedb", {"to_revision": to_revision}, schema_may_lag=True)
    click.echo(f"Upgraded the metadata database to {migrate.current_revision(_db_url())}")


@click.command()
@click.option(
    "--to-revision", required=True, help="Alembic revision to downgrade to ('base' drops everything)."
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def downgradedb(to_revision: str, yes: bool) -> None:
    """Downgrade the schema to an earlier revision."""
    from minisched.db import migrate

    if not yes:
        click.confirm(f"Downgrade the metadata database to {to_revision}? Data may be lost.", abort=True)
    migrate.downgrade(_db_url(), to_revision)
    audit_cli("downgradedb", {"to_revision": to_revision}, schema_may_lag=True)
    click.echo(f"Downgraded the metadata database to {migrate.current_revision(_db_url()) or 'base'}")


@click.command()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def resetdb(yes: bool) -> None:
    """Drop every table, then initdb."""
    from minisched.db import migrate

    if not yes:
        click.confirm("Drop all minisched tables and their data?", abort=True)
    migrate.resetdb(_db_url())
    audit_cli("resetdb", {})
    click.echo("Reset the metadata database")


@click.command("rotate-fernet-key")
def rotate_fernet_key() -> None:
    """Re-encrypt every connection secret and variable value with the first Fernet key.

    Put the new key first in MINISCHED_FERNET_KEY (or fernet_key), keep the old ones after it, run
    this, then drop the old keys.
    """
    from minisched.db.fernet import rotate_all
    from minisched.db.session import create_session

    with create_session() as session:
        count = rotate_all(session=session)
    audit_cli("rotate_fernet_key", {"rows": count})
    click.echo(f"Re-encrypted {count} row(s) with the first Fernet key")


@click.group("db")
def db_group() -> None:
    """Inspect the metadata database."""


@db_group.command("current")
def db_current() -> None:
    """Print the schema's current alembic revision."""
    from minisched.db import migrate

    click.echo(migrate.current_revision(_db_url()) or "base (empty database)")


@db_group.command("check")
def db_check() -> None:
    """Check that the database can be reached."""
    from minisched.db import migrate
    from minisched.settings import mask_secrets

    migrate.check_connection(_db_url())
    click.echo(f"Connection to {mask_secrets(_db_url())} OK")


@db_group.command("check-migrations")
def db_check_migrations() -> None:
    """Exit 0 only when the schema is at the head revision."""
    from minisched.db import migrate

    current, head = migrate.current_revision(_db_url()), migrate.head_revision(_db_url())
    if current != head:
        click.echo(
            f"Error: the database is at {current or 'base'}, not at head {head}; run `minisched upgradedb`",
            err=True,
        )
        sys.exit(1)
    click.echo(f"The database is at head ({head})")
