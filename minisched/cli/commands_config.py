"""`minisched config` and `minisched version`."""

from __future__ import annotations

import click

from minisched.cli.output import output_option


@click.command("config")
@output_option
def config_command(output: str) -> None:
    """Print the effective settings (passwords masked)."""
    from minisched.cli.output import print_rows
    from minisched.settings import get_settings

    values = get_settings().masked()
    rows = [{"setting": key, "value": value} for key, value in values.items()]
    print_rows(rows, ["setting", "value"], output)


@click.command("version")
def version_command() -> None:
    """Print minisched's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        click.echo(version("minisched"))
    except PackageNotFoundError:
        click.echo("unknown (not installed)")
