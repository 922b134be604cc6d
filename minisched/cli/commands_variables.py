"""`variables set|get|list|delete|import|export`: values are encrypted in the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from minisched.cli.audit import audit_cli
from minisched.cli.output import output_option


@click.group("variables")
def variables_group() -> None:
    """Key/value settings that DAGs read at run time."""


@variables_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--description", help="What the variable is for.")
def set_(key: str, value: str, description: str | None) -> None:
    """Create variable KEY with VALUE, or replace its value."""
    from minisched.db.session import create_session
    from minisched.db.variables import set_variable

    with create_session() as session:
        created = set_variable(key, value, description, session=session)
    audit_cli("variables_set", {"key": key, "value": "***", "description": description})
    click.echo(f"{'Created' if created else 'Updated'} variable {key}")


@variables_group.command("get")
@click.argument("key")
@click.option("--default", "default", help="Print this when KEY is not set (instead of failing).")
@click.option(
    "-j", "--json", "deserialize", is_flag=True, help="Parse the value as JSON and print it indented."
)
def get(key: str, default: str | None, deserialize: bool) -> None:
    """Print the value of KEY (MINISCHED_VAR_<KEY> first, then the database)."""
    from minisched.authoring.variable import Variable
    from minisched.exceptions import VariableNotFound

    try:
        value = Variable.get(key, deserialize_json=deserialize)
    except VariableNotFound:
        if default is None:
            raise VariableNotFound(
                f"variable {key!r} is not set: set it with `minisched variables set {key} VALUE`, "
                f"or give --default"
            ) from None
        click.echo(default)
        return
    click.echo(json.dumps(value, indent=2) if deserialize else value)


@variables_group.command("list")
@output_option
def list_(output: str) -> None:
    """Every variable's key and description."""
    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.db.variables import list_variables

    with create_session() as session:
        rows = list_variables(session=session)
    print_rows(rows, ["key", "description"], output)


@variables_group.command("delete")
@click.argument("key")
def delete(key: str) -> None:
    """Delete variable KEY."""
    from minisched.db.session import create_session
    from minisched.db.variables import delete_variable

    with create_session() as session:
        delete_variable(key, session=session)
    audit_cli("variables_delete", {"key": key})
    click.echo(f"Deleted variable {key}")


@variables_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def export(file: Path) -> None:
    """Write every variable to FILE as JSON ({"key": "value"}; the file is made readable by you only)."""
    from minisched.cli.files import export_document
    from minisched.db.session import create_session
    from minisched.db.variables import all_variables, list_variables

    with create_session() as session:
        values = all_variables(session=session)
        descriptions = {row["key"]: row["description"] for row in list_variables(session=session)}
    document: dict[str, Any] = {
        key: {"value": value, "description": descriptions[key]} if descriptions.get(key) else value
        for key, value in values.items()
    }
    export_document(file, document, kind="variable")


@variables_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(file: Path) -> None:
    """Set every variable of a JSON FILE ({"key": value} or {"key": {"value": ..., "description": ...}});
    all of them or none. A value that is not a string is stored as JSON."""
    from minisched.cli.files import read_json_object, report_import
    from minisched.db.session import create_session
    from minisched.db.variables import set_variables

    document = read_json_object(file)
    values = {key: _entry(entry) for key, entry in document.items()}
    with create_session() as session:
        set_variables(values, session=session)
    report_import(file, len(values), kind="variable", arguments={"keys": sorted(values)})


def _entry(entry: Any) -> tuple[str, str | None]:
    if isinstance(entry, dict) and "value" in entry and set(entry) <= {"value", "description"}:
        value, description = entry["value"], entry.get("description")
    else:
        value, description = entry, None
    return (value if isinstance(value, str) else json.dumps(value)), description
