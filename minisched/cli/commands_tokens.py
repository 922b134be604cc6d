"""`tokens create|list|revoke`: who may use the REST API and the web UI."""

from __future__ import annotations

import click

from minisched.cli.audit import audit_cli
from minisched.cli.output import output_option

TOKEN_COLUMNS = ["name", "role", "created_at", "last_used_at"]


@click.group("tokens")
def tokens_group() -> None:
    """API and UI access tokens (only their hash is stored)."""


@tokens_group.command("create")
@click.option("--name", required=True, help="Who or what uses the token (unique).")
@click.option(
    "--role",
    type=click.Choice(["viewer", "op", "admin"]),
    required=True,
    help="viewer reads; op also pauses, triggers, clears and edits pools; admin does everything.",
)
def create(name: str, role: str) -> None:
    """Create a token and print it once: it cannot be shown again."""
    from minisched.db.session import create_session
    from minisched.service.tokens import create_token

    with create_session() as session:
        _, token = create_token(name, role, session=session)
    audit_cli("tokens_create", {"name": name, "role": role})
    click.echo(token)
    click.echo(f"Token {name!r} ({role}) created; it is shown only this once.", err=True)


@tokens_group.command("list")
@output_option
def list_tokens(output: str) -> None:
    """The tokens: name, role, when created and last used (never the token)."""
    from minisched.cli.output import print_rows
    from minisched.db.session import create_session
    from minisched.service.tokens import list_tokens as tokens

    with create_session() as session:
        rows = [
            {"name": t.name, "role": t.role, "created_at": t.created_at, "last_used_at": t.last_used_at}
            for t in tokens(session=session)
        ]
    print_rows(rows, TOKEN_COLUMNS, output)


@tokens_group.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Delete token NAME: the API refuses it, and UI sessions made with it end, within seconds."""
    from minisched.db.session import create_session
    from minisched.service.tokens import revoke_token

    with create_session() as session:
        revoke_token(name, session=session)
    audit_cli("tokens_revoke", {"name": name})
    click.echo(f"Token {name!r} revoked")
