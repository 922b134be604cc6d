"""Printing rows: aligned tables for people, JSON (ISO-8601 UTC datetimes, stable keys) for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import click

OUTPUT_CHOICES = ("table", "json")

output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(OUTPUT_CHOICES),
    default="table",
    show_default=True,
    help="Aligned table for people or JSON for scripts.",
)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    header = " | ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))
    rule = "-+-".join("-" * width for width in widths)
    body = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    return "\n".join([header.rstrip(), rule, *body])


def print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], output: str) -> None:
    if output == "json":
        payload = [{column: to_jsonable(row.get(column)) for column in columns} for row in rows]
        click.echo(json.dumps(payload, indent=2))
    elif not rows:
        click.echo("No data found")
    else:
        click.echo(render_table(rows, columns))
