"""`pools list`, `pools set`, `pools delete`."""

from __future__ import annotations

import click

from minisched.cli.audit import audit_cli
from minisched.cli.output import output_option
from minisched.cli.params import count

POOL_COLUMNS = ["pool", "slots", "occupied_slots", "open_slots"]


@click.group("pools")
def pools_group() -> None:
    """Limit how many task slots run at once, per named pool."""


@pools_group.command("list")
@output_option
def list_pools(output: str) -> None:
    """Every pool with its slots, the slots held by queued/running tasks, and the open ones."""
    from minisched.cli.output import print_rows
    from minisched.pools import pool_usage

    usage = pool_usage()
    rows = [
        {"pool": p.pool, "slots": p.slots, "occupied_slots": p.occupied_slots, "open_slots": p.open_slots}
        for p in usage
    ]
    print_rows(rows, POOL_COLUMNS, output)


@pools_group.command("set")
@click.argument("name")
@click.argument("slots", type=count(0))
@click.option("--description", help="What the pool is for.")
def set_pool(name: str, slots: int, description: str | None) -> None:
    """Create pool NAME with SLOTS slots, or change an existing pool's slots."""
    from minisched.pools import set_pool as upsert_pool

    created = upsert_pool(name, slots, description=description)
    audit_cli("pools_set", {"pool": name, "slots": slots, "description": description})
    click.echo(f"{'Created' if created else 'Updated'} pool {name} with {slots} slots")


@pools_group.command("delete")
@click.argument("name")
def delete_pool(name: str) -> None:
    """Delete pool NAME (not default_pool, and not while task instances hold its slots)."""
    from minisched.pools import delete_pool as drop_pool

    drop_pool(name)
    audit_cli("pools_delete", {"pool": name})
    click.echo(f"Deleted pool {name}")
