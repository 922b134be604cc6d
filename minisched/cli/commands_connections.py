"""`connections add|get|list|delete|import|export`: passwords shown as *** unless --show-secrets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from minisched.cli.audit import audit_cli
from minisched.cli.output import output_option

if TYPE_CHECKING:
    from minisched.authoring.connection import Connection

COLUMNS = ["conn_id", "conn_type", "description", "host", "schema", "login", "password", "port", "extra"]

show_secrets_option = click.option(
    "--show-secrets", is_flag=True, help="Print passwords and secret-looking extras instead of ***."
)


@click.group("connections")
def connections_group() -> None:
    """How tasks reach outside systems; passwords and extras are encrypted in the database."""


@connections_group.command("add")
@click.argument("conn_id")
@click.option("--conn-uri", help="type://login:password@host:port/schema?extra_key=value")
@click.option("--conn-json", help='The fields as a JSON object: {"conn_type": "postgres", "host": ...}')
@click.option("--conn-type", help="The kind of system (postgres, http, ...), when not given by a URI.")
@click.option("--conn-host")
@click.option("--conn-login")
@click.option("--conn-password")
@click.option("--conn-schema")
@click.option("--conn-port", type=click.IntRange(1, 65535))
@click.option("--conn-extra", help="Extra settings as a JSON object.")
@click.option("--conn-description")
def add(conn_id: str, **options: Any) -> None:
    """Add connection CONN_ID from --conn-uri, --conn-json, or --conn-type and the other fields."""
    from minisched.db.connections import add_connections
    from minisched.db.session import create_session

    connection = _from_options(conn_id, options)
    with create_session() as session:
        add_connections([connection.to_fields()], session=session)
    audit_cli("connections_add", _audit_fields(connection))
    click.echo(f"Added connection {conn_id}")


@connections_group.command("get")
@click.argument("conn_id")
@show_secrets_option
@output_option
def get(conn_id: str, show_secrets: bool, output: str) -> None:
    """One connection (MINISCHED_CONN_<ID> first, then the database)."""
    from minisched.authoring.connection import from_environment
    from minisched.cli.output import print_rows
    from minisched.db.connections import get_connection
    from minisched.db.session import create_session

    connection = from_environment(conn_id)
    if connection is None:
        with create_session() as session:
            fields = get_connection(conn_id, session=session)
    else:
        fields = connection.to_fields()
    print_rows([_shown(fields, show_secrets)], COLUMNS, output)


@connections_group.command("list")
@show_secrets_option
@output_option
def list_(show_secrets: bool, output: str) -> None:
    """Every connection in the database."""
    from minisched.cli.output import print_rows
    from minisched.db.connections import list_connections
    from minisched.db.session import create_session

    with create_session() as session:
        rows = list_connections(session=session)
    print_rows([_shown(fields, show_secrets) for fields in rows], COLUMNS, output)


@connections_group.command("delete")
@click.argument("conn_id")
def delete(conn_id: str) -> None:
    """Delete connection CONN_ID."""
    from minisched.db.connections import delete_connection
    from minisched.db.session import create_session

    with create_session() as session:
        delete_connection(conn_id, session=session)
    audit_cli("connections_delete", {"conn_id": conn_id})
    click.echo(f"Deleted connection {conn_id}")


@connections_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def export(file: Path) -> None:
    """Write every connection to FILE as JSON, passwords included (the file is made readable by you only)."""
    from minisched.authoring.connection import Connection
    from minisched.cli.files import export_document
    from minisched.db.connections import list_connections
    from minisched.db.session import create_session

    with create_session() as session:
        rows = list_connections(session=session)
    document = {}
    for fields in rows:
        entry = {key: value for key, value in fields.items() if key != "conn_id"}
        entry["extra"] = Connection.from_fields(fields).extra_dejson or None
        document[fields["conn_id"]] = entry
    export_document(file, document, kind="connection")


@connections_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace connections that already exist.")
def import_(file: Path, overwrite: bool) -> None:
    """Add the connections of a JSON FILE ({"id": {"conn_type": ..., ...}}); all of them or none."""
    from minisched.authoring.connection import Connection
    from minisched.cli.files import read_json_object, report_import
    from minisched.db.connections import add_connections
    from minisched.db.session import create_session
    from minisched.exceptions import MinischedError

    document = read_json_object(file)
    connections = []
    for conn_id, entry in document.items():
        if not isinstance(entry, dict):
            raise MinischedError(f"{file}: connection {conn_id!r} must be an object of its fields")
        connections.append(Connection.from_mapping(conn_id, entry))
    with create_session() as session:
        add_connections([c.to_fields() for c in connections], session=session, overwrite=overwrite)
    arguments = {"conn_ids": sorted(document), "overwrite": overwrite}
    report_import(file, len(connections), kind="connection", arguments=arguments)


def _from_options(conn_id: str, options: dict[str, Any]) -> Connection:
    from minisched.authoring.connection import Connection

    uri, document = options.pop("conn_uri"), options.pop("conn_json")
    description = options.pop("conn_description")
    fields = {key.removeprefix("conn_"): value for key, value in options.items() if value is not None}
    if sum(x is not None for x in (uri, document)) + bool(fields.get("type")) != 1:
        raise click.UsageError("give exactly one of --conn-uri, --conn-json or --conn-type")
    if uri is not None or document is not None:
        if fields:
            raise click.UsageError("--conn-uri and --conn-json cannot be combined with the --conn-* fields")
        connection = Connection(conn_id, uri=uri) if uri else Connection.from_json(conn_id, document)
        if description is not None:
            connection.description = description
        return connection
    return Connection(
        conn_id,
        conn_type=fields.pop("type"),
        description=description,
        **fields,
    )


def _shown(fields: dict[str, Any], show_secrets: bool) -> dict[str, Any]:
    """The row to print: extra as an object; unless asked, the password and secret extras as ***."""
    from minisched.masking import MASK, redact

    shown = dict(fields)
    extra = _extra(shown.get("extra"))
    if extra is not None:
        shown["extra"] = extra
    if show_secrets:
        return shown
    if shown.get("password") is not None:
        shown["password"] = MASK
    if extra is not None:
        shown["extra"] = redact(extra)
    return shown


def _extra(text: str | None) -> dict[str, Any] | None:
    import json

    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _audit_fields(connection: Connection) -> dict[str, Any]:
    """What the audit row keeps: never the password or the extra's values."""
    return {
        "conn_id": connection.conn_id,
        "conn_type": connection.conn_type,
        "host": connection.host,
        "port": connection.port,
        "schema": connection.schema,
        "login": connection.login,
        "password": "***" if connection.password is not None else None,
        "extra_keys": sorted(connection.extra_dejson),
    }
